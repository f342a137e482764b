/**
 * Atomic file writes: write a temp file beside the target, then rename over it,
 * so a killed run leaves either the old file or the new one, never half of one.
 */
import { dirname } from "node:path";

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${Date.now()}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
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
