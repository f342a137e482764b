/** CPU references for kernels/contrastive.ts (MoCo logits, InfoNCE, queue). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";
import { softmaxCeRowsCpu } from "./loss.ts";

/** Validates q[N,D], k[N,D], queue[K,D]; returns [N, D, K]. */
export function mocoDims(
  q: { shape: readonly number[] } | null,
  k: { shape: readonly number[] },
  queue: { shape: readonly number[] },
  what: string,
): [number, number, number] {
  const s = (t: { shape: readonly number[] }) => `[${t.shape}]`;
  if (k.shape.length !== 2 || queue.shape.length !== 2 || k.shape[1] !== queue.shape[1]) {
    throw new Error(`${what}: k ${s(k)} and queue ${s(queue)} must be [N,D] and [K,D]`);
  }
  if (q && (q.shape.length !== 2 || q.shape[0] !== k.shape[0] || q.shape[1] !== k.shape[1])) {
    throw new Error(`${what}: q ${s(q)} must match k ${s(k)}`);
  }
  return [k.shape[0], k.shape[1], queue.shape[0]];
}

/** logits[n] = [q_n·k_n, q_n·queue_0, …, q_n·queue_{K−1}] / T. */
export function mocoLogitsCpu(q: CpuTensor, k: CpuTensor, queue: CpuTensor, T: number): CpuTensor {
  const [N, D, K] = mocoDims(q, k, queue, "mocoLogits");
  const out = cpuTensor([N, K + 1]);
  const dot = (a: Float32Array, ai: number, b: Float32Array, bi: number) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += a[ai + d] * b[bi + d];
    return s;
  };
  for (let n = 0; n < N; n++) {
    out.data[n * (K + 1)] = dot(q.data, n * D, k.data, n * D) / T;
    for (let j = 0; j < K; j++) {
      out.data[n * (K + 1) + 1 + j] = dot(q.data, n * D, queue.data, j * D) / T;
    }
  }
  return out;
}

/** dq = (dl[:,0]·k + dl[:,1:]·queue) / T. */
export function mocoLogitsBackwardCpu(
  dlogits: CpuTensor,
  k: CpuTensor,
  queue: CpuTensor,
  T: number,
): CpuTensor {
  const [N, D, K] = mocoDims(null, k, queue, "mocoLogitsBackward");
  if (dlogits.shape.length !== 2 || dlogits.shape[0] !== N || dlogits.shape[1] !== K + 1) {
    throw new Error(`mocoLogitsBackward: dlogits is [${dlogits.shape}], expected [${N},${K + 1}]`);
  }
  const dq = cpuTensor([N, D]);
  const acc = new Float64Array(D);
  for (let n = 0; n < N; n++) {
    const g0 = dlogits.data[n * (K + 1)];
    for (let d = 0; d < D; d++) acc[d] = g0 * k.data[n * D + d];
    for (let j = 0; j < K; j++) {
      const g = dlogits.data[n * (K + 1) + 1 + j];
      for (let d = 0; d < D; d++) acc[d] += g * queue.data[j * D + d];
    }
    for (let d = 0; d < D; d++) dq.data[n * D + d] = acc[d] / T;
  }
  return dq;
}

/** InfoNCE = softmax CE with label 0; correct = rows whose first argmax is 0. */
export function infoNceCpu(
  logits: CpuTensor,
): { loss: CpuTensor; dlogits: CpuTensor; correct: CpuTensor } {
  return softmaxCeRowsCpu(logits, null, "infoNce");
}

export function checkEnqueue(
  queue: { shape: readonly number[] },
  keys: { shape: readonly number[] },
  ptr: number,
): [number, number, number] {
  const [N, D, K] = mocoDims(null, keys, queue, "enqueue");
  if (N > K) throw new Error(`enqueue: ${N} keys do not fit a queue of ${K}`);
  if (!(Number.isInteger(ptr) && ptr >= 0 && ptr < K)) {
    throw new Error(`enqueue: ptr ${ptr} is not in [0, ${K})`);
  }
  return [N, D, K];
}

/** Writes keys into queue rows ptr, ptr+1, … (mod K); returns the next ptr. */
export function enqueueCpu(queue: CpuTensor, keys: CpuTensor, ptr: number): number {
  const [N, D, K] = checkEnqueue(queue, keys, ptr);
  for (let r = 0; r < N; r++) {
    queue.data.set(keys.data.subarray(r * D, (r + 1) * D), ((ptr + r) % K) * D);
  }
  return (ptr + N) % K;
}
