/**
 * From command-line data flags to what the trainers read: the dataset
 * (built-in synthetic CheXpert when no --data is given), its image cache
 * under runs/cache, and the pretraining sources over it (train/cache_sources.ts).
 * The flags that decide how labels and patients are read (--csv, --uncertainty, --all-views,
 * --patient-pattern) are defined here once, for every task that opens data.
 */
import { dirname, resolve } from "node:path";
import { loadDataset } from "../data/load.ts";
import type { Dataset, DatasetKind, UncertaintyPolicy } from "../data/types.ts";
import { PatientPatternError } from "../data/patients.ts";
import { ensureCache } from "../data/cache/builder.ts";
import { defaultCacheDir } from "../data/cache/format.ts";
import type { ImageCache } from "../data/cache/reader.ts";
import { type DatasetIdentity, datasetIdentity } from "../data/identity.ts";
import { UnknownDatasetKindError, UnknownTaskError } from "../data/data_error.ts";
import { ensureSyntheticChexpert, ensureSyntheticShenzhen } from "../data/synth/write.ts";
import { UserError } from "../util/user_error.ts";
import type { TwoViewSource } from "../train/sources.ts";
import type { Interp } from "../data/augment.ts";
import type { MonitorSets } from "../train/monitor.ts";
import { pretrainImages } from "../train/splits.ts";
import {
  type PretrainAugment,
  pretrainAugment,
  pretrainMonitor,
  twoViewSource,
} from "../train/cache_sources.ts";

/** Where the built-in synthetic set lives (the same default as `deno task synth` and `prepare`). */
export const DEFAULT_SYNTH_ROOT = "runs/synthetic";
/** Where image caches are built by default. */
export const CACHE_ROOT = "runs/cache";

/** The label and patient flags, as parseArgs options (every task that opens data takes them). */
export const DATA_LABEL_OPTIONS = {
  csv: { type: "string" },
  positive: { type: "string" },
  uncertainty: { type: "string" },
  "all-views": { type: "boolean" },
  "patient-pattern": { type: "string" },
} as const;

/** Their lines for a task's --help, descriptions starting at column `col`. */
export function dataLabelHelp(col = 24): string {
  const lines: [string, string[]][] = [
    ["--csv FILE", [
      "a path,label[,patient][,split] CSV (default <data>/labels.csv;",
      "without --data, the CSV's folder is the dataset root)",
    ]],
    ["--positive VALUE", [
      "CSV text labels: the value read as positive (case ignored; the other",
      "values negative), e.g. PNEUMONIA; --task names the CSV's label column",
    ]],
    ["--uncertainty U", ["CheXpert and CSV -1 labels: ones (U-Ones, default), zeros, ignore"]],
    ["--all-views", ["CheXpert: lateral views too (default: frontal views only)"]],
    ["--patient-pattern RE", [
      "patient id = the regex's first capture group, over each image's path",
      "relative to the root, else its file name (e.g. '^(person\\d+)_')",
    ]],
  ];
  return lines.map(([flag, text]) =>
    [`  ${flag}`.padEnd(col - 1) + ` ${text[0]}`, ...text.slice(1).map((t) => " ".repeat(col) + t)]
      .join("\n")
  ).join("\n");
}

/** What the label and patient flags say, checked. */
export interface DataLabelFlags {
  /** The CSV file (kind csv). */
  csv?: string;
  /** What CheXpert's and CSV's -1 labels become. */
  uncertainty?: UncertaintyPolicy;
  /** CheXpert: keep lateral views. */
  allViews?: boolean;
  /** A regular expression's source: its first capture group is the patient id. */
  patientPattern?: string;
  /** CSV text labels: the value read as positive. */
  positive?: string;
}

const POLICIES: UncertaintyPolicy[] = ["ones", "zeros", "ignore"];

/** Compiles --patient-pattern; a one-line error for an invalid or empty one. */
export function compilePatientPattern(src: string): RegExp {
  if (src.trim() === "") {
    throw new UserError(`--patient-pattern needs a regular expression, e.g. '^(person\\d+)_'`);
  }
  try {
    return new RegExp(src);
  } catch (e) {
    throw new UserError(
      `--patient-pattern "${src}" is not a valid regular expression (${(e as Error).message})`,
    );
  }
}

/** Reads and checks the label and patient flags (before any data is read). */
export function dataLabelFlagsFrom(
  f: Record<string, string | boolean | undefined>,
): DataLabelFlags {
  const str = (k: string) => typeof f[k] === "string" ? f[k] as string : undefined;
  const uncertainty = str("uncertainty");
  if (uncertainty !== undefined && !POLICIES.includes(uncertainty as UncertaintyPolicy)) {
    throw new UserError(
      `--uncertainty must be one of ${POLICIES.join(", ")}, got "${uncertainty}"`,
    );
  }
  const csv = str("csv");
  if (csv !== undefined && csv.trim() === "") throw new UserError("--csv needs a file");
  const kind = str("kind");
  if (csv !== undefined && kind !== undefined && kind !== "csv") {
    throw new UserError(
      `--csv reads a path,label CSV (kind csv); it cannot go with --kind ${kind}`,
    );
  }
  const pattern = str("patient-pattern");
  if (pattern !== undefined) compilePatientPattern(pattern);
  const positive = str("positive");
  if (positive !== undefined && positive.trim() === "") {
    throw new UserError("--positive needs the label value read as positive, e.g. PNEUMONIA");
  }
  return {
    ...(positive !== undefined ? { positive: positive.trim() } : {}),
    ...(csv !== undefined ? { csv } : {}),
    ...(uncertainty !== undefined ? { uncertainty: uncertainty as UncertaintyPolicy } : {}),
    ...(f["all-views"] ? { allViews: true } : {}),
    ...(pattern !== undefined ? { patientPattern: pattern } : {}),
  };
}

/** Which data to open and at what size: a dataset folder, or the built-in synthetic set. */
export interface DataFlags extends DataLabelFlags {
  /** Pretraining augmentation (default mococxr). */
  augment?: PretrainAugment;
  /** Its rotation's interpolation (default nearest, MoCo-CXR's). */
  rotateInterp?: Interp;
  /** Dataset root; without it, the built-in synthetic set (generated once under runs/synthetic). */
  data?: string;
  /** Layout kind (chexpert, shenzhen, folder, csv); detected when absent. */
  kind?: string;
  /** Comma-separated task names (default: the dataset's default, Pleural Effusion for CheXpert). */
  task?: string;
  /** Training crop side in pixels. */
  imageSize: number;
  /** Model input channels (3: gray replicated, for ImageNet-shaped stems). */
  inChannels: 1 | 3;
  /** Which built-in synthetic set to use when no --data (default chexpert). */
  synthetic?: "chexpert" | "shenzhen";
  /** Synthetic set size when no --data (default: the generator's 2000 frontal images). */
  synthImages?: number;
  /** Tolerated share of unreadable images (--max-bad; default 0.05). */
  maxBad?: number;
  /** Progress lines (default: none). */
  log?: (m: string) => void;
  /**
   * Called with the loaded dataset's identity before its image cache is built or opened (a
   * resume refuses other data here, before the slow part).
   */
  beforeCache?: (identity: DatasetIdentity) => void | Promise<void>;
}

/** An opened dataset: its records, its identity and its image cache. */
export interface OpenedData {
  /** The loaded dataset (records, labels, what was skipped). */
  dataset: Dataset;
  /** What a run records of the data, so --resume can refuse another dataset. */
  identity: DatasetIdentity;
  /** Its images, decoded and resized once (built or reused under runs/cache). */
  cache: ImageCache;
  /** One line describing the data, for logs. */
  describe: string;
}

const KINDS: DatasetKind[] = ["chexpert", "shenzhen", "folder", "csv"];

/** Loads a dataset (or the synthetic one) and ensures its image cache. */
export async function openData(f: DataFlags): Promise<OpenedData> {
  const log = f.log ?? (() => {});
  if (f.kind && !KINDS.includes(f.kind as DatasetKind)) {
    throw new UnknownDatasetKindError(f.kind, KINDS);
  }
  const labels = dataLabelFlagsFrom({
    kind: f.kind,
    csv: f.csv,
    uncertainty: f.uncertainty,
    "all-views": f.allViews,
    "patient-pattern": f.patientPattern,
    positive: f.positive,
  });
  const synthOpts = f.synthImages ? { n: f.synthImages } : {};
  const root = f.data ?? (labels.csv ? dirname(resolve(labels.csv)) : undefined) ??
    (f.synthetic === "shenzhen"
      ? await ensureSyntheticShenzhen(DEFAULT_SYNTH_ROOT, synthOpts, { log })
      : await ensureSyntheticChexpert(DEFAULT_SYNTH_ROOT, synthOpts, { log }));
  const dataset = await loadFlaggedDataset({
    root,
    kind: f.kind,
    tasks: f.task ? f.task.split(",") : undefined,
    ...labels,
  });
  const identity = datasetIdentity(dataset);
  await f.beforeCache?.(identity);
  const o = { size: f.imageSize };
  const cache = await ensureCache(dataset, {
    dir: defaultCacheDir(CACHE_ROOT, dataset, o),
    ...o,
    maxBadFraction: f.maxBad,
    log,
  });
  const bad = cache.badImages.length, links = dataset.skippedSymlinks ?? 0;
  const read = describeLabelSettings(dataset);
  const describe = `${dataset.name} (${dataset.kind}, ${cache.count} images` +
    `${bad ? `, ${bad} unreadable skipped` : ""}` +
    `${links ? `, ${links} symbolic links skipped` : ""}; tasks: ${cache.tasks.join(", ")}` +
    `${read ? `; ${read}` : ""})`;
  return { dataset, identity, cache, describe };
}

/**
 * Loads a dataset with the label and patient flags (prepare's and openData's one loader): a
 * flag-worded one-line error for data problems, the patient pattern checked against the images.
 */
export async function loadFlaggedDataset(
  f: DataLabelFlags & { root: string; kind?: string; tasks?: string | string[] },
): Promise<Dataset> {
  const pattern = f.patientPattern !== undefined
    ? compilePatientPattern(f.patientPattern)
    : undefined;
  let dataset: Dataset;
  try {
    dataset = await loadDataset({
      root: f.root,
      kind: f.kind as DatasetKind | undefined,
      tasks: f.tasks,
      csv: f.csv,
      uncertainty: f.uncertainty,
      frontalOnly: !f.allViews,
      patientPattern: pattern,
      positive: f.positive,
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof UnknownTaskError) throw e;
    if (e instanceof PatientPatternError) {
      throw new UserError(
        `--patient-pattern "${f.patientPattern}" ${e.detail}; give a pattern whose first ` +
          `capture group is the patient id`,
      );
    }
    throw new UserError((e as Error).message);
  }
  if (dataset.records.length === 0) throw new UserError(`${f.root}: the dataset has no images`);
  return dataset;
}

/** How the labels were read, for the data line ("uncertain → ones, blank → 0, frontal views"). */
export function describeLabelSettings(ds: Dataset): string {
  const s = ds.labelSettings ?? {};
  const parts: string[] = [];
  if (s.uncertainty) {
    parts.push(`-1 → ${s.uncertainty.startsWith("[") ? "per task" : s.uncertainty}`);
  }
  if (s.blank) parts.push(`blank → ${s.blank === "zeros" ? "0" : "ignored"}`);
  if (s.views) parts.push(`${s.views} views`);
  if (s.patientPattern) parts.push(`patients by ${s.patientPattern}`);
  if (s.positive) parts.push(`positive: "${s.positive}"`);
  return parts.join(", ");
}

/**
 * Pretraining data: every training-split image but the test patients' (train/splits.ts), plus the
 * kNN monitor's labelled sets.
 */
export async function openTrainingData(f: DataFlags & { seed?: number }): Promise<{
  describe: string;
  identity: DatasetIdentity;
  train: TwoViewSource;
  /** Training-split images left out as test patients' (0 when the test split is the dataset's). */
  testLeftOut: number;
  monitor: MonitorSets | null;
  /** The monitor's sets, or why there is none. */
  monitorNote: string;
}> {
  const { cache, describe, identity } = await openData(f);
  const { indices: train, leftOut: testLeftOut } = pretrainImages(cache);
  const aug = pretrainAugment(f.augment ?? "mococxr", f.imageSize, f.inChannels, f.rotateInterp);
  const m = pretrainMonitor(cache, f.seed ?? 0, f.imageSize, f.inChannels);
  return {
    describe,
    identity,
    train: twoViewSource(cache, train, aug),
    testLeftOut,
    monitor: m.sets,
    monitorNote: m.sets ? m.describe : m.reason,
  };
}
