/**
 * Losses: softmax cross-entropy (also InfoNCE's, via contrastive.ts) and
 * BCE-with-logits with a label mask, each with its gradient.
 *
 * Mapping and dispatch:
 * - softmax CE rows: one workgroup of 64 lanes per row (dispatch [N]); lanes
 *   stride over the K logits: (max, first argmax) tree, Σexp(x−max) tree, then
 *   each lane writes its dlogits = (softmax − onehot)·(1/N). Lane 0 writes the
 *   row loss lse − x[label] and "argmax == label" to a [2,N] scratch that
 *   reduce.ts sums (fixed order) into the mean loss / correct count.
 *   K is up to 65,537 for MoCo (infoNce in contrastive.ts reuses this kernel).
 * - BCE: ONE workgroup of 64 lanes over all N·T elements (≤ a few thousand):
 *   pass 1 counts mask > 0, pass 2 writes dlogits = mask·(σ(x) − t)/count and
 *   sums the stable terms max(x,0) − x·t + log(1+e^−|x|). One dispatch.
 * Workgroup arrays stay ≤ 64 floats (GL pipeline-creation time, kernels/KERNELS.md).
 */
import { type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { check2d, checkSame } from "./cpu/loss.ts";
import { reduceRange } from "./reduce.ts";
import { treeSum } from "./wgsl.ts";

const RW = 64; // row workgroup
const SW = 64; // single-workgroup reductions
const MAX_ROWS = 65535;

function ceKernel(withLabels: boolean): Kernel {
  const labelBind = withLabels
    ? `@group(0) @binding(2) var<storage, read> labels: array<f32>;`
    : "";
  const o = withLabels ? 1 : 0;
  return {
    name: `loss:ce:${withLabels}`,
    code: `
struct P { N: u32, K: u32, scale: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${labelBind}
@group(0) @binding(${2 + o}) var<storage, read_write> dl: array<f32>;
@group(0) @binding(${3 + o}) var<storage, read_write> rows: array<f32>;
var<workgroup> sh: array<f32, ${RW}>;
var<workgroup> shi: array<u32, ${RW}>;
const NONE = 0xffffffffu;
${treeSum(RW)}
@compute @workgroup_size(${RW})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let base = n * p.K;
  // (max, first argmax) per lane, then a tree; NONE marks a lane with no element.
  var mx = 0.0;
  var arg = NONE;
  for (var k = lid; k < p.K; k += ${RW}u) {
    let v = x[base + k];
    if (arg == NONE || v > mx) { mx = v; arg = k; }
  }
  sh[lid] = mx;
  shi[lid] = arg;
  workgroupBarrier();
  for (var s = ${RW / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let v = sh[lid + s];
      let j = shi[lid + s];
      let a = shi[lid];
      if (j != NONE && (a == NONE || v > sh[lid] || (v == sh[lid] && j < a))) {
        sh[lid] = v;
        shi[lid] = j;
      }
    }
    workgroupBarrier();
  }
  mx = sh[0];
  arg = shi[0];
  workgroupBarrier();
  var se = 0.0;
  for (var k = lid; k < p.K; k += ${RW}u) { se += exp(x[base + k] - mx); }
  se = total(se, lid);
  let label = ${withLabels ? "labels[n]" : "0.0"};
  for (var k = lid; k < p.K; k += ${RW}u) {
    let onehot = select(0.0, 1.0, f32(k) == label);
    dl[base + k] = (exp(x[base + k] - mx) / se - onehot) * p.scale;
  }
  if (lid == 0u) {
    let ok = label >= 0.0 && label < f32(p.K) && floor(label) == label;
    let li = u32(select(0.0, label, ok));
    rows[n] = select(bitcast<f32>(0x7fc00000u), mx + log(se) - x[base + li], ok);
    rows[p.N + n] = select(0.0, 1.0, ok && arg == li);
  }
}`,
  };
}

const K = {
  ceLabels: ceKernel(true),
  ce0: ceKernel(false),
  bce: {
    name: "loss:bce",
    code: `
struct P { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> dl: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
var<workgroup> sh: array<f32, ${SW}>;
${treeSum(SW)}
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}
@compute @workgroup_size(${SW})
fn main(@builtin(local_invocation_index) lid: u32) {
  var c = 0.0;
  for (var i = lid; i < p.n; i += ${SW}u) { c += select(0.0, 1.0, m[i] > 0.0); }
  let count = total(c, lid);
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${SW}u) {
    let v = x[i];
    if (m[i] > 0.0) {
      s += max(v, 0.0) - v * t[i] + log(1.0 + exp(-abs(v)));
      dl[i] = (sigmoid(v) - t[i]) / count;
    } else {
      dl[i] = 0.0;
    }
  }
  s = total(s, lid);
  if (lid == 0u) { loss[0] = select(0.0, s / count, count > 0.0); }
}`,
  } as Kernel,
};

function checkRows(N: number, what: string): void {
  if (N < 1 || N > MAX_ROWS) throw new Error(`${what}: ${N} rows (supported: 1..${MAX_ROWS})`);
}

/**
 * Shared by softmaxCrossEntropy and contrastive.infoNce: row-wise softmax CE
 * with labels (null = label 0 for every row); `correct` (rows whose first argmax
 * is the label) is computed only when asked. Out-of-range labels give a NaN loss.
 */
export function softmaxCeRows(
  logits: Tensor,
  labels: Tensor | null,
  wantCorrect: boolean,
  what: string,
): { loss: Tensor; dlogits: Tensor; correct: Tensor | null } {
  const [N, Kc] = check2d(logits, what, "logits");
  checkRows(N, what);
  if (labels && labels.size !== N) throw new Error(`${what}: ${labels.size} labels for ${N} rows`);
  const gpu = logits.gpu;
  const dlogits = Tensor.empty(gpu, [N, Kc]);
  const rows = Tensor.empty(gpu, [2, N]);
  gpu.dispatch(
    labels ? K.ceLabels : K.ce0,
    [logits.buffer, ...(labels ? [labels.buffer] : []), dlogits.buffer, rows.buffer],
    params([N, Kc, { f32: 1 / N }]),
    [N],
  );
  const loss = reduceRange(rows, N, 0, 1 / N);
  const correct = wantCorrect ? reduceRange(rows, N, N, 1) : null;
  rows.dispose();
  return { loss, dlogits, correct };
}

/** Mean softmax cross-entropy; labels [N] hold class indices as f32. */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Tensor,
): { loss: Tensor; dlogits: Tensor } {
  const { loss, dlogits } = softmaxCeRows(logits, labels, false, "softmaxCrossEntropy");
  return { loss, dlogits };
}

/** Mean BCE-with-logits over the elements with mask > 0 (loss 0, zero grad when none). */
export function bceWithLogits(
  logits: Tensor,
  targets: Tensor,
  mask: Tensor,
): { loss: Tensor; dlogits: Tensor } {
  check2d(logits, "bceWithLogits", "logits");
  checkSame(logits, targets, "bceWithLogits", "targets");
  checkSame(logits, mask, "bceWithLogits", "mask");
  const gpu = logits.gpu;
  const dlogits = Tensor.empty(gpu, logits.shape), loss = Tensor.empty(gpu, [1]);
  gpu.dispatch(
    K.bce,
    [logits.buffer, targets.buffer, mask.buffer, dlogits.buffer, loss.buffer],
    params([logits.size]),
    [1],
  );
  return { loss, dlogits };
}
