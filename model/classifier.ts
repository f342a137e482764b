/**
 * What ResNet and DenseNet share: a backbone that ends in a feature map, a
 * global average pool to [N, featureDim], and a replaceable head registered
 * under torchvision's name (`fc` or `classifier`).
 */
import type { Backend } from "./backend.ts";
import type { Var } from "./autograd.ts";
import * as ops from "./ops.ts";
import { type Ctx, Linear, Module, ReLU, Sequential } from "./nn.ts";
import { linearDefault } from "./init.ts";
import { Rng } from "../util/rng.ts";

/** How a backbone is built: head size, input channels, initialisation. */
export interface NetOptions {
  /** Classifier outputs (torchvision's default 1000). */
  numClasses?: number;
  /** Stem input channels: 3 (RGB) or 1 (grayscale; a 3-channel stem loads summed over RGB). */
  inChannels?: 1 | 3;
  /** Seed or generator for the default initialisation. */
  seed?: number | Rng;
  /** false: leave weights at zero (to be loaded; skips drawing ~25M normals). */
  init?: boolean;
}

export function rngOf(o: NetOptions): Rng | null {
  if (o.init === false) return null;
  return o.seed instanceof Rng ? o.seed : new Rng(o.seed ?? 0);
}

/**
 * A backbone ending in a feature map, global average pooling and a replaceable head (ResNet,
 * DenseNet).
 */
export abstract class ClassifierNet extends Module {
  /** Features after pooling (the head's input size). */
  abstract readonly featureDim: number;
  /** torchvision's name of the head: "fc" (ResNet) or "classifier" (DenseNet). */
  abstract readonly headName: string;
  /** State key of the stem convolution's weight (for the 3→1-channel load rule). */
  abstract readonly stemKey: string;

  /** The last feature map [N, F, h, w], after the final ReLU, before pooling. */
  abstract featureMap(x: Var, ctx?: Ctx): Var;

  /** The head module (registered under headName). */
  get head(): Module {
    const h = this.children().find(([n]) => n === this.headName);
    if (!h) throw new Error(`no head "${this.headName}"`);
    return h[1];
  }

  /** Replaces the head with any module taking [N, featureDim]. */
  setHead(m: Module): Module {
    return this.replaceChild(this.headName, m);
  }

  /** Backbone without head: [N, featureDim], f32 (with ctx.precision "f16" the inside is f16). */
  features(x: Var, ctx: Ctx = {}): Var {
    const half = ctx.precision === "f16";
    const xin = half ? ops.cast(x, "f16") : x;
    const map = this.featureMap(xin, ctx);
    if (half) xin.release();
    const f = ops.globalAvgPool(map);
    map.release();
    if (!half) return f;
    const f32 = ops.cast(f, "f32");
    f.release();
    return f32;
  }

  /** Images [N, C, S, S] to head outputs [N, outputs]. */
  forward(x: Var, ctx: Ctx = {}): Var {
    const f = this.features(x, ctx);
    const out = this.head.forward(f, ctx);
    f.release();
    return out;
  }

  /**
   * forward() that also returns the last feature map with its gradient kept
   * (Grad-CAM): after backward, `featureMap.grad` holds dL/dmap. The map takes
   * part in the gradient even when the backbone is frozen. Dispose it when done.
   */
  forwardWithMap(x: Var, ctx: Ctx = {}): { out: Var; featureMap: Var } {
    const map = this.featureMap(x, ctx);
    map.requiresGrad = true;
    map.retainGrad = true;
    const f = ops.globalAvgPool(map);
    const out = this.head.forward(f, ctx);
    f.release();
    return { out, featureMap: map };
  }
}

/** torchvision-style Linear head with nn.Linear's default initialisation. */
export function linearHead(
  backend: Backend,
  inF: number,
  outF: number,
  rng: Rng | null,
  zeroBias = false,
): Linear {
  const r = rng ?? new Rng(0);
  const init = linearDefault(r, inF);
  if (zeroBias || !rng) init.bias = (s) => new Float32Array(s[0]);
  if (!rng) init.weight = (s) => new Float32Array(s[0] * s[1]);
  return new Linear(backend, inF, outF, { init });
}

/** MoCo v2's projection head F → hidden → out (Linear, ReLU, Linear), keys `0.*` and `2.*`. */
export function mlpHead(
  backend: Backend,
  inF: number,
  hidden: number,
  outF: number,
  rng: Rng | null,
): Sequential {
  return new Sequential(backend, [
    linearHead(backend, inF, hidden, rng),
    new ReLU(backend),
    linearHead(backend, hidden, outF, rng),
  ]);
}
