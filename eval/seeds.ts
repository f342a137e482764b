/**
 * Paired differences over several pretraining seeds: a two-level analysis in which both the
 * pretraining seed and the test images are sources of error.
 *
 * Design: seed k (k = 1..K) gives a MoCo backbone and its own random-init baseline; each is
 * fine-tuned on the same label subsets (draws) and scored on the same test images. Seed k's
 * difference d_k is the mean over its draws of AUC_A − AUC_B; the estimate is mean_k d_k.
 *
 * Error, in two parts that add:
 *  - test images: a paired bootstrap of the test set (one resample shared by every cell of every
 *    seed), seeds held fixed: se_test;
 *  - pretraining seeds: the spread of d_k between seeds, se_seed = sd(d_k) / sqrt(K).
 * se² = se_seed² + se_test². The interval is estimate ± t(df) · se, with Welch–Satterthwaite's df
 * = se⁴ / (se_seed⁴ / (K − 1)) (the test part has, for our purposes, infinite df): with a handful of
 * seeds the seed part is itself uncertain, and a t quantile with few df widens the interval
 * accordingly. `seed_share` = se_seed² / se² says how much of the spread the seeds contribute.
 *
 * The two-level bootstrap (resample seeds with replacement, then test images) is also reported
 * (ci_hier): it resamples both levels literally, but with K = 2-5 seeds its seed part shrinks by
 * (K − 1)/K and has no t tail, so it covers far less than its nominal level when seeds dominate
 * (tests/eval_seeds.test.ts measures both). K = 1: no seed part can be estimated; the interval
 * is the test-only percentile CI and `n_seeds` says so.
 */
import { Rng } from "../util/rng.ts";
import { auc, EvalInputError } from "./auc.ts";
import { prepare, type PreparedTerm, quantileSorted, weightedAuc } from "./bootstrap.ts";
import type { BootstrapOptions } from "./bootstrap.ts";
import { normalCdf, normalQuantile } from "./normal.ts";
import type { DrawPair } from "./paired.ts";

/** The draws (pairs) of one pretraining seed. */
export interface SeedPairs {
  seed: number;
  pairs: DrawPair[];
}

export interface SeedDifferenceStats {
  /** mean over seeds of (mean over draws of AUC_A − AUC_B). */
  diff: number;
  /** estimate ± t(df) · se (K ≥ 2); the test-only percentile CI when K = 1. */
  ci: [number, number];
  /** Two-sided p of diff = 0 from the same t (K ≥ 2), else the test bootstrap's. */
  p: number;
  n_seeds: number;
  /** d_k per seed, in seed order. */
  seed_diffs: number[];
  /** sd of seed_diffs (0 for one seed). */
  seed_sd: number;
  se: number;
  se_seed: number;
  se_test: number;
  /** se_seed² / se²: the share of the variance from pretraining seeds. */
  seed_share: number;
  /** Satterthwaite degrees of freedom of se (Infinity when the seed part is 0 or K = 1). */
  df: number;
  /** Percentile CI of the test-image bootstrap with seeds fixed (what the CI was before seeds). */
  ci_test: [number, number];
  /** Percentile CI of the two-level bootstrap (seeds, then test images), for comparison. */
  ci_hier: [number, number];
  /** Seeds whose difference is above 0. */
  seeds_positive: number;
  redrawn: number;
}

// --- Student t (no stats library is reachable) ---

function logGamma(x: number): number {
  // Lanczos (g = 7, n = 9), ~1e-15 relative for x > 0.
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised incomplete beta I_x(a, b) (continued fraction, modified Lentz). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  ) / a;
  const tiny = 1e-300;
  let f = 1, c = 1, d = 0;
  for (let i = 0; i <= 400; i++) {
    const m = Math.floor(i / 2);
    const num = i === 0
      ? 1
      : i % 2 === 0
      ? (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m))
      : -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    const cd = c * d;
    f *= cd;
    if (Math.abs(1 - cd) < 1e-15) break;
  }
  return front * (f - 1);
}

/** Student t CDF with df degrees of freedom (df = Infinity: normal). */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTCdf: df must be > 0, got ${df}`);
  if (!Number.isFinite(df) || df > 1e7) return normalCdf(t);
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Student t quantile (bisection on the CDF; df = Infinity: normal). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!Number.isFinite(df) || df > 1e7) return normalQuantile(p);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

// --- the two-level difference ---

interface SeedTerms {
  terms: PreparedTerm[];
  weights: number[];
}

/** Terms of one seed: A with +w, B with −w, w averaging first within a draw id, then over draws. */
function seedTerms(s: SeedPairs): SeedTerms {
  if (s.pairs.length === 0) throw new EvalInputError(`seed ${s.seed}: no draws`);
  const ids = s.pairs.map((d, k) => d.draw ?? `#${k}`);
  const per = new Map<number | string, number>();
  for (const id of ids) per.set(id, (per.get(id) ?? 0) + 1);
  const D = per.size;
  const terms: PreparedTerm[] = [], weights: number[] = [];
  s.pairs.forEach((d, k) => {
    const w = 1 / (D * per.get(ids[k])!);
    const what = d.what ?? `seed ${s.seed} draw ${ids[k]}`;
    terms.push(prepare({ labels: d.labels, scores: d.scoresA, weight: w, what: `${what} (A)` }));
    weights.push(w);
    terms.push(prepare({ labels: d.labels, scores: d.scoresB, weight: -w, what: `${what} (B)` }));
    weights.push(-w);
  });
  return { terms, weights };
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

function sd(xs: ArrayLike<number>): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < xs.length; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

/** The two-level paired difference A − B over pretraining seeds; see the file header. */
export function seedDifference(
  seeds: SeedPairs[],
  opts: BootstrapOptions = {},
): SeedDifferenceStats {
  const { replicates = 1000, seed = 0, level = 0.95 } = opts;
  if (seeds.length === 0) throw new EvalInputError("seed difference: no seeds given");
  if (!(Number.isInteger(replicates) && replicates >= 2)) {
    throw new RangeError(`seed difference: replicates must be an integer >= 2, got ${replicates}`);
  }
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`seed difference: level must be in (0, 1), got ${level}`);
  }
  const rng = opts.rng ?? new Rng(seed);
  const K = seeds.length;
  const per = seeds.map(seedTerms);
  const counts = new Map<number, Int32Array>();
  for (const s of per) {
    for (const t of s.terms) if (!counts.has(t.n)) counts.set(t.n, new Int32Array(t.n));
  }

  const seedDiffs = seeds.map((s) => {
    const ids = s.pairs.map((d, k) => d.draw ?? `#${k}`);
    const byId = new Map<number | string, number[]>();
    s.pairs.forEach((d, k) => {
      const x = auc(d.labels, d.scoresA) - auc(d.labels, d.scoresB);
      byId.set(ids[k], [...(byId.get(ids[k]) ?? []), x]);
    });
    return mean([...byId.values()].map(mean));
  });
  const estimate = mean(seedDiffs);

  const testReps = new Float64Array(replicates), hierReps = new Float64Array(replicates);
  const dk = new Float64Array(K);
  let redrawn = 0;
  const maxRedraws = 4 * replicates + 100;
  for (let b = 0; b < replicates; b++) {
    for (;;) {
      for (const [n, c] of counts) {
        c.fill(0);
        for (let i = 0; i < n; i++) c[rng.int(n)]++;
      }
      let ok = true;
      for (let k = 0; k < K && ok; k++) {
        let s = 0;
        const { terms, weights } = per[k];
        for (let j = 0; j < terms.length; j++) {
          const a = weightedAuc(terms[j], counts.get(terms[j].n)!);
          if (Number.isNaN(a)) {
            ok = false;
            break;
          }
          s += weights[j] * a;
        }
        dk[k] = s;
      }
      if (ok) break;
      if (++redrawn > maxRedraws) {
        throw new EvalInputError(
          `seed difference: ${redrawn} resamples lacked a class; the test set has too few ` +
            `positives or negatives for a bootstrap CI`,
        );
      }
    }
    testReps[b] = mean(dk);
    let h = 0;
    for (let k = 0; k < K; k++) h += dk[rng.int(K)];
    hierReps[b] = h / K;
  }
  testReps.sort();
  hierReps.sort();
  const alpha = 1 - level;
  const pct = (r: Float64Array): [number, number] => [
    quantileSorted(r, alpha / 2),
    quantileSorted(r, 1 - alpha / 2),
  ];
  const seTest = sd(testReps);
  const seedSd = sd(seedDiffs);
  const seSeed = K > 1 ? seedSd / Math.sqrt(K) : 0;
  const se = Math.hypot(seSeed, seTest);
  const df = K > 1 && seSeed > 0 ? se ** 4 / (seSeed ** 4 / (K - 1)) : Infinity;
  const ciTest = pct(testReps);
  let ci: [number, number], p: number;
  if (K > 1 && se > 0) {
    const q = studentTQuantile(1 - alpha / 2, df);
    ci = [estimate - q * se, estimate + q * se];
    p = Math.min(1, 2 * (1 - studentTCdf(Math.abs(estimate) / se, df)));
  } else {
    ci = ciTest;
    let below = 0, above = 0;
    for (const r of testReps) {
      if (r <= 0) below++;
      if (r >= 0) above++;
    }
    p = Math.min(1, (2 * Math.min(below, above)) / replicates);
  }
  return {
    diff: estimate,
    ci,
    p,
    n_seeds: K,
    seed_diffs: seedDiffs,
    seed_sd: seedSd,
    se,
    se_seed: seSeed,
    se_test: seTest,
    seed_share: se > 0 ? seSeed ** 2 / se ** 2 : 0,
    df,
    ci_test: ciTest,
    ci_hier: pct(hierReps),
    seeds_positive: seedDiffs.filter((x) => x > 0).length,
    redrawn,
  };
}
