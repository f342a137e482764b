/**
 * Paired differences over several pretraining seeds: a two-level analysis in which both the
 * pretraining seed and the test images are sources of error.
 *
 * Design: seed k (k = 1..K) gives a MoCo backbone and its own random-init baseline; each is
 * fine-tuned on the same label subsets (draws) and scored on the same test images. Seed k's
 * difference d_k is the mean over its draws of AUC_A − AUC_B; the estimate is mean_k d_k.
 *
 * Model: d_k = δ + s_k + e_k, with s_k the seed effect (variance σ²_seed) and e_k the test-image
 * error. All seeds are scored on one test set, so the e_k are correlated: V̄ = a seed's own
 * var(e_k) (mean over seeds), C̄ = cov(e_k, e_l) (mean over pairs k ≠ l). Then
 *   var(mean_k d_k) = σ²_seed / K + V̄/K + (K − 1)C̄/K,
 *   E sd²(d_k)     = σ²_seed + V̄ − C̄     (the spread between seeds holds test noise too).
 * Estimates:
 *  - se_test²: the variance of the paired bootstrap of the seed mean (one resample of the test
 *    images shared by every cell of every seed, seeds fixed) = V̄/K + (K − 1)C̄/K;
 *  - V̄ and C̄ (test_var, test_cov): from the per-seed replicates d_k of the same bootstrap;
 *  - σ̂²_seed = max(0, sd²(d_k) − (V̄ − C̄)): the spread between seeds net of test-image noise
 *    (without the subtraction, the test images would be counted twice: (V̄ − C̄)/K in
 *    sd²(d_k)/K and again in se_test²);
 *  - se² = σ̂²_seed/K + se_test² (= sd²(d_k)/K + C̄ where σ̂²_seed > 0); se_seed² = σ̂²_seed/K;
 *    `seed_share` = se_seed² / se².
 * The interval is estimate ± t(df) · se. Welch–Satterthwaite: the only part of se² with few df
 * is the between-seed mean square sd²(d_k)/K (K − 1 df); the bootstrap parts (V̄, C̄, se_test²,
 * estimated from many test images) count as known, so df = (K − 1) · se⁴ / (sd²(d_k)/K)², floored
 * at K − 1 (it falls below only when C̄ < 0, where a two-moment match is unreliable). Where
 * σ̂²_seed is truncated at 0, the seed part drops out and df = Infinity (se = se_test), as
 * variance-component software does for a component on its boundary. The price is a jump in the
 * t quantile as σ̂²_seed reaches 0. The alternative tried, keeping (K − 1) · se⁴ / (sd²/K)² there
 * too, is continuous but over-covers: on simulations with the model of tests/eval_seeds.test.ts
 * (1,000 runs per setting, K = 2, 3, 5) it covered 0.978-0.984 with no seed effect and 0.968-0.973 with seed
 * and test parts alike, against 0.967-0.974 and 0.951-0.952 for the rule used. With a handful of
 * seeds the seed part is itself uncertain, and a t quantile with few df widens the interval
 * accordingly; tests/eval_seeds.test.ts measures the coverage.
 *
 * The two-level bootstrap (ci_hier) is reported for comparison: each replicate adds to the test
 * bootstrap of the seed mean a draw of K seeds with replacement from the d_k shrunk towards their
 * mean so that their spread is σ̂²_seed, not σ²_seed + V̄ − C̄ (Davison & Hinkley 1997, §3.8;
 * resampling the raw d_k, as before, counted the test noise twice here too). With K = 2-5 seeds
 * its seed part still shrinks by (K − 1)/K and has no t tail, so it covers far less than its
 * nominal level when seeds dominate. K = 1: no seed part can be estimated; the interval is the
 * test-only percentile CI and `n_seeds` says so.
 */
import { Rng } from "../util/rng.ts";
import { auc, EvalInputError } from "./auc.ts";
import {
  type AucTerm,
  type BootstrapOptions,
  quantileSorted,
  sharedResample,
  type SharedTerm,
  weightedAuc,
} from "./bootstrap.ts";
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
  /** sd of seed_diffs (0 for one seed): seeds and each seed's own test-image noise together. */
  seed_sd: number;
  /** √(se_seed² + se_test²). */
  se: number;
  /** √(σ̂²_seed / K): σ̂²_seed = max(0, seed_sd² − (test_var − test_cov)), the seeds' own part. */
  se_seed: number;
  /** sd of the shared test-image bootstrap of the seed mean (seeds fixed). */
  se_test: number;
  /** se_seed² / se²: the share of se² from pretraining seeds, net of test-image noise. */
  seed_share: number;
  /**
   * Satterthwaite degrees of freedom of se: ≥ K − 1; Infinity for one seed or where σ̂²_seed is 0
   * (se = se_test).
   */
  df: number;
  /** V̄: a seed's own test-image bootstrap variance of d_k, mean over seeds (se_test² for one). */
  test_var: number;
  /** C̄: the test-image bootstrap covariance of two seeds' d_k, mean over pairs (0 for one seed). */
  test_cov: number;
  /** Percentile CI of the test-image bootstrap with seeds fixed (what the CI was before seeds). */
  ci_test: [number, number];
  /**
   * Percentile CI of the two-level bootstrap (seeds with shrunken effects, and test images), for
   * comparison; no t tail.
   */
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

/** Terms of one seed: A with +w, B with −w, w averaging first within a draw id, then over draws. */
function seedTerms(s: SeedPairs): AucTerm[] {
  if (s.pairs.length === 0) throw new EvalInputError(`seed ${s.seed}: no draws`);
  const ids = s.pairs.map((d, k) => d.draw ?? `#${k}`);
  const per = new Map<number | string, number>();
  for (const id of ids) per.set(id, (per.get(id) ?? 0) + 1);
  const D = per.size;
  return s.pairs.flatMap((d, k) => {
    const w = 1 / (D * per.get(ids[k])!);
    const what = d.what ?? `seed ${s.seed} draw ${ids[k]}`;
    const img = d.ids === undefined ? {} : { ids: d.ids };
    return [
      { labels: d.labels, scores: d.scoresA, weight: w, what: `${what} (A)`, ...img },
      { labels: d.labels, scores: d.scoresB, weight: -w, what: `${what} (B)`, ...img },
    ];
  });
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
  // One resample of the test images shared by every term of every seed.
  const perSeed = seeds.map(seedTerms);
  const shared = sharedResample(perSeed.flat());
  const per: SharedTerm[][] = [];
  let at = 0;
  for (const ts of perSeed) {
    per.push(shared.terms.slice(at, at + ts.length));
    at += ts.length;
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

  const testReps = new Float64Array(replicates), seedReps = new Float64Array(replicates);
  const dk = new Float64Array(K);
  // Welford mean and sum of squares of each seed's replicate difference.
  const mk = new Float64Array(K), m2 = new Float64Array(K);
  let redrawn = 0;
  const maxRedraws = 4 * replicates + 100;
  for (let b = 0; b < replicates; b++) {
    for (;;) {
      shared.draw(rng);
      let ok = true;
      for (let k = 0; k < K && ok; k++) {
        let s = 0;
        for (const t of per[k]) {
          const a = weightedAuc(t, t.counts);
          if (Number.isNaN(a)) {
            ok = false;
            break;
          }
          s += t.weight * a;
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
    for (let k = 0; k < K; k++) {
      const delta = dk[k] - mk[k];
      mk[k] += delta / (b + 1);
      m2[k] += delta * (dk[k] - mk[k]);
    }
    // The seed level of the two-level bootstrap: K seeds drawn with replacement.
    let h = 0;
    for (let k = 0; k < K; k++) h += seedDiffs[rng.int(K)];
    seedReps[b] = h / K - estimate;
  }
  const alpha = 1 - level;
  const pct = (r: Float64Array): [number, number] => [
    quantileSorted(r, alpha / 2),
    quantileSorted(r, 1 - alpha / 2),
  ];
  const testSorted = testReps.slice().sort();
  const seTest = sd(testSorted);
  const seedSd = sd(seedDiffs);
  // V̄: a seed's own test-image variance of its difference (mean over seeds); C̄: the test-image
  // covariance of two seeds' differences. se_test² = V̄/K + (K − 1)C̄/K, so V̄ − C̄ =
  // K/(K − 1) · (V̄ − se_test²): the part of var(d_k) between seeds that test images alone cause.
  const testVar = K > 1 ? mean(m2) / (replicates - 1) : seTest ** 2;
  const testCov = K > 1 ? (K * seTest ** 2 - testVar) / (K - 1) : 0;
  const testWithin = K > 1 ? Math.max(0, (K / (K - 1)) * (testVar - seTest ** 2)) : 0;
  const seedVar = K > 1 ? Math.max(0, seedSd ** 2 - testWithin) : 0;
  const seSeed = Math.sqrt(seedVar / K);
  const se = Math.hypot(seSeed, seTest);
  // Satterthwaite: of se², only the between-seed mean square sd²(d_k)/K is uncertain (K − 1 df);
  // the bootstrap's test-image parts count as known. A seed variance estimated at 0 drops out
  // (df = Infinity), as a variance component on its boundary does; see the file header.
  const meanSquare = seedSd ** 2 / K;
  const df = seedVar > 0 ? Math.max(K - 1, ((K - 1) * se ** 4) / meanSquare ** 2) : Infinity;
  // Two-level bootstrap with shrunken seed effects (Davison & Hinkley 1997, §3.8): seed draws of
  // the d_k pulled towards their mean so that their spread is the seed variance net of test-image
  // noise, plus the same replicate's test-image deviation of the seed mean.
  const shrink = seedSd > 0 ? Math.sqrt(seedVar) / seedSd : 0;
  const hierReps = new Float64Array(replicates);
  for (let b = 0; b < replicates; b++) hierReps[b] = testReps[b] + shrink * seedReps[b];
  hierReps.sort();
  const ciTest = pct(testSorted);
  let ci: [number, number], p: number;
  if (K > 1 && se > 0) {
    const q = studentTQuantile(1 - alpha / 2, df);
    ci = [estimate - q * se, estimate + q * se];
    p = Math.min(1, 2 * (1 - studentTCdf(Math.abs(estimate) / se, df)));
  } else {
    ci = ciTest;
    let below = 0, above = 0;
    for (const r of testSorted) {
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
    test_var: testVar,
    test_cov: testCov,
    ci_test: ciTest,
    ci_hier: pct(hierReps),
    seeds_positive: seedDiffs.filter((x) => x > 0).length,
    redrawn,
  };
}
