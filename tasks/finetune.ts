/**
 * deno task finetune — one initialisation, one protocol, one label fraction
 * (and its draws): fine-tune, keep the best-validation weights, write test
 * predictions into a run folder and its AUC with 95% CIs (the same cells and
 * files as the experiment grid, which `deno task evaluate` reads).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain, UserError } from "../util/cli.ts";
import { exists } from "../util/fs.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { openData } from "../train/data_source.ts";
import { runExperiment } from "../train/experiment.ts";
import type { Protocol } from "../train/finetune.ts";
import { DEFAULT_C_GRID } from "../train/logistic_probe.ts";
import { checkBackbone } from "../train/backbones.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import { num, pretrainConfigFrom } from "./pretrain_flags.ts";

const HELP = `deno task finetune --init random|imagenet|moco [--weights FILE] [flags]

  --init I          random, imagenet (needs --weights: torchvision safetensors) or moco
                    (needs --weights: a pretraining run folder or its backbone.safetensors)
  --weights PATH    the initial weights
  --protocol P      linear (frozen backbone; an L2 logistic regression on its features, the
                    penalty chosen on the validation split) or e2e (all layers); default e2e
  --fraction F      label fraction of the training split, by patient (default 1)
  --draws N         draws of that fraction (default 1)
  --data DIR        dataset root (default: the built-in synthetic CheXpert set); --kind, --task
  --backbone B      resnet18 | resnet34 | resnet50 | densenet121 (must match --weights)
  --size PX         image size (default 64); --in-channels 1|3 (default 1)
  --batch N         batch (default 16); --lr LR (default 1e-4); --max-steps N (default 300)
  --seed S          default 0
  --out DIR         run folder (default runs/finetune); cells already there are skipped`;

async function main() {
  const { values: f } = parseArgs({
    args: Deno.args,
    options: {
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
      seed: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) return console.log(HELP);
  const init = f.init ?? "random";
  if (!["random", "imagenet", "moco"].includes(init)) {
    throw new UserError(`--init must be random, imagenet or moco, got "${init}"`);
  }
  let weights = f.weights;
  if (init !== "random") {
    if (!weights) throw new UserError(`--init ${init} needs --weights PATH`);
    if (!weights.endsWith(".safetensors")) weights = join(weights, "backbone.safetensors");
    if (!(await exists(weights))) {
      throw new UserError(
        `${weights} not found` +
          (init === "moco" ? ": pass a finished pretraining run folder (deno task pretrain)" : ""),
      );
    }
  }
  const protocol = (f.protocol ?? "e2e") as Protocol;
  if (protocol !== "linear" && protocol !== "e2e") {
    throw new UserError(`--protocol must be linear or e2e, got "${protocol}"`);
  }
  const fraction = num("fraction", f.fraction, 1);
  if (!(fraction > 0 && fraction <= 1)) throw new UserError("--fraction must lie in (0, 1]");
  const pre = pretrainConfigFrom({
    backbone: checkBackbone(f.backbone ?? "resnet18"),
    size: f.size,
    "in-channels": f["in-channels"],
    seed: f.seed,
  });
  const maxSteps = num("max-steps", f["max-steps"], 300);
  const out = f.out ?? "runs/finetune";
  await requireWrite(out);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const data = await openData({
    data: f.data,
    kind: f.kind,
    task: f.task,
    imageSize: pre.imageSize,
    inChannels: pre.moco.inChannels,
    log: console.log,
  });
  console.log(`data: ${data.describe}`);
  await runExperiment(
    gpuBackend(gpu),
    gpuTrainOps,
    {
      inits: [init as "random" | "imagenet" | "moco"],
      protocols: [protocol],
      fractions: [fraction],
      draws: num("draws", f.draws, 1),
      imagenet: init === "imagenet" ? weights : undefined,
      mocoBackbone: init === "moco" ? weights : undefined,
      pretrain: pre,
      finetune: {
        batchSize: num("batch", f.batch, 16),
        lr: num("lr", f.lr, 1e-4),
        weightDecay: 0,
        penaltyGrid: DEFAULT_C_GRID,
        e2eSteps: [Math.min(30, maxSteps), maxSteps],
        evalEvery: 25,
        patience: 0,
      },
      seed: pre.seed,
      gradcamImages: 4,
    },
    {
      cache: data.cache,
      pretrainCache: data.cache,
      pretrainIndices: [],
      describe: data.describe,
    },
    out,
    { adapter: gpu.describe(), weights: weights ?? "random" },
  );
  await evaluateRun(out, { replicates: 1000, seed: 0, level: 0.95, colormap: "jet" });
}

if (import.meta.main) runMain(main);
