/**
 * Pooling: max pool (generic k/stride/pad, -inf padding), average pool (no
 * padding, generic k/stride), global average pool; each with its backward.
 *
 * Mapping: one invocation per OUTPUT element for the forwards and one per
 * INPUT element for the backwards (gather: an input element walks the output
 * windows that contain it — oh ∈ [ceil((ih+pad−k+1)/s), floor((ih+pad)/s)] —
 * so no atomics and a fixed summation order). Max-pool backward runs in two
 * passes: each window's argmax (first maximum in row-major window order wins,
 * like the forward) into a temporary index buffer, one invocation per output;
 * then the gather compares those indices. Recomputing the argmax inside the
 * gather instead cost ≤ (k/s)²·k² loads per input (≈ 22 for 3×3/2), the two
 * passes ≈ 7: the ResNet stem's pool backward was 752 ms of a 112-px step.
 * Global average pool: one invocation per (n, c) plane, serial sum over H·W
 * (planes are 7×7 or 2×2 here). Workgroup 64, grid-stride, dispatch
 * min(ceil(n/64), 4096) workgroups (software adapters; Gpu.gridCap's on hardware).
 * Rejected: storing the argmax in the forward (an extra [N,C,OH,OW] buffer
 * to keep alive from forward to backward; the backward's own first pass
 * costs ≈ 2.5 loads per input element).
 *
 * Per geometry on hardware: H, W, OH, OW, k, s and pad are written into the
 * WGSL as constants (one pipeline per pooling geometry, as the convs since
 * session 8), so the index divisions are by constants and the window loops
 * have fixed bounds (wgsl.ts `forGeometry`). On an H200 the stem's max-pool
 * backward took 2.60 ms and its forward 0.68 ms a call against ~0.1 ms of
 * memory traffic (session 11). Software adapters keep the uniform-driven
 * kernels; tests force either (wgsl.ts `setPerGeometry`).
 *
 * Storage: x, dy and the outputs f32 or f16 (the input's dtype; wgsl.ts
 * `storagePrelude`): loads widened to f32, sums in f32, one rounding at the
 * store (max pool's output is a copy, so exact). The max-pool backward's
 * argmax buffer is always 32-bit (i32 bits in an f32 tensor).
 */
import { type Kernel, params } from "./device.ts";
import { type DType, type Shape, Tensor } from "./tensor.ts";
import { type AvgPoolOptions, type MaxPoolOptions, poolShape } from "./cpu/pool.ts";
import { sameDtype } from "./cast.ts";
import { forGeometry, gridStrideMain, storagePrelude } from "./wgsl.ts";

const WG = 64;
const MAX_GROUPS = 4096;

/** Uniform block, binding a (element type `a`) and the window maximum over a. */
const header = (a: string) => `
struct P { planes: u32, H: u32, W: u32, OH: u32, OW: u32, k: u32, s: u32, pad: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<${a}>;

// The first maximum of window (oh, ow) in plane base: its value (a NaN that comes first included)
// and its plane-relative index (-1 for an empty window). The forward stores the value, so it needs
// no second, dependent load; the backward's first pass stores the index.
struct WindowMax { best: f32, arg: i32 }
fn windowMax(base: u32, oh: u32, ow: u32) -> WindowMax {
  var m = WindowMax(0.0, -1);
  for (var kh = 0u; kh < p.k; kh++) {
    let ih = i32(oh * p.s + kh) - i32(p.pad);
    if (ih < 0 || ih >= i32(p.H)) { continue; }
    for (var kw = 0u; kw < p.k; kw++) {
      let iw = i32(ow * p.s + kw) - i32(p.pad);
      if (iw < 0 || iw >= i32(p.W)) { continue; }
      let v = f32(a[base + u32(ih) * p.W + u32(iw)]);
      if (m.arg < 0 || v > m.best) { m = WindowMax(v, ih * i32(p.W) + iw); }
    }
  }
  return m;
}
`;

/**
 * A grid-stride kernel over `out`; inputs are `a` (and `b` when given). Each binding's
 * element type is S (the storage dtype) or f32 (the argmax buffer).
 */
function kernel(
  name: string,
  dtype: DType,
  body: string,
  t: { a?: string; b?: string; out?: string } = {},
): Kernel {
  const io = t.b
    ? `@group(0) @binding(2) var<storage, read> b: array<${t.b}>;
@group(0) @binding(3) var<storage, read_write> out: array<${t.out ?? "S"}>;`
    : `@group(0) @binding(2) var<storage, read_write> out: array<${t.out ?? "S"}>;`;
  return {
    name: `pool:${name}:${dtype}`,
    code: `${storagePrelude(dtype)}${header(t.a ?? "S")}
${io}
${gridStrideMain(WG, "p.n", body)}`,
  };
}

// Output (plane, oh, ow) from i; for the backwards, input (plane, ih, iw) and the window range.
const OUT_IDX = `
    let ow = i % p.OW; let oh = (i / p.OW) % p.OH; let pl = i / (p.OW * p.OH);`;
const IN_IDX = `
    let iw = i32(i % p.W); let ih = i32((i / p.W) % p.H); let pl = i / (p.W * p.H);
    let pd = i32(p.pad); let k = i32(p.k); let s = i32(p.s);
    let oh0 = max(0, (ih + pd - k + s) / s); let oh1 = min(i32(p.OH) - 1, (ih + pd) / s);
    let ow0 = max(0, (iw + pd - k + s) / s); let ow1 = min(i32(p.OW) - 1, (iw + pd) / s);`;
// Note (ih+pd−k+s)/s = ceil((ih+pd−k+1)/s) for ih+pd−k+1 ≥ −s+1; when negative the
// i32 division truncates toward 0, which the max(0, …) clamps correctly.

/** The pooling kernels for one storage dtype (WGSL text only: pipelines compile on first use). */
const kernelsFor = (d: DType) => ({
  maxFwd: kernel(
    "max",
    d,
    `${OUT_IDX}
    out[i] = S(windowMax(pl * p.H * p.W, oh, ow).best);`,
  ),
  // out = each window's plane-relative argmax, as i32 bits in an f32 buffer
  maxArg: kernel(
    "max_arg",
    d,
    `${OUT_IDX}
    out[i] = bitcast<f32>(windowMax(pl * p.H * p.W, oh, ow).arg);`,
    { out: "f32" },
  ),
  // a = maxArg's indices, b = dy
  maxBwd: kernel(
    "max_bwd",
    d,
    `${IN_IDX}
    let me = ih * i32(p.W) + iw;
    var g = 0.0;
    for (var oh = oh0; oh <= oh1; oh++) {
      for (var ow = ow0; ow <= ow1; ow++) {
        let o = (pl * p.OH + u32(oh)) * p.OW + u32(ow);
        if (bitcast<i32>(a[o]) == me) { g += f32(b[o]); }
      }
    }
    out[i] = S(g);`,
    { a: "f32", b: "S" },
  ),
  avgFwd: kernel(
    "avg",
    d,
    `${OUT_IDX}
    let base = pl * p.H * p.W + oh * p.s * p.W + ow * p.s;
    var t = 0.0;
    for (var kh = 0u; kh < p.k; kh++) {
      for (var kw = 0u; kw < p.k; kw++) { t += f32(a[base + kh * p.W + kw]); }
    }
    out[i] = S(t / f32(p.k * p.k));`,
  ),
  // a = dy
  avgBwd: kernel(
    "avg_bwd",
    d,
    `${IN_IDX}
    var g = 0.0;
    for (var oh = oh0; oh <= oh1; oh++) {
      for (var ow = ow0; ow <= ow1; ow++) { g += f32(a[(pl * p.OH + u32(oh)) * p.OW + u32(ow)]); }
    }
    out[i] = S(g / f32(p.k * p.k));`,
  ),
  // i = plane; H·W in p.H
  gapFwd: kernel(
    "gap",
    d,
    `
    var t = 0.0;
    for (var j = 0u; j < p.H; j++) { t += f32(a[i * p.H + j]); }
    out[i] = S(t / f32(p.H));`,
  ),
  gapBwd: kernel("gap_bwd", d, `    out[i] = S(f32(a[i / p.H]) / f32(p.H));`),
});
const K = { f32: kernelsFor("f32"), f16: kernelsFor("f16") };
const kernels = (d: DType) => K[d];

function run(k: Kernel, ins: Tensor[], out: Tensor, dims: number[]): Tensor {
  const fields = [...dims, out.size];
  out.gpu.dispatch(
    forGeometry(out.gpu, k, fields, ["planes", "n"]),
    [...ins.map((t) => t.buffer), out.buffer],
    params(fields),
    [Math.min(Math.ceil(out.size / WG), out.gpu.gridCap(MAX_GROUPS))],
  );
  return out;
}

function dimsOf(xShape: Shape, oShape: number[], k: number, s: number, pad: number): number[] {
  return [xShape[0] * xShape[1], xShape[2], xShape[3], oShape[2], oShape[3], k, s, pad];
}

function checkDy(dy: Tensor, shape: readonly number[], what: string): void {
  if (dy.shape.length !== shape.length || dy.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${what}: dy is [${dy.shape}], expected [${shape}]`);
  }
}

export function maxPool2d(x: Tensor, o: MaxPoolOptions): Tensor {
  const os = poolShape(x.shape, o.k, o.stride, o.pad, "maxPool2d");
  const y = Tensor.empty(x.gpu, os, x.dtype);
  return run(kernels(x.dtype).maxFwd, [x], y, dimsOf(x.shape, os, o.k, o.stride, o.pad));
}

export function maxPool2dBackward(dy: Tensor, x: Tensor, o: MaxPoolOptions): Tensor {
  const os = poolShape(x.shape, o.k, o.stride, o.pad, "maxPool2dBackward");
  checkDy(dy, os, "maxPool2dBackward");
  const d = sameDtype("maxPool2dBackward", dy, x);
  const dims = dimsOf(x.shape, os, o.k, o.stride, o.pad);
  const arg = run(kernels(d).maxArg, [x], Tensor.empty(x.gpu, os), dims);
  const dx = run(kernels(d).maxBwd, [arg, dy], Tensor.empty(x.gpu, x.shape, d), dims);
  arg.dispose();
  return dx;
}

export function avgPool2d(x: Tensor, o: AvgPoolOptions): Tensor {
  const os = poolShape(x.shape, o.k, o.stride, 0, "avgPool2d");
  const y = Tensor.empty(x.gpu, os, x.dtype);
  return run(kernels(x.dtype).avgFwd, [x], y, dimsOf(x.shape, os, o.k, o.stride, 0));
}

export function avgPool2dBackward(dy: Tensor, xShape: Shape, o: AvgPoolOptions): Tensor {
  const os = poolShape(xShape, o.k, o.stride, 0, "avgPool2dBackward");
  checkDy(dy, os, "avgPool2dBackward");
  const dx = Tensor.empty(dy.gpu, xShape, dy.dtype);
  return run(kernels(dy.dtype).avgBwd, [dy], dx, dimsOf(xShape, os, o.k, o.stride, 0));
}

/** Mean over H×W: [N,C,H,W] → [N,C]. */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.shape.length !== 4) throw new Error(`globalAvgPool: x must be [N,C,H,W], got [${x.shape}]`);
  const [N, C, H, W] = x.shape;
  const y = Tensor.empty(x.gpu, [N, C], x.dtype);
  return run(kernels(x.dtype).gapFwd, [x], y, [N * C, H * W, 1, 1, 1, 1, 1, 0]);
}

export function globalAvgPoolBackward(dy: Tensor, xShape: Shape): Tensor {
  if (xShape.length !== 4) throw new Error(`globalAvgPoolBackward: bad x shape [${xShape}]`);
  const [N, C, H, W] = xShape;
  checkDy(dy, [N, C], "globalAvgPoolBackward");
  const dx = Tensor.empty(dy.gpu, xShape, dy.dtype);
  return run(kernels(dy.dtype).gapBwd, [dy], dx, [N * C, H * W, 1, 1, 1, 1, 1, 0]);
}
