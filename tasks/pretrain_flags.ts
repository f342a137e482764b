/** The pretraining flags, shared by `deno task pretrain` and `deno task experiment`. */
import { UserError } from "../util/cli.ts";
import type { PretrainConfig } from "../train/pretrain.ts";
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
} as const;

export type Flags = Record<string, string | boolean | undefined>;

/** A numeric flag, or its default; anything else is a clear error. */
export function num(name: string, v: string | boolean | undefined, d: number): number {
  if (v === undefined) return d;
  const x = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(x)) {
    throw new UserError(`--${name} expects a number, got "${v}"`);
  }
  return x;
}

export function pretrainConfigFrom(f: Flags): PretrainConfig {
  const paper = f.preset === "paper";
  if (f.preset && !paper) throw new UserError(`unknown --preset "${f.preset}" (only "paper")`);
  const optimizer = f.optimizer ?? "adam";
  if (optimizer !== "adam" && optimizer !== "sgd") {
    throw new UserError(`--optimizer must be adam or sgd, got "${optimizer}"`);
  }
  const batchSize = num("batch", f.batch, paper ? 24 : 32);
  const sub = num("split-bn", f["split-bn"], paper ? 8 : 16);
  const epochs = num("epochs", f.epochs, paper ? 20 : 2);
  const inChannels = num("in-channels", f["in-channels"], paper ? 3 : 1);
  if (inChannels !== 1 && inChannels !== 3) throw new UserError("--in-channels must be 1 or 3");
  if (sub > 0 && batchSize % sub !== 0) {
    throw new UserError(`--batch ${batchSize} is not a multiple of --split-bn ${sub}`);
  }
  return {
    moco: {
      backbone: checkBackbone((f.backbone as string) ?? "resnet18"),
      inChannels,
      dim: num("dim", f.dim, 128),
      queueSize: num("queue", f.queue, paper ? 24576 : 1024),
      temperature: num("temperature", f.temperature, 0.2),
      momentum: num("momentum", f.momentum, paper ? 0.999 : 0.99),
      bnGroups: sub > 0 ? batchSize / sub : 1,
    },
    imageSize: num("size", f.size, paper ? 224 : 32),
    batchSize,
    epochs,
    optimizer: optimizer === "adam"
      ? { kind: "adam", weightDecay: num("weight-decay", f["weight-decay"], 1e-4) }
      : { kind: "sgd", momentum: 0.9, weightDecay: num("weight-decay", f["weight-decay"], 1e-4) },
    lr: num("lr", f.lr, optimizer === "adam" ? 1e-4 : 0.03),
    schedule: optimizer === "adam"
      ? {
        kind: "step",
        milestones: ((f.milestones as string) ?? "").split(",").filter(Boolean).map((m) =>
          num("milestones", m, 0)
        ),
        gamma: 0.1,
      }
      : { kind: "cosine", epochs },
    seed: num("seed", f.seed, 0),
    ckptEvery: num("ckpt-every", f["ckpt-every"], 50),
    monitorEvery: num("monitor-every", f["monitor-every"], 1),
    init: (f.init as string) ?? "random",
    augment: augmentFlag(f.augment),
  };
}

function augmentFlag(v: string | boolean | undefined): "mococxr" | "strong" {
  if (v === undefined) return "mococxr";
  if (v !== "mococxr" && v !== "strong") {
    throw new UserError(`--augment must be mococxr or strong, got "${v}"`);
  }
  return v;
}
