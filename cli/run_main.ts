/**
 * Entry-point wrapper for tasks: turns the errors a user can act on into one
 * clear message (worded by explain.ts) and exit code instead of a stack trace.
 */
import { UserError } from "../util/user_error.ts";
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
    if (msg) io.error(`error: ${msg}`);
    else io.error(e);
    io.exit(1);
  }
}

/** Fails at once, before any work, when the sandbox does not allow writing `path`. */
export async function requireWrite(path: string, flag = "--out"): Promise<void> {
  const { state } = await Deno.permissions.query({ name: "write", path });
  if (state !== "granted") {
    throw new UserError(
      `Permission denied: this task may not write ${path}. It is sandboxed to write only runs/; ` +
        `pass ${flag} runs/<name>, or add --allow-write=${path} to the task's line in deno.json.`,
    );
  }
}
