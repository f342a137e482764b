/**
 * The training updates that are not differentiated — optimizer steps, the key
 * encoder's EMA, the queue enqueue — with a GPU and a CPU implementation, so a
 * MoCo or fine-tuning step runs on both and can be compared
 * (tests/train_moco_step.test.ts). Everything differentiated (losses, MoCo
 * logits, normalization) is a recorded op in model/ops.ts over the Backend.
 */
import type { BTensor } from "../model/backend.ts";
import type { Tensor } from "../kernels/tensor.ts";
import type { CpuTensor } from "../kernels/cpu/tensor.ts";
import { enqueue } from "../kernels/contrastive.ts";
import { enqueueCpu } from "../kernels/cpu/contrastive.ts";
import * as opt from "../kernels/optim.ts";
import * as optCpu from "../kernels/cpu/optim.ts";

export type { AdamOptions, LossScaleOptions, SgdOptions } from "../kernels/cpu/optim.ts";

/** A loss scaler's state on the backend (kernels/optim.ts): scale [1]; flags [4] u32 words. */
export interface AmpTensors {
  /** The current loss scale. */
  scale: BTensor;
  /** found (a gradient was not finite this step), good steps, skipped steps, applied steps. */
  flags: BTensor;
}

/** The non-differentiated training updates, per backend (gpuTrainOps, cpuTrainOps). */
export interface TrainOps {
  /** Writes keys into the ring-buffer queue at ptr; returns the next ptr. */
  enqueue(queue: BTensor, keys: BTensor, ptr: number): number;
  /**
   * One SGD update of each ps[i] in place (torch.optim.SGD semantics; bufs[i]: its momentum
   * buffer); with `amp` the gradients are divided by the loss scale and nothing moves when it
   * flagged the step. Batched into few dispatches on a GPU, with one step's bits a tensor.
   */
  sgdStepMany(
    ps: readonly BTensor[],
    gs: readonly BTensor[],
    bufs: readonly (BTensor | null)[],
    o: optCpu.SgdOptions,
    amp?: AmpTensors | null,
  ): void;
  /** One Adam / AdamW update of each ps[i] in place (ms, vs: their moments); as sgdStepMany. */
  adamStepMany(
    ps: readonly BTensor[],
    gs: readonly BTensor[],
    ms: readonly BTensor[],
    vs: readonly BTensor[],
    o: optCpu.AdamOptions,
    amp?: AmpTensors | null,
  ): void;
  /** ks[i] ← m·ks[i] + (1−m)·qs[i] in place, batched into few dispatches on a GPU. */
  emaUpdateMany(ks: readonly BTensor[], qs: readonly BTensor[], m: number): void;
  /** Flags the step in `amp` when any of the f32 gradients holds ±inf or NaN. */
  flagNonFinite(gs: readonly BTensor[], amp: AmpTensors): void;
  /** The loss scale's update after a step (back off or grow); clears the flag. */
  updateLossScale(amp: AmpTensors, o: optCpu.LossScaleOptions): void;
}

const G = (t: BTensor) => t as Tensor;
const C = (t: BTensor) => t as CpuTensor;
const GA = (a: AmpTensors | null | undefined) =>
  a ? { scale: G(a.scale), flags: G(a.flags) } : null;
const CA = (a: AmpTensors | null | undefined) =>
  a ? { scale: C(a.scale), flags: C(a.flags) } : null;

/** The WebGPU kernels. */
export const gpuTrainOps: TrainOps = {
  enqueue: (queue, keys, ptr) => enqueue(G(queue), G(keys), ptr),
  emaUpdateMany: (ks, qs, m) => opt.emaUpdateMany(ks.map(G), qs.map(G), m),
  sgdStepMany: (ps, gs, bs, o, a) =>
    opt.sgdStepMany(ps.map(G), gs.map(G), bs.map((b) => b && G(b)), o, GA(a)),
  adamStepMany: (ps, gs, ms, vs, o, a) =>
    opt.adamStepMany(ps.map(G), gs.map(G), ms.map(G), vs.map(G), o, GA(a)),
  flagNonFinite: (gs, a) => opt.flagNonFinite(gs.map(G), GA(a)!),
  updateLossScale: (a, o) => opt.updateLossScale(GA(a)!, o),
};

/** The pure-TS references. */
export const cpuTrainOps: TrainOps = {
  enqueue: (queue, keys, ptr) => enqueueCpu(C(queue), C(keys), ptr),
  emaUpdateMany: (ks, qs, m) => ks.forEach((k, i) => optCpu.emaUpdateCpu(C(k), C(qs[i]), m)),
  sgdStepMany: (ps, gs, bs, o, a) =>
    ps.forEach((p, i) => optCpu.sgdStepCpu(C(p), C(gs[i]), bs[i] && C(bs[i]!), o, CA(a))),
  adamStepMany: (ps, gs, ms, vs, o, a) =>
    ps.forEach((p, i) => optCpu.adamStepCpu(C(p), C(gs[i]), C(ms[i]), C(vs[i]), o, CA(a))),
  flagNonFinite: (gs, a) => optCpu.flagNonFiniteCpu(gs.map(C), CA(a)!),
  updateLossScale: (a, o) => optCpu.updateLossScaleCpu(CA(a)!, o),
};
