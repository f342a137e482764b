/**
 * Row gather: out[i, :] = x[idx[i], :] — MoCo's unshuffle of the key batch
 * after the shuffled split-BN forward (and any other row permutation).
 *
 * Mapping: one invocation per output element, idx held as f32 (exact below
 * 2^24 rows). Workgroup 64; dispatch = grid1d(rows · cols, 64).
 * Storage: x and out f32 or f16 (out takes x's dtype; a copy, so exact), idx always f32.
 */
import { grid1d, type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { storagePrelude } from "./wgsl.ts";

const kernel = kernelFamily((dtype: DType): Kernel => ({
  name: `gather_rows:${dtype}`,
  code: `${storagePrelude(dtype)}
struct P { rows: u32, cols: u32, srcRows: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read> idx: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<S>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x + g.y * p.stride;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let src = min(u32(idx[r]), p.srcRows - 1u);
  out[i] = x[src * p.cols + i % p.cols];
}`,
}));

/** Rows of a 2-D tensor picked by index; indices outside [0, rows) are an error. */
export function gatherRows(x: Tensor, idx: Tensor): Tensor {
  const [srcRows, cols] = x.shape;
  const rows = idx.size;
  if (x.shape.length !== 2) throw new Error(`gatherRows: x must be 2-D, got [${x.shape}]`);
  if (idx.dtype !== "f32") throw new Error(`gatherRows: idx must be f32, got ${idx.dtype}`);
  const out = Tensor.empty(x.gpu, [rows, cols], x.dtype);
  const groups = grid1d(rows * cols, 64);
  x.gpu.dispatch(
    kernel(x.dtype),
    [x.buffer, idx.buffer, out.buffer],
    params([rows, cols, srcRows, groups[0] * 64]),
    groups,
  );
  return out;
}
