/**
 * Row-wise L2 normalization (F.normalize) and its backward, for MoCo's
 * embeddings: y = x / max(‖x‖₂, ε), dx = (dy − y·⟨y, dy⟩) / ‖x‖ (dy / ε where
 * the norm was clamped).
 *
 * Mapping: one workgroup of 64 lanes per row (D = 128 in MoCo), lanes stride
 * over the row, a fixed-order tree sum (wgsl.ts); dispatch [N] up to 65,535 rows, past that a
 * 2-D grid `rowGrid` (MoCo v2's queue of 65,536 rows and more), each row computed alike.
 */
import { GpuError, type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { check2d, checkSame } from "./cpu/loss.ts";
import { L2_EPS } from "./cpu/normalize.ts";
import { treeSum } from "./wgsl.ts";

const RW = 64;
/** Workgroups per grid dimension (WebGPU's default limit). */
const MAX_DIM = 65535;

/**
 * The grid for N rows, one workgroup each: [N] up to MAX_DIM rows, else [X, Y] with X·Y ≥ N, a
 * workgroup's row wid.x + wid.y·X (`ROW`), the ones past N returning at once.
 */
export function rowGrid(N: number): [number, number] {
  if (N <= MAX_DIM) return [N, 1];
  const y = Math.ceil(N / MAX_DIM);
  if (y > MAX_DIM) throw new GpuError(`l2Normalize: ${N} rows is more than a 2-D grid holds`);
  return [Math.ceil(N / y), y];
}

/** WGSL: this workgroup's row; the grid's spare workgroups return (uniform per workgroup). */
const ROW = `let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }`;
const MAIN_ARGS = `@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32`;

const FORWARD: Kernel = {
  name: "l2_normalize",
  code: `
struct P { N: u32, D: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> norm: array<f32>;
var<workgroup> sh: array<f32, ${RW}>;
${treeSum(RW)}
@compute @workgroup_size(${RW})
fn main(${MAIN_ARGS}) {
  ${ROW}
  let base = row * p.D;
  var s = 0.0;
  for (var d = lid; d < p.D; d += ${RW}u) { let v = x[base + d]; s += v * v; }
  let nr = sqrt(total(s, lid));
  let inv = 1.0 / max(nr, ${L2_EPS});
  for (var d = lid; d < p.D; d += ${RW}u) { y[base + d] = x[base + d] * inv; }
  if (lid == 0u) { norm[row] = nr; }
}`,
};

const BACKWARD: Kernel = {
  name: "l2_normalize_backward",
  code: `
struct P { N: u32, D: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
var<workgroup> sh: array<f32, ${RW}>;
${treeSum(RW)}
@compute @workgroup_size(${RW})
fn main(${MAIN_ARGS}) {
  ${ROW}
  let base = row * p.D;
  var s = 0.0;
  for (var d = lid; d < p.D; d += ${RW}u) { s += y[base + d] * dy[base + d]; }
  let dot = total(s, lid);
  let nr = norm[row];
  let clamped = !(nr > ${L2_EPS});
  for (var d = lid; d < p.D; d += ${RW}u) {
    let i = base + d;
    dx[i] = select((dy[i] - y[i] * dot) / nr, dy[i] / ${L2_EPS}, clamped);
  }
}`,
};

function checkRows(N: number, what: string): void {
  if (N < 1) throw new Error(`${what}: ${N} rows (supported: 1 or more)`);
}

/** y = x / max(‖x‖₂, 1e-12) per row (F.normalize), plus the row norms for backward. */
export function l2Normalize(x: Tensor): { y: Tensor; norm: Tensor } {
  const [N, D] = check2d(x, "l2Normalize", "x");
  checkRows(N, "l2Normalize");
  const y = Tensor.empty(x.gpu, [N, D]), norm = Tensor.empty(x.gpu, [N]);
  x.gpu.dispatch(FORWARD, [x.buffer, y.buffer, norm.buffer], params([N, D]), rowGrid(N));
  return { y, norm };
}

/** dL/dx of l2Normalize from dL/dy, the output y and the row norms. */
export function l2NormalizeBackward(dy: Tensor, y: Tensor, norm: Tensor): Tensor {
  const [N, D] = check2d(y, "l2NormalizeBackward", "y");
  checkSame(y, dy, "l2NormalizeBackward", "dy");
  if (norm.size !== N) {
    throw new Error(`l2NormalizeBackward: norm has ${norm.size} values for ${N} rows`);
  }
  checkRows(N, "l2NormalizeBackward");
  const dx = Tensor.empty(y.gpu, [N, D]);
  y.gpu.dispatch(
    BACKWARD,
    [dy.buffer, y.buffer, norm.buffer, dx.buffer],
    params([N, D]),
    rowGrid(N),
  );
  return dx;
}
