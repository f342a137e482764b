/**
 * MoCo: logits [q·k₊, q·queue]/T in one kernel, its backward wrt q, the
 * InfoNCE loss (softmax CE with label 0, via loss.ts) and the queue enqueue.
 *
 * mocoLogits: one invocation = TN=8 q rows × one logit column; workgroup 64
 * lanes = 64 columns (dispatch [ceil((K+1)/64), ceil(N/8)]). Column j ≥ 1 is
 * queue row j−1, read contiguously by its lane, and every loaded queue value
 * serves 8 rows (8 accumulators); column 0 is k_n. The q reads are the same
 * address across the workgroup (broadcast / cache hits), so q needs no copy.
 * mocoLogitsBackward: dq = (dl[:,0]·k + dl[:,1:]·queue)/T, a [N,K]×[K,D] GEMM,
 * split-K for parallelism and determinism without atomics:
 *   stage 1: invocation = 8 rows × one d × one K-split of ≤ `split` queue rows;
 *     lane d reads queue[j, d] (adjacent lanes, adjacent addresses), dl[n, j]
 *     is uniform across the workgroup. Partial sums → scratch [S,N,D];
 *     dispatch [ceil(D/64), ceil(N/8), S], S = ceil(K/split). split = 4096 rows
 *     on software adapters; 256 on hardware, where 4096 left a batch of 64
 *     (D = 128) with 16 workgroups of 4,096 serial steps: 2.84 ms of an H200's
 *     step (session 11), against S = 16 times more workgroups at 256.
 *   stage 2: elementwise, dq = (dl[n,0]·k[n,d] + Σ_s partial[s,n,d]) / T in
 *     fixed s order. S depends only on K and the adapter: identical results run
 *     to run.
 * enqueue: one invocation per key element, row r → queue row (ptr+r) mod K.
 * Rejected shapes (workgroup-memory tiles, one invocation per logit): kernels/KERNELS.md.
 */
import { type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { softmaxCeRows } from "./loss.ts";
import { checkEnqueue, mocoDims } from "./cpu/contrastive.ts";
import { gridStrideMain, unroll } from "./wgsl.ts";

const WG = 64;
/** Queue rows per K-split in the backward, on software adapters and on hardware (see the header). */
export const BWD_SPLIT = { software: 4096, hardware: 256 };
const MAX_GROUPS = 4096;

const TN = 8; // q rows per logits invocation
const logitsKernel: Kernel = {
  name: "moco:logits",
  code: `
struct P { N: u32, K: u32, D: u32, invT: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kpos: array<f32>;
@group(0) @binding(3) var<storage, read> queue: array<f32>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let j = wid.x * ${WG}u + lid;
  if (j > p.K) { return; }
  // q row offsets (rows past N alias the last row; their results are not stored)
${unroll(TN, (r) => `  let q${r} = min(wid.y * ${TN}u + ${r}u, p.N - 1u) * p.D;`)}
${unroll(TN, (r) => `  var a${r} = 0.0;`)}
  if (j == 0u) {
    for (var d = 0u; d < p.D; d++) {
${unroll(TN, (r) => `      a${r} += q[q${r} + d] * kpos[q${r} + d];`)}
    }
  } else {
    let base = (j - 1u) * p.D;
    for (var d = 0u; d < p.D; d++) {
      let v = queue[base + d];
${unroll(TN, (r) => `      a${r} += q[q${r} + d] * v;`)}
    }
  }
  let W = p.K + 1u;
${
    unroll(TN, (r) =>
      `  if (wid.y * ${TN}u + ${r}u < p.N) { logits[(wid.y * ${TN}u + ${r}u) * W + j] = a${r} * p.invT; }`)
  }
}`,
};

const TB = 8; // rows per backward workgroup
const K = {
  bwdPartial: {
    name: "moco:bwd_partial",
    code: `
struct P { N: u32, K: u32, D: u32, split: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dl: array<f32>;
@group(0) @binding(2) var<storage, read> queue: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let d = wid.x * ${WG}u + lid;
  if (d >= p.D) { return; }
  let n0 = wid.y * ${TB}u;
  let jBegin = wid.z * p.split;
  let jEnd = min(jBegin + p.split, p.K);
  let W = p.K + 1u;
  // dl row offsets (column 1 = queue row 0); rows past N alias the last row, not stored
${unroll(TB, (r) => `  let o${r} = min(n0 + ${r}u, p.N - 1u) * W + 1u;`)}
${unroll(TB, (r) => `  var a${r} = 0.0;`)}
  for (var j = jBegin; j < jEnd; j++) {
    let v = queue[j * p.D + d];
${unroll(TB, (r) => `    a${r} += dl[o${r} + j] * v;`)}
  }
  let base = wid.z * p.N * p.D;
${unroll(TB, (r) => `  if (n0 + ${r}u < p.N) { part[base + (n0 + ${r}u) * p.D + d] = a${r}; }`)}
}`,
  } as Kernel,
  bwdFinish: {
    name: "moco:bwd_finish",
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
    name: "moco:enqueue",
    code: `
struct P { N: u32, D: u32, K: u32, ptr: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> keys: array<f32>;
@group(0) @binding(2) var<storage, read_write> queue: array<f32>;
${
      gridStrideMain(
        WG,
        "p.N * p.D",
        `    queue[((p.ptr + i / p.D) % p.K) * p.D + i % p.D] = keys[i];`,
      )
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
  const out = Tensor.empty(q.gpu, [N, Kq + 1]);
  q.gpu.dispatch(
    logitsKernel,
    [q.buffer, k.buffer, queue.buffer, out.buffer],
    params([N, Kq, D, { f32: 1 / T }]),
    [Math.ceil((Kq + 1) / WG), Math.ceil(N / TN)],
  );
  return out;
}

/**
 * dq[N,D] from dlogits[N,1+K] (k and queue are constants: MoCo stops their gradient). `split`:
 * queue rows per K-split (default BWD_SPLIT by adapter; tests force either).
 */
export function mocoLogitsBackward(
  dlogits: Tensor,
  k: Tensor,
  queue: Tensor,
  T: number,
  split = k.gpu.isSoftware ? BWD_SPLIT.software : BWD_SPLIT.hardware,
): Tensor {
  const [N, D, Kq] = mocoDims(null, k, queue, "mocoLogitsBackward");
  checkT(T, "mocoLogitsBackward");
  if (dlogits.shape.length !== 2 || dlogits.shape[0] !== N || dlogits.shape[1] !== Kq + 1) {
    throw new Error(`mocoLogitsBackward: dlogits is [${dlogits.shape}], expected [${N},${Kq + 1}]`);
  }
  if (!(Number.isInteger(split) && split >= 1)) {
    throw new Error(`mocoLogitsBackward: split ${split} is not a positive integer`);
  }
  const gpu = k.gpu;
  const S = Math.max(1, Math.ceil(Kq / split));
  const part = Tensor.empty(gpu, [S, N, D]);
  const dq = Tensor.empty(gpu, [N, D]);
  if (Kq > 0) {
    gpu.dispatch(
      K.bwdPartial,
      [dlogits.buffer, queue.buffer, part.buffer],
      params([N, Kq, D, split]),
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
