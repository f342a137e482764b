/**
 * Channel concat / slice for DenseNet: `concatChannels`, `sliceChannels` (the
 * backward of concat) and `copyChannelsInto` (lets a dense block preallocate
 * its feature map and append each layer's output in place).
 *
 * One kernel does all three: out[n, oStart + c, s] = in[n, iStart + c, s] for
 * c < count, s < inner (= H·W). Mapping: one invocation per copied element,
 * grid-stride, workgroup 64, dispatch min(ceil(N·count·inner/64), 4096) (software adapters;
 * Gpu.gridCap's on hardware).
 * Rejected: copyBufferToBuffer per (input, n) — N·inputs commands per concat
 * (256·32 for a DenseNet block) and each copy ends the open compute pass.
 * Storage: f32 or f16, all operands one dtype (sameDtype); a copy, so exact.
 */
import { type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { channelDims, concatShape } from "./cpu/concat.ts";
import { sameDtype } from "./cast.ts";
import { storagePrelude } from "./wgsl.ts";

const WG = 64;
const MAX_GROUPS = 4096;

const copyKernel = kernelFamily((dtype: DType): Kernel => ({
  name: `concat:copy:${dtype}`,
  code: `${storagePrelude(dtype)}
struct P { count: u32, inner: u32, iC: u32, iStart: u32, oC: u32, oStart: u32, n: u32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<S>;
@group(0) @binding(2) var<storage, read_write> dst: array<S>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let per = p.count * p.inner;
  for (var i = gid.x; i < p.n; i += nw.x * ${WG}u) {
    let n = i / per;
    let r = i % per; // c * inner + s
    dst[(n * p.oC + p.oStart) * p.inner + r] = src[(n * p.iC + p.iStart) * p.inner + r];
  }
}`,
}));

function copy(
  src: Tensor,
  iStart: number,
  dst: Tensor,
  oStart: number,
  count: number,
  what: string,
): void {
  const [N, iC, inner] = channelDims(src.shape, what);
  const oC = dst.shape[1];
  const n = N * count * inner;
  dst.gpu.dispatch(
    copyKernel(sameDtype(what, src, dst)),
    [src.buffer, dst.buffer],
    params([count, inner, iC, iStart, oC, oStart, n]),
    [Math.min(Math.ceil(n / WG), dst.gpu.gridCap(MAX_GROUPS))],
  );
}

/** Copies all of src's channels into dst's channels [dstStart, dstStart + C_src). */
export function copyChannelsInto(dst: Tensor, src: Tensor, dstStart: number): void {
  const [N, C, inner] = channelDims(dst.shape, "copyChannelsInto");
  const [Ns, Cs, innerS] = channelDims(src.shape, "copyChannelsInto");
  if (N !== Ns || inner !== innerS || !(dstStart >= 0 && dstStart + Cs <= C)) {
    throw new Error(
      `copyChannelsInto: src [${src.shape}] does not fit dst [${dst.shape}] at channel ${dstStart}`,
    );
  }
  copy(src, 0, dst, dstStart, Cs, "copyChannelsInto");
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
