/**
 * The GPU backend: the WebGPU kernels (kernels/*.ts) behind the Backend
 * interface. Every op records into the device's open batch; nothing is
 * submitted until a read, a write or an explicit flush.
 */
import type { Backend, BTensor } from "./backend.ts";
import type { Gpu } from "../kernels/device.ts";
import { ChannelPrefix, ChannelStore, readTensors, Tensor } from "../kernels/tensor.ts";
import {
  add,
  addInPlace,
  addRelu,
  fill,
  relu,
  reluBackward,
  scale,
  scaleBy,
  sigmoid,
} from "../kernels/elementwise.ts";
import { gatherRows } from "../kernels/gather.ts";
import { cast } from "../kernels/cast.ts";
import { l2Normalize, l2NormalizeBackward } from "../kernels/normalize.ts";
import { infoNce, mocoLogits, mocoLogitsBackward } from "../kernels/contrastive.ts";
import { bceWithLogits } from "../kernels/loss.ts";
import {
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
} from "../kernels/conv/conv2d.ts";
import { linear, linearBackward } from "../kernels/gemm/matmul.ts";
import { batchNormBackward, batchNormEval, batchNormTrain } from "../kernels/batchnorm.ts";
import {
  avgPool2d,
  avgPool2dBackward,
  globalAvgPool,
  globalAvgPoolBackward,
  maxPool2d,
  maxPool2dBackward,
} from "../kernels/pool.ts";
import {
  addChannelsInto,
  addToChannels,
  concatChannels,
  copyChannelsInto,
  sliceChannels,
} from "../kernels/concat.ts";

const g = (t: BTensor) => t as Tensor;
const pool = (o: { k: number; stride: number; pad?: number }) => ({
  k: o.k,
  stride: o.stride,
  pad: o.pad ?? 0,
});

/** The Backend that runs every op as a WebGPU kernel on `gpu`. */
export function gpuBackend(gpu: Gpu): Backend {
  return {
    name: "gpu",
    fromArray: (data, shape) => Tensor.from(gpu, data, shape),
    zeros: (shape) => Tensor.zeros(gpu, shape),
    full: (shape, v) => fill(Tensor.empty(gpu, shape), v),
    read: (t) => g(t).read(),
    readMany: (ts) => readTensors(ts.map(g)),
    write: (t, data) => g(t).write(data),
    dispose: (t) => g(t).dispose(),
    addInto: (acc, d) => void addInPlace(g(acc), g(d)),
    flush: () => gpu.flush(),
    dtype: (t) => g(t).dtype,
    cast: (x, d) => cast(g(x), d),

    relu: (x) => relu(g(x)),
    reluBackward: (dy, y) => reluBackward(g(dy), g(y)),
    add: (a, b) => add(g(a), g(b)),
    addRelu: (a, b) => addRelu(g(a), g(b)),
    scale: (x, a) => scale(g(x), a),

    conv2d: (x, w, b, o) => conv2d(g(x), g(w), b && g(b), o),
    conv2dBackwardInput: (dy, w, xShape, o) => conv2dBackwardInput(g(dy), g(w), xShape, o),
    conv2dBackwardWeight: (dy, x, wShape, o) => conv2dBackwardWeight(g(dy), g(x), wShape, o),
    conv2dBackwardBias: (dy) => conv2dBackwardBias(g(dy)),
    linear: (x, w, b) => linear(g(x), g(w), b && g(b)),
    linearBackward: (dy, x, w, hasBias) => linearBackward(g(dy), g(x), g(w), hasBias),

    batchNormTrain: (x, ga, b, rm, rv, o) => batchNormTrain(g(x), g(ga), g(b), g(rm), g(rv), o),
    batchNormEval: (x, ga, b, rm, rv, o) => batchNormEval(g(x), g(ga), g(b), g(rm), g(rv), o),
    batchNormBackward: (dy, x, y, ga, m, inv, o) =>
      batchNormBackward(g(dy), g(x), y && g(y), g(ga), g(m), g(inv), o),

    maxPool2d: (x, o) => maxPool2d(g(x), pool(o)),
    maxPool2dBackward: (dy, x, o) => maxPool2dBackward(g(dy), g(x), pool(o)),
    avgPool2d: (x, o) => avgPool2d(g(x), o),
    avgPool2dBackward: (dy, xShape, o) => avgPool2dBackward(g(dy), xShape, o),
    globalAvgPool: (x) => globalAvgPool(g(x)),
    globalAvgPoolBackward: (dy, xShape) => globalAvgPoolBackward(g(dy), xShape),
    concatChannels: (xs) => concatChannels(xs.map(g)),
    sliceChannels: (x, start, count) => sliceChannels(g(x), start, count),
    addChannelsInto: (acc, x, start) => addChannelsInto(g(acc), g(x), start),
    channelStore: (shape, dtype) => new ChannelStore(gpu, shape, undefined, dtype),
    copyChannelsInto: (dst, x, start) => copyChannelsInto(g(dst), g(x), start),
    addToChannels: (dst, x, start) => addToChannels(g(dst), g(x), start),
    channelPrefix(store, count) {
      if (!(store instanceof ChannelStore)) {
        throw new Error(`channelPrefix: [${store.shape}] is not a channel store (channelStore)`);
      }
      return new ChannelPrefix(store, count);
    },

    scaleBy: (x, s) => scaleBy(g(x), g(s)),
    sigmoid: (x) => sigmoid(g(x)),
    gatherRows: (x, idx) => gatherRows(g(x), g(idx)),
    l2Normalize: (x) => l2Normalize(g(x)),
    l2NormalizeBackward: (dy, y, n) => l2NormalizeBackward(g(dy), g(y), g(n)),
    mocoLogits: (q, k, queue, T) => mocoLogits(g(q), g(k), g(queue), T),
    mocoLogitsBackward: (d, k, queue, T) => mocoLogitsBackward(g(d), g(k), g(queue), T),
    infoNce: (l) => infoNce(g(l)),
    bceWithLogits: (l, t, m) => bceWithLogits(g(l), g(t), g(m)),
  };
}
