/**
 * Seeded nonparametric bootstrap of AUCs and of linear contrasts of AUCs (paired differences,
 * means over draws or tasks). Each replicate resamples test images with replacement, once for
 * all terms, which is what makes a difference "paired":
 *  - terms with image ids (AucTerm.ids): one resample over the union of their ids, each term's
 *    examples taking the multiplicity of their image. Terms on different subsets of one image set
 *    (e.g. tasks with their own label masks) stay coupled through their shared images, and a
 *    term's order does not matter;
 *  - terms without ids: index i is image i, and terms of the same length share one resample by
 *    position (terms of different lengths are resampled independently). Give ids whenever the
 *    terms do not all list one test set in one order.
 * Ids for some terms and not others is an error. A replicate in which some term lacks a class is
 * redrawn and counted.
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
  /**
   * Image ids, one per example (unique within the term): terms are resampled together by image,
   * see the file header. Without ids, examples pair by position among terms of the same length.
   */
  ids?: ArrayLike<string | number>;
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
  /**
   * Two-sided p = min(1, 2 * min(share of replicates <= null, share >= null)); resolution 2/B,
   * so p = 0 means p < 2/B (fmtP's `replicates` option prints it so).
   */
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

/**
 * AUC of the resample given by multiplicities: counts[t.order[k]] for the k-th example in score
 * order (t.order holds the term's own indices, or after sharedResample, slots of the shared
 * vector). NaN when a class is absent.
 */
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

/** A term of a shared resample: `order` maps to slots of `counts`, its resample's multiplicities. */
export interface SharedTerm extends PreparedTerm {
  counts: Int32Array;
}

/** Terms resampled together (see the file header): draw() fills every multiplicity vector. */
export interface SharedResample {
  terms: SharedTerm[];
  /** One multiplicity vector per group of coupled terms, in order of first appearance. */
  vectors: Int32Array[];
  /** Draws one replicate: each vector of length U gets U draws with replacement. */
  draw(rng: Rng): void;
  /** Sets every multiplicity to 1 (the full test set). */
  full(): void;
}

/**
 * Prepares terms for resampling together: with ids, one vector over the union of ids (slots in
 * order of first appearance, so a single test set in one order maps to itself); without ids,
 * one vector per term length, shared by position.
 */
export function sharedResample(terms: AucTerm[]): SharedResample {
  const withIds = terms.filter((t) => t.ids !== undefined).length;
  if (withIds > 0 && withIds < terms.length) {
    const a = terms.find((t) => t.ids !== undefined)!, b = terms.find((t) => t.ids === undefined)!;
    throw new EvalInputError(
      `bootstrap: ${a.what ?? "a term"} has image ids but ${b.what ?? "another"} has none; ` +
        `give ids for every term or for none`,
    );
  }
  const vectors = new Map<string, Int32Array>();
  let prepared: SharedTerm[];
  if (withIds === 0) {
    prepared = terms.map((t) => {
      const p = prepare(t);
      const key = `n${p.n}`;
      if (!vectors.has(key)) vectors.set(key, new Int32Array(p.n));
      return { ...p, counts: vectors.get(key)! };
    });
  } else {
    const union = new Map<string | number, number>();
    const mapped = terms.map((t) => {
      const p = prepare(t), ids = t.ids!, what = t.what ?? "predictions";
      if (ids.length !== p.n) {
        throw new EvalInputError(
          `${what}: ${ids.length} ids but ${p.n} labels; ids must be index-aligned with the labels`,
        );
      }
      const slot = new Int32Array(p.n);
      const seen = new Set<string | number>();
      for (let i = 0; i < p.n; i++) {
        const id = ids[i];
        if (seen.has(id)) throw new EvalInputError(`${what}: id "${id}" appears twice`);
        seen.add(id);
        let s = union.get(id);
        if (s === undefined) union.set(id, s = union.size);
        slot[i] = s;
      }
      return { ...p, order: Int32Array.from(p.order, (i) => slot[i]) };
    });
    const v = new Int32Array(union.size);
    vectors.set("ids", v);
    prepared = mapped.map((p) => ({ ...p, counts: v }));
  }
  const list = [...vectors.values()];
  return {
    terms: prepared,
    vectors: list,
    draw(rng: Rng) {
      for (const c of list) {
        const n = c.length;
        c.fill(0);
        for (let i = 0; i < n; i++) c[rng.int(n)]++;
      }
    },
    full() {
      for (const c of list) c.fill(1);
    },
  };
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
  const shared = sharedResample(terms);
  const statistic = (): number => {
    let s = 0;
    for (const t of shared.terms) {
      const a = weightedAuc(t, t.counts);
      if (Number.isNaN(a)) return NaN;
      s += t.weight * a;
    }
    return s;
  };
  shared.full();
  const estimate = statistic();

  const maxRedraws = 4 * replicates + 100;
  const reps = new Float64Array(replicates);
  let redrawn = 0;
  for (let b = 0; b < replicates; b++) {
    for (;;) {
      shared.draw(rng);
      const s = statistic();
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
    ...opts,
    nullValue: opts.nullValue ?? 0.5,
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
