/**
 * Step scalars (train/step_scalars.ts): values pushed as GPU tensors come back in order, a block
 * late (with every 1: a step late), all of them on a forced collect; the CPU backend's come back
 * at once.
 */
import { StepScalars } from "../train/step_scalars.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import type { Backend } from "../model/backend.ts";
import { assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";

async function pushes(B: Backend, every: number, plan: (number | "force")[]) {
  const s = new StepScalars(B, every), got: number[][] = [];
  for (const p of plan) {
    if (p === "force") {
      got.push((await s.collect(true)).map((v) => v.loss));
      continue;
    }
    s.push(B.fromArray(new Float32Array([p]), [1]), B.fromArray(new Float32Array([10 * p]), [1]));
    const v = await s.collect(false);
    v.forEach((x) => assertEquals(x.correct, 10 * x.loss));
    got.push(v.map((x) => x.loss));
  }
  s.dispose();
  return got;
}

Deno.test("step scalars on the GPU: every 1 a step late, every 3 a block late, forced reads all", async () => {
  const B = gpuBackend(gpu);
  assertEquals(await pushes(B, 1, [1, 2, 3, "force", 4]), [[], [1], [2], [3], []]);
  assertEquals(
    await pushes(B, 3, [1, 2, 3, 4, 5, 6, 7, "force", 8, 9, 10, 11, "force"]),
    [[], [], [], [], [], [1, 2, 3], [], [4, 5, 6, 7], [], [], [], [], [8, 9, 10, 11]],
  );
});

Deno.test("step scalars on the CPU backend: every value at once", async () => {
  assertEquals(await pushes(cpuBackend, 3, [1, 2, "force", 3]), [[1], [2], [], [3]]);
});

Deno.test("step scalars with a loss scaler: each step's scale and skipped count ride in the same read", async () => {
  for (const B of [gpuBackend(gpu), cpuBackend]) {
    const amp = { scale: B.fromArray(new Float32Array([1024]), [1]), flags: B.zeros([3]) };
    const s = new StepScalars(B, 2, amp);
    const seen: { loss: number; scale?: number; skipped?: number }[] = [];
    for (let i = 1; i <= 4; i++) {
      // what a step's updateLossScale leaves: the scale, and the skipped count in word 2
      const f = new Float32Array(3);
      new Uint32Array(f.buffer)[2] = i - 1;
      B.write(amp.scale, Float32Array.of(1024 * i));
      B.write(amp.flags, f);
      s.push(B.fromArray(Float32Array.of(i), [1]), B.fromArray(Float32Array.of(0), [1]));
      for (const v of await s.collect(i === 4)) seen.push({ loss: v.loss, ...v.amp });
    }
    s.dispose();
    assertEquals(seen, [1, 2, 3, 4].map((i) => ({ loss: i, scale: 1024 * i, skipped: i - 1 })));
  }
});
