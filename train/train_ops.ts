/**
 * The tensor operations training needs beyond the model's Backend (losses,
 * MoCo logits and queue, optimizer steps, EMA, row gather), with a GPU and a
 * CPU implementation, so a MoCo or fine-tuning step can be run on both and
 * compared (tests/train_moco_step.test.ts).
 */
import type { BTensor } from "../model/backend.ts";
import type { Tensor } from "../kernels/tensor.ts";
import type { CpuTensor } from "../kernels/cpu/tensor.ts";
import * as loss from "../kernels/loss.ts";
import * as lossCpu from "../kernels/cpu/loss.ts";
import { l2Normalize, l2NormalizeBackward } from "../kernels/normalize.ts";
import { l2NormalizeBackwardCpu, l2NormalizeCpu } from "../kernels/cpu/normalize.ts";
import { sigmoid } from "../kernels/elementwise.ts";
import { sigmoidCpu } from "../kernels/cpu/elementwise.ts";
import * as con from "../kernels/contrastive.ts";
import * as conCpu from "../kernels/cpu/contrastive.ts";
import * as opt from "../kernels/optim.ts";
import * as optCpu from "../kernels/cpu/optim.ts";
import { gatherRows } from "../kernels/gather.ts";
import { gatherRowsCpu } from "../kernels/cpu/gather.ts";

export type { AdamOptions, SgdOptions } from "../kernels/cpu/optim.ts";

export interface TrainOps {
  l2Normalize(x: BTensor): { y: BTensor; norm: BTensor };
  l2NormalizeBackward(dy: BTensor, y: BTensor, norm: BTensor): BTensor;
  mocoLogits(q: BTensor, k: BTensor, queue: BTensor, T: number): BTensor;
  mocoLogitsBackward(dlogits: BTensor, k: BTensor, queue: BTensor, T: number): BTensor;
  infoNce(logits: BTensor): { loss: BTensor; dlogits: BTensor; correct: BTensor };
  enqueue(queue: BTensor, keys: BTensor, ptr: number): number;
  gatherRows(x: BTensor, idx: BTensor): BTensor;
  bceWithLogits(
    logits: BTensor,
    targets: BTensor,
    mask: BTensor,
  ): { loss: BTensor; dlogits: BTensor };
  sigmoid(x: BTensor): BTensor;
  sgdStep(p: BTensor, g: BTensor, buf: BTensor | null, o: optCpu.SgdOptions): void;
  adamStep(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: optCpu.AdamOptions): void;
  emaUpdate(k: BTensor, q: BTensor, m: number): void;
}

const G = (t: BTensor) => t as Tensor;
const C = (t: BTensor) => t as CpuTensor;

export const gpuTrainOps: TrainOps = {
  l2Normalize: (x) => l2Normalize(G(x)),
  l2NormalizeBackward: (dy, y, n) => l2NormalizeBackward(G(dy), G(y), G(n)),
  mocoLogits: (q, k, queue, T) => con.mocoLogits(G(q), G(k), G(queue), T),
  mocoLogitsBackward: (d, k, queue, T) => con.mocoLogitsBackward(G(d), G(k), G(queue), T),
  infoNce: (l) => con.infoNce(G(l)),
  enqueue: (queue, keys, ptr) => con.enqueue(G(queue), G(keys), ptr),
  gatherRows: (x, idx) => gatherRows(G(x), G(idx)),
  bceWithLogits: (l, t, m) => loss.bceWithLogits(G(l), G(t), G(m)),
  sigmoid: (x) => sigmoid(G(x)),
  sgdStep: (p, g, b, o) => opt.sgdStep(G(p), G(g), b && G(b), o),
  adamStep: (p, g, m, v, o) => opt.adamStep(G(p), G(g), G(m), G(v), o),
  emaUpdate: (k, q, m) => opt.emaUpdate(G(k), G(q), m),
};

export const cpuTrainOps: TrainOps = {
  l2Normalize: (x) => l2NormalizeCpu(C(x)),
  l2NormalizeBackward: (dy, y, n) => l2NormalizeBackwardCpu(C(dy), C(y), C(n)),
  mocoLogits: (q, k, queue, T) => conCpu.mocoLogitsCpu(C(q), C(k), C(queue), T),
  mocoLogitsBackward: (d, k, queue, T) => conCpu.mocoLogitsBackwardCpu(C(d), C(k), C(queue), T),
  infoNce: (l) => conCpu.infoNceCpu(C(l)),
  enqueue: (queue, keys, ptr) => conCpu.enqueueCpu(C(queue), C(keys), ptr),
  gatherRows: (x, idx) => gatherRowsCpu(C(x), C(idx)),
  bceWithLogits: (l, t, m) => lossCpu.bceWithLogitsCpu(C(l), C(t), C(m)),
  sigmoid: (x) => sigmoidCpu(C(x)),
  sgdStep: (p, g, b, o) => optCpu.sgdStepCpu(C(p), C(g), b && C(b), o),
  adamStep: (p, g, m, v, o) => optCpu.adamStepCpu(C(p), C(g), C(m), C(v), o),
  emaUpdate: (k, q, m) => optCpu.emaUpdateCpu(C(k), C(q), m),
};
