/**
 * Which images the kNN pretraining monitor (train/monitor.ts) reads: a labelled reference set and
 * a validation set, each drawn by patient, stratified by the first task's class, seeded, and
 * patient-disjoint from each other. Datasets often list their images sorted by class, so a prefix
 * of the list (what the monitor once took) can hold one class only and give an AUC of 0.5.
 *
 * When no monitor can be built the caller gets the reason, to log and to write into the metrics.
 */
import { groupByPatient, type LabeledItem, splitByPatient } from "../data/fractions.ts";
import { Rng } from "../util/rng.ts";

/** Reference images at most (kNN over them is the monitor's cost). */
export const MONITOR_REFERENCE = 600;
/** Validation images at most. */
export const MONITOR_VALIDATION = 400;

export type MonitorDraw =
  | { ok: true; reference: number[]; validation: number[]; describe: string }
  | { ok: false; reason: string };

function classOf(r: LabeledItem, task: number): number {
  return r.mask[task] > 0 ? (r.labels[task] > 0 ? 1 : 0) : -1;
}

function counts(records: LabeledItem[], idx: number[], task: number): [number, number] {
  let neg = 0, pos = 0;
  for (const i of idx) {
    const c = classOf(records[i], task);
    if (c === 1) pos++;
    else if (c === 0) neg++;
  }
  return [neg, pos];
}

/**
 * About `size` labelled images of `pool` (those with a label for `task`), whole patients at a
 * time, with each class's share of the pool: patients holding a positive and the others are
 * shuffled separately (seeded) and taken in turn until each class reaches its quota. The whole
 * labelled pool when it is no larger than `size`. Sorted indices.
 */
export function stratifiedByPatient(
  records: LabeledItem[],
  pool: number[],
  size: number,
  seed: number,
  task = 0,
): number[] {
  const labelled = pool.filter((i) => classOf(records[i], task) >= 0);
  if (labelled.length <= size) return [...labelled].sort((a, b) => a - b);
  const groups = groupByPatient(records, labelled);
  const pos: string[] = [], neg: string[] = [];
  for (const [p, idx] of groups) {
    (idx.some((i) => classOf(records[i], task) === 1) ? pos : neg).push(p);
  }
  const rng = new Rng((seed ^ 0x6d6f6e69) >>> 0);
  rng.shuffle(pos);
  rng.shuffle(neg);
  const [, nPos] = counts(records, labelled, task);
  const quota = Math.round((size * nPos) / labelled.length);
  const out: number[] = [];
  for (
    const [patients, want] of [[pos, Math.max(1, quota)], [neg, Math.max(1, size - quota)]] as const
  ) {
    let got = 0;
    for (const p of patients) {
      if (got >= want) break;
      const idx = groups.get(p)!;
      out.push(...idx);
      got += idx.length;
    }
  }
  return out.sort((a, b) => a - b);
}

/** Why a set cannot rank, or null when it has both classes of `taskName`. */
function problem(
  records: LabeledItem[],
  idx: number[],
  what: string,
  taskName: string,
  task: number,
): string | null {
  const [neg, pos] = counts(records, idx, task);
  if (neg + pos === 0) return `the ${what} has no image labelled for "${taskName}"`;
  if (neg === 0 || pos === 0) {
    return `the ${what} has only ${pos ? "positive" : "negative"} labels for "${taskName}" ` +
      `(${neg + pos} images): an AUC needs both classes`;
  }
  return null;
}

/**
 * The monitor's two sets: the reference from `referencePool`, the validation from
 * `validationPool`; with no usable validation pool (absent, or one class), a patient-disjoint
 * share (15%) of the reference pool's patients serves instead, split by class.
 */
export function drawMonitorSets(
  records: LabeledItem[],
  referencePool: number[],
  validationPool: number[],
  o: { seed: number; taskName: string; task?: number; reference?: number; validation?: number },
): MonitorDraw {
  const task = o.task ?? 0;
  let refPool = referencePool, valPool = validationPool, carved = false;
  if (problem(records, valPool, "validation split", o.taskName, task) !== null) {
    const s = splitByPatient(records, {
      pool: referencePool,
      ratios: { train: 0.85, valid: 0.15, test: 0 },
      seed: o.seed,
      task,
    });
    refPool = s.train;
    valPool = s.valid;
    carved = true;
  }
  const reference = stratifiedByPatient(
    records,
    refPool,
    o.reference ?? MONITOR_REFERENCE,
    o.seed,
    task,
  );
  const validation = stratifiedByPatient(
    records,
    valPool,
    o.validation ?? MONITOR_VALIDATION,
    o.seed + 1,
    task,
  );
  const why = problem(records, reference, "monitor's reference set", o.taskName, task) ??
    problem(
      records,
      validation,
      carved
        ? "monitor's validation set (training patients held out: the validation split has " +
          "fewer than two classes)"
        : "monitor's validation set",
      o.taskName,
      task,
    );
  if (why) return { ok: false, reason: why };
  const [rn, rp] = counts(records, reference, task), [vn, vp] = counts(records, validation, task);
  return {
    ok: true,
    reference,
    validation,
    describe: `kNN monitor: reference ${rp}+/${rn}− images, validation ${vp}+/${vn}−` +
      (carved ? " (patients held out of the training split: no usable validation split)" : ""),
  };
}
