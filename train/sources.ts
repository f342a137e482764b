/**
 * What the trainers ask of the data layer, kept to the few calls they make:
 * two augmented views for pretraining, labelled images for fine-tuning,
 * evaluation and the monitor. Image data travels as an `ImageBatch`, which
 * carries its own [N, C, H, W] shape, so no trainer rebuilds it from its
 * configuration.
 */
import type { Rng } from "../util/rng.ts";
import type { BTensor } from "../model/backend.ts";
import type { Gpu } from "../kernels/device.ts";

/** N images, NCHW f32, with their shape. */
export interface ImageBatch {
  /** n·c·h·w values, NCHW. */
  readonly data: Float32Array;
  /** [n, c, h, w]. */
  readonly shape: readonly [n: number, c: number, h: number, w: number];
}

/** An ImageBatch over `data` for n images of c channels at size h×w (checks the length). */
export function imageBatch(data: Float32Array, n: number, c: number, h: number, w = h): ImageBatch {
  if (data.length !== n * c * h * w) {
    throw new Error(`imageBatch: ${data.length} values for [${n}, ${c}, ${h}, ${w}]`);
  }
  return { data, shape: [n, c, h, w] };
}

/** Unlabelled images as MoCo's pairs of views. */
export interface TwoViewSource {
  /** Number of training images. */
  count: number;
  /** Two independent augmentations of each image, in batch order. */
  twoViews(indices: number[], rng: Rng): { xq: ImageBatch; xk: ImageBatch };
  /** The same augmentation made on the GPU, where the source can (the image cache can). */
  onDevice?(gpu: Gpu): DeviceViews;
}

/** Two views made on the device: what twoViews makes from an Rng whose next draw is `seed`. */
export interface DeviceViews {
  /** Query views in batch order, key views in the order perm (xk[j]: image perm[j]'s key view). */
  views(indices: number[], seed: number, perm: number[]): { xq: BTensor; xk: BTensor };
}

/** Labelled images: what fine-tuning, evaluation and the monitor read. */
export interface LabelledSource {
  /** Number of images. */
  count: number;
  /** Task names, one label column each. */
  tasks: string[];
  /** [count, tasks] 0/1 labels and 1/0 use-masks (uncertain labels under "ignore" are masked). */
  labels: Float32Array;
  /** [count, tasks] use-mask of the labels. */
  mask: Float32Array;
  /** Deterministic evaluation transform (resize, centre crop, normalise). */
  images(indices: number[]): ImageBatch;
  /** Training augmentation. */
  augmented(indices: number[], rng: Rng): ImageBatch;
  /** Image identifiers (paths) for reports. */
  ids: string[];
}
