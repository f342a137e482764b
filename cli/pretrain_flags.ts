/**
 * The pretraining flags and the configuration they give, shared by the commands that pretrain:
 * `deno task pretrain`, `experiment`, `finetune` (its backbone/size/channel flags) and tools/probe_representation.ts.
 * `--rotate-interp` (ROTATE_OPTIONS), of pretrain, experiment and finetune, sets the config's
 * rotateInterp: the views' rotation interpolation and, in experiment and finetune, the end-to-end
 * batches' (train/cache_sources.ts); nearest (MoCo-CXR's) by default.
 */
import { UserError } from "../util/user_error.ts";
import { LOG_EVERY, LR, MAX_BAD, numFlag, numListFlag, type NumSpecs, SEED } from "./flags.ts";
import type { PretrainConfig } from "../train/pretrain.ts";
import { type Interp, INTERPS } from "../data/augment.ts";
import { checkBackbone } from "../train/backbones.ts";

export const PRETRAIN_OPTIONS = {
  data: { type: "string" },
  kind: { type: "string" },
  task: { type: "string" },
  size: { type: "string" },
  backbone: { type: "string" },
  "in-channels": { type: "string" },
  init: { type: "string" },
  queue: { type: "string" },
  momentum: { type: "string" },
  temperature: { type: "string" },
  "split-bn": { type: "string" },
  dim: { type: "string" },
  optimizer: { type: "string" },
  lr: { type: "string" },
  "weight-decay": { type: "string" },
  milestones: { type: "string" },
  batch: { type: "string" },
  epochs: { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  resume: { type: "boolean" },
  "ckpt-every": { type: "string" },
  "monitor-every": { type: "string" },
  preset: { type: "string" },
  augment: { type: "string" },
  "max-bad": { type: "string" },
  precision: { type: "string" },
} as const;

/**
 * --rotate-interp, a part of a run's configuration in pretrain, experiment and finetune: the views'
 * and end-to-end batches' rotation interpolation, recorded as rotateInterp (nearest by default; a
 * run recorded before it rotated bilinearly and resumes only with `--rotate-interp bilinear`).
 */
export const ROTATE_OPTIONS = {
  "rotate-interp": { type: "string" },
} as const;

export type Flags = Record<string, string | boolean | undefined>;

/** How pretraining runs its loop (`deno task pretrain`, and the experiment's): not part of a run's configuration (resume ignores it). */
export const PRETRAIN_RUN_OPTIONS = {
  "log-every": { type: "string" },
  "augment-on": { type: "string" },
} as const;

export const PRETRAIN_RUN_NUMERIC = { "log-every": LOG_EVERY } satisfies NumSpecs;

export interface PretrainRun {
  logEvery: number;
  /** Where the two views are made: "auto" is the GPU on hardware adapters, the host on software. */
  augmentOn: "auto" | "cpu" | "gpu";
}

/** Whether `--augment-on` puts pretraining's two views on the GPU of this adapter. */
export function viewsOnGpu(run: PretrainRun, gpu: { isSoftware: boolean }): boolean {
  return run.augmentOn === "gpu" || (run.augmentOn === "auto" && !gpu.isSoftware);
}

export function pretrainRunFrom(f: Flags): PretrainRun {
  const on = f["augment-on"] ?? "auto";
  if (on !== "auto" && on !== "cpu" && on !== "gpu") {
    throw new UserError(`--augment-on must be auto, cpu or gpu, got "${on}"`);
  }
  return {
    logEvery: numFlag("log-every", f["log-every"], 1, PRETRAIN_RUN_NUMERIC["log-every"]),
    augmentOn: on,
  };
}

/** Ranges of the pretraining flags (shared with finetune and experiment). */
export const PRETRAIN_NUMERIC = {
  size: { min: 16, max: 1024, int: true },
  "in-channels": { min: 1, max: 3, int: true },
  queue: { min: 1, max: 1_048_576, int: true },
  momentum: { min: 0, max: 1 },
  temperature: { min: 0, max: 10, above: true },
  "split-bn": { min: 0, max: 4096, int: true },
  dim: { min: 1, max: 8192, int: true },
  lr: LR,
  "weight-decay": { min: 0, max: 1 },
  milestones: { min: 1, max: 100_000, int: true },
  batch: { min: 2, max: 4096, int: true },
  epochs: { min: 1, max: 100_000, int: true },
  seed: SEED,
  "ckpt-every": { min: 1, max: 1e9, int: true },
  "monitor-every": { min: 0, max: 100_000, int: true },
  "max-bad": MAX_BAD,
} satisfies NumSpecs;

const n = (name: keyof typeof PRETRAIN_NUMERIC, f: Flags, d: number) =>
  numFlag(name, f[name], d, PRETRAIN_NUMERIC[name]);

/**
 * --preset: the defaults of a run's size. cpu-demo (the default on every adapter: nothing changes
 * silently with it) is sized for a 2-core CPU with a software adapter; gpu for one hardware GPU;
 * paper is MoCo-CXR's configuration. Flags given explicitly still win.
 */
export const PRESETS = ["cpu-demo", "gpu", "paper"] as const;
export type Preset = typeof PRESETS[number];

/** Each preset's defaults (the trainers' sizes; prepare's default --size is cpu-demo's). */
export const PRESET_DEFAULTS: Record<
  Preset,
  {
    size: number;
    batch: number;
    splitBn: number;
    epochs: number;
    inChannels: number;
    queue: number;
    momentum: number;
  }
> = {
  "cpu-demo": {
    size: 32,
    batch: 32,
    splitBn: 16,
    epochs: 2,
    inChannels: 1,
    queue: 1024,
    momentum: 0.99,
  },
  gpu: {
    size: 128,
    batch: 64,
    splitBn: 16,
    epochs: 20,
    inChannels: 1,
    queue: 4096,
    momentum: 0.99,
  },
  paper: {
    size: 224,
    batch: 24,
    splitBn: 8,
    epochs: 20,
    inChannels: 3,
    queue: 24576,
    momentum: 0.999,
  },
};

/** The preset a run uses when none is named. */
export const DEFAULT_PRESET: Preset = "cpu-demo";

/** The --preset named (default cpu-demo); a one-line error for another name. */
export function presetFrom(f: Flags): Preset {
  const p = f.preset ?? DEFAULT_PRESET;
  if (!PRESETS.includes(p as Preset)) {
    throw new UserError(`--preset must be one of ${PRESETS.join(", ")}, got "${p}"`);
  }
  return p as Preset;
}

/**
 * A pretraining batch larger than the images it draws from makes no step: said as soon as the
 * images are counted (before the GPU is set up and the plan's steps are timed), naming --batch and
 * the largest batch that fits (a multiple of the BN sub-batch, --split-bn).
 */
const pow2 = (n: number) => 2 ** Math.floor(Math.log2(Math.max(1, n)));

export function checkBatchFits(cfg: PretrainConfig, images: number, what = "training"): void {
  if (images >= cfg.batchSize) return;
  const sub = cfg.batchSize / cfg.moco.bnGroups;
  const fit = Math.floor(images / sub) * sub;
  throw new UserError(
    `--batch ${cfg.batchSize} is more than the ${images} ${what} image(s): ` +
      (fit > 0
        ? `pass --batch ${fit} or less (a multiple of --split-bn ${sub})`
        : `pass --batch ${pow2(images)} --split-bn ${pow2(images)} or less (--split-bn, the BN ` +
          `sub-batch, is ${sub} now)`),
  );
}

export function pretrainConfigFrom(
  f: Flags,
  /** Defaults of the calling task that differ from the preset's (e.g. experiment's epochs). */
  over: { epochs?: number } = {},
): PretrainConfig {
  const d = PRESET_DEFAULTS[presetFrom(f)];
  const optimizer = f.optimizer ?? "adam";
  if (optimizer !== "adam" && optimizer !== "sgd") {
    throw new UserError(`--optimizer must be adam or sgd, got "${optimizer}"`);
  }
  const batchSize = n("batch", f, d.batch);
  const sub = n("split-bn", f, d.splitBn);
  const epochs = n("epochs", f, over.epochs ?? d.epochs);
  const inChannels = n("in-channels", f, d.inChannels);
  if (inChannels !== 1 && inChannels !== 3) throw new UserError("--in-channels must be 1 or 3");
  if (sub > 0 && batchSize % sub !== 0) {
    throw new UserError(`--batch ${batchSize} is not a multiple of --split-bn ${sub}`);
  }
  const queueSize = n("queue", f, d.queue);
  if (queueSize < batchSize) {
    throw new UserError(`--queue ${queueSize} must hold at least one batch (--batch ${batchSize})`);
  }
  const weightDecay = n("weight-decay", f, 1e-4);
  return {
    moco: {
      backbone: checkBackbone((f.backbone as string) ?? "resnet18"),
      inChannels,
      dim: n("dim", f, 128),
      queueSize,
      temperature: n("temperature", f, 0.2),
      momentum: n("momentum", f, d.momentum),
      bnGroups: sub > 0 ? batchSize / sub : 1,
      // f32 is left out of the configuration, so runs from before the flag resume as they were
      ...(precisionFlag(f.precision) === "f16" ? { precision: "f16" as const } : {}),
    },
    imageSize: n("size", f, d.size),
    batchSize,
    epochs,
    optimizer: optimizer === "adam"
      ? { kind: "adam", weightDecay }
      : { kind: "sgd", momentum: 0.9, weightDecay },
    lr: n("lr", f, optimizer === "adam" ? ADAM_LR : sgdLr(batchSize)),
    schedule: optimizer === "adam"
      ? { kind: "step", milestones: milestonesFlag(f.milestones), gamma: 0.1 }
      : { kind: "cosine", epochs },
    seed: n("seed", f, 0),
    ckptEvery: n("ckpt-every", f, 50),
    monitorEvery: n("monitor-every", f, 1),
    init: (f.init as string) ?? "random",
    augment: augmentFlag(f.augment),
    rotateInterp: rotateInterpFlag(f["rotate-interp"]),
  };
}

/** MoCo-CXR's Adam learning rate (moco_pretraining/moco/main_moco.py `--lr` default 0.0001). */
export const ADAM_LR = 1e-4;

/**
 * MoCo-CXR's step schedule: the learning rate ×0.1 at each of these epochs (main_moco.py
 * `--schedule` default [12, 18, 24], applied by its adjust_learning_rate, `--cos` unset; its
 * training scripts pass neither). Runs of at most 12 epochs never decay.
 */
export const MOCO_CXR_MILESTONES: readonly number[] = [12, 18, 24];

/**
 * MoCo v2's SGD learning rate at `batch`: 0.03 is its rate at batch 256, scaled linearly
 * (facebookresearch/moco's README: lr 0.015 at batch 128).
 */
export function sgdLr(batch: number): number {
  return 0.03 * batch / 256;
}

/** --milestones E,E,... (epochs of the ×0.1 decay) or none; default MoCo-CXR's. */
function milestonesFlag(v: string | boolean | undefined): number[] {
  if (typeof v === "string" && v.trim() === "none") return [];
  return numListFlag("milestones", v, [...MOCO_CXR_MILESTONES], PRETRAIN_NUMERIC.milestones);
}

/** --max-bad: the tolerated share of unreadable images (as prepare's). */
export function maxBadFrom(f: Flags): number {
  return n("max-bad", f, 0.05);
}

function augmentFlag(v: string | boolean | undefined): "mococxr" | "strong" {
  if (v === undefined) return "mococxr";
  if (v !== "mococxr" && v !== "strong") {
    throw new UserError(`--augment must be mococxr or strong, got "${v}"`);
  }
  return v;
}

/**
 * --rotate-interp nearest|bilinear: how the views' rotation (the one fused resampling pass) reads
 * the stored pixels; default nearest, torchvision RandomRotation's and so MoCo-CXR's. A config
 * without it (runs from before the flag) is bilinear (train/pretrain.ts rotateInterpOf).
 */
export function rotateInterpFlag(v: string | boolean | undefined): Interp {
  if (v === undefined) return "nearest";
  if (!INTERPS.includes(v as Interp)) {
    throw new UserError(`--rotate-interp must be nearest or bilinear, got "${v}"`);
  }
  return v as Interp;
}

function precisionFlag(v: string | boolean | undefined): "f32" | "f16" {
  if (v === undefined) return "f32";
  if (v !== "f32" && v !== "f16") throw new UserError(`--precision must be f32 or f16, got "${v}"`);
  return v;
}
