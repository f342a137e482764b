/**
 * A training step in steady state creates nothing on the device: after the
 * warm-up steps, a MoCo step (with Adam) allocates no buffer, compiles no
 * pipeline and creates no bind group, and reaches the queue in one submit
 * (plus the loss readback's). A kernel that allocates per call, a pool that
 * hands buffers out in a different order each step, or a kernel source that
 * changes per call fails it.
 */
import { gpuBackend } from "../model/backend_gpu.ts";
import { TinyNet } from "./tiny_net.ts";
import { Moco, type MocoConfig } from "../train/moco.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { Optimizer } from "../train/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

const cfg: MocoConfig = {
  backbone: "resnet18",
  inChannels: 1,
  dim: 16,
  queueSize: 24,
  temperature: 0.2,
  momentum: 0.9,
  bnGroups: 2,
};
const N = 8, S = 16;

Deno.test("a steady-state MoCo step creates no buffer, pipeline or bind group", async () => {
  const B = gpuBackend(gpu);
  const moco = await Moco.create(B, gpuTrainOps, cfg, 3, (o) => new TinyNet(B, o));
  const opt = new Optimizer(B, gpuTrainOps, moco.encQ.namedParameters(), {
    kind: "adam",
    weightDecay: 1e-4,
  });
  const step = async (s: number) => {
    const perm = new Rng(s).shuffle([...Array(N).keys()]);
    const inv = new Float32Array(N);
    perm.forEach((p, j) => (inv[p] = j));
    const xq = B.fromArray(randn(N * S * S, 10 + s), [N, 1, S, S]);
    const xk = B.fromArray(randn(N * S * S, 20 + s), [N, 1, S, S]);
    const un = B.fromArray(inv, [N]);
    const r = moco.step(xq, xk, un);
    opt.update(1e-3);
    const loss = (await B.read(r.loss))[0];
    for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
    return loss;
  };
  try {
    for (let s = 0; s < 3; s++) await step(s);
    const before = { ...gpu.stats };
    const losses = [];
    for (let s = 3; s < 6; s++) losses.push(await step(s));
    const d = (k: keyof typeof before) => gpu.stats[k] - before[k];
    assertEquals(
      {
        buffers: d("buffersCreated"),
        bytes: d("bytesAllocated"),
        pipelines: d("pipelinesCreated"),
      },
      { buffers: 0, bytes: 0, pipelines: 0 },
    );
    assertEquals(d("bindGroupsCreated"), 0);
    // uploads flush what is recorded; the step itself and its readback: at most 3 submits a step
    assertEquals(d("submits") <= 3 * 3, true, `submits ${d("submits")}`);
    assertEquals(losses.every(Number.isFinite), true);
  } finally {
    opt.dispose();
    moco.dispose();
  }
});
