/**
 * Ctrl-C (SIGINT) during a long task (cli/interrupt.ts): one line saying where the run stopped
 * and how to continue, exit code 130, and the listener gone once the long part ends. The tests
 * run the handler through fake listeners: the test sandbox cannot send a real signal to a
 * subprocess of deno.
 */
import { assert, assertEquals } from "./helpers.ts";
import {
  INTERRUPTED_EXIT_CODE,
  onInterrupt,
  pretrainInterruptLine,
  type SignalListeners,
} from "../cli/interrupt.ts";

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
  const at = { step: 0, totalSteps: 12, checkpointStep: null as number | null };
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
  assertEquals(
    pretrainInterruptLine({ step: 3, totalSteps: 12, checkpointStep: null }),
    "interrupted at step 3 of 12; no checkpoint was saved yet: rerun the same command to start " +
      "again",
  );
  assertEquals(
    pretrainInterruptLine({ step: 0, totalSteps: 12, checkpointStep: null }),
    "interrupted before the first step (of 12); no checkpoint was saved yet: rerun the same " +
      "command to start again",
  );
});
