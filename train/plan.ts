/**
 * A run plans itself before it starts: what it will do (images, steps, cells) and how long that
 * should take on this adapter, from a few timed steps of the run's own configuration.
 *
 * Timing (timeRun): one untimed step first (pipelines are compiled then, and on a GPU the kernel
 * tuner times the shapes it met, so that the plan times tuned kernels), then a few timed MoCo
 * steps, end-to-end fine-tuning steps (two cells of 1 and `ftSteps` + 1 steps: their difference is
 * the per-step cost, the rest the cell's fixed cost: building the net, loading its init, one
 * validation and one test pass), eval-mode forward passes (feature extraction, kNN monitor,
 * validation), one checkpoint, and one linear cell per label-subset size (the classifier built,
 * then the penalty path on random features of the real shapes).
 *
 * The estimate (estimateExperiment, estimatePretrain) is then arithmetic on those timings, so the
 * tests check it with given timings. Another configuration (--preset paper) is estimated from the
 * same timings scaled by its work per step: images × pixels (a software or hardware adapter's
 * conv time grows about linearly in both once the GPU is full); the plan says it was scaled.
 */
import type { Backend } from "../model/backend.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { Rng } from "../util/rng.ts";
import type { TrainOps } from "./train_ops.ts";
import { Moco } from "./moco.ts";
import { Optimizer } from "./optimizer.ts";
import type { PretrainConfig } from "./pretrain.ts";
import { buildClassifier, finetune, type FinetuneConfig } from "./finetune.ts";
import { extractFeatures } from "./features.ts";
import { saveCheckpoint } from "./checkpoint.ts";
import { join } from "node:path";
import { exists } from "../util/fs.ts";
import type { LabelledSource, TwoViewSource } from "./sources.ts";

/** Seconds per unit of work, measured on one adapter at one configuration. */
export interface Timings {
  /** The adapter they were measured on. */
  adapter: string;
  /** The configuration the steps were timed at: image side, */
  imageSize: number;
  /** MoCo batch, */
  batch: number;
  /** and fine-tuning batch. */
  ftBatch: number;
  /** s per MoCo step (batch `batch`). */
  mocoStep: number;
  /** s per end-to-end fine-tuning step (batch `ftBatch`). */
  ftStep: number;
  /** s per end-to-end cell besides its steps and its evaluation passes. */
  ftCell: number;
  /** s per image of an eval-mode forward pass (features, validation, test, monitor). */
  forward: number;
  /** s per linear cell, by training-subset size (interpolated linearly between sizes). */
  probe: [number, number][];
  /** s per pretraining checkpoint (both encoders, queue, optimizer state; 0: not timed). */
  checkpoint: number;
}

async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

/** How the timing runs: beyond the configuration, what every timing function may be given. */
export interface TimingOptions {
  /** Backbone factory override (tests use a tiny network). */
  backbone?: (o: NetOptions) => ClassifierNet;
  /**
   * Called after each untimed warm-up (the GPU kernel tuner's settle: what the warm-up met is
   * timed then, so the timed steps run the kernels a run will).
   */
  settle?: () => Promise<void>;
}

/**
 * s per MoCo step of this configuration, after one untimed step (pretrain()'s step), and s per
 * checkpoint when `ckptDir` is given (one written there and removed, and the folder if it was
 * made for it).
 */
export async function timeMocoStep(
  B: Backend,
  ops: TrainOps,
  pc: PretrainConfig,
  source: TwoViewSource,
  o: TimingOptions & { steps?: number; ckptDir?: string } = {},
): Promise<{ step: number; checkpoint: number }> {
  const { backbone, ckptDir, steps = 3 } = o;
  const N = pc.batchSize;
  const moco = await Moco.create(B, ops, pc.moco, pc.seed, backbone);
  const opt = new Optimizer(B, ops, moco.encQ.namedParameters(), pc.optimizer, moco.scaler);
  const rng = new Rng(pc.seed ^ 0x7a11);
  const step = async () => {
    const idx = Array.from({ length: N }, () => rng.int(source.count));
    const v = source.twoViews(idx, rng);
    const inv = new Float32Array(N).map((_, i) => i);
    const xq = B.fromArray(v.xq.data, v.xq.shape), xk = B.fromArray(v.xk.data, v.xk.shape);
    const un = B.fromArray(inv, [N]);
    const r = moco.step(xq, xk, un);
    opt.update(pc.lr);
    for (const t of [xq, xk, un]) B.dispose(t);
    await Promise.all([B.read(r.loss), B.read(r.correct)]);
    B.dispose(r.loss);
    B.dispose(r.correct);
  };
  await step();
  await o.settle?.();
  const t = (await seconds(async () => {
    for (let i = 0; i < steps; i++) await step();
  })) / steps;
  let checkpoint = 0;
  if (ckptDir) {
    const made = !(await exists(ckptDir));
    await Deno.mkdir(ckptDir, { recursive: true });
    const file = join(ckptDir, "plan-timing.safetensors");
    checkpoint = await seconds(() =>
      saveCheckpoint(file, B, {
        modules: { encoder_q: moco.encQ, encoder_k: moco.encK },
        tensors: Object.fromEntries([
          ["queue", moco.queue],
          ...opt.namedState().map(([k, x]) => [`optimizer.${k}`, x]),
        ]),
        meta: {},
      })
    );
    await Deno.remove(file);
    if (made) await Deno.remove(ckptDir);
  }
  opt.dispose();
  moco.dispose();
  return { step: t, checkpoint };
}

/** s per image of an eval-mode forward pass (after an untimed batch). */
export async function timeForward(
  B: Backend,
  net: ClassifierNet,
  src: LabelledSource,
  settle?: () => Promise<void>,
): Promise<number> {
  const sub = firstRows(src, 64);
  await extractFeatures(B, net, firstRows(src, 32));
  await settle?.();
  return (await seconds(() => extractFeatures(B, net, sub))) / sub.count;
}

/** The first n rows of a labelled source. */
function firstRows(L: LabelledSource, n: number): LabelledSource {
  const m = Math.min(n, L.count), T = L.tasks.length;
  return {
    ...L,
    count: m,
    labels: L.labels.subarray(0, m * T),
    mask: L.mask.subarray(0, m * T),
    ids: L.ids.slice(0, m),
  };
}

/** Times the run's own steps on this adapter (see the file header); takes ~10 steps' time. */
export async function timeRun(
  B: Backend,
  ops: TrainOps,
  opts: {
    adapter: string;
    pretrain: PretrainConfig;
    source: TwoViewSource;
    /** Labelled images for fine-tuning and forward passes (≥ 16). */
    labelled: LabelledSource;
    ft: Pick<FinetuneConfig, "batchSize" | "lr" | "weightDecay" | "penaltyGrid">;
    /** Training-subset sizes of the linear cells (each is timed once); empty: none. */
    probeSizes: number[];
    /** Shapes of the linear protocol's feature sets. */
    probeSets: { trainPool: number; val: number; test: number };
    /** MoCo steps timed (default 3; 0: none, the run pretrains nothing). */
    mocoSteps?: number;
    ftSteps?: number;
    /** Where a checkpoint may be written (and removed) to time it. */
    ckptDir?: string;
    log?: (m: string) => void;
  } & TimingOptions,
): Promise<Timings> {
  const pc = opts.pretrain, S = pc.imageSize, C = pc.moco.inChannels, N = pc.batchSize;
  const mocoSteps = opts.mocoSteps ?? 3, ftSteps = opts.ftSteps ?? 4;
  // mocoSteps 0: nothing is pretrained (a given MoCo backbone), so no step is timed
  const m = mocoSteps > 0
    ? await timeMocoStep(B, ops, pc, opts.source, { ...opts, steps: mocoSteps })
    : { step: 0, checkpoint: 0 };

  // Eval-mode forward passes.
  const L = opts.labelled;
  const sub = (n: number) => firstRows(L, n);
  const ftc: FinetuneConfig = {
    backbone: pc.moco.backbone,
    inChannels: C as 1 | 3,
    imageSize: S,
    protocol: "e2e",
    init: "random",
    batchSize: opts.ft.batchSize,
    lr: opts.ft.lr,
    weightDecay: opts.ft.weightDecay,
    steps: 1,
    evalEvery: 1_000_000,
    patience: 0,
    seed: 1,
  };
  const net = await buildClassifier(B, ftc, L.tasks.length, opts.backbone);
  const forward = await timeForward(B, net, L, opts.settle);
  net.dispose();

  // End-to-end cells of 1 and ftSteps + 1 steps (after an untimed one), 16 validation and test
  // images each.
  const small = sub(16);
  const trainIdx = Array.from({ length: Math.min(L.count, 4 * opts.ft.batchSize) }, (_, i) => i);
  const cell = async (steps: number) => {
    const r = await finetune(B, ops, { ...ftc, steps }, {
      train: L,
      trainIdx,
      val: small,
      test: small,
    }, { backbone: opts.backbone });
    r.net.dispose();
  };
  await cell(1);
  await opts.settle?.();
  const t1 = await seconds(() => cell(1));
  const tn = await seconds(() => cell(ftSteps + 1));
  const ftStep = Math.max(0, (tn - t1) / ftSteps);
  const ftCell = Math.max(0, t1 - ftStep - 2 * small.count * forward);

  // Linear cells as the experiment runs them (a classifier built from its init, then the penalty
  // path), on random features of the real shapes: the fit's cost depends on them, not on what
  // the features hold.
  const probe: [number, number][] = [];
  const T = L.tasks.length, g = new Rng(3);
  const { trainPool, val, test } = opts.probeSets;
  if (opts.probeSizes.length) {
    // the network the fake features stand for: each cell fits its head (as the experiment's)
    const probeNet = await buildClassifier(B, ftc, T, opts.backbone);
    const F = probeNet.featureDim;
    const feats = (n: number) => Float32Array.from({ length: n * F }, () => g.normal());
    const fake = (n: number): LabelledSource => {
      const labels = new Float32Array(n * T);
      for (let i = 0; i < labels.length; i++) labels[i] = g.uniform() < 0.4 ? 1 : 0;
      const none = () => {
        throw new Error("plan: the linear timing reads no images");
      };
      return {
        count: n,
        tasks: L.tasks,
        labels,
        mask: new Float32Array(n * T).fill(1),
        images: none,
        augmented: none,
        ids: [],
      };
    };
    const f = { train: feats(trainPool), val: feats(val), test: feats(test), net: probeNet };
    const sets = { train: fake(trainPool), val: fake(val), test: fake(test) };
    for (const n of [...new Set(opts.probeSizes)].sort((a, b) => a - b)) {
      const trainIdx = Array.from({ length: Math.min(n, trainPool) }, (_, i) => i);
      const t = await seconds(async () => {
        const r = await finetune(
          B,
          ops,
          { ...ftc, protocol: "linear", penaltyGrid: opts.ft.penaltyGrid },
          { ...sets, trainIdx, features: f },
          { backbone: opts.backbone },
        );
        if (r.net !== probeNet) r.net.dispose();
      });
      probe.push([n, t]);
    }
    probeNet.dispose();
  }
  return {
    adapter: opts.adapter,
    imageSize: S,
    batch: N,
    ftBatch: opts.ft.batchSize,
    mocoStep: m.step,
    checkpoint: m.checkpoint,
    ftStep,
    ftCell,
    forward,
    probe,
  };
}

/** Linear interpolation of the probe's cost in the subset size (flat beyond the ends). */
export function probeSeconds(t: Timings, n: number): number {
  const p = t.probe;
  if (p.length === 0) return 0;
  if (n <= p[0][0]) return p[0][1];
  for (let i = 1; i < p.length; i++) {
    if (n <= p[i][0]) {
      const [n0, t0] = p[i - 1], [n1, t1] = p[i];
      return t0 + ((t1 - t0) * (n - n0)) / (n1 - n0);
    }
  }
  return p[p.length - 1][1];
}

/** The same timings at another image size and batches: scaled by images × pixels per step. */
export function scaleTimings(
  t: Timings,
  to: { imageSize: number; batch: number; ftBatch: number },
): Timings {
  const px = (to.imageSize / t.imageSize) ** 2;
  return {
    ...t,
    imageSize: to.imageSize,
    batch: to.batch,
    ftBatch: to.ftBatch,
    mocoStep: t.mocoStep * px * (to.batch / t.batch),
    ftStep: t.ftStep * px * (to.ftBatch / t.ftBatch),
    forward: t.forward * px,
  };
}

/** One line of a plan: what, how many, and its estimated seconds. */
export interface PlanLine {
  /** What is done (e.g. "MoCo steps"). */
  what: string;
  /** How many times. */
  count: number;
  /** Estimated seconds for all of them. */
  seconds: number;
}

/** A part of a run's plan: its lines and their total. */
export interface Plan {
  /** The work, line by line. */
  lines: PlanLine[];
  /** Estimated seconds in all. */
  seconds: number;
}

/** Pretraining of one seed: steps, checkpoints, and the kNN monitor's forward passes. */
export function estimatePretrain(
  pc: Pick<PretrainConfig, "batchSize" | "epochs" | "monitorEvery" | "ckptEvery">,
  images: number,
  monitorImages: number,
  t: Timings,
): Plan {
  const perEpoch = Math.floor(images / pc.batchSize);
  const steps = perEpoch * pc.epochs;
  // pretrain() saves every ckptEvery steps and at each epoch's end.
  let saves = 0;
  for (let s = 1; s <= steps; s++) if (s % pc.ckptEvery === 0 || s % perEpoch === 0) saves++;
  const monitors = pc.monitorEvery > 0 && monitorImages > 0
    ? Math.floor(pc.epochs / pc.monitorEvery)
    : 0;
  const lines: PlanLine[] = [
    { what: "MoCo steps", count: steps, seconds: steps * t.mocoStep },
  ];
  if (t.checkpoint > 0) {
    lines.push({ what: "checkpoints", count: saves, seconds: saves * t.checkpoint });
  }
  if (monitors) {
    lines.push({
      what: `kNN monitor passes (${monitorImages} images each)`,
      count: monitors,
      seconds: monitors * monitorImages * t.forward,
    });
  }
  return { lines, seconds: lines.reduce((s, l) => s + l.seconds, 0) };
}

/** The fine-tuning cells the run will make (after skipping finished ones). */
export interface PlannedCell {
  protocol: "linear" | "e2e";
  /** Training-subset size. */
  n: number;
  /** End-to-end: steps and evaluations on the validation split. */
  steps?: number;
  evals?: number;
}

export function estimateCells(
  cells: PlannedCell[],
  /** Frozen-feature extractions (one per seed and init with linear cells) and their images. */
  extractions: number,
  sizes: { trainPool: number; val: number; test: number },
  t: Timings,
): Plan {
  const lin = cells.filter((c) => c.protocol === "linear");
  const e2e = cells.filter((c) => c.protocol === "e2e");
  const lines: PlanLine[] = [];
  if (extractions) {
    const imgs = sizes.trainPool + sizes.val + sizes.test;
    lines.push({
      what: `frozen-feature extractions (${imgs} images each)`,
      count: extractions,
      seconds: extractions * imgs * t.forward,
    });
  }
  if (lin.length) {
    lines.push({
      what: "linear cells (L2 probe path)",
      count: lin.length,
      seconds: lin.reduce((s, c) => s + probeSeconds(t, c.n), 0),
    });
  }
  if (e2e.length) {
    const steps = e2e.reduce((s, c) => s + (c.steps ?? 0), 0);
    const evals = e2e.reduce((s, c) => s + (c.evals ?? 1), 0);
    lines.push({
      what: `end-to-end cells (${steps} steps, ${evals} validation passes in all)`,
      count: e2e.length,
      seconds: e2e.length * (t.ftCell + sizes.test * t.forward) + steps * t.ftStep +
        evals * sizes.val * t.forward,
    });
  }
  return { lines, seconds: lines.reduce((s, l) => s + l.seconds, 0) };
}

/** "42 s", "7.5 min", "3.2 h", "4.1 days". */
export function fmtDuration(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

/** The plan as indented lines, with its total. */
export function formatPlan(title: string, parts: { name: string; plan: Plan }[]): string[] {
  const out = [title];
  let total = 0;
  for (const { name, plan } of parts) {
    if (!plan.lines.length) continue;
    out.push(`  ${name}:`);
    for (const l of plan.lines) {
      out.push(`    ${String(l.count).padStart(6)} ${l.what}: ~${fmtDuration(l.seconds)}`);
    }
    total += plan.seconds;
  }
  out.push(`  estimated wall time: ${fmtDuration(total)}`);
  return out;
}
