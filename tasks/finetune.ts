/**
 * deno task finetune — one initialisation, one protocol, one label fraction
 * (and its draws): fine-tune, keep the best-validation weights, write test
 * predictions into a run folder and its AUC with 95% CIs (the same cells and
 * files as the experiment grid, which `deno task evaluate` reads).
 */
import {
  FINETUNE_INTERRUPT_LINE,
  type InterruptHooks,
  interruptScope,
  PROCESS_INTERRUPT,
} from "../cli/interrupt.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import { openTuner } from "../cli/run_setup.ts";
import { UserError } from "../util/user_error.ts";
import { rethrowIfDenied } from "../util/fs.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import {
  DATA_LABEL_OPTIONS,
  dataLabelFlagsFrom,
  dataLabelHelp,
  openData,
} from "../cli/open_data.ts";
import { runExperiment } from "../train/experiment.ts";
import type { Protocol } from "../train/finetune.ts";
import { DEFAULT_C_GRID } from "../train/logistic_probe.ts";
import { type BackboneName, buildBackbone, checkBackbone } from "../train/backbones.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { loadInitWeights } from "../train/weights.ts";
import { BackboneMismatchError } from "../train/run_errors.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import { PRETRAIN_NUMERIC, pretrainConfigFrom, ROTATE_OPTIONS } from "../cli/pretrain_flags.ts";
import { FRACTION, LR, MAX_BAD, numFlag, type NumSpecs } from "../cli/flags.ts";

const HELP = `deno task finetune [--init random|imagenet|moco] [--weights FILE] [flags]

  --init I          random (default), imagenet (needs --weights: torchvision safetensors) or
                    moco (needs --weights: a pretraining run folder or its backbone.safetensors);
                    imagenet's images get ImageNet's normalisation, the others CheXpert's
                    (MoCo-CXR's, as pretraining); run.json records it ("normalization")
  --weights PATH    the initial weights
  --protocol P      linear (frozen backbone; an L2 logistic regression on its features, the
                    penalty chosen on the validation split) or e2e (all layers); default e2e
  --fraction F      label fraction of the training split, by patient (default 1)
  --draws N         draws of that fraction (default 1)
  --data DIR        dataset root (default: the built-in synthetic CheXpert set); --kind, --task
${dataLabelHelp(20)}
  --backbone B      resnet18 | resnet34 | resnet50 | densenet121 (must match --weights)
  --size PX         image size (default 32, as pretrain's cpu-demo preset); --in-channels 1|3
                    (default 1)
  --batch N         batch (default 16); --lr LR (default 1e-4); --max-steps N (default 300)
  --seed S          default 0
  --rotate-interp I end-to-end batches' ±10° rotation: nearest (default, MoCo-CXR's torchvision) or
                    bilinear (runs before it; a run recorded without it resumes only with bilinear)
  --max-bad F       tolerated share of unreadable images, 0-1 (default 0.05, as prepare)
  --out DIR         run folder (default runs/finetune); cells already there are skipped
  --tune-cache PATH kernel tuning choices for this adapter (default runs/tune-cache.json, shared
                    with pretrain and experiment); hardware GPUs time each kernel shape once,
                    software adapters skip it; run.json lists what ran ("kernels")`;

/** Ranges of the fine-tuning flags (--size, --in-channels, --seed: as pretrain's). */
export const FINETUNE_NUMERIC = {
  fraction: FRACTION,
  draws: { min: 1, max: 1000, int: true },
  batch: { min: 2, max: 4096, int: true },
  lr: LR,
  "max-steps": { min: 1, max: 10_000_000, int: true },
  "max-bad": MAX_BAD,
  size: PRETRAIN_NUMERIC.size,
  "in-channels": PRETRAIN_NUMERIC["in-channels"],
  seed: PRETRAIN_NUMERIC.seed,
} satisfies NumSpecs;

export const FINETUNE_OPTIONS = {
  init: { type: "string" },
  weights: { type: "string" },
  protocol: { type: "string" },
  fraction: { type: "string" },
  draws: { type: "string" },
  data: { type: "string" },
  kind: { type: "string" },
  task: { type: "string" },
  backbone: { type: "string" },
  size: { type: "string" },
  "in-channels": { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  "max-steps": { type: "string" },
  "max-bad": { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  "tune-cache": { type: "string" },
  ...ROTATE_OPTIONS,
  ...DATA_LABEL_OPTIONS,
  help: { type: "boolean", short: "h" },
} as const;

/**
 * A weights flag's file, read before anything runs: a folder stands for its backbone.safetensors
 * (a pretraining run's), which must exist, be a file, and load into `backbone` (a CPU copy of the
 * network, left at zero, takes the weights as training will). Any problem is one line naming the
 * flag and the path. Returns the file's path.
 */
export async function checkInitWeightsFlag(
  flag: string,
  given: string,
  backbone: BackboneName,
  inChannels: 1 | 3,
  what: string,
): Promise<string> {
  const path = given.endsWith(".safetensors") ? given : join(given, "backbone.safetensors");
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    rethrowIfDenied(e);
  }
  if (!info) {
    throw new UserError(
      `${flag} ${given}: ${path} not found` +
        (what === "MoCo backbone"
          ? "; pass a finished pretraining run folder (deno task pretrain) or its " +
            "backbone.safetensors"
          : ""),
    );
  }
  if (!info.isFile) throw new UserError(`${flag} ${given}: ${path} is not a file`);
  const net = buildBackbone(cpuBackend, backbone, { numClasses: 1, inChannels, init: false });
  try {
    await loadInitWeights(net, path, what);
  } catch (e) {
    if (e instanceof BackboneMismatchError) {
      throw new UserError(
        `${flag} ${path} does not fit --backbone ${backbone} (${
          e.facts.replace(/^.*does not fit this backbone: /, "")
        }): pass weights of that architecture or the --backbone they were made with`,
      );
    }
    if (e instanceof UserError && /lack \d+ tensors? the backbone needs/.test(e.message)) {
      // e.g. resnet18 weights for resnet34: half the keys fit, the rest are missing.
      throw new UserError(
        `${flag}: ${e.message} of --backbone ${backbone}: pass weights of that architecture or ` +
          `the --backbone they were made with`,
      );
    }
    if (e instanceof UserError) throw new UserError(`${flag}: ${e.message}`);
    throw e;
  }
  return path;
}

/** Runs the task on its arguments (errors: see cli/run_main.ts runMain; `interrupt`: where a Ctrl-C line goes, tests pass their own). */
export async function main(
  args: string[],
  interrupt: InterruptHooks = PROCESS_INTERRUPT,
): Promise<void> {
  const { values: f } = parseArgs({
    args,
    options: FINETUNE_OPTIONS,
  });
  if (f.help) return console.log(HELP);
  // Ctrl-C from here on: one line on how a rerun continues, exit code 130 (cli/interrupt.ts).
  using _interrupt = interruptScope(() => FINETUNE_INTERRUPT_LINE, interrupt);
  const n = (name: keyof typeof FINETUNE_NUMERIC, d: number) =>
    numFlag(name, f[name], d, FINETUNE_NUMERIC[name]);
  // Every numeric flag is checked before anything is read.
  const fraction = n("fraction", 1), draws = n("draws", 1), maxSteps = n("max-steps", 300);
  const batchSize = n("batch", 16), lr = n("lr", 1e-4), maxBad = n("max-bad", 0.05);
  const labelFlags = dataLabelFlagsFrom(f);
  const init = f.init ?? "random";
  if (!["random", "imagenet", "moco"].includes(init)) {
    throw new UserError(`--init must be random, imagenet or moco, got "${init}"`);
  }
  let weights = f.weights;
  if (init !== "random" && !weights) throw new UserError(`--init ${init} needs --weights PATH`);
  const protocol = (f.protocol ?? "e2e") as Protocol;
  if (protocol !== "linear" && protocol !== "e2e") {
    throw new UserError(`--protocol must be linear or e2e, got "${protocol}"`);
  }
  const pre = pretrainConfigFrom({
    backbone: checkBackbone(f.backbone ?? "resnet18"),
    size: f.size,
    "in-channels": f["in-channels"],
    seed: f.seed,
    "rotate-interp": f["rotate-interp"],
  });
  if (init !== "random") {
    weights = await checkInitWeightsFlag(
      "--weights",
      weights!,
      pre.moco.backbone,
      pre.moco.inChannels,
      init === "moco" ? "MoCo backbone" : "ImageNet weights",
    );
  }
  const out = f.out ?? "runs/finetune";
  await requireWrite(out);
  // The data first: a wrong --data is reported before the GPU is set up.
  const data = await openData({
    data: f.data,
    kind: f.kind,
    task: f.task,
    imageSize: pre.imageSize,
    inChannels: pre.moco.inChannels,
    maxBad,
    log: console.log,
    ...labelFlags,
  });
  const gpu = await getGpu();
  const { hooks: tuning } = await openTuner(gpu, f["tune-cache"]);
  console.log(`data: ${data.describe}`);
  await runExperiment(
    gpuBackend(gpu),
    gpuTrainOps,
    {
      inits: [init as "random" | "imagenet" | "moco"],
      protocols: [protocol],
      fractions: [fraction],
      draws,
      imagenet: init === "imagenet" ? weights : undefined,
      mocoBackbone: init === "moco" ? weights : undefined,
      pretrain: pre,
      finetune: {
        batchSize,
        lr,
        weightDecay: 0,
        penaltyGrid: DEFAULT_C_GRID,
        e2eSteps: [Math.min(30, maxSteps), maxSteps],
        evalEvery: 25,
        patience: 0,
        rotateInterp: pre.rotateInterp,
      },
      seed: pre.seed,
      gradcamImages: 4,
      dataset: data.identity,
    },
    {
      cache: data.cache,
      pretrainCache: data.cache,
      pretrainIndices: [],
      describe: data.describe,
    },
    out,
    { adapter: gpu.describe(), weights: weights ?? "random" },
    console.log,
    undefined,
    tuning,
  );
  await evaluateRun(out, { replicates: 1000, seed: 0, level: 0.95, colormap: "inferno" });
}

if (import.meta.main) runMain(() => main(Deno.args));
