/**
 * Label-fraction subsets and patient-disjoint splits. Everything is by patient (no patient on
 * two sides), seeded, and reproducible. Within one draw the subsets are nested: patients are
 * taken in one random order and a fraction is a prefix of it, so each smaller fraction lies
 * inside every larger one. The order starts with a patient holding a positive and one holding a
 * negative of the primary task, so every subset has both classes.
 */
import { Rng } from "../util/rng.ts";

/** The part of a record the samplers need (DataRecord and CachedRecord both fit). */
export interface LabeledItem {
  patient: string;
  labels: ArrayLike<number>;
  mask: ArrayLike<number>;
}

export interface FractionSubset {
  fraction: number;
  draw: number;
  /** Indices into the records, ascending. */
  indices: number[];
  patients: number;
  positives: number;
  negatives: number;
}

export interface FractionOptions {
  /** Default [0.001, 0.01, 0.1, 1]. */
  fractions?: number[];
  /** Draws per fraction (default 3). */
  draws?: number;
  seed?: number;
  /** Primary task index for class presence (default 0). */
  task?: number;
  /** Fraction 1 is the same set in every draw: return it once (default true). */
  fullOnce?: boolean;
}

export const DEFAULT_FRACTIONS = [0.001, 0.01, 0.1, 1];

function mix(seed: number, a: number, b = 0): number {
  let h = Math.imul((seed >>> 0) ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(a + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ Math.imul(b + 7, 0x27d4eb2f);
  return (h ^ (h >>> 13)) >>> 0;
}

/** Groups pool indices by patient, in first-appearance order. */
export function groupByPatient(records: LabeledItem[], pool: number[]): Map<string, number[]> {
  const g = new Map<string, number[]>();
  for (const i of pool) {
    const p = records[i].patient;
    const list = g.get(p);
    if (list) list.push(i);
    else g.set(p, [i]);
  }
  return g;
}

function classOf(r: LabeledItem, task: number): number {
  return r.mask[task] > 0 ? (r.labels[task] > 0 ? 1 : 0) : -1;
}

/**
 * Nested, patient-level subsets of `pool` (e.g. the training indices) for each fraction and
 * draw. A fraction f holds the first patients of the draw's order until it has ≥ round(f·N)
 * images (at least one image, and at least one positive and one negative).
 */
export function labelFractionSubsets(
  records: LabeledItem[],
  pool: number[],
  o: FractionOptions = {},
): FractionSubset[] {
  const fractions = o.fractions ?? DEFAULT_FRACTIONS, draws = o.draws ?? 3, task = o.task ?? 0;
  for (const f of fractions) {
    if (!(f > 0 && f <= 1)) throw new Error(`label fraction must be in (0, 1], got ${f}`);
  }
  if (!(draws >= 1)) throw new Error(`draws must be >= 1, got ${draws}`);
  const groups = groupByPatient(records, pool);
  const patients = [...groups.keys()];
  const has = (p: string, c: number) => groups.get(p)!.some((i) => classOf(records[i], task) === c);
  if (!patients.some((p) => has(p, 1)) || !patients.some((p) => has(p, 0))) {
    throw new Error(
      `label fractions: task ${task} needs at least one positive and one negative label in the ` +
        `pool of ${pool.length} images`,
    );
  }
  const out: FractionSubset[] = [];
  for (let d = 0; d < draws; d++) {
    const order = new Rng(mix(o.seed ?? 0, d)).shuffle([...patients]);
    // Bring the first patient with a positive and the first with a negative to the front.
    const firstPos = order.findIndex((p) => has(p, 1));
    const first = [order[firstPos]];
    if (!has(order[firstPos], 0)) first.push(order.find((p) => has(p, 0))!);
    const rest = order.filter((p) => !first.includes(p));
    const ordered = [...first, ...rest];
    for (const f of fractions) {
      if (f >= 1 && d > 0 && (o.fullOnce ?? true)) continue;
      const target = Math.max(1, Math.round(f * pool.length));
      const indices: number[] = [];
      let k = 0;
      while (k < ordered.length && (k < first.length || indices.length < target)) {
        indices.push(...groups.get(ordered[k])!);
        k++;
      }
      indices.sort((a, b) => a - b);
      let positives = 0, negatives = 0;
      for (const i of indices) {
        const c = classOf(records[i], task);
        if (c === 1) positives++;
        else if (c === 0) negatives++;
      }
      out.push({ fraction: f, draw: d, indices, patients: k, positives, negatives });
    }
  }
  return out;
}

export interface SplitRatios {
  train: number;
  valid: number;
  test: number;
}

export interface PatientSplit {
  train: number[];
  valid: number[];
  test: number[];
}

/**
 * Patient-disjoint train/valid/test split of `pool` (default: all records) by ratio, seeded.
 * Patients with a positive (primary task) and those without are split separately, so each
 * split gets both classes whenever there are enough patients.
 */
export function splitByPatient(
  records: LabeledItem[],
  o: { ratios?: SplitRatios; seed?: number; task?: number; pool?: number[] } = {},
): PatientSplit {
  const r = o.ratios ?? { train: 0.8, valid: 0.1, test: 0.1 };
  const sum = r.train + r.valid + r.test;
  if (!(sum > 0) || r.train < 0 || r.valid < 0 || r.test < 0) {
    throw new Error(`split ratios must be >= 0 with a positive sum, got ${JSON.stringify(r)}`);
  }
  const pool = o.pool ?? records.map((_, i) => i);
  const groups = groupByPatient(records, pool);
  const task = o.task ?? 0;
  const pos: string[] = [], neg: string[] = [];
  for (const [p, idx] of groups) {
    (idx.some((i) => classOf(records[i], task) === 1) ? pos : neg).push(p);
  }
  const rng = new Rng(mix(o.seed ?? 0, 0x5eed));
  const out: PatientSplit = { train: [], valid: [], test: [] };
  for (const list of [pos, neg]) {
    rng.shuffle(list);
    const n = list.length;
    let nValid = Math.round((r.valid / sum) * n), nTest = Math.round((r.test / sum) * n);
    // Every requested split gets a patient of this class when there are enough of them.
    if (r.valid > 0 && nValid === 0 && n >= 3) nValid = 1;
    if (r.test > 0 && nTest === 0 && n >= 3) nTest = 1;
    if (nValid + nTest > n) nTest = Math.max(0, n - nValid);
    list.forEach((p, k) => {
      const part = k < nValid ? out.valid : k < nValid + nTest ? out.test : out.train;
      part.push(...groups.get(p)!);
    });
  }
  for (const k of ["train", "valid", "test"] as const) out[k].sort((a, b) => a - b);
  return out;
}

/** Patients present in both index sets (empty when disjoint). */
export function sharedPatients(records: LabeledItem[], a: number[], b: number[]): string[] {
  const pa = new Set(a.map((i) => records[i].patient));
  return [...new Set(b.map((i) => records[i].patient))].filter((p) => pa.has(p));
}
