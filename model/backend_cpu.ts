/**
 * The CPU backend: the pure-TS kernel references (kernels/cpu/*) behind the
 * Backend interface. Slow but simple; used for the whole-network GPU-vs-CPU
 * tests and finite-difference gradient checks.
 *
 * f16 storage is emulated as the GPU kernels define it: an op whose activation
 * input is f16 computes in f32 and rounds its activation output to the nearest
 * half once (`half`); statistics, dγ/dβ and everything after a cast to f32
 * stay f32.
 */
import { type Backend, type BTensor, numel, type Shape } from "./backend.ts";
import { castCpu, type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import {
  addCpu,
  reluBackwardCpu,
  reluCpu,
  scaleByCpu,
  scaleCpu,
  sigmoidCpu,
} from "../kernels/cpu/elementwise.ts";
import { gatherRowsCpu } from "../kernels/cpu/gather.ts";
import { l2NormalizeBackwardCpu, l2NormalizeCpu } from "../kernels/cpu/normalize.ts";
import { infoNceCpu, mocoLogitsBackwardCpu, mocoLogitsCpu } from "../kernels/cpu/contrastive.ts";
import { bceWithLogitsCpu } from "../kernels/cpu/loss.ts";
import {
  conv2dBackwardBiasCpu,
  conv2dBackwardInputCpu,
  conv2dBackwardWeightCpu,
  conv2dCpu,
} from "../kernels/cpu/conv2d.ts";
import { linearBackwardCpu, linearCpu } from "../kernels/cpu/matmul.ts";
import {
  batchNormBackwardCpu,
  batchNormEvalCpu,
  batchNormTrainCpu,
} from "../kernels/cpu/batchnorm.ts";
import {
  avgPool2dBackwardCpu,
  avgPool2dCpu,
  globalAvgPoolBackwardCpu,
  globalAvgPoolCpu,
  maxPool2dBackwardCpu,
  maxPool2dCpu,
} from "../kernels/cpu/pool.ts";
import {
  addChannelsIntoCpu,
  addToChannelsCpu,
  concatChannelsCpu,
  copyChannelsIntoCpu,
  sliceChannelsCpu,
} from "../kernels/cpu/concat.ts";

const c = (t: BTensor) => t as CpuTensor;

/** out stored as f16 (rounded in place) when `like` is: the GPU kernels' store rounding. */
function half<T extends BTensor>(like: BTensor, out: T): T {
  if (c(like).dtype !== "f16") return out;
  const o = c(out);
  o.data.set(new Float16Array(o.data));
  o.dtype = "f16";
  return out;
}
const pool = (o: { k: number; stride: number; pad?: number }) => ({
  k: o.k,
  stride: o.stride,
  pad: o.pad ?? 0,
});

/** The Backend of the pure-TypeScript CPU references (tests and small checks; slow). */
export const cpuBackend: Backend = {
  name: "cpu",
  fromArray: (data, shape) => cpuTensor(shape, data),
  zeros: (shape) => cpuTensor(shape),
  full: (shape, v) => cpuTensor(shape, new Float32Array(numel(shape)).fill(v)),
  read: (t) => Promise.resolve(c(t).data.slice()),
  readMany: (ts) => Promise.resolve(ts.map((t) => c(t).data.slice())),
  dtype: (t) => c(t).dtype ?? "f32",
  cast: (x, d) => castCpu(c(x), d),
  write(t, data) {
    if (data.length !== c(t).data.length) {
      throw new Error(`write: ${data.length} values for shape [${t.shape}]`);
    }
    c(t).data.set(data);
  },
  dispose() {},
  addInto(acc, g) {
    const a = c(acc).data, b = c(g).data;
    if (a.length !== b.length) throw new Error(`addInto: [${acc.shape}] += [${g.shape}]`);
    for (let i = 0; i < a.length; i++) a[i] += b[i];
    if (c(acc).dtype === "f16") a.set(new Float16Array(a));
  },
  flush() {},

  relu: (x) => half(x, reluCpu(c(x))),
  reluBackward: (dy, y) => half(dy, reluBackwardCpu(c(dy), c(y))),
  add: (a, b) => half(a, addCpu(c(a), c(b))),
  addRelu: (a, b) => half(a, reluCpu(addCpu(c(a), c(b)))),
  scale: (x, a) => half(x, scaleCpu(c(x), a)),

  conv2d: (x, w, b, o) => half(x, conv2dCpu(c(x), c(w), b && c(b), o)),
  conv2dBackwardInput: (dy, w, xShape: Shape, o) =>
    half(dy, conv2dBackwardInputCpu(c(dy), c(w), xShape, o)),
  conv2dBackwardWeight: (dy, x, wShape: Shape, o) =>
    half(dy, conv2dBackwardWeightCpu(c(dy), c(x), wShape, o)),
  conv2dBackwardBias: (dy) => half(dy, conv2dBackwardBiasCpu(c(dy))),
  linear: (x, w, b) => linearCpu(c(x), c(w), b && c(b)),
  linearBackward: (dy, x, w, hasBias) => linearBackwardCpu(c(dy), c(x), c(w), hasBias),

  batchNormTrain(x, g, b, rm, rv, o) {
    const r = batchNormTrainCpu(c(x), c(g), c(b), c(rm), c(rv), o);
    return { ...r, y: half(x, r.y) };
  },
  batchNormEval: (x, g, b, rm, rv, o) =>
    half(x, batchNormEvalCpu(c(x), c(g), c(b), c(rm), c(rv), o)),
  batchNormBackward(dy, x, y, g, m, inv, o) {
    const r = batchNormBackwardCpu(c(dy), c(x), y && c(y), c(g), c(m), c(inv), o);
    return { ...r, dx: half(dy, r.dx) };
  },

  maxPool2d: (x, o) => half(x, maxPool2dCpu(c(x), pool(o))),
  maxPool2dBackward: (dy, x, o) => half(dy, maxPool2dBackwardCpu(c(dy), c(x), pool(o))),
  avgPool2d: (x, o) => half(x, avgPool2dCpu(c(x), o)),
  avgPool2dBackward: (dy, xShape, o) => half(dy, avgPool2dBackwardCpu(c(dy), xShape, o)),
  globalAvgPool: (x) => half(x, globalAvgPoolCpu(c(x))),
  globalAvgPoolBackward: (dy, xShape) => half(dy, globalAvgPoolBackwardCpu(c(dy), xShape)),
  concatChannels: (xs) => half(xs[0], concatChannelsCpu(xs.map(c))),
  sliceChannels: (x, start, count) => half(x, sliceChannelsCpu(c(x), start, count)),
  addChannelsInto(acc, x, start) {
    addChannelsIntoCpu(c(acc), c(x), start);
    half(acc, acc);
  },
  channelStore: (shape, dtype) => castCpu(cpuTensor(shape), dtype),
  copyChannelsInto: (dst, x, start) => copyChannelsIntoCpu(c(dst), c(x), start),
  addToChannels(dst, x, start) {
    addToChannelsCpu(c(dst), c(x), start);
    half(dst, dst);
  },
  channelPrefix: (store, count) => half(store, sliceChannelsCpu(c(store), 0, count)),

  scaleBy: (x, s) => half(x, scaleByCpu(c(x), c(s))),
  sigmoid: (x) => half(x, sigmoidCpu(c(x))),
  gatherRows: (x, idx) => half(x, gatherRowsCpu(c(x), c(idx))),
  l2Normalize: (x) => l2NormalizeCpu(c(x)),
  l2NormalizeBackward: (dy, y, n) => l2NormalizeBackwardCpu(c(dy), c(y), c(n)),
  mocoLogits: (q, k, queue, T) => mocoLogitsCpu(c(q), c(k), c(queue), T),
  mocoLogitsBackward: (d, k, queue, T) => mocoLogitsBackwardCpu(c(d), c(k), c(queue), T),
  infoNce: (l) => infoNceCpu(c(l)),
  bceWithLogits: (l, t, m) => bceWithLogitsCpu(c(l), c(t), c(m)),
};
