/**
 * Fine-tuning a classifier from an initialisation, under one of the two
 * MoCo-CXR protocols:
 *  - linear: the backbone is frozen (eval-mode BN, no gradient, no optimizer
 *    state); its features are computed once without augmentation and only
 *    the linear head trains on them;
 *  - e2e: every layer trains, on augmented images.
 * Masked BCE-with-logits over the tasks (uncertain labels masked per policy),
 * Adam, validation AUC every `evalEvery` steps, the best-validation weights
 * kept (and optionally early stopping), test predictions from those weights.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import { backward, noGrad, Var } from "../model/autograd.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { linearHead } from "../model/classifier.ts";
import type { Module } from "../model/nn.ts";
import { loadStateDict, readState } from "../model/state.ts";
import type { TensorData } from "../model/safetensors.ts";
import { auc } from "../eval/auc.ts";
import { Rng } from "../util/rng.ts";
import { UserError } from "../util/cli.ts";
import { type BackboneName, buildBackbone } from "./backbones.ts";
import { Optimizer } from "./optimizer.ts";
import type { TrainOps } from "./train_ops.ts";
import { loadInitWeights } from "./weights.ts";
import { extractFeatures } from "./features.ts";
import type { LabelledSource } from "./views.ts";

export type Protocol = "linear" | "e2e";

export interface FinetuneConfig {
  backbone: BackboneName;
  inChannels: 1 | 3;
  imageSize: number;
  protocol: Protocol;
  /** "random" or a backbone safetensors file (ImageNet, or a MoCo run's backbone export). */
  init: string;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Optimisation steps (MoCo-CXR trains smaller fractions for more epochs: see stepsFor). */
  steps: number;
  evalEvery: number;
  /** Stop after this many evaluations without improvement (0 = never). */
  patience: number;
  seed: number;
}

export interface Predictions {
  tasks: string[];
  /** [n, tasks] */
  labels: Float32Array;
  mask: Float32Array;
  scores: Float32Array;
}

export interface FinetuneResult {
  bestValAuc: number;
  bestStep: number;
  test: Predictions;
  curve: { step: number; loss: number; val_auc?: number }[];
  net: ClassifierNet;
}

/** Steps for a training subset of n images: ~`epochs(n)` epochs, within [minSteps, maxSteps]. */
export function stepsFor(n: number, batch: number, minSteps: number, maxSteps: number): number {
  const epochs = n < 100 ? 60 : n < 1000 ? 20 : 8; // smaller fractions: more epochs
  return Math.max(minSteps, Math.min(maxSteps, Math.ceil((epochs * n) / batch)));
}

/** Mean AUC over the tasks that have both classes among the masked labels. */
export function meanAuc(p: Predictions): number {
  const T = p.tasks.length, n = p.labels.length / T;
  const aucs: number[] = [];
  for (let t = 0; t < T; t++) {
    const y: number[] = [], s: number[] = [];
    for (let i = 0; i < n; i++) {
      if (p.mask[i * T + t] > 0) {
        y.push(p.labels[i * T + t]);
        s.push(p.scores[i * T + t]);
      }
    }
    if (y.some((v) => v > 0) && y.some((v) => v === 0)) aucs.push(auc(y, s));
  }
  return aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : NaN;
}

async function snapshot(m: Module): Promise<Map<string, TensorData>> {
  return await readState(m);
}

/** Builds the classifier for a config: backbone from its init, a fresh head of `tasks` outputs. */
export async function buildClassifier(
  B: Backend,
  cfg: FinetuneConfig,
  tasks: number,
  backbone: (o: NetOptions) => ClassifierNet = (o) => buildBackbone(B, cfg.backbone, o),
): Promise<ClassifierNet> {
  const rng = new Rng(cfg.seed);
  const net = backbone({ inChannels: cfg.inChannels, seed: rng });
  if (cfg.init !== "random") await loadInitWeights(net, cfg.init);
  net.setHead(linearHead(B, net.featureDim, tasks, rng));
  return net;
}

/**
 * Frozen features scaled to zero mean and unit variance per dimension, with statistics of the
 * whole (unlabelled) training pool: the head then trains equally fast on every feature whatever
 * the backbone's scale (measured on the synthetic set, random init, all labels: test AUC
 * 0.616 → 0.655).
 */
export function standardize(
  f: { train: Float32Array; val: Float32Array; test: Float32Array },
  F: number,
): { train: Float32Array; val: Float32Array; test: Float32Array } {
  const n = f.train.length / F;
  const mu = new Float64Array(F), sd = new Float64Array(F);
  for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) mu[j] += f.train[i * F + j] / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < F; j++) sd[j] += (f.train[i * F + j] - mu[j]) ** 2 / n;
  }
  for (let j = 0; j < F; j++) sd[j] = Math.sqrt(sd[j]) + 1e-6;
  const apply = (x: Float32Array) => x.map((v, k) => (v - mu[k % F]) / sd[k % F]);
  return { train: apply(f.train), val: apply(f.val), test: apply(f.test) };
}

export interface FinetuneSets {
  train: LabelledSource;
  /** The label-fraction subset: indices into train. */
  trainIdx: number[];
  val: LabelledSource;
  test: LabelledSource;
  /** Precomputed frozen features for the linear protocol (shared across cells of one init). */
  features?: { train: Float32Array; val: Float32Array; test: Float32Array };
}

export async function finetune(
  B: Backend,
  ops: TrainOps,
  cfg: FinetuneConfig,
  sets: FinetuneSets,
  opts: {
    log?: (m: string) => void;
    onEval?: (step: number, valAuc: number, loss: number) => void;
    /** Backbone factory override (tests use a tiny network). */
    backbone?: (o: NetOptions) => ClassifierNet;
  } = {},
): Promise<FinetuneResult> {
  const { train, trainIdx, val, test } = sets;
  const tasks = train.tasks, T = tasks.length;
  if (trainIdx.length === 0) throw new UserError("the label-fraction subset is empty");
  const net = await buildClassifier(B, cfg, T, opts.backbone);
  const C = cfg.inChannels, S = cfg.imageSize;
  const linear = cfg.protocol === "linear";
  if (linear) {
    net.requiresGrad(false);
    net.head.requiresGrad(true);
    net.eval();
  } else net.train();
  const F = net.featureDim;
  const feats = linear
    ? standardize(
      sets.features ?? {
        train: await extractFeatures(B, net, train, S, C),
        val: await extractFeatures(B, net, val, S, C),
        test: await extractFeatures(B, net, test, S, C),
      },
      F,
    )
    : null;
  const trainable = linear ? net.head : net;
  const opt = new Optimizer(B, ops, trainable.namedParameters(), {
    kind: "adam",
    weightDecay: cfg.weightDecay,
  });

  /** Logits for rows of a set: from cached features (linear) or images. */
  const logitsOf = (
    set: LabelledSource,
    f: Float32Array | null,
    idx: number[],
    aug: Rng | null,
  ) => {
    if (f) {
      const x = new Float32Array(idx.length * F);
      idx.forEach((r, i) => x.set(f.subarray(r * F, (r + 1) * F), i * F));
      const xt = B.fromArray(x, [idx.length, F]);
      const out = net.head.forward(new Var(B, xt));
      return { out, input: xt };
    }
    const imgs = aug ? set.augmented(idx, aug) : set.images(idx);
    const xt = B.fromArray(imgs, [idx.length, C, S, S]);
    return { out: net.forward(new Var(B, xt)), input: xt };
  };

  const predict = async (set: LabelledSource, f: Float32Array | null): Promise<Predictions> => {
    if (!linear) net.eval();
    const scores = new Float32Array(set.count * T);
    for (let i = 0; i < set.count; i += 32) {
      const idx = Array.from({ length: Math.min(32, set.count - i) }, (_, j) => i + j);
      const { out, input } = noGrad(() => logitsOf(set, f, idx, null));
      const p = ops.sigmoid(out.value);
      scores.set(await B.read(p), i * T);
      B.dispose(p);
      out.dispose();
      B.dispose(input);
    }
    if (!linear) net.train();
    return { tasks, labels: set.labels, mask: set.mask, scores };
  };

  const gather = (src: Float32Array, idx: number[]) => {
    const out = new Float32Array(idx.length * T);
    idx.forEach((r, i) => out.set(src.subarray(r * T, (r + 1) * T), i * T));
    return out;
  };

  const rng = new Rng(cfg.seed ^ 0x51ed27);
  let order: number[] = [], pos = 0;
  let best = -Infinity, bestStep = 0, bestState: Map<string, TensorData> | null = null;
  let sinceBest = 0, lossSum = 0, lossCount = 0;
  const curve: FinetuneResult["curve"] = [];
  for (let step = 1; step <= cfg.steps; step++) {
    if (pos + cfg.batchSize > order.length) {
      // Reshuffle; subsets smaller than a batch are repeated to fill it.
      order = [];
      while (order.length < cfg.batchSize) order.push(...rng.shuffle([...trainIdx]));
      pos = 0;
    }
    const idx = order.slice(pos, pos + cfg.batchSize);
    pos += cfg.batchSize;
    const { out, input } = logitsOf(train, feats?.train ?? null, idx, linear ? null : rng);
    const y: BTensor = B.fromArray(gather(train.labels, idx), [idx.length, T]);
    const m: BTensor = B.fromArray(gather(train.mask, idx), [idx.length, T]);
    const { loss, dlogits } = ops.bceWithLogits(out.value, y, m);
    backward(out, dlogits);
    out.dispose();
    opt.apply(cfg.lr);
    trainable.zeroGrad();
    for (const t of [input, y, m]) B.dispose(t);
    const l = (await B.read(loss))[0];
    B.dispose(loss);
    if (!Number.isFinite(l)) {
      throw new UserError(
        `fine-tuning loss became ${l} at step ${step}; lower --lr or check the data`,
      );
    }
    lossSum += l;
    lossCount++;
    if (step % cfg.evalEvery === 0 || step === cfg.steps) {
      const v = meanAuc(await predict(val, feats?.val ?? null));
      const meanLoss = lossSum / lossCount;
      lossSum = lossCount = 0;
      curve.push({ step, loss: meanLoss, val_auc: v });
      opts.onEval?.(step, v, meanLoss);
      if (v > best || bestState === null) {
        best = Number.isNaN(v) ? best : v;
        bestStep = step;
        bestState = await snapshot(trainable);
        sinceBest = 0;
      } else if (cfg.patience > 0 && ++sinceBest >= cfg.patience) {
        opts.log?.(`early stop at step ${step}: no validation gain in ${cfg.patience} evaluations`);
        break;
      }
    }
  }
  // Only the trained part is kept and restored: for a linear probe that is
  // the head (reading the whole backbone back was most of a linear cell's time).
  if (bestState) loadStateDict(trainable, bestState);
  const testPred = await predict(test, feats?.test ?? null);
  opt.dispose();
  return { bestValAuc: best, bestStep, test: testPred, curve, net };
}
