/**
 * From command-line data flags to what the trainers read: the dataset
 * (built-in synthetic CheXpert when no --data is given), its image cache
 * under runs/cache, and the pretraining sources over it (train/cache_sources.ts).
 */
import { loadDataset } from "../data/load.ts";
import type { Dataset, DatasetKind } from "../data/types.ts";
import { ensureCache } from "../data/cache/builder.ts";
import { defaultCacheDir } from "../data/cache/format.ts";
import type { ImageCache } from "../data/cache/reader.ts";
import { type DatasetIdentity, datasetIdentity } from "../data/identity.ts";
import { UnknownDatasetKindError } from "../data/data_error.ts";
import { ensureSyntheticChexpert, ensureSyntheticShenzhen } from "../data/synth/write.ts";
import { UserError } from "../util/user_error.ts";
import type { TwoViewSource } from "../train/sources.ts";
import type { MonitorSets } from "../train/monitor.ts";
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

/** Which data to open and at what size: a dataset folder, or the built-in synthetic set. */
export interface DataFlags {
  /** Pretraining augmentation (default mococxr). */
  augment?: PretrainAugment;
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
  const synthOpts = f.synthImages ? { n: f.synthImages } : {};
  const root = f.data ??
    (f.synthetic === "shenzhen"
      ? await ensureSyntheticShenzhen(DEFAULT_SYNTH_ROOT, synthOpts, { log })
      : await ensureSyntheticChexpert(DEFAULT_SYNTH_ROOT, synthOpts, { log }));
  let dataset: Dataset;
  try {
    dataset = await loadDataset({
      root,
      kind: f.kind as DatasetKind | undefined,
      tasks: f.task ? f.task.split(",") : undefined,
      frontalOnly: true,
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new UserError((e as Error).message);
  }
  if (dataset.records.length === 0) throw new UserError(`${root}: the dataset has no images`);
  const o = { size: f.imageSize };
  const cache = await ensureCache(dataset, {
    dir: defaultCacheDir(CACHE_ROOT, dataset, o),
    ...o,
    maxBadFraction: f.maxBad,
    log,
  });
  const bad = cache.badImages.length, links = dataset.skippedSymlinks ?? 0;
  const describe = `${dataset.name} (${dataset.kind}, ${cache.count} images` +
    `${bad ? `, ${bad} unreadable skipped` : ""}` +
    `${links ? `, ${links} symbolic links skipped` : ""}; tasks: ${cache.tasks.join(", ")})`;
  return { dataset, identity: datasetIdentity(dataset), cache, describe };
}

/** Pretraining data: every training-split image, plus the kNN monitor's labelled sets. */
export async function openTrainingData(f: DataFlags & { seed?: number }): Promise<{
  describe: string;
  identity: DatasetIdentity;
  train: TwoViewSource;
  monitor: MonitorSets | null;
  /** The monitor's sets, or why there is none. */
  monitorNote: string;
}> {
  const { cache, describe, identity } = await openData(f);
  const train = cache.splitIndices("train");
  const aug = pretrainAugment(f.augment ?? "mococxr", f.imageSize, f.inChannels);
  const m = pretrainMonitor(cache, f.seed ?? 0, f.imageSize, f.inChannels);
  return {
    describe,
    identity,
    train: twoViewSource(cache, train, aug),
    monitor: m.sets,
    monitorNote: m.sets ? m.describe : m.reason,
  };
}
