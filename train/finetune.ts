/**
 * Fine-tuning a classifier from an initialisation, under one of the two
 * MoCo-CXR protocols:
 *  - linear: the backbone is frozen; its features are computed once without
 *    augmentation (eval-mode BN), standardised, and an L2-regularised logistic
 *    regression per task is fitted to convergence along a penalty path, the
 *    penalty chosen by validation AUC (train/linear_protocol.ts);
 *  - e2e: every layer trains, on augmented images: masked BCE-with-logits over
 *    the tasks (uncertain labels masked per policy), Adam, validation AUC every
 *    `evalEvery` steps, the best-validation weights kept (and optionally early
 *    stopping), test predictions from those weights. When validation never
 *    gives an AUC (one class in it), the last weights are kept, and marked so
 *    (FinetuneResult.keptBy "last").
 *
 * End-to-end batches are always full (`batchSize` rows): the subset is shuffled,
 * cut into consecutive batches, and a new shuffle starts when fewer than
 * `batchSize` rows remain, so those rows (n mod batchSize of them) are skipped
 * for that pass; a subset smaller than a batch is repeated (in several
 * shuffles) to fill one. An "epoch" (train/experiment.ts e2eSchedule) is
 * ceil(n / batchSize) such steps: ceil(n/B)·B draws, which is n images only
 * when B divides n, and can present an image twice or not at all in it.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import { backward, noGrad, Var } from "../model/autograd.ts";
import { bceWithLogits } from "../model/ops.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { linearHead } from "../model/classifier.ts";
import type { Module } from "../model/nn.ts";
import { loadStateDict, readState } from "../model/state.ts";
import type { TensorData } from "../model/safetensors.ts";
import { auc } from "../eval/auc.ts";
import { Rng } from "../util/rng.ts";
import { UserError } from "../util/user_error.ts";
import { TrainingDivergedError } from "./run_errors.ts";
import { type BackboneName, buildBackbone } from "./backbones.ts";
import { Optimizer } from "./optimizer.ts";
import type { TrainOps } from "./train_ops.ts";
import { loadInitWeights } from "./weights.ts";
import { evalBatches, extractFeatures } from "./features.ts";
import type { LabelledSource } from "./sources.ts";
import { type FeatureSets, linearProtocol } from "./linear_protocol.ts";
import { DEFAULT_C_GRID } from "./logistic_probe.ts";

/**
 * End-to-end steps between reads of their losses (and before every evaluation): a read costs a
 * wait of ~10-13 ms through Deno, longer than a small fine-tuning step on a GPU, and a card left
 * idle meanwhile lowers its clock (an H200: 345 MHz, session 11).
 */
export const LOSS_READ_EVERY = 10;

/** Fine-tuning protocol: a linear probe on frozen features, or end-to-end training. */
export type Protocol = "linear" | "e2e";

/** One fine-tuning run: backbone and initialisation, protocol, optimisation. */
export interface FinetuneConfig {
  /** Backbone architecture. */
  backbone: BackboneName;
  /** Model input channels. */
  inChannels: 1 | 3;
  /** Input side in pixels. */
  imageSize: number;
  /** Linear probe or end to end. */
  protocol: Protocol;
  /** "random" or a backbone safetensors file (ImageNet, or a MoCo run's backbone export). */
  init: string;
  /** What `init` is, for messages ("ImageNet weights", "MoCo backbone"; default "init weights"). */
  initLabel?: string;
  /** End-to-end batch size. */
  batchSize: number;
  /** End-to-end learning rate (Adam). */
  lr: number;
  /** End-to-end weight decay. */
  weightDecay: number;
  /** Optimisation steps (MoCo-CXR trains smaller fractions for more epochs: see stepsFor). */
  steps: number;
  /** Validation AUC every this many steps. */
  evalEvery: number;
  /** Stop after this many evaluations without improvement (0 = never). */
  patience: number;
  /** Seed of the head's initialisation and of the batches. */
  seed: number;
  /**
   * Linear protocol: the inverse L2 penalties C tried (default DEFAULT_C_GRID); batchSize, lr,
   * weightDecay, steps, evalEvery and patience apply to end-to-end only.
   */
  penaltyGrid?: number[];
  /**
   * Linear protocol: L-BFGS iteration cap per C (default 5000, train/logistic_probe.ts); tests
   * force a tiny one to see unconverged points reported.
   */
  probeMaxIter?: number;
  /**
   * End-to-end: the task whose validation AUC selects the kept weights (default: the mean over
   * tasks). The experiment reports task 0 and selects on it, as the linear protocol's penalty is
   * chosen per task.
   */
  selectTask?: number;
}

/** Test-set labels and scores of a fine-tuned model. */
export interface Predictions {
  /** Task names, one column each. */
  tasks: string[];
  /** [n, tasks] */
  labels: Float32Array;
  /** [n, tasks]: 1 where the label counts. */
  mask: Float32Array;
  /** [n, tasks] predicted probabilities. */
  scores: Float32Array;
}

/** What a fine-tuning run gives: the kept network, its test predictions and its training curve. */
export interface FinetuneResult {
  /** Validation AUC of the kept weights (mean over tasks; NaN when validation cannot rank). */
  bestValAuc: number;
  /** End-to-end: the step whose weights were kept; linear: task 0's chosen point on the path (1-based). */
  bestStep: number;
  /**
   * End-to-end: how the kept weights were chosen: "validation-auc" (the best evaluation), or
   * "last" (validation never gave an AUC, e.g. one class in it: the last evaluation's weights).
   */
  keptBy?: "validation-auc" | "last";
  /**
   * Linear protocol: the chosen inverse penalty C per task, and how it was chosen; `unconverged`:
   * per task, how many points of the path stopped before L-BFGS converged (iteration cap, or no
   * representable decrease).
   */
  penalty?: { C: number[]; chosenBy: string[]; grid: number[]; unconverged: number[] };
  /** The kept network's test predictions. */
  test: Predictions;
  /**
   * End-to-end: per evaluation; linear: per C on the penalty path (step = its 1-based position;
   * `converged`: every task's fit at that C converged).
   */
  curve: {
    step: number;
    loss: number;
    val_auc?: number;
    C?: number;
    iterations?: number;
    converged?: boolean;
  }[];
  /**
   * The kept network. The caller disposes it, except a linear run on given features: that is
   * `sets.features.net` itself, its head set to the probe (the caller owns it as before).
   */
  net: ClassifierNet;
}

/** Steps for a training subset of n images: ~`epochs(n)` epochs, within [minSteps, maxSteps]. */
export function stepsFor(n: number, batch: number, minSteps: number, maxSteps: number): number {
  const epochs = n < 100 ? 60 : n < 1000 ? 20 : 8; // smaller fractions: more epochs
  return Math.max(minSteps, Math.min(maxSteps, Math.ceil((epochs * n) / batch)));
}

/** Mean AUC over the tasks that have both classes among the masked labels (or task `only`'s). */
export function meanAuc(p: Predictions, only?: number): number {
  const T = p.tasks.length, n = p.labels.length / T;
  const aucs: number[] = [];
  for (let t = 0; t < T; t++) {
    if (only !== undefined && t !== only) continue;
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
  if (cfg.init !== "random") await loadInitWeights(net, cfg.init, cfg.initLabel);
  net.setHead(linearHead(B, net.featureDim, tasks, rng));
  return net;
}

/** The images a fine-tuning run reads. */
export interface FinetuneSets {
  /** Training images (the subset trainIdx is used). */
  train: LabelledSource;
  /** The label-fraction subset: indices into train. */
  trainIdx: number[];
  /** Validation images (model and penalty selection). */
  val: LabelledSource;
  /** Test images (the predictions returned). */
  test: LabelledSource;
  /** Precomputed frozen features for the linear protocol (shared across cells of one init). */
  features?: FrozenFeatures;
}

/**
 * Frozen features and the network that computed them (eval mode). The linear protocol fits its
 * head on them and returns that network, so that it scores images exactly as the probe scored the
 * features; no second backbone is built (one built from the cell's own seed would differ from the
 * features' for a random initialisation).
 */
export interface FrozenFeatures extends FeatureSets {
  /** The network whose features these are: its head is replaced by each linear run's probe. */
  net: ClassifierNet;
}

/**
 * Fine-tunes a classifier under one protocol and returns the best-on-validation network with its
 * test predictions.
 */
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
    /**
     * Called after each end-to-end step (the GPU kernel tuner: shapes the first step met are
     * timed before the second; nothing pending, nothing done).
     */
    betweenSteps?: () => Promise<void>;
  } = {},
): Promise<FinetuneResult> {
  const { train, trainIdx, val, test } = sets;
  const tasks = train.tasks, T = tasks.length;
  if (trainIdx.length === 0) throw new UserError("the label-fraction subset is empty");
  if (cfg.protocol === "linear") {
    const net = sets.features?.net ?? await buildClassifier(B, cfg, T, opts.backbone);
    return await finetuneLinear(B, net, cfg, sets);
  }
  const net = await buildClassifier(B, cfg, T, opts.backbone);
  net.train();
  const opt = new Optimizer(B, ops, net.namedParameters(), {
    kind: "adam",
    weightDecay: cfg.weightDecay,
  });

  /** Scores of a set's images (no augmentation), in eval mode. */
  const predict = async (set: LabelledSource): Promise<Predictions> => {
    net.eval();
    const scores = new Float32Array(set.count * T);
    await evalBatches(B, set, 32, (x) => {
      const out = noGrad(() => net.forward(new Var(B, x)));
      const p = B.sigmoid(out.value);
      out.dispose();
      return p;
    }, (values, first) => scores.set(values, first * T));
    net.train();
    return { tasks, labels: set.labels, mask: set.mask, scores };
  };

  const gather = (src: Float32Array, idx: number[]) => {
    const out = new Float32Array(idx.length * T);
    idx.forEach((r, i) => out.set(src.subarray(r * T, (r + 1) * T), i * T));
    return out;
  };

  const rng = new Rng(cfg.seed ^ 0x51ed27);
  let order: number[] = [], pos = 0;
  /**
   * The next step's batch: rows drawn, augmented on the host and uploaded. Made while the step
   * before runs on the GPU (the rng's draws stay in step order, so the run is the same to the bit).
   * Always batchSize rows: the shuffle's tail that cannot fill a batch is skipped (see the header
   * on what an epoch is).
   */
  const nextBatch = () => {
    if (pos + cfg.batchSize > order.length) {
      // Reshuffle; subsets smaller than a batch are repeated to fill it.
      order = [];
      while (order.length < cfg.batchSize) order.push(...rng.shuffle([...trainIdx]));
      pos = 0;
    }
    const idx = order.slice(pos, pos + cfg.batchSize);
    pos += cfg.batchSize;
    const imgs = train.augmented(idx, rng);
    return [
      B.fromArray(imgs.data, imgs.shape),
      B.fromArray(gather(train.labels, idx), [idx.length, T]),
      B.fromArray(gather(train.mask, idx), [idx.length, T]),
    ];
  };
  // best stays -Infinity while validation gives no AUC: then every evaluation's weights replace the
  // kept ones (the last are kept), and no early stop (there is nothing to stop on).
  let best = -Infinity, bestStep = 0, bestState: Map<string, TensorData> | null = null;
  let sinceBest = 0, lossSum = 0, lossCount = 0;
  const curve: FinetuneResult["curve"] = [];
  /** Losses recorded and not read yet: read LOSS_READ_EVERY steps at a time, and before an eval. */
  let unread: { step: number; loss: Var }[] = [];
  const readLosses = async () => {
    const values = await B.readMany(unread.map((u) => u.loss.value));
    const done = unread;
    unread = [];
    for (const u of done) u.loss.dispose();
    for (const [k, u] of done.entries()) {
      const l = values[k][0];
      if (!Number.isFinite(l)) {
        throw new TrainingDivergedError(
          `fine-tuning loss became ${l} at step ${u.step}.`,
          false,
          u.step === 1,
        );
      }
      lossSum += l;
      lossCount++;
    }
  };
  let batch: BTensor[] | null = nextBatch();
  try {
    for (let step = 1; step <= cfg.steps; step++) {
      const [x, y, m] = batch!;
      batch = null;
      const out = net.forward(new Var(B, x));
      const loss = bceWithLogits(out, y, m);
      out.release();
      backward(loss);
      opt.update(cfg.lr);
      // Released now, reused by the next upload: the queue orders its writes after these reads.
      for (const t of [x, y, m]) B.dispose(t);
      B.flush(); // the GPU starts on this step while the host makes the next batch
      if (step < cfg.steps) batch = nextBatch();
      unread.push({ step, loss });
      const evalNow = step % cfg.evalEvery === 0 || step === cfg.steps;
      // every loss is read (a NaN stops the run) before an eval can keep these weights
      if (evalNow || unread.length >= LOSS_READ_EVERY) await readLosses();
      await opts.betweenSteps?.();
      if (evalNow) {
        const v = meanAuc(await predict(val), cfg.selectTask);
        const meanLoss = lossSum / lossCount;
        lossSum = lossCount = 0;
        curve.push({ step, loss: meanLoss, val_auc: v });
        opts.onEval?.(step, v, meanLoss);
        if (v > best || (Number.isNaN(v) && best === -Infinity)) {
          best = Number.isNaN(v) ? best : v;
          bestStep = step;
          bestState = await snapshot(net);
          sinceBest = 0;
        } else if (cfg.patience > 0 && ++sinceBest >= cfg.patience) {
          opts.log?.(
            `early stop at step ${step}: no validation gain in ${cfg.patience} evaluations`,
          );
          break;
        }
      }
    }
  } finally {
    for (const t of batch ?? []) B.dispose(t); // made for a step an early stop skipped
    for (const u of unread) u.loss.dispose();
  }
  const keptBy = best === -Infinity ? "last" : "validation-auc";
  if (keptBy === "last" && bestState) {
    opts.log?.(
      `no validation AUC in ${curve.length} evaluation(s) (one class in validation): the last ` +
        `weights (step ${bestStep}) are kept`,
    );
  }
  if (bestState) loadStateDict(net, bestState);
  const testPred = await predict(test);
  opt.dispose();
  return {
    bestValAuc: keptBy === "last" ? NaN : best,
    bestStep,
    keptBy,
    test: testPred,
    curve,
    net,
  };
}

/**
 * The linear protocol: frozen features (given, or extracted here in eval mode), the penalty path
 * per task (train/linear_protocol.ts), and the chosen probe loaded as the network's head.
 */
async function finetuneLinear(
  B: Backend,
  net: ClassifierNet,
  cfg: FinetuneConfig,
  sets: FinetuneSets,
): Promise<FinetuneResult> {
  const { train, trainIdx, val, test } = sets;
  const tasks = train.tasks, T = tasks.length;
  net.requiresGrad(false);
  net.eval();
  const feats = sets.features ?? {
    train: await extractFeatures(B, net, train),
    val: await extractFeatures(B, net, val),
    test: await extractFeatures(B, net, test),
  };
  const grid = cfg.penaltyGrid ?? DEFAULT_C_GRID;
  const r = linearProtocol(feats, net.featureDim, { train, trainIdx, val }, T, grid, {
    maxIter: cfg.probeMaxIter,
  });
  loadStateDict(net.head, r.head);
  const mean = (f: (p: (typeof r.probes)[number]) => number) =>
    r.probes.reduce((a, p) => a + f(p), 0) / T;
  return {
    bestValAuc: mean((p) => p.valAuc),
    bestStep: r.probes[0].path.findIndex((pt) => pt.C === r.probes[0].C) + 1,
    penalty: {
      C: r.probes.map((p) => p.C),
      chosenBy: r.probes.map((p) => p.chosenBy),
      grid: [...grid].sort((a, b) => a - b),
      unconverged: r.probes.map((p) => p.path.filter((pt) => !pt.converged).length),
    },
    test: { tasks, labels: test.labels, mask: test.mask, scores: r.testScores },
    curve: r.curve,
    net,
  };
}
