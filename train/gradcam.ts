/**
 * Grad-CAM (Selvaraju et al.): for the positive class of task t, the
 * channel weights are the spatial means of d logit_t / d A over the last
 * feature map A; the map is ReLU(Σ_c w_c A_c), upsampled bilinearly to the
 * image and scaled to [0, 1] per image.
 * The last map of a ResNet is 1×1 at 32 px (nothing to localise), so the map used is the
 * deepest stage at least `minSide` on a side (ResNet-18 at 32 px: layer2, 4×4); Grad-CAM works
 * on any convolutional layer, deeper ones being more class-specific and coarser.
 */
import type { Backend } from "../model/backend.ts";
import { backward, Var } from "../model/autograd.ts";
import type { ClassifierNet } from "../model/classifier.ts";
import type { ImageBatch } from "./sources.ts";

/** Grad-CAM heatmaps of a batch of images. */
export interface CamResult {
  /** [N, S, S] heatmaps in [0, 1]. */
  maps: Float32Array[];
  /** The model's positive-class probability per image. */
  probs: number[];
  /** Which feature map the heatmaps come from, e.g. "layer2 (4×4)". */
  layer: string;
}

function upsample(src: Float32Array, h: number, w: number, S: number): Float32Array {
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const fy = Math.min(Math.max(((y + 0.5) * h) / S - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), ty = fy - y0;
    for (let x = 0; x < S; x++) {
      const fx = Math.min(Math.max(((x + 0.5) * w) / S - 0.5, 0), w - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), tx = fx - x0;
      const top = src[y0 * w + x0] * (1 - tx) + src[y0 * w + x1] * tx;
      const bot = src[y1 * w + x0] * (1 - tx) + src[y1 * w + x1] * tx;
      out[y * S + x] = top * (1 - ty) + bot * ty;
    }
  }
  return out;
}

/**
 * Grad-CAM of `task` for n images [n, channels, S, S]: heatmaps from the last feature map at least
 * minSide wide, upsampled to S × S.
 */
export async function gradCam(
  B: Backend,
  net: ClassifierNet,
  images: ImageBatch,
  task = 0,
  minSide = 4,
): Promise<CamResult> {
  const [n, , S] = images.shape;
  const wasTraining = net.training;
  net.eval();
  const x = B.fromArray(images.data, images.shape);
  const taps: { name: string; map: Var }[] = [];
  const { out, featureMap } = net.forwardWithMap(new Var(B, x), { taps });
  const T = out.shape[1];
  const logits = await out.read();
  const seed = new Float32Array(n * T);
  for (let i = 0; i < n; i++) seed[i * T + task] = 1;
  backward(out, B.fromArray(seed, [n, T]));
  const stages = [...taps, { name: "last", map: featureMap }];
  const side = (v: Var) => Math.min(v.shape[2], v.shape[3]);
  const chosen = [...stages].reverse().find((s) => side(s.map) >= minSide) ?? stages.at(-1)!;
  const [, F, h, w] = chosen.map.shape;
  const A = await chosen.map.read();
  const G = await B.read(chosen.map.grad!);
  for (const s of stages) s.map.dispose();
  out.dispose();
  net.zeroGrad();
  B.dispose(x);
  net.train(wasTraining);
  const maps: Float32Array[] = [], probs: number[] = [];
  const hw = h * w;
  for (let i = 0; i < n; i++) {
    const cam = new Float32Array(hw);
    for (let c = 0; c < F; c++) {
      const base = (i * F + c) * hw;
      let wc = 0;
      for (let j = 0; j < hw; j++) wc += G[base + j];
      wc /= hw;
      for (let j = 0; j < hw; j++) cam[j] += wc * A[base + j];
    }
    for (let j = 0; j < hw; j++) cam[j] = Math.max(cam[j], 0);
    const up = upsample(cam, h, w, S);
    let max = 0;
    for (const v of up) max = Math.max(max, v);
    if (max > 0) { for (let j = 0; j < up.length; j++) up[j] /= max; }
    maps.push(up);
    probs.push(1 / (1 + Math.exp(-logits[i * T + task])));
  }
  return { maps, probs, layer: `${chosen.name} (${h}×${w})` };
}
