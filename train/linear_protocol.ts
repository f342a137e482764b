/**
 * The linear protocol on cached frozen features: standardise with the training pool's
 * statistics, fit one L2-regularised logistic regression per task along the penalty path on the
 * label-fraction subset, choose each task's C by validation AUC (train/logistic_probe.ts), and
 * score the test set. The chosen weights, with the standardisation folded in, also become the
 * classifier head, so the returned network scores raw images as the probe scored features.
 *
 * Cost: the subset's standardised rows are copied as float64 (n·F·8 bytes: 24 MB for 5,800
 * images at F = 512, 0.8 GB for all 190k CheXpert training images); each objective evaluation
 * (one or more per L-BFGS iteration) reads them once. A whole linear cell of 1,640 images took
 * 4–5 s on the 2-core dev VM.
 */
import type { TensorData } from "../model/safetensors.ts";
import {
  DEFAULT_C_GRID,
  type FitOptions,
  fitProbePath,
  logits,
  type ProbeResult,
} from "./logistic_probe.ts";

/** Frozen backbone features of the three sets, row-major [n, F] each. */
export interface FeatureSets {
  /** Training pool features. */
  train: Float32Array;
  /** Validation features. */
  val: Float32Array;
  /** Test features. */
  test: Float32Array;
}

export interface Standardizer {
  mean: Float64Array;
  sd: Float64Array;
}

/** Per-dimension mean and standard deviation (+1e-6) of [n, F] features. */
export function featureStats(x: Float32Array, F: number): Standardizer {
  const n = x.length / F;
  const mean = new Float64Array(F), sd = new Float64Array(F);
  for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) mean[j] += x[i * F + j] / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < F; j++) sd[j] += (x[i * F + j] - mean[j]) ** 2 / n;
  }
  for (let j = 0; j < F; j++) sd[j] = Math.sqrt(sd[j]) + 1e-6;
  return { mean, sd };
}

/** Standardised rows `idx` of x, as float64 [idx.length, F]. */
export function standardRows(
  x: Float32Array,
  F: number,
  s: Standardizer,
  idx: number[],
): Float64Array {
  const out = new Float64Array(idx.length * F);
  idx.forEach((r, i) => {
    for (let j = 0; j < F; j++) out[i * F + j] = (x[r * F + j] - s.mean[j]) / s.sd[j];
  });
  return out;
}

/** The labels that a task's probe reads: rows of `idx` whose mask is set. */
interface LabelView {
  labels: Float32Array;
  mask: Float32Array;
}

function usable(set: LabelView, T: number, t: number, idx: number[]): number[] {
  return idx.filter((i) => set.mask[i * T + t] > 0);
}

export interface LinearProtocolResult {
  /** Per task. */
  probes: ProbeResult[];
  /** Test scores [test rows, T] (probabilities). */
  testScores: Float32Array;
  /**
   * One row per C on the path: mean training loss and mean validation AUC over the tasks, their
   * L-BFGS iterations summed, and whether every task's fit at that C converged.
   */
  curve: {
    step: number;
    C: number;
    loss: number;
    val_auc: number;
    iterations: number;
    converged: boolean;
  }[];
  /** The classifier head (weight [T, F], bias [T]) applying the probes to raw features. */
  head: Map<string, TensorData>;
}

export function linearProtocol(
  feats: FeatureSets,
  F: number,
  sets: { train: LabelView; trainIdx: number[]; val: LabelView & { count: number } },
  T: number,
  grid: number[] = DEFAULT_C_GRID,
  fit: Omit<FitOptions, "init"> = {},
): LinearProtocolResult {
  const stats = featureStats(feats.train, F);
  const nTest = feats.test.length / F;
  const allVal = Array.from({ length: sets.val.count }, (_, i) => i);
  const allTest = Array.from({ length: nTest }, (_, i) => i);
  const testX = standardRows(feats.test, F, stats, allTest);
  const probes: ProbeResult[] = [];
  const testScores = new Float32Array(nTest * T);
  const weight = new Float32Array(T * F), bias = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    const tr = usable(sets.train, T, t, sets.trainIdx), va = usable(sets.val, T, t, allVal);
    const rows = (x: Float32Array, set: LabelView, idx: number[]) => ({
      x: standardRows(x, F, stats, idx),
      y: Float64Array.from(idx, (i) => set.labels[i * T + t]),
    });
    const p = fitProbePath(
      rows(feats.train, sets.train, tr),
      rows(feats.val, sets.val, va),
      F,
      grid,
      fit,
    );
    probes.push(p);
    const s = logits(testX, F, p.w, p.b);
    for (let i = 0; i < nTest; i++) testScores[i * T + t] = 1 / (1 + Math.exp(-s[i]));
    // Folded standardisation: w·(x − μ)/σ + b = (w/σ)·x + (b − Σ w μ/σ).
    let b = p.b;
    for (let j = 0; j < F; j++) {
      weight[t * F + j] = p.w[j] / stats.sd[j];
      b -= (p.w[j] * stats.mean[j]) / stats.sd[j];
    }
    bias[t] = b;
  }
  // Tasks whose training rows hold one class have no path (probe.chosenBy "one-class").
  const fitted = probes.filter((q) => q.path.length > 0);
  const curve = (fitted[0]?.path ?? []).map((pt, k) => {
    const mean = (f: (q: ProbeResult) => number) =>
      fitted.reduce((a, q) => a + f(q), 0) / fitted.length;
    return {
      step: k + 1,
      C: pt.C,
      loss: mean((q) => q.path[k].loss),
      val_auc: mean((q) => q.path[k].valAuc),
      iterations: fitted.reduce((a, q) => a + q.path[k].iterations, 0),
      converged: fitted.every((q) => q.path[k].converged),
    };
  });
  const head = new Map<string, TensorData>([
    ["weight", { dtype: "F32", shape: [T, F], data: weight }],
    ["bias", { dtype: "F32", shape: [T], data: bias }],
  ]);
  return { probes, testScores, curve, head };
}

/** Every set standardised with the training pool's statistics (float32, as the sets). */
export function standardize(f: FeatureSets, F: number): FeatureSets {
  const s = featureStats(f.train, F);
  const apply = (x: Float32Array) => x.map((v, k) => (v - s.mean[k % F]) / s.sd[k % F]);
  return { train: apply(f.train), val: apply(f.val), test: apply(f.test) };
}
