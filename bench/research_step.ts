/**
 * Research-shape steps (issue 14): the MoCo step and a supervised step
 * (forward with batch-statistics BN, masked BCE over 14 findings, backward,
 * Adam) for ResNet-18, ResNet-50 and DenseNet-121 at 224 px, batch 64, each
 * as img/s and as a share of the measured FMA peak, with the buffer pool's
 * footprint; the MoCo step also with f16 storage (--precision f16) where the
 * adapter has shader-f16. The kernels are tuned after each model's first step. Minutes a
 * row on a software adapter: `deno task bench` runs it on hardware adapters
 * only, or when named (`--only research`).
 */
import type { Gpu } from "../kernels/device.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { backward, Var } from "../model/autograd.ts";
import { bceWithLogits } from "../model/ops.ts";
import { linearHead } from "../model/classifier.ts";
import { type BackboneName, buildBackbone } from "../train/backbones.ts";
import { Optimizer } from "../train/optimizer.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { Rng } from "../util/rng.ts";
import type { BenchEntry } from "./harness.ts";
import { MOCO_FLOPS_PER_IMAGE, runMocoBench } from "./moco_step.ts";

const BACKBONES: BackboneName[] = ["resnet18", "resnet50", "densenet121"];
const TASKS = 14;

/** ms per supervised step (best of `steps` after a warm-up and the tuner), and the pool's bytes. */
export async function timeSupervised(
  gpu: Gpu,
  backbone: BackboneName,
  size: number,
  batch: number,
  steps: number,
): Promise<{ ms: number; bytes: number }> {
  const B = gpuBackend(gpu);
  const rng = new Rng(1);
  const net = buildBackbone(B, backbone, { inChannels: 1, seed: rng });
  net.setHead(linearHead(B, net.featureDim, TASKS, rng));
  const opt = new Optimizer(B, gpuTrainOps, net.namedParameters(), {
    kind: "adam",
    weightDecay: 0,
  });
  const x = Float32Array.from({ length: batch * size * size }, () => rng.normal());
  const y = Float32Array.from({ length: batch * TASKS }, () => (rng.uniform() < 0.3 ? 1 : 0));
  const mask = new Float32Array(batch * TASKS).fill(1);
  const tuner = tunerOf(gpu);
  let best = Infinity;
  try {
    for (let s = 0; s < steps + 1; s++) {
      if (s === 1 && tuner.pendingCount > 0) await tuner.tunePending();
      const t0 = performance.now();
      const xt = B.fromArray(x, [batch, 1, size, size]);
      const yt = B.fromArray(y, [batch, TASKS]), mt = B.fromArray(mask, [batch, TASKS]);
      const out = net.forward(new Var(B, xt));
      const loss = bceWithLogits(out, yt, mt);
      out.release();
      backward(loss);
      opt.update(1e-4);
      const l = (await loss.read())[0];
      loss.dispose();
      for (const t of [xt, yt, mt]) B.dispose(t);
      if (!Number.isFinite(l)) throw new Error(`supervised ${backbone} step: loss ${l}`);
      if (s > 0) best = Math.min(best, performance.now() - t0);
    }
  } finally {
    opt.dispose();
    net.dispose();
  }
  return { ms: best, bytes: gpu.stats.bytesAllocated };
}

export const researchBench: BenchEntry = {
  name: "research",
  description: "MoCo and supervised steps, ResNet-18/50 and DenseNet-121, 224 px, batch 64",
  async run(ctx) {
    const [size, batch] = [224, 64];
    for (const backbone of BACKBONES) {
      // f16 storage beside f32 where the adapter has shader-f16 (issue 14's ≥ 1.5× target)
      for (const precision of ctx.gpu.hasF16 ? ["f32", "f16"] as const : ["f32"] as const) {
        await runMocoBench(ctx.gpu, {
          backbone,
          sizes: [size],
          tfSizes: [],
          batch,
          warmup: 1,
          steps: 2,
          tfSteps: 1,
          precision,
        }, false);
      }
      const { ms, bytes } = await timeSupervised(ctx.gpu, backbone, size, batch, 2);
      // a supervised step: forward + backward ≈ 3 forwards (no key encoder)
      const flops = (3 / 4) * MOCO_FLOPS_PER_IMAGE(size, backbone) * batch;
      console.log(
        `supervised ${backbone} ${size} px batch ${batch}: ${
          (batch / (ms / 1000)).toFixed(1)
        } img/s ` +
          `(${ms.toFixed(0)} ms a step, ${
            (100 * flops / (ms * 1e6) / ctx.peak.gflops).toFixed(1)
          }% ` +
          `of the peak; pool ${(bytes / 2 ** 30).toFixed(2)} GiB)`,
      );
    }
  },
};
