/**
 * The experiment's results schema and its computation from raw per-cell test predictions.
 * A cell is one fine-tuned model: (init, protocol, label fraction, draw, backbone) on one task.
 * From the cells we compute: per-cell AUC + bootstrap CI; per (init, protocol, fraction,
 * backbone, task) the mean AUC over draws + CI; and paired differences init − baseline averaged
 * over draws. With several tasks, task "mean" (mean AUC over tasks) is added to both.
 * With several pretraining seeds (cells carry pretrain_seed), each seed's MoCo cells pair with the
 * same seed's baseline cells, and a difference's CI covers both the seeds and the test images
 * (eval/seeds.ts).
 */
import { Rng } from "../util/rng.ts";
import { auc, checkPredictions, EvalInputError } from "./auc.ts";
import { bootstrapContrast } from "./bootstrap.ts";
import { delong } from "./delong.ts";
import { type DrawPair, pairedDifference, type PairedDifferenceStats } from "./paired.ts";
import { seedDifference, type SeedDifferenceStats } from "./seeds.ts";

/** The initialisations the experiment compares. */
export const INITS = ["random", "imagenet", "moco"] as const;
/** An initialisation of the backbone: random, ImageNet weights, or a MoCo pretraining. */
export type Init = typeof INITS[number];
export const PROTOCOLS = ["linear", "e2e"] as const;
export type Protocol = typeof PROTOCOLS[number];
/** Task name of the rows that average AUC over all tasks. */
export const MEAN_TASK = "mean";
export const RESULTS_SCHEMA = "moco-cxr/results@1";

/** Identifies one cell of the experiment grid. */
export interface CellKey {
  init: Init;
  protocol: Protocol;
  /** Label fraction in (0, 1], e.g. 0.001 for 0.1%. */
  fraction: number;
  /** Index of the random labeled subset drawn at this fraction (0, 1, ...). */
  draw: number;
  backbone: string;
  task: string;
  /**
   * Which pretraining seed the cell belongs to (0, 1, ...; absent = 0): its MoCo backbone, and for
   * a baseline the seed of its random initialisation. Cells pair only within a seed.
   */
  pretrain_seed?: number;
}

/**
 * Raw test predictions of one cell. With `ids`, paired cells are aligned by image id and the
 * bootstrap resamples images by id; without, cells of one backbone must list the test set in one
 * order (pairing is by index).
 */
export interface CellPredictions extends CellKey {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
  /** Image ids, index-aligned with labels and scores (unique). */
  ids?: ArrayLike<string>;
  /** Where these predictions were read from (relative to the run folder). */
  scores_file?: string;
  /** Training metrics (JSON lines) of this cell, relative to the run folder. */
  metrics_file?: string;
  /** Linear protocol: the inverse L2 penalty C the probe chose on validation. */
  probe_C?: number;
}

export interface CellResult extends CellKey {
  auc: number;
  /** Bootstrap percentile CI. */
  ci: [number, number];
  n_test: number;
  n_pos: number;
  n_neg: number;
  /** DeLong standard error (null with fewer than 2 examples of a class). */
  se_delong: number | null;
  scores_file?: string;
  metrics_file?: string;
  /** Linear protocol: the inverse L2 penalty C the probe chose on validation. */
  probe_C?: number;
}

/** Mean over draws of one (init, protocol, fraction, backbone, task). */
export interface SummaryRow {
  init: Init;
  protocol: Protocol;
  fraction: number;
  backbone: string;
  task: string;
  n_draws: number;
  /** Mean AUC over draws. */
  auc: number;
  /** Bootstrap CI of the mean AUC (test-set resampling shared by all draws). */
  ci: [number, number];
  /** Standard deviation of the AUC over draws (0 for one draw). */
  auc_sd: number;
  /** Pretraining seeds averaged over, and the sd of the per-seed mean AUC (0 for one seed). */
  n_seeds: number;
  seed_sd: number;
}

/** init − baseline at one (protocol, fraction, backbone, task), averaged over matching draws. */
export interface PairedDifference extends PairedDifferenceStats {
  init: Init;
  baseline: Init;
  protocol: Protocol;
  fraction: number;
  backbone: string;
  task: string;
  /** Over several pretraining seeds: the two-level statistics (ci and p are then theirs). */
  seeds?: Omit<SeedDifferenceStats, "diff" | "ci" | "p" | "redrawn">;
}

export interface ResultsSettings {
  replicates: number;
  seed: number;
  level: number;
  ci_method: "bootstrap-percentile";
  comparisons: [Init, Init][];
}

export interface Results {
  schema: typeof RESULTS_SCHEMA;
  settings: ResultsSettings;
  cells: CellResult[];
  summary: SummaryRow[];
  differences: PairedDifference[];
  /** Things the reader should know (unmatched draws, skipped comparisons). */
  warnings: string[];
}

export interface ResultsOptions {
  replicates?: number;
  seed?: number;
  level?: number;
  /** [init, baseline] pairs; those whose inits are both present are computed. */
  comparisons?: [Init, Init][];
}

export const DEFAULT_COMPARISONS: [Init, Init][] = [["moco", "imagenet"], ["moco", "random"]];

/** Human name of a cell, used in error messages and file names. */
export function cellName(k: CellKey): string {
  return `${k.backbone}/${k.init}/${k.protocol}/f=${k.fraction}/draw${k.draw}/${k.task}` +
    (k.pretrain_seed ? `/seed${k.pretrain_seed}` : "");
}

/** "0.1%", "1%", "12.5%", "100%". */
export function formatFraction(f: number): string {
  return `${+(f * 100).toPrecision(3)}%`;
}

/** Throws an error naming `what` when a cell key is malformed. */
export function checkCellKey(k: CellKey, what = cellName(k)): void {
  if (!INITS.includes(k.init)) {
    throw new EvalInputError(`${what}: init "${k.init}" is not one of ${INITS.join(", ")}`);
  }
  if (!PROTOCOLS.includes(k.protocol)) {
    throw new EvalInputError(
      `${what}: protocol "${k.protocol}" is not one of ${PROTOCOLS.join(", ")}`,
    );
  }
  if (!(typeof k.fraction === "number" && k.fraction > 0 && k.fraction <= 1)) {
    throw new EvalInputError(`${what}: fraction ${k.fraction} must be a number in (0, 1]`);
  }
  if (!(Number.isInteger(k.draw) && k.draw >= 0)) {
    throw new EvalInputError(`${what}: draw ${k.draw} must be an integer >= 0`);
  }
  if (
    k.pretrain_seed !== undefined && !(Number.isInteger(k.pretrain_seed) && k.pretrain_seed >= 0)
  ) {
    throw new EvalInputError(`${what}: pretrain_seed ${k.pretrain_seed} must be an integer >= 0`);
  }
  for (const f of ["backbone", "task"] as const) {
    if (typeof k[f] !== "string" || k[f] === "") {
      throw new EvalInputError(`${what}: ${f} must be a non-empty string`);
    }
  }
  if (k.task === MEAN_TASK) {
    throw new EvalInputError(
      `${what}: task name "${MEAN_TASK}" is reserved for the mean over tasks`,
    );
  }
}

/** Deterministic per-key generator, so results do not depend on the order cells arrive in. */
function keyedRng(seed: number, key: string): Rng {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return new Rng((seed ^ h) >>> 0);
}

function sameArray<T>(a: ArrayLike<T>, b: ArrayLike<T>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = m.get(k);
    if (list) list.push(t);
    else m.set(k, [t]);
  }
  return m;
}

const initRank = (i: Init) => INITS.indexOf(i);
const protocolRank = (p: Protocol) => PROTOCOLS.indexOf(p);

/** Computes every AUC, CI and paired difference of a run from its cells' predictions. */
export function computeResults(cells: CellPredictions[], opts: ResultsOptions = {}): Results {
  const settings: ResultsSettings = {
    replicates: opts.replicates ?? 1000,
    seed: opts.seed ?? 0,
    level: opts.level ?? 0.95,
    ci_method: "bootstrap-percentile",
    comparisons: opts.comparisons ?? DEFAULT_COMPARISONS,
  };
  if (cells.length === 0) {
    throw new EvalInputError(
      "no cells to evaluate: the run has no predictions yet (run the experiment first)",
    );
  }
  if (!(Number.isInteger(settings.replicates) && settings.replicates >= 2)) {
    throw new RangeError(
      `replicates must be an integer >= 2 (bootstrap resamples), got ${settings.replicates}`,
    );
  }
  const boot = { replicates: settings.replicates, level: settings.level };
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const c of cells) {
    checkCellKey(c);
    const name = cellName(c);
    if (seen.has(name)) throw new EvalInputError(`${name}: the same cell appears twice`);
    seen.add(name);
    if (c.ids !== undefined) checkIds(c.ids, c.labels.length, source(c));
  }
  // Image ids are used (pairing and resampling by image) only where every cell of a backbone has
  // them: a term with ids and one without could not share a resample.
  const backbonesWithIds = new Set<string>();
  for (const [backbone, list] of groupBy(cells, (c) => c.backbone)) {
    const n = list.filter((c) => c.ids !== undefined).length;
    if (n === list.length) backbonesWithIds.add(backbone);
    else if (n > 0) {
      warnings.push(
        `${backbone}: ${list.length - n} of ${list.length} predictions files have no ids; ` +
          `cells are paired and resampled by position (all files must list the test images in ` +
          `one order)`,
      );
    }
  }
  const idsOf = (c: CellPredictions) => backbonesWithIds.has(c.backbone) ? c.ids : undefined;
  const sorted = [...cells].sort((a, b) =>
    a.backbone.localeCompare(b.backbone) || a.task.localeCompare(b.task) ||
    protocolRank(a.protocol) - protocolRank(b.protocol) || initRank(a.init) - initRank(b.init) ||
    a.fraction - b.fraction || a.draw - b.draw || seedOf(a) - seedOf(b)
  );

  const cellResults: CellResult[] = sorted.map((c) => {
    const name = cellName(c);
    const { nPos, nNeg } = checkPredictions(c.labels, c.scores, name);
    const b = bootstrapContrast([{ labels: c.labels, scores: c.scores, weight: 1, what: name }], {
      ...boot,
      rng: keyedRng(settings.seed, `cell:${name}`),
      nullValue: 0.5,
    });
    const r: CellResult = {
      init: c.init,
      protocol: c.protocol,
      fraction: c.fraction,
      draw: c.draw,
      backbone: c.backbone,
      task: c.task,
      auc: b.estimate,
      ci: b.ci,
      n_test: c.labels.length,
      n_pos: nPos,
      n_neg: nNeg,
      se_delong: nPos >= 2 && nNeg >= 2 ? delong(c.labels, c.scores, { what: name }).se : null,
    };
    if (c.scores_file !== undefined) r.scores_file = c.scores_file;
    if (c.metrics_file !== undefined) r.metrics_file = c.metrics_file;
    if (c.probe_C !== undefined) r.probe_C = c.probe_C;
    if (c.pretrain_seed !== undefined) r.pretrain_seed = c.pretrain_seed;
    return r;
  });

  // Groups over draws (and, for the "mean" task, over tasks too).
  interface Group {
    backbone: string;
    task: string;
    protocol: Protocol;
    init: Init;
    fraction: number;
    cells: CellPredictions[];
  }
  const groupKey = (g: Omit<Group, "cells">) =>
    JSON.stringify([g.backbone, g.task, g.protocol, g.init, g.fraction]);
  const groups = new Map<string, Group>();
  const addTo = (c: CellPredictions, task: string) => {
    const g = {
      backbone: c.backbone,
      task,
      protocol: c.protocol,
      init: c.init,
      fraction: c.fraction,
    };
    const k = groupKey(g);
    if (!groups.has(k)) groups.set(k, { ...g, cells: [] });
    groups.get(k)!.cells.push(c);
  };
  const tasks = new Set(sorted.map((c) => c.task));
  for (const c of sorted) {
    addTo(c, c.task);
    if (tasks.size > 1) addTo(c, MEAN_TASK);
  }

  const summary: SummaryRow[] = [];
  for (const [key, { task, cells: list }] of groups) {
    const draws = groupBy(list, (c) => String(c.draw));
    const D = draws.size;
    const terms = list.map((c) => ({
      labels: c.labels,
      scores: c.scores,
      weight: 1 / (D * draws.get(String(c.draw))!.length),
      what: cellName(c),
      ...(idsOf(c) ? { ids: idsOf(c) } : {}),
    }));
    const b = bootstrapContrast(terms, { ...boot, rng: keyedRng(settings.seed, `summary:${key}`) });
    const perDraw = [...draws.values()].map((cs) =>
      cs.reduce((s, c) => s + auc(c.labels, c.scores), 0) / cs.length
    );
    const mean = perDraw.reduce((s, x) => s + x, 0) / D;
    const sd = D > 1 ? Math.sqrt(perDraw.reduce((s, x) => s + (x - mean) ** 2, 0) / (D - 1)) : 0;
    const bySeed = [...groupBy(list, (c) => String(seedOf(c))).values()].map((cs) =>
      cs.reduce((s, c) => s + auc(c.labels, c.scores), 0) / cs.length
    );
    const K = bySeed.length, seedMean = bySeed.reduce((s, x) => s + x, 0) / K;
    const seedSd = K > 1
      ? Math.sqrt(bySeed.reduce((s, x) => s + (x - seedMean) ** 2, 0) / (K - 1))
      : 0;
    const c0 = list[0];
    summary.push({
      init: c0.init,
      protocol: c0.protocol,
      fraction: c0.fraction,
      backbone: c0.backbone,
      task,
      n_draws: D,
      auc: b.estimate,
      ci: b.ci,
      auc_sd: sd,
      n_seeds: K,
      seed_sd: seedSd,
    });
  }
  summary.sort((a, b) =>
    a.backbone.localeCompare(b.backbone) || taskOrder(a.task, b.task) ||
    protocolRank(a.protocol) - protocolRank(b.protocol) || initRank(a.init) - initRank(b.init) ||
    a.fraction - b.fraction
  );

  const differences: PairedDifference[] = [];
  const inits = new Set(sorted.map((c) => c.init));
  for (const [init, baseline] of settings.comparisons) {
    if (!inits.has(init) || !inits.has(baseline) || init === baseline) continue;
    for (const [key, g] of groups) {
      if (g.init !== init) continue;
      const { backbone, task, protocol, fraction } = g;
      const listA = g.cells;
      const listB = groups.get(groupKey({ ...g, init: baseline }))?.cells;
      const where = `${backbone}/${protocol}/f=${fraction}/${task}`;
      if (!listB) {
        warnings.push(`${init} − ${baseline} at ${where}: no ${baseline} cells; not compared`);
        continue;
      }
      const byKeyB = new Map(listB.map((c) => [`${c.draw}|${c.task}|${seedOf(c)}`, c]));
      const pairs: (DrawPair & { seed: number })[] = [];
      const unmatched: string[] = [];
      for (const a of listA) {
        const b = byKeyB.get(`${a.draw}|${a.task}|${seedOf(a)}`);
        if (!b) {
          unmatched.push(`draw ${a.draw} (${a.task}${seedOf(a) ? `, seed ${seedOf(a)}` : ""})`);
          continue;
        }
        const ab = pairCells(a, b, idsOf(a), idsOf(b));
        pairs.push({
          labels: a.labels,
          scoresA: a.scores,
          scoresB: ab,
          draw: a.draw,
          what: cellName(a),
          seed: seedOf(a),
          ...(idsOf(a) ? { ids: idsOf(a) } : {}),
        });
      }
      if (unmatched.length > 0) {
        warnings.push(
          `${init} − ${baseline} at ${where}: no ${baseline} match for ${unmatched.join(", ")}`,
        );
      }
      if (pairs.length === 0) continue;
      const stats = pairedDifference(pairs, {
        ...boot,
        rng: keyedRng(settings.seed, `diff:${init}-${baseline}:${key}`),
      });
      const d: PairedDifference = { init, baseline, protocol, fraction, backbone, task, ...stats };
      const seeds = [...groupBy(pairs, (p) => String(p.seed)).values()];
      if (seeds.length > 1) {
        // Several pretraining seeds: the CI and p cover the seeds too; the test-only ones stay
        // in seeds.ci_test (and ci_delong).
        const s = seedDifference(
          seeds.map((ps) => ({ seed: ps[0].seed, pairs: ps })).sort((x, y) => x.seed - y.seed),
          { ...boot, rng: keyedRng(settings.seed, `seeds:${init}-${baseline}:${key}`) },
        );
        const { diff, ci, p, redrawn: _r, ...rest } = s;
        Object.assign(d, { diff, ci, p, p_method: "seed-t", seeds: rest });
      }
      differences.push(d);
    }
  }
  differences.sort((a, b) =>
    a.backbone.localeCompare(b.backbone) || taskOrder(a.task, b.task) ||
    protocolRank(a.protocol) - protocolRank(b.protocol) || a.fraction - b.fraction ||
    initRank(a.baseline) - initRank(b.baseline)
  );
  return { schema: RESULTS_SCHEMA, settings, cells: cellResults, summary, differences, warnings };
}

/** Throws unless `ids` are n distinct strings. */
export function checkIds(ids: ArrayLike<unknown>, n: number, what: string): void {
  if (ids.length !== n) {
    throw new EvalInputError(`${what}: ${ids.length} ids but ${n} labels; give one id per label`);
  }
  const seen = new Set<unknown>();
  for (let i = 0; i < ids.length; i++) {
    if (typeof ids[i] !== "string") {
      throw new EvalInputError(`${what}: ids[${i}] is ${JSON.stringify(ids[i])}, not a string`);
    }
    if (seen.has(ids[i])) {
      throw new EvalInputError(`${what}: id "${ids[i]}" appears twice; ids name distinct images`);
    }
    seen.add(ids[i]);
  }
}

/** Where a cell's predictions came from, for error messages: its file, else its name. */
function source(c: CellPredictions): string {
  return c.scores_file ?? cellName(c);
}

/**
 * b's scores in a's image order, for a paired comparison. With ids on both, b is aligned by id (it
 * must hold the same images with the same labels); without, the labels must match index by index.
 */
function pairCells(
  a: CellPredictions,
  b: CellPredictions,
  idsA: ArrayLike<string> | undefined,
  idsB: ArrayLike<string> | undefined,
): ArrayLike<number> {
  const what = `${source(a)} and ${source(b)}`;
  if (idsA === undefined || idsB === undefined || sameArray(idsA, idsB)) {
    if (!sameArray(a.labels, b.labels)) {
      const i = Array.from(a.labels).findIndex((y, i) => y !== b.labels[i]);
      throw new EvalInputError(
        `${what} have different test labels (` +
          (a.labels.length !== b.labels.length
            ? `${a.labels.length} vs ${b.labels.length} images`
            : `first at index ${i}${idsA ? `, id "${idsA[i]}"` : ""}`) +
          `); a paired comparison needs both models scored on the same test set in the same order`,
      );
    }
    return b.scores;
  }
  const index = new Map<string, number>();
  for (let j = 0; j < idsB.length; j++) index.set(idsB[j], j);
  const missing = Array.from(idsA).find((id) => !index.has(id));
  if (idsA.length !== idsB.length || missing !== undefined) {
    const inA = new Set(Array.from(idsA));
    const extra = Array.from(idsB).find((id) => !inA.has(id));
    throw new EvalInputError(
      `${what} list different test images (${idsA.length} vs ${idsB.length} ids; ` +
        (missing !== undefined
          ? `"${missing}" is only in the first`
          : `"${extra}" is only in the second`) +
        `); a paired comparison needs both models scored on the same test images`,
    );
  }
  const scores = new Float64Array(idsA.length);
  for (let i = 0; i < idsA.length; i++) {
    const j = index.get(idsA[i])!;
    if (a.labels[i] !== b.labels[j]) {
      throw new EvalInputError(
        `${what} disagree on the label of image "${idsA[i]}" (${a.labels[i]} vs ` +
          `${b.labels[j]}); a paired comparison needs both models scored on one labelled test set`,
      );
    }
    scores[i] = b.scores[j];
  }
  return scores;
}

/** The cell's pretraining seed (absent: 0). */
function seedOf(k: CellKey): number {
  return k.pretrain_seed ?? 0;
}

/** Tasks alphabetically, with the "mean" rows last. */
function taskOrder(a: string, b: string): number {
  return Number(a === MEAN_TASK) - Number(b === MEAN_TASK) || a.localeCompare(b);
}
