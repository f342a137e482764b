/**
 * Atomic, durable file writes: write a temp file beside the target, flush it to the disk, rename
 * it over the target, then flush the directory, so a killed run or a power loss leaves either
 * the old file or the new one, never half of one (nor an empty one).
 */
import { basename, dirname, join } from "node:path";

/**
 * The two flushes writeFileAtomic makes, replaceable by a test to see that they happen (each
 * must still do the flush it stands for). `dir` is skipped quietly where a directory cannot be
 * opened or flushed (Windows, some file systems).
 */
export const durability = {
  /** Flushes a written file's data to the disk. */
  file: (f: Deno.FsFile): Promise<void> => f.syncData(),
  /** Flushes a directory's entries (a rename in it) to the disk. */
  dir: async (path: string): Promise<void> => {
    let d: Deno.FsFile;
    try {
      d = await Deno.open(path, { read: true });
    } catch {
      return;
    }
    try {
      await d.sync();
    } catch {
      // not supported for directories here
    } finally {
      d.close();
    }
  },
};

/** The temp name writeFileAtomic writes `path` through. */
const tempName = (path: string) => `${path}.tmp-${Deno.pid}-${Date.now()}`;

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = tempName(path);
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      for (let p = 0; p < bytes.length;) p += await f.write(bytes.subarray(p));
      await durability.file(f);
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await durability.dir(dir);
}

/**
 * Removes the temp files writeFileAtomic left beside `path` when its process was killed
 * mid-write (`${path}.tmp-<pid>-<ms>`, nothing else); returns their names. Only for a file that
 * one process writes (a checkpoint), as another writer's temp file would look the same.
 */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const dir = dirname(path), base = basename(path);
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const stale = new RegExp(`^${esc}\\.tmp-\\d+-\\d+$`);
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  for (const e of entries) {
    if (!e.isFile || !stale.test(e.name)) continue;
    await Deno.remove(join(dir, e.name)).catch((x) => {
      if (!(x instanceof Deno.errors.NotFound)) throw x;
    });
    removed.push(e.name);
  }
  return removed;
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** A text file's contents, or null when there is none; other errors (a denied read) are thrown. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** True for an error that says the sandbox (Deno's --allow-* flags) or the OS refused access. */
export function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

/** Rethrows a permission error as is, so it reaches the user as a permission problem. */
export function rethrowIfDenied(e: unknown): void {
  if (isPermissionError(e)) throw e;
}

/** stat, or null when nothing is there; a denied stat throws (it is not "not found"). */
async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/** Whether something exists at `path` (following links); permission errors are thrown. */
export async function exists(path: string): Promise<boolean> {
  return (await statOrNull(path)) !== null;
}

/** Whether `path` is a directory (following links); permission errors are thrown. */
export async function isDir(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isDirectory ?? false;
}
