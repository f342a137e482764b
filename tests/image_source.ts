/** In-memory uint8 image sets (what the image cache holds) and MoCo sources over them. */
import { type AugmentOptions, type ImageSource, makeTwoViewBatch } from "../data/augment.ts";
import { DeviceTwoViews } from "../data/augment_device.ts";
import { imageBatch, type LabelledSource, type TwoViewSource } from "../train/sources.ts";
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

/** Each image: a bright disc at its own position; a view jitters it by ±1 px and adds noise. */
export function discSource(n: number, nanFromCall = Infinity, S = 16): TwoViewSource {
  const centers = Array.from({ length: n }, (_, i) => {
    const r = new Rng(1000 + i);
    return [3 + r.uniform() * 10, 3 + r.uniform() * 10, 1.5 + r.uniform() * 2.5];
  });
  let calls = 0;
  const view = (i: number, rng: Rng, out: Float32Array, off: number) => {
    const [cx, cy, rad] = centers[i];
    const dx = rng.int(3) - 1, dy = rng.int(3) - 1;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const d = Math.hypot(x - cx - dx, y - cy - dy);
        out[off + y * S + x] = (d < rad ? 1 : -0.5) + 0.3 * rng.normal();
      }
    }
  };
  return {
    count: n,
    twoViews(idx, rng) {
      const xq = new Float32Array(idx.length * S * S), xk = new Float32Array(idx.length * S * S);
      idx.forEach((i, j) => {
        view(i, rng, xq, j * S * S);
        view(i, rng, xk, j * S * S);
      });
      if (++calls >= nanFromCall) xq.fill(NaN);
      return { xq: imageBatch(xq, idx.length, 1, S), xk: imageBatch(xk, idx.length, 1, S) };
    },
  };
}

/**
 * n labelled images of side S: a third hold a bright disc (positive). `images` adds a fixed
 * pattern, `augmented` fresh noise from its generator (fine-tuning's batches, the kNN monitor's sets).
 */
export function labelledDiscs(n: number, seed: number, S = 16): LabelledSource {
  const r = new Rng(seed);
  const items = Array.from({ length: n }, (_, i) => ({
    pos: i % 3 === 0,
    cx: 4 + r.uniform() * 8,
    cy: 4 + r.uniform() * 8,
  }));
  const draw = (idx: number[], rng: Rng | null) => {
    const out = new Float32Array(idx.length * S * S);
    idx.forEach((i, j) => {
      const it = items[i];
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) {
          const d = Math.hypot(x - it.cx, y - it.cy);
          const noise = rng ? 0.3 * rng.normal() : 0.3 * Math.sin(17 * x + 31 * y + i);
          out[j * S * S + y * S + x] = (it.pos && d < 2.5 ? 1.5 : 0) + noise;
        }
      }
    });
    return out;
  };
  return {
    count: n,
    tasks: ["Disc"],
    labels: Float32Array.from(items, (it) => (it.pos ? 1 : 0)),
    mask: new Float32Array(n).fill(1),
    ids: items.map((_, i) => `img${i}`),
    images: (idx) => imageBatch(draw(idx, null), idx.length, 1, S),
    augmented: (idx, rng) => imageBatch(draw(idx, rng), idx.length, 1, S),
  };
}
