/** What the trainers ask of the data layer, kept to the two calls they make. */
import type { Rng } from "../util/rng.ts";

export interface TwoViewSource {
  /** Number of training images. */
  count: number;
  /** Two independent augmentations of each image, as [N, C, S, S] f32 arrays in batch order. */
  twoViews(indices: number[], rng: Rng): { xq: Float32Array; xk: Float32Array };
}
