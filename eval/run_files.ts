/**
 * The files of a run folder that evaluation reads, and writers for the ones the experiment
 * runner produces. Layout (paths relative to the run folder, all optional except predictions/):
 *
 *   predictions/<cell>.json  one fine-tuned model's test predictions (PredictionsFile below)
 *   metrics/<name>.jsonl     training metrics, one JSON object per line:
 *                            {"step": 10, "epoch": 0, "loss": 0.69, "acc"?, "lr"?, "val_auc"?};
 *                            metrics/pretrain*.jsonl are shown as MoCo pretraining curves
 *   gradcam/<name>.json      one Grad-CAM example (GradCamFile below)
 *   run.json                 run metadata shown verbatim in the report: any JSON object, by
 *                            convention {config, versions, adapter, seeds, ...}
 */
import { join } from "node:path";
import { EvalInputError } from "./auc.ts";
import { readTextOrNull, writeFileAtomic } from "../util/fs.ts";
import { type CellKey, type CellPredictions, checkCellKey, checkIds } from "./results.ts";

export const PREDICTIONS_FORMAT = "moco-cxr/predictions@1";

/**
 * predictions/<cell>.json: the cell key, index-aligned `labels` (0/1) and `scores` (any real:
 * logits or probabilities), optional `ids` (image names, same order, distinct) and optional
 * `metrics_file` (relative to the run folder). With ids (the experiment runner writes them),
 * paired cells are aligned by id (they must hold the same images with the same labels) and the
 * bootstrap resamples images by id, so tasks with different label masks stay coupled. Without
 * ids, all cells of one backbone must list the test set in the same order.
 */
export interface PredictionsFile extends CellKey {
  format: typeof PREDICTIONS_FORMAT;
  labels: number[];
  scores: number[];
  ids?: string[];
  metrics_file?: string;
  /** Linear protocol: the inverse L2 penalty (scikit-learn's C) the probe chose on validation. */
  probe_C?: number;
}

/** File name of a cell's predictions: backbone_init_protocol_f<fraction>_d<draw>_<task>.json. */
export function predictionsFileName(k: CellKey): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, "-");
  // Pretraining seed 0 keeps the name of runs made before seeds (so they resume).
  return `${safe(k.backbone)}_${k.init}_${k.protocol}_f${k.fraction}_d${k.draw}_${safe(k.task)}${
    k.pretrain_seed ? `_s${k.pretrain_seed}` : ""
  }.json`;
}

/** Writes predictions/<cell>.json into a run folder (creating predictions/); returns the path. */
export async function writePredictionsFile(
  runDir: string,
  cell: CellKey & {
    labels: ArrayLike<number>;
    scores: ArrayLike<number>;
    ids?: ArrayLike<string>;
    metrics_file?: string;
    probe_C?: number;
  },
): Promise<string> {
  checkCellKey(cell);
  if (
    cell.labels.length !== cell.scores.length ||
    (cell.ids && cell.ids.length !== cell.labels.length)
  ) {
    throw new EvalInputError(
      `${predictionsFileName(cell)}: labels, scores and ids differ in length`,
    );
  }
  const file: PredictionsFile = {
    format: PREDICTIONS_FORMAT,
    init: cell.init,
    protocol: cell.protocol,
    fraction: cell.fraction,
    draw: cell.draw,
    backbone: cell.backbone,
    task: cell.task,
    labels: Array.from(cell.labels),
    scores: Array.from(cell.scores),
  };
  if (cell.ids) file.ids = Array.from(cell.ids);
  if (cell.metrics_file) file.metrics_file = cell.metrics_file;
  if (cell.probe_C !== undefined) file.probe_C = cell.probe_C;
  if (cell.pretrain_seed !== undefined) file.pretrain_seed = cell.pretrain_seed;
  await Deno.mkdir(join(runDir, "predictions"), { recursive: true });
  const path = join(runDir, "predictions", predictionsFileName(cell));
  await writeFileAtomic(path, JSON.stringify(file) + "\n");
  return path;
}

/** Float64 so that scores written in double precision keep their order (no new ties). */
function numberArray(v: unknown, what: string): Float64Array {
  if (!Array.isArray(v)) throw new EvalInputError(`${what} must be an array of numbers`);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== "number") {
      throw new EvalInputError(
        `${what}[${i}] is ${JSON.stringify(v[i])}, not a number` +
          (v[i] === null ? " (NaN/Infinity are written as null by JSON.stringify)" : ""),
      );
    }
    out[i] = v[i];
  }
  return out;
}

/** Reads and checks one predictions file; `relPath` is recorded as the cell's scores_file. */
export async function readPredictionsFile(path: string, relPath = path): Promise<CellPredictions> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new EvalInputError(`${path}: cannot read predictions (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new EvalInputError(`${path}: must hold one JSON object (see eval/run_files.ts)`);
  }
  for (
    const f of ["init", "protocol", "fraction", "draw", "backbone", "task", "labels", "scores"]
  ) {
    if (!(f in raw)) throw new EvalInputError(`${path}: missing field "${f}"`);
  }
  const labels = numberArray(raw.labels, `${path}: labels`);
  const scores = numberArray(raw.scores, `${path}: scores`);
  if (labels.length !== scores.length) {
    throw new EvalInputError(`${path}: ${labels.length} labels but ${scores.length} scores`);
  }
  const cell: CellPredictions = {
    init: raw.init as CellKey["init"],
    protocol: raw.protocol as CellKey["protocol"],
    fraction: raw.fraction as number,
    draw: raw.draw as number,
    backbone: raw.backbone as string,
    task: raw.task as string,
    labels,
    scores,
    scores_file: relPath,
  };
  if (raw.pretrain_seed !== undefined) cell.pretrain_seed = raw.pretrain_seed as number;
  checkCellKey(cell, path);
  if (raw.ids !== undefined) {
    if (!Array.isArray(raw.ids)) {
      throw new EvalInputError(`${path}: ids must be ${labels.length} strings, one per label`);
    }
    checkIds(raw.ids, labels.length, path);
    cell.ids = raw.ids as string[];
  }
  if (raw.metrics_file !== undefined) {
    if (typeof raw.metrics_file !== "string") {
      throw new EvalInputError(`${path}: metrics_file must be a string`);
    }
    cell.metrics_file = raw.metrics_file;
  }
  if (raw.probe_C !== undefined) {
    if (typeof raw.probe_C !== "number" || !(raw.probe_C > 0)) {
      throw new EvalInputError(`${path}: probe_C must be a positive number`);
    }
    cell.probe_C = raw.probe_C;
  }
  return cell;
}

async function listFiles(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(suffix)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort();
}

/** A run folder that is not there (the commands say which flag names it). */
export class MissingRunFolderError extends EvalInputError {
  override name = "MissingRunFolderError";
  constructor(readonly runDir: string) {
    super(
      `run folder "${runDir}" does not exist; pass the folder an experiment wrote ` +
        `(list them with: ls runs/)`,
    );
  }
}

/** Reads every predictions/*.json of a run folder; clear errors when there is nothing to read. */
export async function readRunPredictions(runDir: string): Promise<CellPredictions[]> {
  const st = await Deno.stat(runDir).catch(() => null);
  if (!st?.isDirectory) {
    throw new MissingRunFolderError(runDir);
  }
  const names = await listFiles(join(runDir, "predictions"), ".json");
  if (names.length === 0) {
    throw new EvalInputError(
      `run folder "${runDir}" has no predictions/*.json: nothing to evaluate. The experiment ` +
        `runner writes one predictions/<cell>.json per fine-tuned model (format: ` +
        `eval/run_files.ts); run or resume the experiment first`,
    );
  }
  const cells: CellPredictions[] = [];
  for (const n of names) {
    cells.push(await readPredictionsFile(join(runDir, "predictions", n), `predictions/${n}`));
  }
  return cells;
}

/** One line of a training metrics file. */
export interface MetricsRow {
  step: number;
  epoch: number;
  loss?: number | null;
  acc?: number | null;
  lr?: number | null;
  val_auc?: number | null;
  /** MoCo pretraining: the kNN monitor's validation AUC (at its checks only). */
  knn_auc?: number | null;
  /** Linear protocol: one row per inverse L2 penalty C of the probe's path. */
  C?: number | null;
}

const METRIC_FIELDS = ["loss", "acc", "lr", "val_auc", "knn_auc", "C"] as const;

/**
 * Parses JSON-lines metrics text; errors name `what` and the line. Blank lines are skipped, and so
 * is a last line cut short by a kill (no newline after it, not JSON).
 */
export function parseMetrics(text: string, what: string): MetricsRow[] {
  const rows: MetricsRow[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${what}:${i + 1}`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      // A run killed while appending leaves its last line cut short, with no newline after it:
      // that line is dropped (a resume drops it too), any other is a damaged file.
      if (i === lines.length - 1) return;
      throw new EvalInputError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof o !== "object" || o === null) {
      throw new EvalInputError(`${where}: not a JSON object`);
    }
    for (const f of ["step", "epoch"]) {
      if (typeof o[f] !== "number") throw new EvalInputError(`${where}: "${f}" must be a number`);
    }
    const row: MetricsRow = { step: o.step as number, epoch: o.epoch as number };
    for (const f of METRIC_FIELDS) {
      const v = o[f];
      if (v === undefined) continue;
      if (v !== null && typeof v !== "number") {
        throw new EvalInputError(`${where}: "${f}" must be a number or null`);
      }
      row[f] = v as number | null;
    }
    rows.push(row);
  });
  return rows;
}

/** Reads a metrics .jsonl file. */
export async function readMetricsFile(path: string): Promise<MetricsRow[]> {
  return parseMetrics(await Deno.readTextFile(path), path);
}

/** Metrics files of the MoCo pretraining (metrics/pretrain*.jsonl), relative to the run folder. */
export async function listPretrainMetrics(runDir: string): Promise<string[]> {
  return (await listFiles(join(runDir, "metrics"), ".jsonl"))
    .filter((n) => n.startsWith("pretrain"))
    .map((n) => `metrics/${n}`);
}

/**
 * gradcam/<name>.json: a gray image and its Grad-CAM heatmap, row-major. `image` is any real
 * range (min-max normalized for display); `heatmap` is heatmap_height×heatmap_width (default
 * height×width; smaller maps are upsampled bilinearly), min-max normalized for display.
 */
export interface GradCamFile {
  title: string;
  width: number;
  height: number;
  image: number[];
  heatmap: number[];
  heatmap_width?: number;
  heatmap_height?: number;
  /** Optional caption details, e.g. the true label and the model's score. */
  label?: string;
  score?: number;
}

/** A Grad-CAM example ready for the report. */
export interface GradCamItem {
  title: string;
  width: number;
  height: number;
  image: Float32Array;
  heatmap: Float32Array;
  heatmapWidth: number;
  heatmapHeight: number;
  label?: string;
  score?: number;
}

/** Checks a Grad-CAM record's shapes; `what` names it in errors. */
export function gradCamItem(raw: GradCamFile, what: string): GradCamItem {
  const w = raw.width, h = raw.height;
  const hw = raw.heatmap_width ?? w, hh = raw.heatmap_height ?? h;
  for (
    const [k, v] of [["width", w], ["height", h], ["heatmap_width", hw], [
      "heatmap_height",
      hh,
    ]] as const
  ) {
    if (!(Number.isInteger(v) && v > 0)) {
      throw new EvalInputError(`${what}: ${k} must be a positive integer`);
    }
  }
  const image = Float32Array.from(numberArray(raw.image, `${what}: image`));
  const heatmap = Float32Array.from(numberArray(raw.heatmap, `${what}: heatmap`));
  if (image.length !== w * h) {
    throw new EvalInputError(
      `${what}: image has ${image.length} values, want width*height = ${w * h}`,
    );
  }
  if (heatmap.length !== hw * hh) {
    throw new EvalInputError(
      `${what}: heatmap has ${heatmap.length} values, want ${hw}*${hh} = ${hw * hh}`,
    );
  }
  const item: GradCamItem = {
    title: String(raw.title ?? what),
    width: w,
    height: h,
    image,
    heatmap,
    heatmapWidth: hw,
    heatmapHeight: hh,
  };
  if (raw.label !== undefined) item.label = String(raw.label);
  if (typeof raw.score === "number") item.score = raw.score;
  return item;
}

/** Reads every gradcam/*.json of a run folder (none: empty list). */
export async function readRunGradCams(runDir: string): Promise<GradCamItem[]> {
  const names = await listFiles(join(runDir, "gradcam"), ".json");
  const items: GradCamItem[] = [];
  for (const n of names) {
    const path = join(runDir, "gradcam", n);
    let raw: GradCamFile;
    try {
      raw = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new EvalInputError(`${path}: cannot read Grad-CAM file (${(e as Error).message})`);
    }
    items.push(gradCamItem(raw, path));
  }
  return items;
}

/** Reads run.json (null when absent). */
export async function readRunMetadata(runDir: string): Promise<Record<string, unknown> | null> {
  const path = join(runDir, "run.json");
  const text = await readTextOrNull(path);
  if (text === null) return null;
  try {
    const o = JSON.parse(text);
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new Error("not a JSON object");
    }
    return o;
  } catch (e) {
    throw new EvalInputError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * The code version of the checkout at `root`: the commit .git/HEAD names (directly, or through
 * the ref file or packed-refs entry it points to), as "<branch>@<commit>" or "<commit>" for a
 * detached HEAD; "unknown" without a readable .git. Reads files only (no git subprocess).
 */
export async function codeVersion(root = "."): Promise<string> {
  try {
    const head = (await Deno.readTextFile(join(root, ".git", "HEAD"))).trim();
    const m = /^ref:\s*(\S+)$/.exec(head);
    if (!m) return /^[0-9a-f]{40,64}$/.test(head) ? head : "unknown";
    const ref = m[1], branch = ref.replace(/^refs\/heads\//, "");
    let commit = (await readTextOrNull(join(root, ".git", ref)))?.trim();
    if (!commit) {
      const packed = await readTextOrNull(join(root, ".git", "packed-refs")) ?? "";
      commit = packed.split("\n").map((l) => l.trim().split(" "))
        .find(([, name]) => name === ref)?.[0];
    }
    return commit && /^[0-9a-f]{40,64}$/.test(commit) ? `${branch}@${commit}` : "unknown";
  } catch {
    return "unknown";
  }
}
