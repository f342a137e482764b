/**
 * bench/harness.ts timeThroughput on a hardware card: a first batch estimates the rate, a batch of
 * ~SETTLE.settleMs settles the clock, the timed batches run ~SETTLE.batchMs each. A simulated card
 * runs each call 2× slower until it has worked 200 ms (session 11's H200: ~200 ms to its full
 * clock); timing without the settling batch, or with batches of `calls` alone, reads the cold rate.
 * Software adapters time `calls` a batch, as before.
 */
import type { Gpu } from "../kernels/device.ts";
import { callsFor, SETTLE, timeThroughput } from "../bench/harness.ts";
import { assert, assertEquals } from "./helpers.ts";

/** A card whose calls take `fast` ms once it has been busy `rampMs`, 2·fast before. */
function simulatedCard(isSoftware: boolean, fast: number, rampMs = 200) {
  let busy = 0, calls = 0;
  const batches: number[] = [];
  const gpu = {
    isSoftware,
    hasTimestamps: true,
    sync: async () => {},
    timePasses: (fns: Array<() => void>) => {
      const before = calls;
      for (const f of fns) f();
      const n = calls - before;
      batches.push(n);
      let ms = 0;
      for (let i = 0; i < n; i++) {
        const t = busy < rampMs ? 2 * fast : fast;
        busy += t;
        ms += t;
      }
      return Promise.resolve([ms]);
    },
  } as unknown as Gpu;
  return { gpu, batches, run: () => void calls++ };
}

Deno.test("timeThroughput settles a hardware card's clock before timing, and times long batches", async () => {
  const fast = 0.08; // ms a call at the full clock: matmul 1024³ on the H200
  const card = simulatedCard(false, fast);
  const t = await timeThroughput(card.gpu, card.run, 40);
  assert(Math.abs(t.ms - fast) < 1e-9, `settled ${t.ms} ms a call, want ${fast}`);
  assert(t.cold !== undefined && t.cold > 1.9 * fast, `cold ${t.cold}`);
  const settle = callsFor(SETTLE.settleMs, t.cold!, 40), n = callsFor(SETTLE.batchMs, t.cold!, 40);
  assertEquals(card.batches, [40, settle, n, n, n]);
  assert(settle * t.cold! >= SETTLE.settleMs && n * t.cold! >= SETTLE.batchMs);
  // a long kernel: batches of `calls` already hold the clock up
  const slow = simulatedCard(false, 4);
  const s = await timeThroughput(slow.gpu, slow.run, 40);
  assertEquals(s.ms, 4);
  assertEquals(slow.batches.slice(2), [40, 40, 40]);
});

Deno.test("timeThroughput on a software adapter times `calls` a batch, with no settling", async () => {
  const cpu = simulatedCard(true, 1, 0);
  const t = await timeThroughput(cpu.gpu, cpu.run, 3, { batches: 2 });
  assertEquals(cpu.batches, [3, 3]);
  assertEquals([t.ms, t.cold], [1, undefined]);
});

Deno.test("timeThroughput with settle: false times `calls` a batch on a card too", async () => {
  const card = simulatedCard(false, 0.08);
  const t = await timeThroughput(card.gpu, card.run, 40, { settle: false });
  assertEquals(card.batches, [40, 40, 40]);
  assertEquals(t.cold, undefined);
});

Deno.test("callsFor: the work asked for, within [least, SETTLE.maxCalls]", () => {
  assertEquals(callsFor(300, 0.1, 40), 3000);
  assertEquals(callsFor(300, 10, 40), 40);
  assertEquals(callsFor(300, 1e-6, 40), SETTLE.maxCalls);
});
