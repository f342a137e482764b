/** In-memory uint8 image sets (what the image cache holds) and MoCo sources over them. */
import { type AugmentOptions, type ImageSource, makeTwoViewBatch } from "../data/augment.ts";
import { DeviceTwoViews } from "../data/augment_device.ts";
import { imageBatch, type TwoViewSource } from "../train/sources.ts";
import { Rng } from "../util/rng.ts";

export /** count smooth random images of side S (a gradient, a disc and noise), as the cache holds them. */
function imageSource(S: number, count: number): ImageSource {
  const r = new Rng(S * 7 + count);
  const data = new Uint8Array(S * S * count);
  for (let i = 0; i < count; i++) {
    const cx = r.uniform() * S, cy = r.uniform() * S, rad = S * (0.1 + 0.3 * r.uniform());
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const v = 40 + (150 * x) / S + (Math.hypot(x - cx, y - cy) < rad ? 60 : 0) +
          r.int(10);
        data[i * S * S + y * S + x] = Math.min(255, v);
      }
    }
  }
  return {
    size: S,
    count,
    tasks: ["t"],
    labels: new Float32Array(count),
    mask: new Float32Array(count),
    image: (i) => data.subarray(i * S * S, (i + 1) * S * S),
  };
}

/** MoCo's two views of every image of `src`, on the host and (onDevice) on the GPU. */
export function twoViewImages(src: ImageSource, aug: AugmentOptions): TwoViewSource {
  return {
    count: src.count,
    twoViews(idx, rng) {
      const b = makeTwoViewBatch(src, idx, aug, rng);
      const C = aug.channels ?? 1;
      return {
        xq: imageBatch(b.q, idx.length, C, aug.size),
        xk: imageBatch(b.k, idx.length, C, aug.size),
      };
    },
    onDevice(gpu) {
      const d = new DeviceTwoViews(gpu, src, aug);
      return { views: (idx, seed, perm) => d.views(idx, seed, perm) };
    },
  };
}
