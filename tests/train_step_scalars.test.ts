/**
 * Step scalars (train/step_scalars.ts): values pushed as GPU tensors come back in order, a block
 * late when reading every N steps, all of them on a forced collect; the CPU backend's come back at
 * once.
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

Deno.test("step scalars on the GPU: every 1 at once, every 3 a block late, forced reads all", async () => {
  const B = gpuBackend(gpu);
  assertEquals(await pushes(B, 1, [1, 2, 3]), [[1], [2], [3]]);
  assertEquals(
    await pushes(B, 3, [1, 2, 3, 4, 5, 6, 7, "force", 8, 9, 10, 11, "force"]),
    [[], [], [], [], [], [1, 2, 3], [], [4, 5, 6, 7], [], [], [], [], [8, 9, 10, 11]],
  );
});

Deno.test("step scalars on the CPU backend: every value at once", async () => {
  assertEquals(await pushes(cpuBackend, 3, [1, 2, "force", 3]), [[1], [2], [], [3]]);
});
