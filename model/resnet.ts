/**
 * ResNet-18/34/50 exactly as torchvision.models.resnet: same module tree and
 * state_dict keys, stride on the 3×3 conv of the bottleneck (v1.5), default
 * initialisation (kaiming_normal_ fan_out/relu for convs, BN γ=1 β=0, the fc
 * layer with nn.Linear's default), zero_init_residual=False.
 */
import type { Backend } from "./backend.ts";
import type { Var } from "./autograd.ts";
import * as ops from "./ops.ts";
import {
  BatchNorm2d,
  Conv2d,
  type Ctx,
  GlobalAvgPool,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
} from "./nn.ts";
import { type Init, kaimingNormal, zerosInit } from "./init.ts";
import { ClassifierNet, linearHead, type NetOptions, rngOf } from "./classifier.ts";

function conv(B: Backend, init: Init, inC: number, outC: number, k: number, stride = 1): Conv2d {
  return new Conv2d(B, inC, outC, k, { stride, pad: (k - 1) >> 1, init });
}

/** Releases a and returns b (for chains of single-use intermediates). */
function then(a: Var, b: Var): Var {
  a.release();
  return b;
}

abstract class Block extends Module {
  downsample: Sequential | null = null;

  addDownsample(ds: Sequential): void {
    this.downsample = this.child("downsample", ds);
  }

  protected shortcut(x: Var, ctx: Ctx): Var {
    return this.downsample ? this.downsample.forward(x, ctx) : x;
  }

  /** relu(main + shortcut), releasing both. */
  protected join(main: Var, x: Var, ctx: Ctx): Var {
    const id = this.shortcut(x, ctx);
    const y = ops.addRelu(main, id);
    main.release();
    if (id !== x) id.release();
    return y;
  }
}

export class BasicBlock extends Block {
  static expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;

  constructor(B: Backend, init: Init, inC: number, planes: number, stride: number) {
    super(B);
    this.conv1 = this.child("conv1", conv(B, init, inC, planes, 3, stride));
    this.bn1 = this.child("bn1", new BatchNorm2d(B, planes));
    this.child("relu", new ReLU(B));
    this.conv2 = this.child("conv2", conv(B, init, planes, planes, 3));
    this.bn2 = this.child("bn2", new BatchNorm2d(B, planes));
  }

  forward(x: Var, ctx: Ctx = {}): Var {
    let h = this.conv1.forward(x);
    h = then(h, this.bn1.forward(h, ctx, true));
    h = then(h, this.conv2.forward(h));
    h = then(h, this.bn2.forward(h, ctx));
    return this.join(h, x, ctx);
  }
}

export class Bottleneck extends Block {
  static expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;

  constructor(B: Backend, init: Init, inC: number, planes: number, stride: number) {
    super(B);
    this.conv1 = this.child("conv1", conv(B, init, inC, planes, 1));
    this.bn1 = this.child("bn1", new BatchNorm2d(B, planes));
    this.conv2 = this.child("conv2", conv(B, init, planes, planes, 3, stride));
    this.bn2 = this.child("bn2", new BatchNorm2d(B, planes));
    this.conv3 = this.child("conv3", conv(B, init, planes, planes * 4, 1));
    this.bn3 = this.child("bn3", new BatchNorm2d(B, planes * 4));
    this.child("relu", new ReLU(B));
  }

  forward(x: Var, ctx: Ctx = {}): Var {
    let h = this.conv1.forward(x);
    h = then(h, this.bn1.forward(h, ctx, true));
    h = then(h, this.conv2.forward(h));
    h = then(h, this.bn2.forward(h, ctx, true));
    h = then(h, this.conv3.forward(h));
    h = then(h, this.bn3.forward(h, ctx));
    return this.join(h, x, ctx);
  }
}

export type ResNetDepth = 18 | 34 | 50;

const CONFIGS: Record<ResNetDepth, { bottleneck: boolean; layers: number[] }> = {
  18: { bottleneck: false, layers: [2, 2, 2, 2] },
  34: { bottleneck: false, layers: [3, 4, 6, 3] },
  50: { bottleneck: true, layers: [3, 4, 6, 3] },
};

export class ResNet extends ClassifierNet {
  readonly featureDim: number;
  readonly headName = "fc";
  readonly stemKey = "conv1.weight";
  readonly depth: ResNetDepth;
  private stem: Sequential;
  private layers: Sequential[];

  constructor(B: Backend, depth: ResNetDepth, o: NetOptions = {}) {
    super(B);
    const cfg = CONFIGS[depth];
    if (!cfg) throw new Error(`ResNet depth must be 18, 34 or 50, got ${depth}`);
    this.depth = depth;
    const rng = rngOf(o);
    const init = rng ? kaimingNormal(rng, "fan_out") : zerosInit;
    const inChannels = o.inChannels ?? 3;
    const expansion = cfg.bottleneck ? 4 : 1;
    const conv1 = this.child(
      "conv1",
      new Conv2d(B, inChannels, 64, 7, { stride: 2, pad: 3, init }),
    );
    const bn1 = this.child("bn1", new BatchNorm2d(B, 64));
    const relu = this.child("relu", new ReLU(B));
    const maxpool = this.child("maxpool", new MaxPool2d(B, 3, 2, 1));
    // Not registered: a view that runs the stem with BN+ReLU fused.
    this.stem = new Sequential(B, [conv1, bn1, relu, maxpool]);
    let inC = 64;
    this.layers = [64, 128, 256, 512].map((planes, li) => {
      const blocks: Module[] = [];
      for (let b = 0; b < cfg.layers[li]; b++) {
        const stride = b === 0 && li > 0 ? 2 : 1;
        const block = cfg.bottleneck
          ? new Bottleneck(B, init, inC, planes, stride)
          : new BasicBlock(B, init, inC, planes, stride);
        if (b === 0 && (stride !== 1 || inC !== planes * expansion)) {
          block.addDownsample(
            new Sequential(B, [
              conv(B, init, inC, planes * expansion, 1, stride),
              new BatchNorm2d(B, planes * expansion),
            ]),
          );
        }
        inC = planes * expansion;
        blocks.push(block);
      }
      return this.child(`layer${li + 1}`, new Sequential(B, blocks));
    });
    this.child("avgpool", new GlobalAvgPool(B));
    this.featureDim = 512 * expansion;
    this.child("fc", linearHead(B, this.featureDim, o.numClasses ?? 1000, rng));
  }

  featureMap(x: Var, ctx: Ctx = {}): Var {
    let h = this.stem.forward(x, ctx);
    this.layers.forEach((layer, i) => {
      h = then(h, layer.forward(h, ctx));
      if (ctx.taps && i < this.layers.length - 1) {
        h.requiresGrad = true; // before the next stage records: the gradient must reach it
        h.retainGrad = true;
        ctx.taps.push({ name: `layer${i + 1}`, map: h.retain() });
      }
    });
    return h;
  }
}

export const resnet18 = (B: Backend, o?: NetOptions) => new ResNet(B, 18, o);
export const resnet34 = (B: Backend, o?: NetOptions) => new ResNet(B, 34, o);
export const resnet50 = (B: Backend, o?: NetOptions) => new ResNet(B, 50, o);
