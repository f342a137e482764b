/**
 * DenseNet-121 exactly as torchvision.models.densenet121: growth 32, blocks
 * 6-12-24-16, bn_size 4, compression 0.5, 64 initial features, norm5 then
 * ReLU and global pooling; kaiming_normal_ (fan_in) convs, BN γ=1 β=0,
 * classifier with nn.Linear's default weight and zero bias.
 *
 * Concatenation: each dense layer's input is torch.cat([x, f1, …, f_i], 1)
 * (torchvision's memory_efficient=False semantics), but not built per layer: a
 * block writes x and then each new feature once into one feature map of all its
 * channels (Backend.channelStore), and layer i reads the channel prefix that
 * holds [x, f1, …, f_i] in place (ops.StoredConcat). Only the layer's first batch
 * norm reads that input, and batch norm reads a strided prefix where it lies
 * (kernels/batchnorm*.ts). A block then copies C₀ + L·growth channels once
 * instead of Σᵢ (C₀ + i·growth), and keeps one feature map alive for the backward
 * instead of every layer's concatenation; the backward sums the layers' input
 * gradients into one gradient store, one add a layer (ops.StoredConcat), with
 * concat's bits. A DenseNet-121 MoCo step at 224 px, batch 64, f32 (hardware dry
 * runs, bench/dispatch_audit.ts and bench/memory.ts): 4,486 dispatches → 2,951;
 * the forward's copies move 1.5 GB instead of 10.4; the pool 9.50 GiB instead of
 * 11.88 (f16: 4.93 instead of 6.12).
 */
import type { Backend } from "./backend.ts";
import type { Var } from "./autograd.ts";
import * as ops from "./ops.ts";
import {
  AvgPool2d,
  BatchNorm2d,
  Conv2d,
  type Ctx,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
} from "./nn.ts";
import { type Init, kaimingNormal, zerosInit } from "./init.ts";
import { ClassifierNet, linearHead, type NetOptions, rngOf } from "./classifier.ts";

export class DenseLayer extends Module {
  norm1: BatchNorm2d;
  conv1: Conv2d;
  norm2: BatchNorm2d;
  conv2: Conv2d;

  constructor(B: Backend, init: Init, inC: number, growth: number, bnSize: number) {
    super(B);
    this.norm1 = this.child("norm1", new BatchNorm2d(B, inC));
    this.child("relu1", new ReLU(B));
    this.conv1 = this.child("conv1", new Conv2d(B, inC, bnSize * growth, 1, { init }));
    this.norm2 = this.child("norm2", new BatchNorm2d(B, bnSize * growth));
    this.child("relu2", new ReLU(B));
    this.conv2 = this.child("conv2", new Conv2d(B, bnSize * growth, growth, 3, { pad: 1, init }));
  }

  /** x: the concatenated features so far; returns the `growth` new channels. */
  forward(x: Var, ctx: Ctx = {}): Var {
    const a = this.norm1.forward(x, ctx, true);
    const b = this.conv1.forward(a);
    a.release();
    const c = this.norm2.forward(b, ctx, true);
    b.release();
    const d = this.conv2.forward(c);
    c.release();
    return d;
  }
}

export class DenseBlock extends Module {
  readonly layers: DenseLayer[] = [];

  constructor(B: Backend, init: Init, n: number, inC: number, growth: number, bnSize: number) {
    super(B);
    for (let i = 0; i < n; i++) {
      const layer = new DenseLayer(B, init, inC + i * growth, growth, bnSize);
      this.layers.push(this.child(`denselayer${i + 1}`, layer));
    }
  }

  forward(x: Var, ctx: Ctx = {}): Var {
    const B = this.backend;
    const [N, C0, ...plane] = x.shape;
    const C = C0 + this.layers.reduce((s, l) => s + l.conv2.weight.shape[0], 0);
    const store = B.channelStore([N, C, ...plane], B.dtype(x.value));
    const feats: Var[] = [x];
    try {
      B.copyChannelsInto(store, x.value, 0);
      const cat = new ops.StoredConcat(store);
      let c = C0;
      for (const layer of this.layers) {
        const input = cat.concat(feats);
        const f = layer.forward(input, ctx);
        input.release();
        B.copyChannelsInto(store, f.value, c);
        c += f.shape[1];
        feats.push(f);
      }
      return cat.concat(feats);
    } finally {
      for (const f of feats.slice(1)) f.release();
      B.dispose(store); // the views made above hold it while they live
    }
  }
}

export class Transition extends Sequential {
  constructor(B: Backend, init: Init, inC: number, outC: number) {
    super(B, [
      ["norm", new BatchNorm2d(B, inC)],
      ["relu", new ReLU(B)],
      ["conv", new Conv2d(B, inC, outC, 1, { init })],
      ["pool", new AvgPool2d(B, 2, 2)],
    ]);
  }
}

export interface DenseNetConfig {
  growth: number;
  blocks: number[];
  initFeatures: number;
  bnSize: number;
}

export class DenseNet extends ClassifierNet {
  readonly featureDim: number;
  readonly headName = "classifier";
  readonly stemKey = "features.conv0.weight";
  /** features plus the final ReLU, unregistered: Sequential fuses norm5 with it. */
  private run: Sequential;

  constructor(B: Backend, cfg: DenseNetConfig, o: NetOptions = {}) {
    super(B);
    const rng = rngOf(o);
    const init = rng ? kaimingNormal(rng, "fan_in") : zerosInit;
    const { growth, bnSize } = cfg;
    const mods: [string, Module][] = [
      ["conv0", new Conv2d(B, o.inChannels ?? 3, cfg.initFeatures, 7, { stride: 2, pad: 3, init })],
      ["norm0", new BatchNorm2d(B, cfg.initFeatures)],
      ["relu0", new ReLU(B)],
      ["pool0", new MaxPool2d(B, 3, 2, 1)],
    ];
    let c = cfg.initFeatures;
    cfg.blocks.forEach((n, i) => {
      mods.push([`denseblock${i + 1}`, new DenseBlock(B, init, n, c, growth, bnSize)]);
      c += n * growth;
      if (i !== cfg.blocks.length - 1) {
        mods.push([`transition${i + 1}`, new Transition(B, init, c, c >> 1)]);
        c >>= 1;
      }
    });
    mods.push(["norm5", new BatchNorm2d(B, c)]);
    this.child("features", new Sequential(B, mods));
    this.run = new Sequential(B, [...mods, ["relu5", new ReLU(B)]]);
    this.featureDim = c;
    this.child("classifier", linearHead(B, c, o.numClasses ?? 1000, rng, true));
  }

  featureMap(x: Var, ctx: Ctx = {}): Var {
    return this.run.forward(x, ctx);
  }
}

export const densenet121 = (B: Backend, o?: NetOptions) =>
  new DenseNet(B, { growth: 32, blocks: [6, 12, 24, 16], initFeatures: 64, bnSize: 4 }, o);
