/** What the trainers ask of the data layer, kept to the few calls they make. */
import type { Rng } from "../util/rng.ts";
import type { BTensor } from "../model/backend.ts";
import type { Gpu } from "../kernels/device.ts";

export interface TwoViewSource {
  /** Number of training images. */
  count: number;
  /** Two independent augmentations of each image, as [N, C, S, S] f32 arrays in batch order. */
  twoViews(indices: number[], rng: Rng): { xq: Float32Array; xk: Float32Array };
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
  count: number;
  tasks: string[];
  /** [count, tasks] 0/1 labels and 1/0 use-masks (uncertain labels under "ignore" are masked). */
  labels: Float32Array;
  mask: Float32Array;
  /** Deterministic evaluation transform (resize, centre crop, normalise): [N, C, S, S]. */
  images(indices: number[]): Float32Array;
  /** Training augmentation: [N, C, S, S]. */
  augmented(indices: number[], rng: Rng): Float32Array;
  /** Image identifiers (paths) for reports. */
  ids: string[];
}
