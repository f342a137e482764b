/**
 * MoCo: logits [q·k₊, q·queue]/T in one kernel, its backward wrt q, the
 * InfoNCE loss (softmax CE with label 0, via loss.ts) and the queue enqueue.
 *
 * mocoLogits: workgroup of 64 lanes = TN q rows × 64 logit columns
 * (dispatch [ceil((K+1)/64), ceil(N/TN)]). The TN q rows are cached in
 * workgroup memory (TN·D floats, TN = min(8, 4096/D)); lane j reads ONE
 * queue row contiguously (column j ≥ 1 is queue row j−1, column 0 is k_n)
 * and keeps TN accumulators, so each invocation computes TN logits and every
 * queue element loaded serves TN rows. The q reads are workgroup-uniform
 * (broadcast loads). D is a compile-time constant (pipeline per D).
 * mocoLogitsBackward: dq = (dl[:,0]·k + dl[:,1:]·queue)/T, a [N,K]×[K,D] GEMM
 * with split-K for parallelism and determinism without atomics:
 *   stage 1: workgroup (64 lanes) = TN rows × 64 d-columns × one K-split of
 *     ≤ SPLIT queue rows; the dl tile [TN×64] is staged in workgroup memory,
 *     lane d reads queue[j, d] (adjacent lanes, adjacent addresses). Partial
 *     sums go to a scratch [S,N,D]; dispatch [ceil(D/64), ceil(N/TN), S].
 *   stage 2: elementwise, dq = (dl[n,0]·k[n,d] + Σ_s partial[s,n,d]) / T in
 *     fixed s order. S = ceil(K/SPLIT) depends only on K, so results are
 *     identical run to run on a given adapter.
 * enqueue: one invocation per key element, row r → queue row (ptr+r) mod K.
 * Rejected: one invocation per logit (N·(K+1) dot products, each rereading
 * q and a queue row): TN = 8 rows per invocation reads the queue N/8 times
 * instead of N times.
 */
import { type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { softmaxCeRows } from "./loss.ts";
import { checkEnqueue, mocoDims } from "./cpu/contrastive.ts";

const WG = 64;
const SPLIT = 4096; // queue rows per K-split in the backward
const MAX_GROUPS = 4096;
const MAX_D = 4096;

const rowsPerGroup = (D: number) => Math.max(1, Math.min(8, Math.floor(4096 / D)));
const unroll = (n: number, f: (r: number) => string) =>
  Array.from({ length: n }, (_, r) => f(r)).join("\n");

const logitsKernels = new Map<number, Kernel>();
function logitsKernel(D: number): Kernel {
  const TN = rowsPerGroup(D);
  let k = logitsKernels.get(D);
  if (!k) {
    k = {
      key: `moco:logits:${D}`,
      code: `
struct P { N: u32, K: u32, invT: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kpos: array<f32>;
@group(0) @binding(3) var<storage, read> queue: array<f32>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
const D = ${D}u;
const TN = ${TN}u;
var<workgroup> qs: array<f32, ${TN * D}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.y * TN;
  for (var i = lid; i < TN * D; i += ${WG}u) {
    let n = n0 + i / D;
    qs[i] = select(0.0, q[min(n, p.N - 1u) * D + i % D], n < p.N);
  }
  workgroupBarrier();
  let j = wid.x * ${WG}u + lid;
  if (j > p.K) { return; }
${unroll(TN, (r) => `  var a${r} = 0.0;`)}
  if (j == 0u) {
    for (var d = 0u; d < D; d++) {
${unroll(TN, (r) => `      a${r} += qs[${r}u * D + d] * kpos[min(n0 + ${r}u, p.N - 1u) * D + d];`)}
    }
  } else {
    let base = (j - 1u) * D;
    for (var d = 0u; d < D; d++) {
      let v = queue[base + d];
${unroll(TN, (r) => `      a${r} += qs[${r}u * D + d] * v;`)}
    }
  }
  let W = p.K + 1u;
${unroll(TN, (r) => `  if (n0 + ${r}u < p.N) { logits[(n0 + ${r}u) * W + j] = a${r} * p.invT; }`)}
}`,
    };
    logitsKernels.set(D, k);
  }
  return k;
}

const TB = 8; // rows per backward workgroup
const K = {
  bwdPartial: {
    key: "moco:bwd_partial",
    code: `
struct P { N: u32, K: u32, D: u32, split: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dl: array<f32>;
@group(0) @binding(2) var<storage, read> queue: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
var<workgroup> tile: array<f32, ${TB * WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let d = wid.x * ${WG}u + lid;
  let n0 = wid.y * ${TB}u;
  let jBegin = wid.z * p.split;
  let jEnd = min(jBegin + p.split, p.K);
  let W = p.K + 1u;
  let dc = min(d, p.D - 1u);
${unroll(TB, (r) => `  var a${r} = 0.0;`)}
  for (var j0 = jBegin; j0 < jEnd; j0 += ${WG}u) {
    // stage dl[n0 + r, 1 + j0 + lid] (zero outside)
    for (var r = 0u; r < ${TB}u; r++) {
      let n = n0 + r;
      let j = j0 + lid;
      let ok = n < p.N && j < jEnd;
      tile[r * ${WG}u + lid] = select(0.0, dl[min(n, p.N - 1u) * W + 1u + min(j, p.K - 1u)], ok);
    }
    workgroupBarrier();
    let cnt = min(${WG}u, jEnd - j0);
    for (var jj = 0u; jj < cnt; jj++) {
      let v = queue[(j0 + jj) * p.D + dc];
${unroll(TB, (r) => `      a${r} += tile[${r * WG}u + jj] * v;`)}
    }
    workgroupBarrier();
  }
  if (d < p.D) {
    let base = wid.z * p.N * p.D;
${unroll(TB, (r) => `    if (n0 + ${r}u < p.N) { part[base + (n0 + ${r}u) * p.D + d] = a${r}; }`)}
  }
}`,
  } as Kernel,
  bwdFinish: {
    key: "moco:bwd_finish",
    code: `
struct P { N: u32, K: u32, D: u32, S: u32, invT: f32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dl: array<f32>;
@group(0) @binding(2) var<storage, read> kpos: array<f32>;
@group(0) @binding(3) var<storage, read> part: array<f32>;
@group(0) @binding(4) var<storage, read_write> dq: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let nd = p.N * p.D;
  for (var i = gid.x; i < nd; i += nw.x * ${WG}u) {
    let n = i / p.D;
    var s = dl[n * (p.K + 1u)] * kpos[i];
    for (var t = 0u; t < p.S; t++) { s += part[t * nd + i]; }
    dq[i] = s * p.invT;
  }
}`,
  } as Kernel,
  enqueue: {
    key: "moco:enqueue",
    code: `
struct P { N: u32, D: u32, K: u32, ptr: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> keys: array<f32>;
@group(0) @binding(2) var<storage, read_write> queue: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  for (var i = gid.x; i < p.N * p.D; i += nw.x * ${WG}u) {
    let r = i / p.D;
    queue[((p.ptr + r) % p.K) * p.D + i % p.D] = keys[i];
  }
}`,
  } as Kernel,
};

function checkT(T: number, what: string): void {
  if (!(T > 0 && Number.isFinite(T))) throw new Error(`${what}: temperature ${T} must be > 0`);
}

/** logits[N, 1+K] = [q·k₊, q·queueᵀ] / T (positive at column 0). */
export function mocoLogits(q: Tensor, k: Tensor, queue: Tensor, T: number): Tensor {
  const [N, D, Kq] = mocoDims(q, k, queue, "mocoLogits");
  checkT(T, "mocoLogits");
  if (D > MAX_D) throw new Error(`mocoLogits: feature dim ${D} > ${MAX_D}`);
  const out = Tensor.empty(q.gpu, [N, Kq + 1]);
  q.gpu.dispatch(
    logitsKernel(D),
    [q.buffer, k.buffer, queue.buffer, out.buffer],
    params([N, Kq, { f32: 1 / T }]),
    [Math.ceil((Kq + 1) / WG), Math.ceil(N / rowsPerGroup(D))],
  );
  return out;
}

/** dq[N,D] from dlogits[N,1+K] (k and queue are constants: MoCo stops their gradient). */
export function mocoLogitsBackward(dlogits: Tensor, k: Tensor, queue: Tensor, T: number): Tensor {
  const [N, D, Kq] = mocoDims(null, k, queue, "mocoLogitsBackward");
  checkT(T, "mocoLogitsBackward");
  if (dlogits.shape.length !== 2 || dlogits.shape[0] !== N || dlogits.shape[1] !== Kq + 1) {
    throw new Error(`mocoLogitsBackward: dlogits is [${dlogits.shape}], expected [${N},${Kq + 1}]`);
  }
  const gpu = k.gpu;
  const S = Math.max(1, Math.ceil(Kq / SPLIT));
  const part = Tensor.empty(gpu, [S, N, D]);
  const dq = Tensor.empty(gpu, [N, D]);
  if (Kq > 0) {
    gpu.dispatch(
      K.bwdPartial,
      [dlogits.buffer, queue.buffer, part.buffer],
      params([N, Kq, D, SPLIT]),
      [
        Math.ceil(D / WG),
        Math.ceil(N / TB),
        S,
      ],
    );
  }
  gpu.dispatch(
    K.bwdFinish,
    [dlogits.buffer, k.buffer, part.buffer, dq.buffer],
    params([N, Kq, D, Kq > 0 ? S : 0, { f32: 1 / T }]),
    [Math.min(Math.ceil((N * D) / WG), MAX_GROUPS)],
  );
  part.dispose();
  return dq;
}

/** InfoNCE: mean softmax CE with the positive at column 0, its gradient and top-1 count. */
export function infoNce(logits: Tensor): { loss: Tensor; dlogits: Tensor; correct: Tensor } {
  const { loss, dlogits, correct } = softmaxCeRows(logits, null, true, "infoNce");
  return { loss, dlogits, correct: correct! };
}

/** Writes keys into queue rows ptr, ptr+1, … (mod K, wrapping around); returns the next ptr. */
export function enqueue(queue: Tensor, keys: Tensor, ptr: number): number {
  const [N, D, Kq] = checkEnqueue(queue, keys, ptr);
  queue.gpu.dispatch(K.enqueue, [keys.buffer, queue.buffer], params([N, D, Kq, ptr]), [
    Math.min(Math.ceil((N * D) / WG), MAX_GROUPS),
  ]);
  return (ptr + N) % Kq;
}
