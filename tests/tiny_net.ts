/** A two-conv backbone for training-loop tests: the loop is under test, and CPU time is short. */
import type { Backend } from "../model/backend.ts";
import type { Var } from "../model/autograd.ts";
import { ClassifierNet, type NetOptions, rngOf } from "../model/classifier.ts";
import { BatchNorm2d, Conv2d, type Ctx, Identity } from "../model/nn.ts";
import { kaimingNormal, zerosInit } from "../model/init.ts";
import type { MocoConfig } from "../train/moco.ts";
import type { PretrainConfig } from "../train/pretrain.ts";

/** MoCo settings for TinyNet steps: 16-d features, a queue of 24 (wraps on the 3rd batch of 8). */
export const TINY_MOCO: MocoConfig = {
  backbone: "resnet18", // replaced by TinyNet through the backbone factory
  inChannels: 1,
  dim: 16,
  queueSize: 24,
  temperature: 0.2,
  momentum: 0.9,
  bnGroups: 2,
};

/** A short pretraining of TinyNet on 16-px images: batch 16, queue 32, Adam at 3e-3. */
export const tinyPretrainConfig = (epochs: number, precision?: "f16"): PretrainConfig => ({
  moco: { ...TINY_MOCO, queueSize: 32, ...(precision ? { precision } : {}) },
  imageSize: 16,
  batchSize: 16,
  epochs,
  optimizer: { kind: "adam", weightDecay: 1e-4 },
  lr: 3e-3,
  schedule: { kind: "constant" },
  seed: 3,
  ckptEvery: 2,
  monitorEvery: 0,
  init: "random",
  augment: "mococxr",
});

export class TinyNet extends ClassifierNet {
  readonly featureDim = 12;
  readonly headName = "fc";
  readonly stemKey = "conv1.weight";
  private convs: Conv2d[];
  private bns: BatchNorm2d[];
  constructor(B: Backend, o: NetOptions) {
    super(B);
    const r = rngOf(o);
    const init = r ? kaimingNormal(r, "fan_out") : zerosInit;
    const c1 = this.child("conv1", new Conv2d(B, 1, 6, 3, { stride: 2, pad: 1, init }));
    const b1 = this.child("bn1", new BatchNorm2d(B, 6));
    const c2 = this.child("conv2", new Conv2d(B, 6, 12, 3, { stride: 2, pad: 1, init }));
    const b2 = this.child("bn2", new BatchNorm2d(B, 12));
    this.child("fc", new Identity(B));
    this.convs = [c1, c2];
    this.bns = [b1, b2];
  }
  featureMap(x: Var, ctx: Ctx = {}): Var {
    let h = x;
    for (let i = 0; i < 2; i++) {
      const c = this.convs[i].forward(h);
      if (h !== x) h.release();
      h = this.bns[i].forward(c, ctx, true);
      c.release();
    }
    return h;
  }
}
