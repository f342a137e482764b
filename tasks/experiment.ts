/**
 * deno task experiment — the MoCo-CXR table in one command: pretrain, then
 * the fine-tuning grid, then results and report.html. With no flags, a
 * miniature reproduction on the built-in synthetic radiographs.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import { UserError } from "../util/user_error.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { openData } from "../cli/open_data.ts";
import { type ExperimentConfig, runExperiment } from "../train/experiment.ts";
import type { Protocol } from "../train/finetune.ts";
import { DEFAULT_C_GRID } from "../train/logistic_probe.ts";
import { type Init, INITS } from "../eval/results.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import {
  type Flags,
  maxBadFrom,
  PRETRAIN_NUMERIC,
  PRETRAIN_OPTIONS,
  pretrainConfigFrom,
} from "../cli/pretrain_flags.ts";
import { FRACTION, LR, numFlag, numListFlag, type NumSpecs } from "../cli/flags.ts";

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

export const EXPERIMENT_OPTIONS = {
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
} as const;

/** Ranges of the grid's flags; the pretraining flags have PRETRAIN_NUMERIC's. */
export const EXPERIMENT_NUMERIC = {
  ...PRETRAIN_NUMERIC,
  fractions: FRACTION,
  draws: { min: 1, max: 1000, int: true },
  "linear-draws": { min: 1, max: 1000, int: true },
  "ft-batch": { min: 2, max: 4096, int: true },
  "ft-lr": LR,
  "ft-max-steps": { min: 1, max: 10_000_000, int: true },
  gradcam: { min: 0, max: 1000, int: true },
} satisfies NumSpecs;

/** Runs the task on its arguments (errors: see cli/run_main.ts runMain). */
export async function main(args: string[]): Promise<void> {
  const { values: f } = parseArgs({ args, options: EXPERIMENT_OPTIONS });
  if (f.help) return console.log(HELP);
  const pre = pretrainConfigFrom(f as Flags);
  const maxBad = maxBadFrom(f as Flags);
  const n = (name: keyof typeof EXPERIMENT_NUMERIC, d: number) =>
    numFlag(name, f[name as keyof typeof f], d, EXPERIMENT_NUMERIC[name]);
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
  const fractions = numListFlag("fractions", f.fractions, [0.001, 0.01, 0.1, 1], FRACTION);
  if (fractions.length === 0) throw new UserError("--fractions needs at least one fraction");
  const maxSteps = n("ft-max-steps", 40);
  const cfg: ExperimentConfig = {
    inits,
    protocols,
    fractions,
    draws: n("draws", 1),
    linearDraws: n("linear-draws", 5),
    imagenet: f.imagenet,
    mocoBackbone: f.moco,
    pretrain: pre,
    finetune: {
      batchSize: n("ft-batch", 16),
      lr: n("ft-lr", 1e-4),
      weightDecay: 0,
      penaltyGrid: DEFAULT_C_GRID,
      e2eSteps: [Math.min(20, maxSteps), maxSteps],
      evalEvery: 30,
      patience: 0,
    },
    seed: pre.seed,
    gradcamImages: n("gradcam", 4),
  };
  const out = f.out ?? "runs/experiment";
  await requireWrite(out);
  const S = pre.imageSize, C = pre.moco.inChannels;
  const base = {
    kind: f.kind,
    task: f.task,
    imageSize: S,
    inChannels: C,
    maxBad,
    log: console.log,
  };
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
  // The data the run is made on: a rerun on other data is refused (train/experiment.ts).
  cfg.pretrain = { ...cfg.pretrain, dataset: pretrainData.identity };
  cfg.dataset = ftData.identity;
  console.log(
    `pretraining data: ${pretrainData.describe}` +
      (ftData !== pretrainData ? `\nfine-tuning data: ${ftData.describe}` : ""),
  );
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
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

if (import.meta.main) runMain(() => main(Deno.args));
