/** What the trainers ask of the data layer, kept to the few calls they make. */
import type { Rng } from "../util/rng.ts";

/** Unlabelled images as MoCo's pairs of views. */
export interface TwoViewSource {
  /** Number of training images. */
  count: number;
  /** Two independent augmentations of each image, as [N, C, S, S] f32 arrays in batch order. */
  twoViews(indices: number[], rng: Rng): { xq: Float32Array; xk: Float32Array };
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
  /** Deterministic evaluation transform (resize, centre crop, normalise): [N, C, S, S]. */
  images(indices: number[]): Float32Array;
  /** Training augmentation: [N, C, S, S]. */
  augmented(indices: number[], rng: Rng): Float32Array;
  /** Image identifiers (paths) for reports. */
  ids: string[];
}
