/** CPU references for kernels/loss.ts (accumulation in f64). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export function check2d(
  t: { shape: readonly number[] },
  what: string,
  name: string,
): [number, number] {
  if (t.shape.length !== 2) throw new Error(`${what}: ${name} must be 2-D, got [${t.shape}]`);
  return [t.shape[0], t.shape[1]];
}

export function checkSame(
  a: { shape: readonly number[] },
  b: { shape: readonly number[] },
  what: string,
  name: string,
) {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${what}: ${name} is [${b.shape}], expected [${a.shape}]`);
  }
}

/**
 * Row-wise softmax cross-entropy with integer labels (label 0 when labels is null):
 * loss = mean(lse − x[label]), dlogits = (softmax − onehot)/N, correct = #rows whose
 * first argmax is the label.
 */
export function softmaxCeRowsCpu(
  logits: CpuTensor,
  labels: CpuTensor | null,
  what: string,
): { loss: CpuTensor; dlogits: CpuTensor; correct: CpuTensor } {
  const [N, K] = check2d(logits, what, "logits");
  if (labels && labels.data.length !== N) {
    throw new Error(`${what}: ${labels.data.length} labels for ${N} rows`);
  }
  const dl = cpuTensor([N, K]);
  let total = 0, correct = 0;
  for (let n = 0; n < N; n++) {
    const row = logits.data.subarray(n * K, (n + 1) * K);
    const label = labels ? labels.data[n] : 0;
    if (!(Number.isInteger(label) && label >= 0 && label < K)) {
      throw new Error(`${what}: label ${label} in row ${n} is not a class index in [0, ${K})`);
    }
    let mx = -Infinity, arg = 0;
    for (let k = 0; k < K; k++) if (row[k] > mx) [mx, arg] = [row[k], k];
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(row[k] - mx);
    total += mx + Math.log(s) - row[label];
    for (let k = 0; k < K; k++) {
      dl.data[n * K + k] = (Math.exp(row[k] - mx) / s - (k === label ? 1 : 0)) / N;
    }
    if (arg === label) correct++;
  }
  return { loss: cpuTensor([1], [total / N]), dlogits: dl, correct: cpuTensor([1], [correct]) };
}

export function softmaxCrossEntropyCpu(
  logits: CpuTensor,
  labels: CpuTensor,
): { loss: CpuTensor; dlogits: CpuTensor } {
  const { loss, dlogits } = softmaxCeRowsCpu(logits, labels, "softmaxCrossEntropy");
  return { loss, dlogits };
}

const sigm = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Mean of max(x,0) − x·t + log(1+e^−|x|) over elements with mask > 0 (0 when none). */
export function bceWithLogitsCpu(
  logits: CpuTensor,
  targets: CpuTensor,
  mask: CpuTensor,
): { loss: CpuTensor; dlogits: CpuTensor } {
  check2d(logits, "bceWithLogits", "logits");
  checkSame(logits, targets, "bceWithLogits", "targets");
  checkSame(logits, mask, "bceWithLogits", "mask");
  const count = mask.data.reduce((a, m) => a + (m > 0 ? 1 : 0), 0);
  const dl = cpuTensor(logits.shape);
  let total = 0;
  logits.data.forEach((x, i) => {
    if (!(mask.data[i] > 0)) return;
    const t = targets.data[i];
    total += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    dl.data[i] = (sigm(x) - t) / count;
  });
  return { loss: cpuTensor([1], [count > 0 ? total / count : 0]), dlogits: dl };
}
