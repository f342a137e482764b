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

export type { AdamOptions, SgdOptions } from "../kernels/cpu/optim.ts";

/** The non-differentiated training updates, per backend (gpuTrainOps, cpuTrainOps). */
export interface TrainOps {
  /** Writes keys into the ring-buffer queue at ptr; returns the next ptr. */
  enqueue(queue: BTensor, keys: BTensor, ptr: number): number;
  /** One SGD update of p in place (torch.optim.SGD semantics; buf: its momentum buffer). */
  sgdStep(p: BTensor, g: BTensor, buf: BTensor | null, o: optCpu.SgdOptions): void;
  /** One Adam / AdamW update of p in place (m, v: its moment estimates). */
  adamStep(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: optCpu.AdamOptions): void;
  /** k ← m·k + (1−m)·q in place. */
  emaUpdate(k: BTensor, q: BTensor, m: number): void;
}

const G = (t: BTensor) => t as Tensor;
const C = (t: BTensor) => t as CpuTensor;

/** The WebGPU kernels. */
export const gpuTrainOps: TrainOps = {
  enqueue: (queue, keys, ptr) => enqueue(G(queue), G(keys), ptr),
  sgdStep: (p, g, b, o) => opt.sgdStep(G(p), G(g), b && G(b), o),
  adamStep: (p, g, m, v, o) => opt.adamStep(G(p), G(g), G(m), G(v), o),
  emaUpdate: (k, q, m) => opt.emaUpdate(G(k), G(q), m),
};

/** The pure-TS references. */
export const cpuTrainOps: TrainOps = {
  enqueue: (queue, keys, ptr) => enqueueCpu(C(queue), C(keys), ptr),
  sgdStep: (p, g, b, o) => optCpu.sgdStepCpu(C(p), C(g), b && C(b), o),
  adamStep: (p, g, m, v, o) => optCpu.adamStepCpu(C(p), C(g), C(m), C(v), o),
  emaUpdate: (k, q, m) => optCpu.emaUpdateCpu(C(k), C(q), m),
};
