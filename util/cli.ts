/**
 * Entry-point wrapper for tasks: turns the errors a user can act on into one
 * clear message and exit code instead of a stack trace.
 */

/** An error whose message is the whole story for the user (bad flag, bad data). */
export class UserError extends Error {}

/** The one-line message for an error a user can act on, or null for a bug (stack trace). */
export function explain(e: unknown): string | null {
  if (e instanceof UserError) return e.message;
  // node:util parseArgs: an unknown flag, a missing value, a value given to a switch.
  const code = (e as { code?: unknown })?.code;
  if (e instanceof Error && typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
    return `${e.message.replace(/\s+/g, " ").trim()} (see --help)`;
  }
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    const m = /Requires (\w+) access to (.+?),/.exec(e.message);
    const [kind, what] = m ? [m[1], m[2]] : ["", ""];
    const flag = kind ? `--allow-${kind}${what ? `=${what.replace(/^"|"$/g, "")}` : ""}` : "";
    return `Permission denied: ${e.message.replace(/\s+/g, " ").trim()}. ` +
      (flag
        ? `This run is sandboxed. If that access is intended, add ${flag} to the task's line in ` +
          `deno.json (or run with deno run ${flag} ...); otherwise point the flag that names the ` +
          `path (--data, --out) inside the granted folders.`
        : "");
  }
  if (e instanceof Deno.errors.NotFound) return `Not found: ${e.message}`;
  if (e instanceof Error && /No space left on device|ENOSPC/.test(e.message)) {
    return `Disk full: ${e.message}. Free space and rerun with --resume.`;
  }
  return null;
}

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
