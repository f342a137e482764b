/**
 * Reductions: Σ of a whole (small) tensor, and per-channel sums over N and the
 * spatial positions (the bias gradient of conv2d and of linear layers).
 *
 * Mapping and dispatch:
 * - reduceSum: ONE workgroup of 64 lanes, lane-strided partial sums then a
 *   fixed tree (dispatch [1]). For losses and counts (≤ 10⁵ values), not
 *   meant for large tensors.
 * - channelSum: one workgroup of 64 lanes per channel o (dispatch [O]); lanes
 *   stride over each image's plane, images in order, then the same tree.
 * channelSum reads dy and writes db in dy's storage type, sumSlices reads f32
 * (split-K scratch) or out's type and writes out's (gemm/storage.ts: sums in
 * f32, one rounding at the store).
 * Workgroup arrays stay ≤ 64 floats: under DENO_WEBGPU_BACKEND=gl pipeline
 * creation time grows with their size (kernels/KERNELS.md).
 */
import { type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { preludeOf, storageWgsl } from "./gemm/storage.ts";
import { GpuError } from "./device.ts";
import { gridStrideMain, treeSum } from "./wgsl.ts";

const WG = 64;

const REDUCE: Kernel = {
  name: "reduce_sum",
  code: `
struct P { n: u32, off: u32, scale: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> sh: array<f32, ${WG}>;
${treeSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${WG}u) { s += x[p.off + i]; }
  s = total(s, lid);
  if (lid == 0u) { out[0] = s * p.scale; }
}`,
};

const channelSumKernel = kernelFamily((d: DType): Kernel => {
  const { prelude, t, ld, st } = storageWgsl(d);
  return {
    name: `channel_sum${d === "f16" ? ":f16" : ""}`,
    code: `${prelude}struct P { N: u32, O: u32, HW: u32, _a: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<${t}>;
@group(0) @binding(2) var<storage, read_write> db: array<${t}>;
var<workgroup> sh: array<f32, ${WG}>;
${treeSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = wg.x;
  var s = 0.0;
  for (var n = 0u; n < p.N; n++) {
    let base = (n * p.O + o) * p.HW;
    for (var i = lid; i < p.HW; i += ${WG}u) { s += ${ld("dy[base + i]")}; }
  }
  s = total(s, lid);
  if (lid == 0u) { db[o] = ${st("s")}; }
}`,
  };
});

const sumSlicesKernel = kernelFamily((pd: DType, od: DType): Kernel => {
  const from = storageWgsl(pd), to = storageWgsl(od);
  return {
    name: `sum_slices${pd === "f32" && od === "f32" ? "" : `:${pd}>${od}`}`,
    code: `${preludeOf(pd, od)}struct P { n: u32, splits: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<${from.t}>;
@group(0) @binding(2) var<storage, read_write> out: array<${to.t}>;
${
      gridStrideMain(
        WG,
        "p.n",
        `    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) { s += ${from.ld("part[z * p.n + i]")}; }
    out[i] = ${to.st("s")};`,
      )
    }`,
  };
});

/**
 * out[i] = Σ_z part[z·n + i] over `splits` slices, in slice order (the
 * deterministic second pass of a split-K GEMM); `out` holds n values. Sums
 * in f32 whatever the storage types; `out` is rounded once.
 */
export function sumSlices(part: Tensor, splits: number, out: Tensor): Tensor {
  const n = out.size;
  if (part.size < n * splits) {
    throw new GpuError(`sumSlices: ${part.size} values for ${splits} slices of ${n}`);
  }
  out.gpu.dispatch(
    sumSlicesKernel(part.dtype, out.dtype),
    [part.buffer, out.buffer],
    params([n, splits]),
    [Math.min(Math.ceil(n / WG), 4096)],
  );
  return out;
}

/** Σ x[off .. off+n) · scale as a new [1] tensor. */
export function reduceRange(x: Tensor, n: number, off: number, scale: number): Tensor {
  const out = Tensor.empty(x.gpu, [1]);
  x.gpu.dispatch(REDUCE, [x.buffer, out.buffer], params([n, off, { f32: scale }]), [1]);
  return out;
}

/** Σ x as a [1] tensor (one workgroup: meant for losses/metrics, not large tensors). */
export function reduceSum(x: Tensor): Tensor {
  return reduceRange(x, x.size, 0, 1);
}

/**
 * db[O] = Σ over n and positions of dy[N,O,...]: the bias gradient of conv2d and
 * linear; db has dy's storage type (summed in f32, rounded once).
 */
export function channelSum(dy: Tensor): Tensor {
  if (dy.shape.length < 2) {
    throw new GpuError(`channelSum: dy must be [N,O,...], got [${dy.shape}]`);
  }
  const [n, oc] = dy.shape;
  const hw = dy.size / (n * oc);
  const db = Tensor.empty(dy.gpu, [oc], dy.dtype);
  dy.gpu.dispatch(channelSumKernel(dy.dtype), [dy.buffer, db.buffer], params([n, oc, hw]), [oc]);
  return db;
}
