/**
 * MoCo v2 as MoCo-CXR used it: a query encoder (backbone + MLP head F→F→dim)
 * trained by gradient descent, a key encoder that is a copy updated only by
 * EMA (before the key forward pass), L2-normalised features, logits
 * [q·k₊, q·queue]/T with the positive at index 0, InfoNCE, and a ring-buffer
 * queue of negatives.
 *
 * Batch-norm leak (Chen et al. / He et al.): with one device, BN over the
 * whole batch lets q and k₊ "see" each other through shared statistics. As
 * MoCo's multi-GPU code does, both encoders normalise per sub-batch (split
 * BN, `bnGroups`), and the key batch arrives shuffled so that the key's
 * sub-batches hold other images than the query's; the keys are unshuffled
 * (row gather) before the logits.
 *
 * Written over the Backend/TrainOps interfaces so one step runs on the GPU
 * and on the CPU references alike (tests compare the two).
 */
import type { Backend, BTensor } from "../model/backend.ts";
import { backward, noGrad, Var } from "../model/autograd.ts";
import { infoNce, l2Normalize, mocoLogits } from "../model/ops.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { mlpHead } from "../model/classifier.ts";
import { readState } from "../model/state.ts";
import { Rng } from "../util/rng.ts";
import { type BackboneName, buildBackbone } from "./backbones.ts";
import type { TrainOps } from "./train_ops.ts";
import { LossScaler } from "./loss_scale.ts";

/** MoCo v2's settings: encoders, feature size, queue, temperature, momentum, split BN. */
export interface MocoConfig {
  /** Backbone of both encoders. */
  backbone: BackboneName;
  /** Input channels. */
  inChannels: 1 | 3;
  /** Output feature size (128). */
  dim: number;
  /** Queue length K (negatives). */
  queueSize: number;
  /** Softmax temperature (0.2). */
  temperature: number;
  /** Key-encoder momentum m (0.999 in the paper; 0.99 for short runs). */
  momentum: number;
  /** Split BN: number of sub-batches per batch (1 = plain BN, no shuffle needed). */
  bnGroups: number;
  /**
   * "f16": both encoders' backbones store activations as f16 (f32 master weights, heads and
   * loss), with dynamic loss scaling (train/loss_scale.ts). Default f32.
   */
  precision?: "f32" | "f16";
}

/** One step's loss and top-1 count, still on the backend (read them when needed). */
export interface MocoStepResult {
  /** Mean InfoNCE loss, [1]. */
  loss: BTensor;
  /** Rows whose top logit is the positive. */
  correct: BTensor;
}

/** MoCo v2: query and key encoders, the queue of negatives, and one training step. */
export class Moco {
  /** The queue of negatives [queueSize, dim], unit rows. */
  queue: BTensor;
  /** Next queue row to write. */
  ptr = 0;
  /** The loss scaler of f16 steps (give it to the optimizer); null in f32. */
  readonly scaler: LossScaler | null;

  private constructor(
    readonly B: Backend,
    readonly ops: TrainOps,
    readonly cfg: MocoConfig,
    readonly encQ: ClassifierNet,
    readonly encK: ClassifierNet,
  ) {
    this.queue = B.zeros([cfg.queueSize, cfg.dim]);
    this.scaler = cfg.precision === "f16" ? new LossScaler(B, ops) : null;
  }

  /** Query encoder from `seed` (or from weights loaded later), key encoder as its copy, random queue. */
  static async create(
    B: Backend,
    ops: TrainOps,
    cfg: MocoConfig,
    seed: number,
    /** Backbone factory override (tests use a tiny network). */
    backbone: (o: NetOptions) => ClassifierNet = (o) => buildBackbone(B, cfg.backbone, o),
  ): Promise<Moco> {
    const rng = new Rng(seed);
    const make = (init: boolean) => {
      const net = backbone({ inChannels: cfg.inChannels, seed: rng, init });
      const F = net.featureDim;
      net.setHead(mlpHead(B, F, F, cfg.dim, init ? rng : null));
      return net;
    };
    const encQ = make(true);
    const encK = make(false);
    encK.requiresGrad(false);
    const m = new Moco(B, ops, cfg, encQ, encK);
    await m.copyQueryToKey();
    // The queue starts as random unit vectors (MoCo: randn then normalize along dim).
    const q = new Float32Array(cfg.queueSize * cfg.dim);
    for (let i = 0; i < q.length; i++) q[i] = rng.normal();
    const raw = B.fromArray(q, [cfg.queueSize, cfg.dim]);
    const { y, norm } = B.l2Normalize(raw);
    B.dispose(m.queue);
    m.queue = y;
    B.dispose(raw);
    B.dispose(norm);
    return m;
  }

  /** Key encoder ← query encoder (parameters and buffers), as at MoCo's start. */
  async copyQueryToKey(): Promise<void> {
    const k = new Map(this.encK.stateDict().map((e) => [e.name, e]));
    for (const [name, t] of await readState(this.encQ)) k.get(name)!.write(t.data);
  }

  /**
   * One MoCo step's forward and backward. `xq` holds the query views in batch
   * order; `xkShuffled` the key views in the order `perm` (xkShuffled[j] = view
   * of image perm[j]); `unshuffle` is perm's inverse as a [N] index tensor.
   * The query encoder's parameters are left holding their gradients (times the loss scale in
   * f16); the caller applies its optimizer (`Optimizer.update`, built with `this.scaler`), as
   * fine-tuning does.
   */
  step(xq: BTensor, xkShuffled: BTensor, unshuffle: BTensor): MocoStepResult {
    const { B, ops, cfg } = this;
    const ctx = { bnGroups: cfg.bnGroups, precision: cfg.precision };
    this.encQ.train();
    this.encK.train();

    // Query: forward with the tape, L2-normalised features.
    const q = this.encQ.forward(new Var(B, xq), ctx);
    const qn = l2Normalize(q);
    q.release();

    // Key: momentum update first (MoCo's order), then a no-grad forward and the unshuffle.
    this.momentumUpdate();
    const kn = noGrad(() => {
      const kShuf = this.encK.forward(new Var(B, xkShuffled), ctx);
      const k = B.gatherRows(kShuf.value, unshuffle);
      kShuf.dispose();
      const r = B.l2Normalize(k);
      B.dispose(k);
      B.dispose(r.norm);
      return r.y;
    });

    // InfoNCE over [q·k₊, q·queue]/T, positive at index 0; the loss is the tape's root.
    const logits = mocoLogits(qn, kn, this.queue, cfg.temperature);
    qn.release();
    const { loss, correct } = infoNce(logits);
    logits.release();
    backward(loss, this.scaler?.seed());

    // Enqueue this batch's keys (they were the positives; they become negatives).
    this.ptr = ops.enqueue(this.queue, kn, this.ptr);
    B.dispose(kn);
    return { loss: loss.value, correct };
  }

  /** k ← m·k + (1−m)·q over all parameters (buffers are the key encoder's own). */
  momentumUpdate(): void {
    this.ops.emaUpdateMany(
      this.encK.parameters().map((p) => p.value),
      this.encQ.parameters().map((p) => p.value),
      this.cfg.momentum,
    );
  }

  /** Frees both encoders and the queue. */
  dispose(): void {
    this.encQ.dispose();
    this.encK.dispose();
    this.B.dispose(this.queue);
    this.scaler?.dispose();
  }
}
