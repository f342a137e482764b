/**
 * DeLong, DeLong & Clarke-Pearson (1988) nonparametric variance of AUCs, for one model or any
 * linear contrast of several models scored on the same test set (e.g. a paired difference).
 * Structural components are computed with midranks (Sun & Xu 2014), O(K n log n).
 */
import { checkPredictions, EvalInputError, midranks } from "./auc.ts";
import { normalQuantile, twoSidedP } from "./normal.ts";

/** AUCs of K models on one test set and the DeLong covariance matrix of those AUCs. */
export interface DelongCovariance {
  aucs: number[];
  /** cov[i][j] = Cov(AUC_i, AUC_j) = S10[i][j]/m + S01[i][j]/n. */
  cov: number[][];
  nPos: number;
  nNeg: number;
}

/** DeLong covariance of the AUCs of several score vectors that share one label vector. */
export function delongCovariance(
  labels: ArrayLike<number>,
  scoresList: ArrayLike<number>[],
  what = "predictions",
): DelongCovariance {
  if (scoresList.length === 0) throw new EvalInputError(`${what}: no score vectors given`);
  let counts = { nPos: 0, nNeg: 0 };
  scoresList.forEach((s, k) => {
    counts = checkPredictions(labels, s, scoresList.length > 1 ? `${what} (model ${k})` : what);
  });
  const m = counts.nPos, n = counts.nNeg;
  if (m < 2 || n < 2) {
    throw new EvalInputError(
      `${what}: DeLong variance needs at least 2 positives and 2 negatives (got ${m} and ${n}); ` +
        `use a larger test split`,
    );
  }
  const posIdx: number[] = [], negIdx: number[] = [];
  for (let i = 0; i < labels.length; i++) (labels[i] === 1 ? posIdx : negIdx).push(i);
  const K = scoresList.length;
  const v10: Float64Array[] = [], v01: Float64Array[] = [], aucs: number[] = [];
  for (const s of scoresList) {
    const x = Float64Array.from(posIdx, (i) => s[i]);
    const y = Float64Array.from(negIdx, (i) => s[i]);
    const z = new Float64Array(m + n);
    z.set(x);
    z.set(y, m);
    const tx = midranks(x), ty = midranks(y), tz = midranks(z);
    // V10[i]: fraction of negatives a positive beats; V01[j]: fraction of positives beating a negative.
    const a = new Float64Array(m), b = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < m; i++) {
      a[i] = (tz[i] - tx[i]) / n;
      sum += a[i];
    }
    for (let j = 0; j < n; j++) b[j] = 1 - (tz[m + j] - ty[j]) / m;
    v10.push(a);
    v01.push(b);
    aucs.push(sum / m);
  }
  const cov: number[][] = [];
  for (let p = 0; p < K; p++) {
    cov.push([]);
    for (let q = 0; q < K; q++) {
      cov[p].push(
        q < p ? cov[q][p] : sampleCov(v10[p], v10[q]) / m + sampleCov(v01[p], v01[q]) / n,
      );
    }
  }
  return { aucs, cov, nPos: m, nNeg: n };
}

function sampleCov(a: Float64Array, b: Float64Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= a.length;
  mb /= b.length;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - ma) * (b[i] - mb);
  return s / (a.length - 1);
}

/** Estimate, DeLong standard error, normal CI and two-sided z-test against `null`. */
export interface DelongTest {
  /** The AUC, or the difference of two AUCs. */
  estimate: number;
  /** Its DeLong variance. */
  variance: number;
  /** Its standard error (√variance). */
  se: number;
  /** Normal confidence interval at the requested level. */
  ci: [number, number];
  /** z statistic against the null value. */
  z: number;
  /** Two-sided p-value of the z-test. */
  p: number;
}

function normalTest(
  estimate: number,
  variance: number,
  nullValue: number,
  level: number,
  clip: [number, number],
): DelongTest {
  const se = Math.sqrt(Math.max(0, variance));
  const q = normalQuantile(0.5 + level / 2);
  const delta = estimate - nullValue;
  // Zero variance (perfect separation, identical models): the z-test degenerates.
  const z = se > 0 ? delta / se : delta === 0 ? 0 : Math.sign(delta) * Infinity;
  return {
    estimate,
    variance,
    se,
    ci: [Math.max(clip[0], estimate - q * se), Math.min(clip[1], estimate + q * se)],
    z,
    p: twoSidedP(z),
  };
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`confidence level must be in (0, 1), got ${level}`);
  }
}

/** DeLong test of one model's AUC (CI clipped to [0,1]; z-test against AUC = 0.5). */
export function delong(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  { level = 0.95, what = "predictions" }: { level?: number; what?: string } = {},
): DelongTest {
  checkLevel(level);
  const c = delongCovariance(labels, [scores], what);
  return normalTest(c.aucs[0], c.cov[0][0], 0.5, level, [0, 1]);
}

/**
 * DeLong test of a linear contrast sum_k w_k AUC_k of models on the same test set, against 0.
 * weights [1, -1] is the paired difference A − B; [1/D,...,-1/D,...] a difference of means.
 */
export function delongContrast(
  labels: ArrayLike<number>,
  scoresList: ArrayLike<number>[],
  weights: number[],
  { level = 0.95, what = "predictions" }: { level?: number; what?: string } = {},
): DelongTest & { aucs: number[] } {
  checkLevel(level);
  if (weights.length !== scoresList.length) {
    throw new EvalInputError(`${what}: ${weights.length} weights for ${scoresList.length} models`);
  }
  return contrastTest(delongCovariance(labels, scoresList, what), weights, level);
}

function contrastTest(
  c: DelongCovariance,
  weights: number[],
  level: number,
): DelongTest & { aucs: number[] } {
  let est = 0, v = 0;
  for (let p = 0; p < weights.length; p++) {
    est += weights[p] * c.aucs[p];
    for (let q = 0; q < weights.length; q++) v += weights[p] * weights[q] * c.cov[p][q];
  }
  // Each AUC lies in [0, 1], so the contrast lies in [sum of negative w, sum of positive w].
  const lo = weights.reduce((s, w) => s + Math.min(w, 0), 0);
  const hi = weights.reduce((s, w) => s + Math.max(w, 0), 0);
  return { ...normalTest(est, v, 0, level, [lo, hi]), aucs: c.aucs };
}

/** Paired DeLong test of AUC_A − AUC_B for two models scored on the same test set. */
export function delongPaired(
  labels: ArrayLike<number>,
  scoresA: ArrayLike<number>,
  scoresB: ArrayLike<number>,
  opts: { level?: number; what?: string } = {},
): DelongTest & { aucA: number; aucB: number; correlation: number } {
  const { level = 0.95, what = "predictions" } = opts;
  checkLevel(level);
  const c = delongCovariance(labels, [scoresA, scoresB], what);
  const t = contrastTest(c, [1, -1], level);
  const denom = Math.sqrt(c.cov[0][0] * c.cov[1][1]);
  return {
    ...t,
    aucA: c.aucs[0],
    aucB: c.aucs[1],
    correlation: denom > 0 ? c.cov[0][1] / denom : NaN,
  };
}
