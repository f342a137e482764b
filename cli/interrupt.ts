/**
 * Ctrl-C (SIGINT) during a long task: one line saying where the run stopped and how to continue,
 * then exit code 130 (128 + SIGINT, what a shell reports for an interrupted command). The run
 * folder stays consistent: every file is written through a temporary file and a rename
 * (util/fs.ts), and a resume drops metrics lines past the last checkpoint.
 */

/** Where the interrupt line goes and how the process ends (tests pass their own). */
export interface InterruptIo {
  error: (line: string) => void;
  exit: (code: number) => void;
}

/** How a listener is added and removed (Deno's signal listeners; tests pass their own). */
export interface SignalListeners {
  add: (handler: () => void) => void;
  remove: (handler: () => void) => void;
}

/** The exit code of a command ended by SIGINT. */
export const INTERRUPTED_EXIT_CODE = 130;

const defaultIo: InterruptIo = {
  // A progress line may be half drawn: start the message on a line of its own.
  error: (line) => console.error(`${Deno.stdout.isTerminal() ? "\n" : ""}${line}`),
  exit: (code) => Deno.exit(code),
};

const sigint: SignalListeners = {
  add: (h) => Deno.addSignalListener("SIGINT", h),
  remove: (h) => Deno.removeSignalListener("SIGINT", h),
};

/** The handler: prints `message()` (one line) and exits with INTERRUPTED_EXIT_CODE. */
export function interruptHandler(message: () => string, io: InterruptIo = defaultIo): () => void {
  return () => {
    io.error(message());
    io.exit(INTERRUPTED_EXIT_CODE);
  };
}

/** Where a task's Ctrl-C line goes and how its handler is installed (tests pass their own). */
export interface InterruptHooks {
  io: InterruptIo;
  listeners: SignalListeners;
}

/** The process's own: stderr, Deno.exit and Deno's SIGINT listeners. */
export const PROCESS_INTERRUPT: InterruptHooks = { io: defaultIo, listeners: sigint };

/**
 * Installs the handler on SIGINT until the returned function is called (call it when the long
 * part ends, so a later Ctrl-C is the default one again).
 */
export function onInterrupt(
  message: () => string,
  io: InterruptIo = defaultIo,
  listeners: SignalListeners = sigint,
): () => void {
  const h = interruptHandler(message, io);
  listeners.add(h);
  return () => listeners.remove(h);
}

/**
 * Ctrl-C's line from here to the end of the enclosing block (`using _ = interruptScope(…)`):
 * a task installs it on its first line, since reading and caching the data and timing the plan's
 * steps take minutes on a large dataset and a Ctrl-C there deserves a line too. The handler is
 * removed however the block ends.
 */
export function interruptScope(
  message: () => string,
  hooks: InterruptHooks = PROCESS_INTERRUPT,
): Disposable {
  return { [Symbol.dispose]: onInterrupt(message, hooks.io, hooks.listeners) };
}

/** Where pretraining is, for its Ctrl-C line (`began` once the first step is about to run). */
export interface PretrainProgress {
  began: boolean;
  /** --resume over a folder holding a checkpoint */
  resuming: boolean;
  step: number;
  totalSteps: number;
  checkpointStep: number | null;
}

/** What a Ctrl-C during pretraining says: where it stopped and how `--resume` continues. */
export function pretrainInterruptLine(at: PretrainProgress): string {
  if (!at.began) {
    // Reading the data, caching it or timing the plan's steps: no step ran.
    return at.resuming
      ? "interrupted before pretraining resumed; rerun the same command (with --resume) to " +
        "continue from its last checkpoint"
      : "interrupted before the first step; no checkpoint was saved: rerun the same command to " +
        "start";
  }
  const where = at.step > 0
    ? `interrupted at step ${at.step} of ${at.totalSteps}`
    : `interrupted before the first step (of ${at.totalSteps})`;
  return at.checkpointStep !== null
    ? `${where}; rerun the same command with --resume to continue from its last checkpoint ` +
      `(step ${at.checkpointStep})`
    : `${where}; no checkpoint was saved yet: rerun the same command to start again`;
}

/**
 * What a Ctrl-C during an experiment says: a rerun of the same command skips the finished cells
 * and continues each pretraining from its last checkpoint (train/experiment.ts).
 */
export const EXPERIMENT_INTERRUPT_LINE = "interrupted; rerun the same command to continue: " +
  "finished cells are skipped and pretraining continues from its last checkpoint";

/** What a Ctrl-C during fine-tuning says: a rerun skips the cells already in its folder. */
export const FINETUNE_INTERRUPT_LINE = "interrupted; rerun the same command to continue: " +
  "finished cells are skipped";
