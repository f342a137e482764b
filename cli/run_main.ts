/**
 * Entry-point wrapper for tasks: turns the errors a user can act on into one
 * clear message (worded by explain.ts) and exit code instead of a stack trace.
 */
import { dirname, resolve } from "node:path";
import { oneLine, UserError } from "../util/user_error.ts";
import { explain } from "./explain.ts";

/** Where runMain reports (tests pass their own). */
export interface MainIo {
  error: (...data: unknown[]) => void;
  exit: (code: number) => void;
}

/**
 * Runs a task's main; on failure prints one line (`error: ...`) for an error the user can act
 * on, the error with its stack for anything else (a bug), and exits 1.
 */
export async function runMain(
  main: () => Promise<void>,
  io: MainIo = { error: console.error, exit: Deno.exit },
): Promise<void> {
  try {
    await main();
  } catch (e) {
    const msg = explain(e);
    if (msg) io.error(`error: ${oneLine(msg)}`);
    else io.error(e);
    io.exit(1);
  }
}

/**
 * Fails at once, before any work, when the sandbox does not allow writing the folder `path`, or
 * when `path` or a folder above it is a file (it could never be made a folder).
 */
export async function requireWrite(path: string, flag = "--out"): Promise<void> {
  await requireWritePermission(path, flag, "runs/<name>");
  const file = await fileInTheWay(path);
  if (file !== null) {
    throw new UserError(
      file === resolve(path)
        ? `${flag} ${path} is a file, not a folder; pass a folder (new or existing) to ${flag}`
        : `${flag} ${path} lies under ${file}, which is a file, not a folder; pass another ${flag}`,
    );
  }
}

/**
 * As requireWrite, for a flag naming a file (a cache the task reads and rewrites): the file may
 * exist; a folder at its path, or a file where a folder above it must be, is refused.
 */
export async function requireWriteFile(path: string, flag: string): Promise<void> {
  await requireWritePermission(path, flag, "runs/<name>.json");
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(path);
  } catch {
    // not there (it will be made), or not readable: the write will tell
  }
  if (info?.isDirectory) {
    throw new UserError(`${flag} ${path} is a folder, not a file; pass a file path to ${flag}`);
  }
  const file = info ? null : await fileInTheWay(dirname(resolve(path)));
  if (file !== null) {
    throw new UserError(
      `${flag} ${path} lies under ${file}, which is a file, not a folder; pass another ${flag}`,
    );
  }
}

/** Refuses a path the sandbox does not let this task write, naming the flag and a fix. */
async function requireWritePermission(path: string, flag: string, example: string) {
  const { state } = await Deno.permissions.query({ name: "write", path });
  if (state !== "granted") {
    throw new UserError(
      `Permission denied: this task may not write ${path}. It is sandboxed to write only runs/; ` +
        `pass ${flag} ${example}, or add --allow-write=${path} to the task's line in deno.json.`,
    );
  }
}

/** `path` itself or the nearest existing folder-or-file above it, when that is not a folder. */
async function fileInTheWay(path: string): Promise<string | null> {
  for (let p = resolve(path);; p = dirname(p)) {
    try {
      return (await Deno.stat(p)).isDirectory ? null : p;
    } catch (e) {
      // Not there, or under a file (look further up); not readable: the write will tell.
      const missing = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
      if (!missing || dirname(p) === p) return null;
    }
  }
}
