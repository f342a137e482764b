/**
 * Seeded nonparametric bootstrap of AUCs and of linear contrasts of AUCs (paired differences,
 * means over draws or tasks). Each replicate resamples test-set indices with replacement; terms
 * with the same test-set size share the resampled indices, which is what makes a difference
 * "paired". A replicate in which some term lacks a class is redrawn and counted.
 *
 * Speed: each term is sorted once; a replicate only draws per-index multiplicities and then
 * computes every AUC in one O(n) pass over the presorted tie groups (no re-sorting).
 */
import { Rng } from "../util/rng.ts";
import { argsortAscending, checkPredictions, EvalInputError } from "./auc.ts";

/** One AUC in a contrast sum_k weight_k * AUC_k. */
export interface AucTerm {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
  weight: number;
  /** Names the data in error messages. */
  what?: string;
}

/** How a bootstrap resamples and what it reports. */
export interface BootstrapOptions {
  /** Number of accepted replicates (default 1000). */
  replicates?: number;
  /** Seed of the Rng used when `rng` is not given (default 0). */
  seed?: number;
  /** Generator to draw from (advanced by the call); overrides `seed`. */
  rng?: Rng;
  /** Confidence level of the percentile interval (default 0.95). */
  level?: number;
  /** Value the two-sided bootstrap p-value tests against (default 0; 0.5 for a single AUC). */
  nullValue?: number;
}

/** A bootstrap estimate with its percentile interval, standard error and p-value. */
export interface BootstrapResult {
  /** The statistic on the full test set. */
  estimate: number;
  /** Percentile interval of the replicates (linear interpolation between order statistics). */
  ci: [number, number];
  /** Standard deviation of the replicates. */
  se: number;
  /** Two-sided p = min(1, 2 * min(share of replicates <= null, share >= null)); resolution 1/B. */
  p: number;
  /** The accepted replicate values, sorted ascending. */
  replicates: Float64Array;
  /** How many resamples were discarded and redrawn because some term lacked a class. */
  redrawn: number;
  /** The confidence level of `ci`. */
  level: number;
}

/** A term sorted once for fast resampled AUCs (also used by eval/seeds.ts). */
export interface PreparedTerm {
  n: number;
  weight: number;
  /** Test-set indices in ascending score order. */
  order: Int32Array;
  /** 1 where order[k] is a positive. */
  positive: Uint8Array;
  /** Exclusive end position (in `order`) of each tie group. */
  groupEnd: Int32Array;
}

export function prepare(t: AucTerm): PreparedTerm {
  checkPredictions(t.labels, t.scores, t.what);
  const order = argsortAscending(t.scores);
  const positive = Uint8Array.from(order, (i) => t.labels[i]);
  const ends: number[] = [];
  for (let k = 1; k <= order.length; k++) {
    if (k === order.length || t.scores[order[k]] !== t.scores[order[k - 1]]) ends.push(k);
  }
  return { n: order.length, weight: t.weight, order, positive, groupEnd: Int32Array.from(ends) };
}

/** AUC of the resample given by per-index multiplicities; NaN when a class is absent. */
export function weightedAuc(t: PreparedTerm, counts: Int32Array): number {
  // Twice the Mann–Whitney count, kept integral: a positive tied with q negatives scores q/2.
  let twiceU = 0, negBelow = 0, pos = 0;
  let start = 0;
  for (let g = 0; g < t.groupEnd.length; g++) {
    const end = t.groupEnd[g];
    let p = 0, q = 0;
    for (let k = start; k < end; k++) {
      const c = counts[t.order[k]];
      if (t.positive[k]) p += c;
      else q += c;
    }
    twiceU += p * (2 * negBelow + q);
    negBelow += q;
    pos += p;
    start = end;
  }
  return pos === 0 || negBelow === 0 ? NaN : twiceU / (2 * pos * negBelow);
}

/** Type-7 (linear interpolation) quantile of an ascending array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Bootstrap percentile CI and p-value of sum_k weight_k * AUC_k. */
export function bootstrapContrast(terms: AucTerm[], opts: BootstrapOptions = {}): BootstrapResult {
  const { replicates = 1000, seed = 0, level = 0.95, nullValue = 0 } = opts;
  if (terms.length === 0) throw new EvalInputError("bootstrap: no AUC terms given");
  if (!(Number.isInteger(replicates) && replicates >= 1)) {
    throw new RangeError(`bootstrap: replicates must be a positive integer, got ${replicates}`);
  }
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`bootstrap: level must be in (0, 1), got ${level}`);
  }
  const rng = opts.rng ?? new Rng(seed);
  const prepared = terms.map(prepare);
  const counts = new Map<number, Int32Array>(); // one multiplicity vector per test-set size
  for (const t of prepared) if (!counts.has(t.n)) counts.set(t.n, new Int32Array(t.n));
  const full = new Map<number, Int32Array>();
  for (const n of counts.keys()) full.set(n, new Int32Array(n).fill(1));
  const statistic = (c: Map<number, Int32Array>): number => {
    let s = 0;
    for (const t of prepared) {
      const a = weightedAuc(t, c.get(t.n)!);
      if (Number.isNaN(a)) return NaN;
      s += t.weight * a;
    }
    return s;
  };
  const estimate = statistic(full);

  const maxRedraws = 4 * replicates + 100;
  const reps = new Float64Array(replicates);
  let redrawn = 0;
  for (let b = 0; b < replicates; b++) {
    for (;;) {
      for (const [n, c] of counts) {
        c.fill(0);
        for (let i = 0; i < n; i++) c[rng.int(n)]++;
      }
      const s = statistic(counts);
      if (!Number.isNaN(s)) {
        reps[b] = s;
        break;
      }
      if (++redrawn > maxRedraws) {
        throw new EvalInputError(
          `bootstrap: ${redrawn} resamples lacked a class before ${b} of ${replicates} were ` +
            `accepted; the test set has too few positives or negatives for a bootstrap CI ` +
            `(use a larger test split, or the DeLong CI)`,
        );
      }
    }
  }
  reps.sort();
  let mean = 0;
  for (const r of reps) mean += r;
  mean /= replicates;
  let ss = 0, below = 0, above = 0;
  for (const r of reps) {
    ss += (r - mean) ** 2;
    if (r <= nullValue) below++;
    if (r >= nullValue) above++;
  }
  const alpha = 1 - level;
  return {
    estimate,
    ci: [quantileSorted(reps, alpha / 2), quantileSorted(reps, 1 - alpha / 2)],
    se: replicates > 1 ? Math.sqrt(ss / (replicates - 1)) : 0,
    p: Math.min(1, (2 * Math.min(below, above)) / replicates),
    replicates: reps,
    redrawn,
    level,
  };
}

/** Bootstrap percentile CI of one model's AUC (p tests AUC = 0.5). */
export function bootstrapAuc(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  opts: BootstrapOptions & { what?: string } = {},
): BootstrapResult {
  return bootstrapContrast([{ labels, scores, weight: 1, what: opts.what }], {
    nullValue: 0.5,
    ...opts,
  });
}

/** Paired bootstrap of AUC_A − AUC_B: both models are scored on the same resampled indices. */
export function pairedBootstrap(
  labels: ArrayLike<number>,
  scoresA: ArrayLike<number>,
  scoresB: ArrayLike<number>,
  opts: BootstrapOptions & { what?: string } = {},
): BootstrapResult {
  const what = opts.what ?? "predictions";
  return bootstrapContrast([
    { labels, scores: scoresA, weight: 1, what: `${what} (model A)` },
    { labels, scores: scoresB, weight: -1, what: `${what} (model B)` },
  ], opts);
}
