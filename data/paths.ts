/** Path helpers: resolving CSV paths safely inside a dataset root, and small fs checks. */
import { DataError } from "./data_error.ts";
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { exists, isDir } from "../util/fs.ts";

/** The trimmed, slash-normalised path; throws for empty, absolute, drive-letter or ~ paths. */
export function refuseAbsolute(rel: string, file: string, row: number): string {
  const p = rel.trim().replaceAll("\\", "/");
  if (p === "") throw new DataError(`${file}: row ${row}: empty path`);
  if (isAbsolute(p) || /^[a-zA-Z]:/.test(p) || p.startsWith("~")) {
    throw new DataError(
      `${file}: row ${row}: refused absolute path "${rel}" (paths must be relative)`,
    );
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
  if (r === "") {
    throw new DataError(
      `${file}: row ${row}: refused path "${rel}": it is the dataset root itself, not an image`,
    );
  }
  if (r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r)) {
    throw new DataError(`${file}: row ${row}: refused path "${rel}": it escapes the dataset root`);
  }
  return full;
}

/** A CSV row's image path, to be checked against the real path of the root it must stay in. */
export interface PathCheck {
  /** The root the path was resolved in. */
  base: string;
  /** The resolved (lexically inside) path. */
  path: string;
  /** The path as the CSV gives it. */
  rel: string;
  file: string;
  row: number;
}

/**
 * Refuses rows whose file is a symbolic link (or lies below one) leading outside the real path
 * of their root: Deno checks --allow-read against the link's own path, so an escape would also
 * defeat a narrowed sandbox. Missing files and links in a loop pass (the cache reports them as
 * bad images).
 */
export async function refuseSymlinkEscapes(checks: PathCheck[]): Promise<void> {
  const roots = new Map<string, Promise<string>>();
  const realRoot = (base: string) => {
    if (!roots.has(base)) roots.set(base, Deno.realPath(base));
    return roots.get(base)!;
  };
  const one = async (c: PathCheck) => {
    let real: string;
    try {
      real = await Deno.realPath(c.path);
    } catch (e) {
      // Missing, or a loop of links (which resolves to nothing): a bad image for the cache.
      if (
        e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory ||
        e instanceof Deno.errors.FilesystemLoop
      ) return;
      throw e;
    }
    const root = await realRoot(c.base);
    const r = relative(root, real);
    if (r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r)) {
      throw new DataError(
        `${c.file}: row ${c.row}: refused path "${c.rel}": it leads through a symbolic link to ` +
          `${real}, outside the dataset root ${root}`,
      );
    }
  };
  for (let i = 0; i < checks.length; i += 64) await Promise.all(checks.slice(i, i + 64).map(one));
}

/** Lists the entries of a directory (sorted by name, so record order is stable). */
export async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(path)) out.push(e);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export { exists, isDir, join, resolve, sep };
