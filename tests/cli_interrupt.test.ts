/**
 * Ctrl-C (SIGINT) during a long task (cli/interrupt.ts): one line saying where the run stopped
 * and how to continue, exit code 130, and the listener gone once the long part ends. The tests
 * run the handler through fake listeners: the test sandbox cannot send a real signal to a
 * subprocess of deno.
 */
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import {
  EXPERIMENT_INTERRUPT_LINE,
  FINETUNE_INTERRUPT_LINE,
  INTERRUPTED_EXIT_CODE,
  onInterrupt,
  pretrainInterruptLine,
  type PretrainProgress,
  type SignalListeners,
} from "../cli/interrupt.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { main as experimentMain } from "../tasks/experiment.ts";

function fakeListeners() {
  const handlers = new Set<() => void>();
  const listeners: SignalListeners = {
    add: (h) => handlers.add(h),
    remove: (h) => handlers.delete(h),
  };
  return { handlers, listeners, fire: () => [...handlers].forEach((h) => h()) };
}

Deno.test("interrupt: one line from the state at the moment of the signal, exit 130, then removed", () => {
  const printed: string[] = [], exits: number[] = [];
  const io = { error: (l: string) => printed.push(l), exit: (c: number) => exits.push(c) };
  const sig = fakeListeners();
  const at: PretrainProgress = {
    began: true,
    resuming: false,
    step: 0,
    totalSteps: 12,
    checkpointStep: null,
  };
  const stop = onInterrupt(() => pretrainInterruptLine(at), io, sig.listeners);
  assertEquals(sig.handlers.size, 1);
  at.step = 7;
  at.checkpointStep = 6;
  sig.fire();
  assertEquals(exits, [INTERRUPTED_EXIT_CODE]);
  assertEquals(INTERRUPTED_EXIT_CODE, 130);
  assertEquals(printed, [
    "interrupted at step 7 of 12; rerun the same command with --resume to continue from its " +
    "last checkpoint (step 6)",
  ]);
  assert(!printed[0].includes("\n"));
  stop();
  assertEquals(sig.handlers.size, 0);
});

Deno.test("interrupt: pretraining's line before any checkpoint, and before the first step", () => {
  const began = { began: true, resuming: false };
  assertEquals(
    pretrainInterruptLine({ ...began, step: 3, totalSteps: 12, checkpointStep: null }),
    "interrupted at step 3 of 12; no checkpoint was saved yet: rerun the same command to start " +
      "again",
  );
  assertEquals(
    pretrainInterruptLine({ ...began, step: 0, totalSteps: 12, checkpointStep: null }),
    "interrupted before the first step (of 12); no checkpoint was saved yet: rerun the same " +
      "command to start again",
  );
  // While the data is read and cached or the plan's steps are timed: a new run has nothing saved,
  // a resumed one still has its checkpoint.
  const before = { began: false, step: 0, totalSteps: 0, checkpointStep: null };
  assertEquals(
    pretrainInterruptLine({ ...before, resuming: false }),
    "interrupted before the first step; no checkpoint was saved: rerun the same command to start",
  );
  assertEquals(
    pretrainInterruptLine({ ...before, resuming: true }),
    "interrupted before pretraining resumed; rerun the same command (with --resume) to continue " +
      "from its last checkpoint",
  );
});

// Each long task listens from its first line on (reading and caching a large dataset and timing
// the plan take minutes), and lets go however it ends: here a --data that does not exist.
for (
  const [name, main, line] of [
    ["pretrain", pretrainMain, /^interrupted before the first step; no checkpoint/],
    ["finetune", finetuneMain, new RegExp(`^${FINETUNE_INTERRUPT_LINE}$`)],
    ["experiment", experimentMain, new RegExp(`^${EXPERIMENT_INTERRUPT_LINE}$`)],
  ] as const
) {
  Deno.test(`interrupt: deno task ${name} listens before it reads the data`, async () => {
    const out = await Deno.makeTempDir();
    try {
      const printed: string[] = [], exits: number[] = [];
      const io = { error: (l: string) => printed.push(l), exit: (c: number) => exits.push(c) };
      const sig = fakeListeners();
      const seen: (() => void)[] = [];
      const listeners: SignalListeners = {
        add: (h) => (seen.push(h), sig.listeners.add(h)),
        remove: sig.listeners.remove,
      };
      await assertRejects(
        () => main(["--data=/nonexistent/cxr", `--out=${out}/run`], { io, listeners }),
        /dataset folder not found/,
      );
      assertEquals(seen.length, 1, "one listener, installed before the data was read");
      assertEquals(sig.handlers.size, 0, "and removed when the task ended");
      seen[0](); // the Ctrl-C the task would have got while reading the data
      assertEquals(exits, [INTERRUPTED_EXIT_CODE]);
      assertEquals(printed.length, 1);
      assert(line.test(printed[0]), printed[0]);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
}
