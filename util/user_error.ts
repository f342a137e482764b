/**
 * The error a user can act on. Its message is the whole story (bad data, a refused resume), so
 * the commands print it alone, without a stack trace (cli/run_main.ts). Layers below the
 * commands throw it, or a typed subclass, naming no command-line flag: cli/explain.ts words
 * the typed ones for the command line.
 */

/** An error whose message is the whole story for the user (bad flag, bad data). */
export class UserError extends Error {}

/**
 * `text` on one line: control characters (a newline inside a quoted CSV path, say) written as
 * their JSON escapes (\n, \t, \u0000), so a message stays one line a user can read and grep.
 */
export function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}
