/**
 * The two-view augmentation of data/augment.ts made on the GPU: the batch's uint8 images are
 * uploaded as stored (1 byte a pixel instead of 2 views × C × 4 bytes of f32), the random
 * parameters are drawn on the host by the same sampleTransform calls in the same order from the
 * same seed (so a batch depends only on its seed, and resume stays exact), and kernels/augment.ts
 * resamples, normalises and replicates channels. The key views can be written in any order
 * (MoCo's shuffled key batch) at no cost: each output slot names its source image.
 *
 * Against data/augment.ts (f64 on the host): the source points are the same affine map in f32.
 * Bilinear pixels agree to ~1e-4 after normalisation. Nearest pixels are the same stored pixel
 * except where the f64 source coordinate lies within f32 rounding (≤ 2e-5 px for sides up to 340)
 * of a half-integer, the boundary between two pixels, where host and device may read neighbours:
 * measured 1–2 pixels in 10^5 of ±10° views of white noise at 128–320 px. Both round halves to
 * even, so a half that both compute exactly reads the same pixel; the one exact half the geometry
 * makes is the centre pixel of an odd output side over an even window (outputs larger than the
 * stored image), which each side reaches with its own rounding.
 * With no rotation and an integer crop (a centre crop of the stored image, say) the resampled
 * values are the stored pixels exactly, either interpolation, and only the final affine map's
 * rounding differs (tests/kernels_augment.test.ts).
 */
import type { Gpu } from "../kernels/device.ts";
import { AUGMENT_SLOT, augmentImages, slotsNeedMean, uploadBytes } from "../kernels/augment.ts";
import { Tensor } from "../kernels/tensor.ts";
import { Rng } from "../util/rng.ts";
import {
  type AugmentOptions,
  type ImageSource,
  normStats,
  sampleTransform,
  type Transform,
} from "./augment.ts";

/** The kernel's slot parameters of a sampled transform reading uploaded image `src`. */
export function slotParams(t: Transform, src: number, o: AugmentOptions): number[] {
  const n = o.size, half = n / 2;
  const cos = Math.cos(t.angle), sin = Math.sin(t.angle), fx = t.flip ? -1 : 1;
  // As applyTransform: C + R(angle) · (fx·sx·(u + ½ − n/2), sy·(v + ½ − n/2)) − ½, split by u, v.
  const xr0 = (0.5 - half) * t.sx * fx, yr0 = (0.5 - half) * t.sy;
  const ox = t.cx + cos * xr0 - sin * yr0 - 0.5, oy = t.cy + sin * xr0 + cos * yr0 - 0.5;
  const { mean, std } = normStats(o.normalize);
  return [
    src,
    ox,
    oy,
    cos * t.sx * fx,
    sin * t.sx * fx,
    -sin * t.sy,
    cos * t.sy,
    t.contrast / (255 * std),
    (1 - t.contrast) / (255 * std),
    (t.brightness - mean) / std,
  ];
}

/** Makes MoCo's two views of cache images on the GPU (one upload, two dispatches a batch). */
export class DeviceTwoViews {
  private bytes = new Uint8Array(0);
  private slotsQ = new Float32Array(0);
  private slotsK = new Float32Array(0);

  constructor(
    readonly gpu: Gpu,
    readonly src: ImageSource,
    readonly o: AugmentOptions,
    readonly ok: AugmentOptions = o,
  ) {
    if ((ok.channels ?? 1) !== (o.channels ?? 1) || ok.size !== o.size) {
      throw new Error("two-view batch: both views need the same size and channels");
    }
  }

  /**
   * Query views of `indices` (cache images) in batch order, key views in the order `perm`
   * (xk[j] = key view of image indices[perm[j]]), from `seed` as makeTwoViewBatchFromSeed draws.
   * Both are [N, C, size, size] tensors the caller disposes.
   */
  views(indices: number[], seed: number, perm: number[]): { xq: Tensor; xk: Tensor } {
    const { src, o, ok } = this, N = indices.length, px = src.size * src.size;
    if (perm.length !== N) throw new Error(`views: ${perm.length} key slots for ${N} images`);
    if (this.bytes.length !== N * px) {
      this.bytes = new Uint8Array(N * px);
      this.slotsQ = new Float32Array(N * AUGMENT_SLOT);
      this.slotsK = new Float32Array(N * AUGMENT_SLOT);
    }
    const rng = new Rng(seed);
    const tk: Transform[] = [];
    indices.forEach((idx, i) => {
      if (!(idx >= 0 && idx < src.count)) {
        throw new Error(`batch index ${idx} out of [0, ${src.count})`);
      }
      this.bytes.set(src.image(idx), i * px);
      this.slotsQ.set(slotParams(sampleTransform(src.size, o, rng), i, o), i * AUGMENT_SLOT);
      tk.push(sampleTransform(src.size, ok, rng));
    });
    perm.forEach((p, j) => this.slotsK.set(slotParams(tk[p], p, ok), j * AUGMENT_SLOT));
    const spec = { size: o.size, srcSize: src.size, channels: o.channels ?? 1 };
    const specQ = { ...spec, interp: o.interp ?? "bilinear" } as const;
    const specK = { ...spec, interp: ok.interp ?? "bilinear" } as const;
    const pixels = uploadBytes(this.gpu, this.bytes);
    const sq = Tensor.from(this.gpu, this.slotsQ, [N, AUGMENT_SLOT]);
    const sk = Tensor.from(this.gpu, this.slotsK, [N, AUGMENT_SLOT]);
    // Every upload before the first dispatch: the dispatches stay in the open command encoder.
    const xq = augmentImages(pixels, sq, specQ, slotsNeedMean(this.slotsQ));
    const xk = augmentImages(pixels, sk, specK, slotsNeedMean(this.slotsK));
    // Released now, reused by later uploads: queue order keeps those writes after these reads.
    for (const t of [pixels, sq, sk]) t.dispose();
    return { xq, xk };
  }
}
