/**
 * Augmentation and batch assembly from the uint8 image cache. The geometric part (horizontal
 * flip, rotation, random crop or random resized crop, resize) is ONE inverse-mapped resampling
 * pass per image, fused with contrast/brightness jitter and normalisation, writing Float32 CHW
 * straight into the batch tensor (1 channel, or 3 replicated ones).
 * Interpolation (AugmentOptions.interp): "nearest" reads the stored pixel whose centre is nearest
 * the source point, as torchvision's F.rotate(img, angle, interpolation=NEAREST, fill=0) does on a
 * tensor (grid_sample mode="nearest", align_corners=False: the source coordinate, pixel centres at
 * integers, rounded half to even; outside the image 0), so a rotated view keeps the stored pixels'
 * sharpness; MoCo-CXR's RandomRotation(10) uses it, and trainAugment does. "bilinear" (the default
 * of a bare AugmentOptions, and every view before the choice existed) blends 4 pixels: on white
 * noise a ±10° view keeps about a third of the neighbour-difference energy of the stored pixels.
 * Since the pass is fused, the interpolation is that of the whole map: with the "resized" crop,
 * "nearest" also scales the window by nearest neighbour (torchvision's RandomResizedCrop is
 * bilinear); with "random"/"center" crops of at most the stored side only the rotation resamples.
 * Speed (shared 2-core dev box, one core, measured, bilinear): 0.3–0.6 ms per 128² output image
 * with flip + rotation + crop, i.e. 80–160 ms for a 256-image batch (×1.6 with 3 channels). The
 * pretraining loop makes the next batch while the GPU runs the current step; on a GPU the same
 * augmentation runs as a kernel (augment_device.ts, kernels/augment.ts).
 * All randomness comes from a seeded Rng; a batch consumes exactly one draw from the caller's Rng
 * (its seed), so a batch depends on that seed alone, wherever and whenever it is made.
 */
import { Rng } from "../util/rng.ts";

/** What batches are made from (the image cache implements it). */
export interface ImageSource {
  /** Side of the stored square images. */
  readonly size: number;
  /** Number of images. */
  readonly count: number;
  /** Task (finding) names, one label column each. */
  readonly tasks: string[];
  /** Stored pixels of image i (size×size, row-major). */
  image(i: number): Uint8Array;
  /** count × tasks, row-major. */
  readonly labels: Float32Array;
  /** count × tasks, row-major: 1 where a label is used, 0 where it is ignored. */
  readonly mask: Float32Array;
}

/**
 * How pixels are normalised: MoCo-CXR's CheXpert statistics, ImageNet's folded to gray, none, or
 * given.
 */
export type Normalization = "mococxr" | "imagenet" | "none" | { mean: number; std: number };

/** MoCo-CXR's CheXpert statistics (on [0, 1] gray). */
export const MOCO_CXR_NORM = { mean: 0.502, std: 0.0856 };
/** torchvision's ImageNet per-channel statistics (R, G, B on [0, 1]). */
export const IMAGENET_RGB_NORM = {
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
} as const;

/**
 * ImageNet's statistics folded to one gray channel the way a 1-channel stem is built from an RGB
 * one (model/state.ts: the three kernels summed, W₁ = Σ_c W_c). torchvision sees a gray image v
 * replicated to RGB as Σ_c W_c (v − m_c)/s_c; for the colour-agnostic part of the kernels (W_c = W̄,
 * the part the sum keeps) that is 3W̄ (v − m)/s exactly when 1/s = mean_c(1/s_c) and
 * m/s = mean_c(m_c/s_c): the channels weigh equally, as in the sum, not by luma (a luma fold's mean
 * is 0.01 higher and its std 0.045 lower). Mean 0.4488, std 0.2260.
 */
export const IMAGENET_GRAY_NORM: { mean: number; std: number } = (() => {
  const { mean, std } = IMAGENET_RGB_NORM;
  const invS = std.reduce((a, s) => a + 1 / s, 0) / 3;
  const mOverS = mean.reduce((a, m, c) => a + m / std[c], 0) / 3;
  return { mean: mOverS / invS, std: 1 / invS };
})();

/**
 * How the resampling pass reads the stored pixels: "nearest" (torchvision's NEAREST: the source
 * coordinate rounded half to even) or "bilinear".
 */
export type Interp = "nearest" | "bilinear";
export const INTERPS: readonly Interp[] = ["nearest", "bilinear"];

/**
 * The transform from a stored image to a model input: crop, flips, rotation, jitter, normalisation.
 */
export interface AugmentOptions {
  /** Output side (H = W). */
  size: number;
  /** 1, or 3 replicated channels (ImageNet-shaped models). Default 1. */
  channels?: 1 | 3;
  /** Random horizontal flip with probability 0.5. */
  hflip?: boolean;
  /** Random rotation uniform in ±rotateDeg degrees. */
  rotateDeg?: number;
  /**
   * Interpolation of the one resampling pass (rotation, crop, resize together). Default
   * "bilinear"; trainAugment's is "nearest", MoCo-CXR's RandomRotation(10).
   */
  interp?: Interp;
  /**
   * "center": centre window of `size` stored pixels; "random": window at a random position;
   * "resized": random area/aspect window resized to `size` (RandomResizedCrop). Default center.
   */
  crop?: "center" | "random" | "resized";
  /** Area fraction range for "resized". Default [0.6, 1]. */
  resizedScale?: [number, number];
  /** Aspect ratio range for "resized". Default [3/4, 4/3]. */
  resizedRatio?: [number, number];
  /** Contrast factor uniform in [1 - c, 1 + c] about the image mean. */
  contrast?: number;
  /** Brightness offset uniform in [-b, b] (on the [0, 1] scale). */
  brightness?: number;
  /** Default "mococxr". */
  normalize?: Normalization;
}

/**
 * MoCo-CXR training augmentation: random crop, horizontal flip, rotation within ±10° read by
 * nearest neighbour (torchvision RandomRotation(10)'s default interpolation, fill 0).
 */
export function trainAugment(size: number, extra: Partial<AugmentOptions> = {}): AugmentOptions {
  return {
    size,
    hflip: true,
    rotateDeg: 10,
    interp: "nearest",
    crop: "random",
    normalize: "mococxr",
    ...extra,
  };
}

/** Evaluation: centre crop, nothing random. */
export function evalAugment(size: number, extra: Partial<AugmentOptions> = {}): AugmentOptions {
  return { size, crop: "center", normalize: "mococxr", ...extra };
}

export function normStats(n: Normalization | undefined): { mean: number; std: number } {
  if (n === undefined || n === "mococxr") return MOCO_CXR_NORM;
  if (n === "imagenet") return IMAGENET_GRAY_NORM;
  if (n === "none") return { mean: 0, std: 1 };
  if (!(n.std > 0)) throw new Error(`normalisation std must be > 0, got ${n.std}`);
  return n;
}

/** One sampled transform: output pixel (u,v) ↦ source point, plus intensity jitter. */
export interface Transform {
  /** Window centre in source pixel coordinates (pixel i covers [i, i+1)). */
  cx: number;
  cy: number;
  /** Source pixels per output pixel. */
  sx: number;
  sy: number;
  /** Radians. */
  angle: number;
  flip: boolean;
  contrast: number;
  brightness: number;
}

/** Draws a transform for a srcSize² image (draws only for the enabled augmentations). */
export function sampleTransform(srcSize: number, o: AugmentOptions, rng: Rng): Transform {
  const flip = o.hflip ? rng.uniform() < 0.5 : false;
  const angle = o.rotateDeg ? ((2 * rng.uniform() - 1) * o.rotateDeg * Math.PI) / 180 : 0;
  let cx = srcSize / 2, cy = srcSize / 2, w = Math.min(o.size, srcSize), h = w;
  const crop = o.crop ?? "center";
  if (crop === "random") {
    cx = rng.int(srcSize - w + 1) + w / 2;
    cy = rng.int(srcSize - h + 1) + h / 2;
  } else if (crop === "center") {
    cx = Math.floor((srcSize - w) / 2) + w / 2;
    cy = Math.floor((srcSize - h) / 2) + h / 2;
  } else if (crop === "resized") {
    const [s0, s1] = o.resizedScale ?? [0.6, 1];
    const [r0, r1] = o.resizedRatio ?? [3 / 4, 4 / 3];
    const area = srcSize * srcSize * (s0 + (s1 - s0) * rng.uniform());
    const ratio = Math.exp(Math.log(r0) + (Math.log(r1) - Math.log(r0)) * rng.uniform());
    w = Math.min(srcSize, Math.sqrt(area * ratio));
    h = Math.min(srcSize, Math.sqrt(area / ratio));
    cx = w / 2 + (srcSize - w) * rng.uniform();
    cy = h / 2 + (srcSize - h) * rng.uniform();
  } else throw new Error(`unknown crop "${crop}" (center, random or resized)`);
  const contrast = o.contrast ? 1 + (2 * rng.uniform() - 1) * o.contrast : 1;
  const brightness = o.brightness ? (2 * rng.uniform() - 1) * o.brightness : 0;
  return { cx, cy, sx: w / o.size, sy: h / o.size, angle, flip, contrast, brightness };
}

/**
 * x rounded to the nearest integer, halves to the even one (C's nearbyint in the default rounding
 * mode, which grid_sample's nearest mode uses; WGSL's round()).
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // halves up
  return (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0; // + 0: no -0
}

/** Pixel or 0 outside the image. */
function px(src: Uint8Array, S: number, x: number, y: number): number {
  return x >= 0 && y >= 0 && x < S && y < S ? src[y * S + x] : 0;
}

/**
 * Resamples src (srcSize², uint8) through t into out[offset..] as channels×size×size floats,
 * normalised, by o.interp (default bilinear). Samples outside the source read as 0 (black), like
 * torchvision's rotation fill.
 */
export function applyTransform(
  src: Uint8Array,
  srcSize: number,
  t: Transform,
  o: AugmentOptions,
  out: Float32Array,
  offset = 0,
): void {
  const n = o.size, S = srcSize, half = n / 2;
  const cos = Math.cos(t.angle), sin = Math.sin(t.angle), fx = t.flip ? -1 : 1;
  // Source point of output (u, v): C + R(angle) · (fx·sx·(u + ½ − n/2), sy·(v + ½ − n/2)) − ½.
  const dxu = cos * t.sx * fx, dyu = sin * t.sx * fx;
  const nearest = (o.interp ?? "bilinear") === "nearest";
  if (o.interp !== undefined && !INTERPS.includes(o.interp)) {
    throw new Error(`unknown interpolation "${o.interp}" (nearest or bilinear)`);
  }
  for (let v = 0; v < n; v++) {
    const yr = (v + 0.5 - half) * t.sy;
    const xr0 = (0.5 - half) * t.sx * fx;
    let X = t.cx + cos * xr0 - sin * yr - 0.5;
    let Y = t.cy + sin * xr0 + cos * yr - 0.5;
    const row = offset + v * n;
    if (nearest) {
      // The stored pixel whose centre is nearest (X, Y); 0 outside.
      for (let u = 0; u < n; u++, X += dxu, Y += dyu) {
        const x = roundHalfEven(X), y = roundHalfEven(Y);
        out[row + u] = x >= 0 && y >= 0 && x < S && y < S ? src[y * S + x] : 0;
      }
      continue;
    }
    for (let u = 0; u < n; u++, X += dxu, Y += dyu) {
      const x0 = Math.floor(X), y0 = Math.floor(Y);
      const ax = X - x0, ay = Y - y0;
      let val: number;
      if (x0 >= 0 && y0 >= 0 && x0 < S - 1 && y0 < S - 1) {
        const i = y0 * S + x0;
        const top = src[i] + (src[i + 1] - src[i]) * ax;
        const bot = src[i + S] + (src[i + S + 1] - src[i + S]) * ax;
        val = top + (bot - top) * ay;
      } else if (x0 < -1 || y0 < -1 || x0 >= S || y0 >= S) {
        val = 0;
      } else {
        const p00 = px(src, S, x0, y0), p10 = px(src, S, x0 + 1, y0);
        const p01 = px(src, S, x0, y0 + 1), p11 = px(src, S, x0 + 1, y0 + 1);
        const top = p00 + (p10 - p00) * ax, bot = p01 + (p11 - p01) * ax;
        val = top + (bot - top) * ay;
      }
      out[row + u] = val;
    }
  }
  // Intensity: contrast about the mean, brightness, normalisation — one affine map.
  const { mean, std } = normStats(o.normalize);
  let m = 0;
  if (t.contrast !== 1) {
    for (let i = offset; i < offset + n * n; i++) m += out[i];
    m /= n * n;
  }
  const a = t.contrast / (255 * std);
  const b = ((1 - t.contrast) * m / 255 + t.brightness - mean) / std;
  for (let i = offset; i < offset + n * n; i++) out[i] = out[i] * a + b;
  const channels = o.channels ?? 1;
  for (let c = 1; c < channels; c++) {
    out.copyWithin(offset + c * n * n, offset, offset + n * n);
  }
}

export interface Batch {
  /** N × C × H × W. */
  x: Float32Array;
  /** N × T and N × T (1 = use). */
  labels: Float32Array;
  mask: Float32Array;
  n: number;
  channels: number;
  size: number;
  indices: number[];
  /** The seed this batch was made from. */
  seed: number;
}

export interface TwoViewBatch extends Omit<Batch, "x"> {
  /** Query and key views (N × C × H × W each), independently augmented. */
  q: Float32Array;
  k: Float32Array;
}

function gatherLabels(src: ImageSource, indices: number[]) {
  const T = src.tasks.length;
  const labels = new Float32Array(indices.length * T), mask = new Float32Array(indices.length * T);
  indices.forEach((idx, i) => {
    if (!(idx >= 0 && idx < src.count)) {
      throw new Error(`batch index ${idx} out of [0, ${src.count})`);
    }
    labels.set(src.labels.subarray(idx * T, idx * T + T), i * T);
    mask.set(src.mask.subarray(idx * T, idx * T + T), i * T);
  });
  return { labels, mask };
}

/** A batch from an explicit seed (what workers run). */
export function makeBatchFromSeed(
  src: ImageSource,
  indices: number[],
  o: AugmentOptions,
  seed: number,
): Batch {
  const rng = new Rng(seed);
  const C = o.channels ?? 1, per = C * o.size * o.size;
  const { labels, mask } = gatherLabels(src, indices);
  const x = new Float32Array(indices.length * per);
  indices.forEach((idx, i) => {
    applyTransform(src.image(idx), src.size, sampleTransform(src.size, o, rng), o, x, i * per);
  });
  return { x, labels, mask, n: indices.length, channels: C, size: o.size, indices, seed };
}

/** Two independently augmented views per image (MoCo); view k may use other options. */
export function makeTwoViewBatchFromSeed(
  src: ImageSource,
  indices: number[],
  o: AugmentOptions,
  seed: number,
  ok: AugmentOptions = o,
): TwoViewBatch {
  if ((ok.channels ?? 1) !== (o.channels ?? 1) || ok.size !== o.size) {
    throw new Error("two-view batch: both views need the same size and channels");
  }
  const rng = new Rng(seed);
  const C = o.channels ?? 1, per = C * o.size * o.size;
  const { labels, mask } = gatherLabels(src, indices);
  const q = new Float32Array(indices.length * per), k = new Float32Array(indices.length * per);
  indices.forEach((idx, i) => {
    const img = src.image(idx);
    applyTransform(img, src.size, sampleTransform(src.size, o, rng), o, q, i * per);
    applyTransform(img, src.size, sampleTransform(src.size, ok, rng), ok, k, i * per);
  });
  return { q, k, labels, mask, n: indices.length, channels: C, size: o.size, indices, seed };
}

/** Batch of augmented images (N,C,H,W), labels and masks; draws one seed from rng. */
export function makeBatch(src: ImageSource, indices: number[], o: AugmentOptions, rng: Rng): Batch {
  return makeBatchFromSeed(src, indices, o, rng.nextU32());
}

/** Two-view (MoCo query/key) batch; draws one seed from rng. */
export function makeTwoViewBatch(
  src: ImageSource,
  indices: number[],
  o: AugmentOptions,
  rng: Rng,
  ok: AugmentOptions = o,
): TwoViewBatch {
  return makeTwoViewBatchFromSeed(src, indices, o, rng.nextU32(), ok);
}

/** Shuffled (or ordered) index batches over one epoch. */
export function epochBatches(
  indices: number[],
  batchSize: number,
  rng: Rng | null,
  dropLast = false,
): number[][] {
  if (!(batchSize >= 1)) throw new Error(`batch size must be >= 1, got ${batchSize}`);
  const order = rng ? rng.shuffle([...indices]) : [...indices];
  const out: number[][] = [];
  for (let s = 0; s < order.length; s += batchSize) {
    const b = order.slice(s, s + batchSize);
    if (dropLast && b.length < batchSize) break;
    out.push(b);
  }
  return out;
}
