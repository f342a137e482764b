/** Path helpers: resolving CSV paths safely inside a dataset root, and small fs checks. */
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";

/** The trimmed, slash-normalised path; throws for empty, absolute, drive-letter or ~ paths. */
export function refuseAbsolute(rel: string, file: string, row: number): string {
  const p = rel.trim().replaceAll("\\", "/");
  if (p === "") throw new Error(`${file}: row ${row}: empty path`);
  if (isAbsolute(p) || /^[a-zA-Z]:/.test(p) || p.startsWith("~")) {
    throw new Error(`${file}: row ${row}: refused absolute path "${rel}" (paths must be relative)`);
  }
  return p;
}

/**
 * Resolves a relative path from a CSV inside `base`. Refuses absolute paths, drive letters and
 * anything that climbs out (`../`), naming the file and row.
 */
export function resolveInside(base: string, rel: string, file: string, row: number): string {
  const p = refuseAbsolute(rel, file, row);
  const full = resolve(base, normalize(p));
  const r = relative(resolve(base), full);
  if (r === "" || r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r)) {
    throw new Error(`${file}: row ${row}: refused path "${rel}": it escapes the dataset root`);
  }
  return full;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Lists the entries of a directory (sorted by name, so record order is stable). */
export async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(path)) out.push(e);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export { join, resolve, sep };
