/**
 * Channel copies for DenseNet: `concatChannels`, `sliceChannels` (the backward of concat),
 * `addChannelsInto` (concat's backward accumulating in place), `copyChannelsInto` (a dense block
 * writes its input and each new feature once into its feature store, model/ops.ts StoredConcat)
 * and `addToChannels` (that store's gradient, summed into its channel prefixes).
 *
 * One kernel does all five: out[n, oStart + c, s] = (or +=) in[n, iStart + c, s] for
 * c < count, s < inner (= H·W). Per image n that is one contiguous run of
 * count·inner elements in both tensors (channels are outside the plane in NCHW),
 * so the copy is N runs: workgroup y is the image, x strides along the run, and
 * no element divides to find its place. Runs are copied as vec4s where inner is
 * a multiple of 4 (every offset and length then is), else as scalars.
 * Dispatch: [min(⌈run / (64·V)⌉, cap), N], workgroup 64, a grid-stride loop
 * along x (cap: Gpu.gridCap(4096)).
 * Why: a DenseNet-121 step made ~1,800 of these calls when every layer built its input by a
 * concat (4,486 dispatches a step at 224 px, batch 64, in a hardware dry run); the earlier
 * one-element-an-invocation kernel divided every element's index twice by uniforms and moved 4
 * bytes a load. With the feature store, 2,951 dispatches.
 * Rejected: copyBufferToBuffer per (input, n) — N·inputs commands per concat
 * (256·32 for a DenseNet block) and each copy ends the open compute pass.
 * Storage: f32 or f16, all operands one dtype (sameDtype); a copy is exact, an add sums in f32
 * and rounds once.
 */
import { type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { channelDims, channelRange, concatShape } from "./cpu/concat.ts";
import { sameDtype } from "./cast.ts";
import { storagePrelude } from "./wgsl.ts";

const WG = 64;
const MAX_GROUPS = 4096;

/**
 * V = 4: the runs as vec4<S> (offsets and lengths in vec4s); 1: as S. `add`: dst += src (summed
 * in f32 and rounded once, the bits of elementwise.ts addInPlace) instead of dst = src.
 */
const copyKernel = kernelFamily((dtype: DType, V: 1 | 4, add: boolean): Kernel => {
  const T = V === 4 ? "vec4<S>" : "S", F = V === 4 ? "vec4f" : "f32";
  const put = add ? `${T}(${F}(dst[di + j]) + ${F}(src[si + j]))` : "src[si + j]";
  return {
    name: `concat:${add ? "add" : "copy"}:${dtype}${V === 4 ? ":v4" : ""}`,
    code: `${storagePrelude(dtype)}
struct P { run: u32, iStride: u32, iOff: u32, oStride: u32, oOff: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u,
        @builtin(local_invocation_index) l: u32) {
  let si = wg.y * p.iStride + p.iOff;
  let di = wg.y * p.oStride + p.oOff;
  for (var j = wg.x * ${WG}u + l; j < p.run; j += nw.x * ${WG}u) {
    dst[di + j] = ${put};
  }
}`,
  };
});

function copy(
  src: Tensor,
  iStart: number,
  dst: Tensor,
  oStart: number,
  count: number,
  what: string,
  add = false,
): void {
  const [N, iC, inner] = channelDims(src.shape, what);
  const oC = dst.shape[1];
  const V = inner % 4 === 0 ? 4 : 1, e = inner / V; // a channel's plane in copied elements
  const run = count * e;
  dst.gpu.dispatch(
    copyKernel(sameDtype(what, src, dst), V, add),
    [src.buffer, dst.buffer],
    params([run, iC * e, iStart * e, oC * e, oStart * e]),
    [Math.min(Math.ceil(run / WG), dst.gpu.gridCap(MAX_GROUPS)), N],
  );
}

/** Copies all of src's channels into dst's channels [dstStart, dstStart + C_src). */
export function copyChannelsInto(dst: Tensor, src: Tensor, dstStart: number): void {
  const [, , , Cs] = channelRange(dst.shape, src.shape, dstStart, "copyChannelsInto");
  copy(src, 0, dst, dstStart, Cs, "copyChannelsInto");
}

/** dst's channels [dstStart, dstStart + C_src) += src, in place (a dense block's gradient store). */
export function addToChannels(dst: Tensor, src: Tensor, dstStart: number): void {
  const [, , , Cs] = channelRange(dst.shape, src.shape, dstStart, "addToChannels");
  copy(src, 0, dst, dstStart, Cs, "addToChannels", true);
}

export function concatChannels(xs: Tensor[]): Tensor {
  const shape = concatShape(xs.map((x) => x.shape));
  const y = Tensor.empty(xs[0].gpu, shape, sameDtype("concatChannels", ...xs));
  let c = 0;
  for (const x of xs) {
    copy(x, 0, y, c, x.shape[1], "concatChannels");
    c += x.shape[1];
  }
  return y;
}

/** Channels [start, start + count) of x as a new tensor. */
export function sliceChannels(x: Tensor, start: number, count: number): Tensor {
  const [N, C] = channelDims(x.shape, "sliceChannels");
  if (!(start >= 0 && count >= 1 && start + count <= C)) {
    throw new Error(`sliceChannels: [${start}, ${start + count}) is outside ${C} channels`);
  }
  const y = Tensor.empty(x.gpu, [N, count, ...x.shape.slice(2)], x.dtype);
  copy(x, start, y, 0, count, "sliceChannels");
  return y;
}

/**
 * acc += x's channels [start, start + acc's channels), in place: a concat's backward accumulating
 * one input's share of the gradient without slicing it out first (model/ops.ts concat). The bits
 * of sliceChannels then addInPlace.
 */
export function addChannelsInto(acc: Tensor, x: Tensor, start: number): void {
  const [, , , C] = channelRange(x.shape, acc.shape, start, "addChannelsInto");
  copy(x, start, acc, 0, C, "addChannelsInto", true);
}
