/**
 * deno task experiment — the MoCo-CXR table in one command: pretrain, then
 * the fine-tuning grid, then results and report.html. With no flags, a
 * miniature reproduction on the built-in synthetic radiographs.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain, UserError } from "../util/cli.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { openData } from "../train/data_source.ts";
import { type ExperimentConfig, runExperiment } from "../train/experiment.ts";
import type { Protocol } from "../train/finetune.ts";
import { DEFAULT_C_GRID } from "../train/logistic_probe.ts";
import { type Init, INITS } from "../eval/results.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import { type Flags, num, PRETRAIN_OPTIONS, pretrainConfigFrom } from "./pretrain_flags.ts";

const HELP = `deno task experiment [flags]   pretrain + fine-tuning grid + report

Grid
  --inits LIST          random,moco[,imagenet] (default: random,moco, plus imagenet when
                        --imagenet is given)
  --imagenet FILE       torchvision ImageNet weights as safetensors (see model/README.md)
  --moco FILE           use this MoCo backbone export instead of pretraining here
  --protocols LIST      linear,e2e (default both)
  --fractions LIST      label fractions (default 0.001,0.01,0.1,1)
  --draws N             draws per fraction below 100% (default 1)
  --linear-draws N      draws for the linear protocol, if more (default 5: its cells take
                        seconds, and more draws tighten the low-label differences)
  --ft-batch N          fine-tuning batch (default 16, MoCo-CXR's)
  --ft-lr LR            end-to-end fine-tuning Adam lr (default 1e-4). The linear protocol is
                        an L2 logistic regression on the frozen features, its penalty C chosen
                        per cell on the validation split from 1e-4..10 (results.csv: probe_C)
  --ft-max-steps N      end-to-end steps per cell at most (default 40: a cell then takes
                        ~100 s on a 2-core CPU; raise it on a GPU)
  --gradcam N           Grad-CAM examples per init (default 4)
Transfer (the paper's CheXpert -> Shenzhen)
  --transfer            pretrain on the CheXpert-layout data, fine-tune and test on Shenzhen
                        (the synthetic Shenzhen set, or --ft-data)
  --ft-data DIR         fine-tuning dataset root when it differs from --data
Run
  --out DIR             run folder (default runs/experiment); rerun to resume: finished
                        cells are skipped and pretraining continues from its checkpoint
Pretraining flags (--data, --backbone, --size, --epochs, --batch, --queue, ...) are those of
deno task pretrain --help; the defaults here are its 2-core defaults.`;

async function main() {
  const { values: f } = parseArgs({
    args: Deno.args,
    options: {
      ...PRETRAIN_OPTIONS,
      inits: { type: "string" },
      imagenet: { type: "string" },
      moco: { type: "string" },
      protocols: { type: "string" },
      fractions: { type: "string" },
      draws: { type: "string" },
      "linear-draws": { type: "string" },
      "ft-batch": { type: "string" },
      "ft-lr": { type: "string" },
      "ft-max-steps": { type: "string" },
      gradcam: { type: "string" },
      transfer: { type: "boolean" },
      "ft-data": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) return console.log(HELP);
  const pre = pretrainConfigFrom(f as Flags);
  const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((x) => x.trim());
  const inits = list(f.inits, f.imagenet ? "random,imagenet,moco" : "random,moco") as Init[];
  for (const i of inits) {
    if (!INITS.includes(i)) {
      throw new UserError(`--inits: "${i}" is not one of ${INITS.join(", ")}`);
    }
  }
  const protocols = list(f.protocols, "linear,e2e") as Protocol[];
  for (const p of protocols) {
    if (p !== "linear" && p !== "e2e") {
      throw new UserError(`--protocols: "${p}" is not linear or e2e`);
    }
  }
  const fractions = list(f.fractions, "0.001,0.01,0.1,1").map((x) => num("fractions", x, 0));
  if (fractions.some((x) => !(x > 0 && x <= 1))) {
    throw new UserError("--fractions must lie in (0, 1]");
  }
  const maxSteps = num("ft-max-steps", f["ft-max-steps"], 40);
  for (const k of ["draws", "linear-draws"] as const) {
    const v = num(k, f[k], 1);
    if (!(Number.isInteger(v) && v >= 1)) throw new UserError(`--${k} must be a whole number ≥ 1`);
  }
  const cfg: ExperimentConfig = {
    inits,
    protocols,
    fractions,
    draws: num("draws", f.draws, 1),
    linearDraws: num("linear-draws", f["linear-draws"], 5),
    imagenet: f.imagenet,
    mocoBackbone: f.moco,
    pretrain: pre,
    finetune: {
      batchSize: num("ft-batch", f["ft-batch"], 16),
      lr: num("ft-lr", f["ft-lr"], 1e-4),
      weightDecay: 0,
      penaltyGrid: DEFAULT_C_GRID,
      e2eSteps: [Math.min(20, maxSteps), maxSteps],
      evalEvery: 30,
      patience: 0,
    },
    seed: pre.seed,
    gradcamImages: num("gradcam", f.gradcam, 4),
  };
  const out = f.out ?? "runs/experiment";
  await requireWrite(out);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const S = pre.imageSize, C = pre.moco.inChannels;
  const base = { kind: f.kind, task: f.task, imageSize: S, inChannels: C, log: console.log };
  const pretrainData = await openData({ ...base, data: f.data });
  const ftData = f.transfer || f["ft-data"]
    ? await openData({
      ...base,
      data: f["ft-data"],
      kind: undefined,
      task: undefined,
      synthetic: f["ft-data"] ? undefined : "shenzhen",
    })
    : pretrainData;
  console.log(
    `pretraining data: ${pretrainData.describe}` +
      (ftData !== pretrainData ? `\nfine-tuning data: ${ftData.describe}` : ""),
  );
  const B = gpuBackend(gpu);
  await runExperiment(
    B,
    gpuTrainOps,
    cfg,
    {
      cache: ftData.cache,
      pretrainCache: pretrainData.cache,
      pretrainIndices: pretrainData.cache.splitIndices("train"),
      describe: ftData === pretrainData
        ? pretrainData.describe
        : `pretrain: ${pretrainData.describe}; fine-tune: ${ftData.describe}`,
    },
    out,
    {
      adapter: gpu.describe(),
      versions: {
        deno: Deno.version.deno,
        v8: Deno.version.v8,
        typescript: Deno.version.typescript,
      },
      seeds: { experiment: cfg.seed },
      started: new Date().toISOString(),
    },
  );
  await evaluateRun(out, { replicates: 1000, seed: 0, level: 0.95, colormap: "jet" });
  console.log(`\nreport: ${join(out, "report.html")}`);
}

if (import.meta.main) runMain(main);
