/**
 * The trainers' sources (train/sources.ts) over an image cache: MoCo's two
 * views of a subset with MoCo-CXR's augmentations (random crop, horizontal
 * flip, rotation within ±10°), labelled views with the evaluation and
 * training transforms, and the kNN monitor's sets.
 */
import type { ImageCache } from "../data/cache/reader.ts";
import {
  type AugmentOptions,
  evalAugment,
  IMAGENET_RGB_NORM,
  type Interp,
  makeBatch,
  makeTwoViewBatch,
  type Normalization,
  trainAugment,
} from "../data/augment.ts";
import { DeviceTwoViews } from "../data/augment_device.ts";
import type { Gpu } from "../kernels/device.ts";
import type { Rng } from "../util/rng.ts";
import { imageBatch, type LabelledSource, type TwoViewSource } from "./sources.ts";
import type { MonitorSets } from "./monitor.ts";
import { drawMonitorSets } from "./monitor_sets.ts";
import { makeSplits } from "./splits.ts";

/**
 * Pretraining augmentations. "mococxr": MoCo-CXR's random crop, horizontal
 * flip and rotation within ±10°. "strong": adds a random resized crop (30–100%
 * of the area) and contrast/brightness jitter, so that instances cannot be
 * told apart by exposure or framing alone and local structure must be learnt.
 */
export type PretrainAugment = "mococxr" | "strong";

/**
 * The augmentation of MoCo's two views at `size` pixels, resampled by `interp` (default nearest,
 * MoCo-CXR's; a pretraining config's rotateInterp, data/augment.ts).
 */
export function pretrainAugment(
  kind: PretrainAugment,
  size: number,
  channels: 1 | 3,
  interp: Interp = "nearest",
): AugmentOptions {
  return kind === "strong"
    ? trainAugment(size, {
      channels,
      interp,
      crop: "resized",
      resizedScale: [0.3, 1],
      contrast: 0.3,
      brightness: 0.15,
    })
    : trainAugment(size, { channels, interp });
}

/** MoCo's two views of images of a subset of the cache. */
export function twoViewSource(
  cache: ImageCache,
  indices: number[],
  aug: AugmentOptions,
): TwoViewSource {
  return {
    count: indices.length,
    twoViews(idx: number[], rng: Rng) {
      const b = makeTwoViewBatch(cache, idx.map((i) => indices[i]), aug, rng);
      const C = aug.channels ?? 1;
      return {
        xq: imageBatch(b.q, idx.length, C, aug.size),
        xk: imageBatch(b.k, idx.length, C, aug.size),
      };
    },
    onDevice(gpu: Gpu) {
      const d = new DeviceTwoViews(gpu, cache, aug);
      return { views: (idx, seed, perm) => d.views(idx.map((i) => indices[i]), seed, perm) };
    },
  };
}

/**
 * How a labelled source's pixels are normalised: "mococxr", MoCo-CXR's CheXpert statistics (what
 * pretraining feeds, so what MoCo and random initialisations get); "imagenet", what torchvision's
 * ImageNet weights were trained on (data/augment.ts IMAGENET_RGB_NORM and IMAGENET_GRAY_NORM).
 */
export type LabelledNorm = "mococxr" | "imagenet";

/**
 * Normalises 3-channel batches made with `normalize: "none"` (gray v on [0, 1] replicated) with
 * ImageNet's per-channel statistics, in place: channel c = (v − m_c)/s_c, what torchvision's
 * pipeline (gray → RGB, Normalize(mean, std)) feeds an RGB stem.
 */
function imagenetPerChannel(x: Float32Array, n: number, size: number): Float32Array {
  const px = size * size;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const m = IMAGENET_RGB_NORM.mean[c], s = IMAGENET_RGB_NORM.std[c], o = (i * 3 + c) * px;
      for (let k = o; k < o + px; k++) x[k] = (x[k] - m) / s;
    }
  }
  return x;
}

/**
 * A labelled view over a subset of the cache (row i of the source = cache image indices[i]),
 * normalised as `norm` says (default "mococxr", the pretraining's). "imagenet": a 1-channel model
 * (its stem summed from torchvision's RGB one) gets IMAGENET_GRAY_NORM, a 3-channel one the
 * gray image replicated and normalised per channel (IMAGENET_RGB_NORM), as torchvision would.
 */
export function labelledSource(
  cache: ImageCache,
  indices: number[],
  size: number,
  channels: 1 | 3,
  norm: LabelledNorm = "mococxr",
  /** The augmented batches' rotation interpolation (end-to-end training; evaluation has none). */
  interp: Interp = "nearest",
): LabelledSource {
  const T = cache.tasks.length;
  const labels = new Float32Array(indices.length * T), mask = new Float32Array(indices.length * T);
  indices.forEach((c, i) => {
    labels.set(cache.labels.subarray(c * T, c * T + T), i * T);
    mask.set(cache.mask.subarray(c * T, c * T + T), i * T);
  });
  const perChannel = norm === "imagenet" && channels === 3;
  const normalize: Normalization = norm === "mococxr"
    ? "mococxr"
    : perChannel
    ? "none"
    : "imagenet";
  const evalAug = evalAugment(size, { channels, normalize });
  const trainAug = trainAugment(size, { channels, normalize, interp });
  const map = (idx: number[]) => idx.map((i) => indices[i]);
  const finish = (x: Float32Array, n: number) =>
    imageBatch(perChannel ? imagenetPerChannel(x, n, size) : x, n, channels, size);
  // Evaluation batches are deterministic: the seed argument is unused by a centre crop.
  const fixed = { nextU32: () => 0 } as unknown as Rng;
  return {
    count: indices.length,
    tasks: cache.tasks,
    labels,
    mask,
    ids: indices.map((c) => cache.records[c].path),
    images: (idx) => finish(makeBatch(cache, map(idx), evalAug, fixed).x, idx.length),
    augmented: (idx, rng) => finish(makeBatch(cache, map(idx), trainAug, rng).x, idx.length),
  };
}

/**
 * The kNN monitor's labelled sets for pretraining on a cache: reference from the fine-tuning
 * train pool, validation from the validation set, as the experiment draws them (train/splits.ts
 * makeSplits with this seed; never from the test set), by patient and class
 * (train/monitor_sets.ts); or why there is none.
 */
export function pretrainMonitor(
  cache: ImageCache,
  seed: number,
  size: number,
  channels: 1 | 3,
): { sets: MonitorSets; describe: string } | { sets: null; reason: string } {
  const splits = makeSplits(cache, seed);
  const m = drawMonitorSets(cache.records, splits.trainPool, splits.val, {
    seed,
    taskName: cache.tasks[0],
  });
  if (!m.ok) return { sets: null, reason: m.reason };
  return {
    sets: {
      reference: labelledSource(cache, m.reference, size, channels),
      validation: labelledSource(cache, m.validation, size, channels),
    },
    describe: m.describe,
  };
}
