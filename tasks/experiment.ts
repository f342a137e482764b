/**
 * deno task experiment — the MoCo-CXR table in one command: pretrain, then
 * the fine-tuning grid, then results and report.html. With no flags, a
 * miniature reproduction on the built-in synthetic radiographs.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { checkPrecision, openTuner, presetLine } from "../cli/run_setup.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import {
  EXPERIMENT_INTERRUPT_LINE,
  type InterruptHooks,
  interruptScope,
  PROCESS_INTERRUPT,
} from "../cli/interrupt.ts";
import { UserError } from "../util/user_error.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import {
  DATA_LABEL_OPTIONS,
  dataLabelFlagsFrom,
  dataLabelHelp,
  openData,
} from "../cli/open_data.ts";
import {
  type ExperimentConfig,
  planExperiment,
  type PlanSizes,
  runExperiment,
} from "../train/experiment.ts";
import { formatPlan, scaleTimings, timeRun, type Timings } from "../train/plan.ts";
import { labelledSource, pretrainAugment, twoViewSource } from "../train/cache_sources.ts";
import { pretrainImages } from "../train/splits.ts";
import type { Protocol } from "../train/finetune.ts";
import { DEFAULT_C_GRID } from "../train/logistic_probe.ts";
import { formatFraction, type Init, INITS } from "../eval/results.ts";
import { checkInitWeightsFlag } from "./finetune.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import {
  checkBatchFits,
  type Flags,
  maxBadFrom,
  type Preset,
  presetFrom,
  PRETRAIN_NUMERIC,
  PRETRAIN_OPTIONS,
  PRETRAIN_RUN_NUMERIC,
  PRETRAIN_RUN_OPTIONS,
  pretrainConfigFrom,
  pretrainRunFrom,
  ROTATE_OPTIONS,
  viewsOnGpu,
} from "../cli/pretrain_flags.ts";
import { FRACTION, LR, numFlag, numListFlag, type NumSpecs } from "../cli/flags.ts";

const HELP = `deno task experiment [flags]   pretrain + fine-tuning grid + report

Grid
  --inits LIST          random,moco[,imagenet] (default: random,moco, plus imagenet when
                        --imagenet is given)
  --imagenet FILE       torchvision ImageNet weights as safetensors (see model/README.md)
  --moco PATH           use this MoCo backbone instead of pretraining here: a pretraining run
                        folder (deno task pretrain) or its backbone.safetensors; checked
                        against --backbone before anything runs; one backbone, so
                        --pretrain-seeds defaults to 1
  --protocols LIST      linear,e2e (default both)
  --fractions LIST      label fractions (default 0.001,0.01,0.1,1)
  --e2e-fractions LIST  fractions with end-to-end cells (default with cpu-demo: those of
                        --fractions at or below 1%, the low-label claims, or the smallest
                        fraction when none is, to fit the seeds in ~20 min on a 2-core CPU;
                        with gpu and paper: every fraction). The fractions left without
                        end-to-end cells are listed when the run starts
  --draws N             draws per fraction below 100% (default 1; 5 with gpu and paper)
  --linear-draws N      draws for the linear protocol, if more (default 5: its cells take
                        seconds, and more draws tighten the low-label differences)
  --ft-batch N          fine-tuning batch (default 16, MoCo-CXR's)
  --ft-lr LR            end-to-end fine-tuning Adam lr (default 1e-4). The linear protocol is
                        an L2 logistic regression on the frozen features, its penalty C chosen
                        per cell on the validation split from 1e-4..10 (results.csv: probe_C)
  --ft-max-steps N      end-to-end steps per cell at most (default 40: a cell then takes
                        ~30 s on a 2-core CPU); given with gpu or paper, it replaces their
                        epoch protocol by this step budget
  --gradcam N           Grad-CAM examples per init (default 4)
Transfer (the paper's CheXpert -> Shenzhen)
  --transfer            pretrain on the CheXpert-layout data, fine-tune and test on Shenzhen
                        (the synthetic Shenzhen set, or --ft-data)
  --ft-data DIR         fine-tuning dataset root when it differs from --data
Seeds
  --pretrain-seeds N    pretrain N MoCo backbones (seeds S, S+1000, ...) and run every cell on
                        each; baselines get N random initialisations. The MoCo − baseline CIs
                        then cover the pretraining seed as well as the test images (default
                        EXPERIMENT_SEEDS with cpu-demo, 3 with gpu and paper; 1 with --moco,
                        which gives one backbone)
Size (--preset; flags given explicitly still win; the plan printed before the first step
says which preset ran and why, and estimates the wall time on this adapter)
  --preset cpu-demo     the default on every adapter (nothing changes with the adapter):
                        32 px, batch 32, EXPERIMENT_EPOCHS pretraining epoch(s) per seed, end-to-end
                        cells on a miniature budget of 20-40 steps (--ft-max-steps)
  --preset gpu          one hardware GPU: 128 px, batch 64, 20 epochs, queue 4096; end-to-end
                        cells by epochs (up to 20, best validation kept, early stop after 3)
  --preset paper        MoCo-CXR: 224 px, batch 24, 20 epochs, queue 24576, momentum 0.999,
                        3 channels; end-to-end cells as gpu
Run
  --tune-cache PATH     kernel tuning choices for this adapter (default runs/tune-cache.json);
                        hardware GPUs time each kernel shape once, software adapters skip it;
                        run.json lists what ran ("kernels")
  --out DIR             run folder (default runs/experiment); rerun to resume: finished
                        cells are skipped and pretraining continues from its checkpoint
  --augment-on WHERE    auto | cpu | gpu: where pretraining makes its two views; auto
                        (default): the GPU on hardware adapters, the host on software ones
  --log-every N         pretraining reads loss and accuracy every N steps (default 1), while
                        the next steps run; as deno task pretrain
  --dry-run             print the plan (images, steps, cells, a wall-time estimate from a few
                        timed steps on this adapter, and the same at --preset paper) and exit
Labels and patients of --data (as --kind and --task, not applied to --ft-data)
${dataLabelHelp()}
Pretraining flags (--data, --backbone, --size, --epochs, --batch, --queue, ...) are those of
deno task pretrain --help; the defaults here are the preset's, with EXPERIMENT_EPOCHS pretraining
epoch(s) per seed under cpu-demo. --rotate-interp (nearest, the default, or bilinear) applies to
the MoCo views and the end-to-end batches alike; a run folder made before it (bilinear, recorded
as none) resumes only with --rotate-interp bilinear.`;

export const EXPERIMENT_OPTIONS = {
  ...PRETRAIN_OPTIONS,
  ...PRETRAIN_RUN_OPTIONS,
  ...ROTATE_OPTIONS,
  ...DATA_LABEL_OPTIONS,
  "tune-cache": { type: "string" },
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
  "pretrain-seeds": { type: "string" },
  "e2e-fractions": { type: "string" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Ranges of the grid's flags; the pretraining flags have PRETRAIN_NUMERIC's and PRETRAIN_RUN_NUMERIC's. */
export const EXPERIMENT_NUMERIC = {
  ...PRETRAIN_NUMERIC,
  ...PRETRAIN_RUN_NUMERIC,
  fractions: FRACTION,
  "e2e-fractions": FRACTION,
  draws: { min: 1, max: 1000, int: true },
  "linear-draws": { min: 1, max: 1000, int: true },
  "ft-batch": { min: 2, max: 4096, int: true },
  "ft-lr": LR,
  "ft-max-steps": { min: 1, max: 10_000_000, int: true },
  gradcam: { min: 0, max: 1000, int: true },
  "pretrain-seeds": { min: 1, max: 100, int: true },
} satisfies NumSpecs;

/** cpu-demo's pretraining seeds and epochs per seed (sized to ~20 min on a 2-core CPU). */
export const EXPERIMENT_SEEDS = 3, EXPERIMENT_EPOCHS = 2;

/** The grid's configuration from flags (the task's defaults, per preset). */
export function experimentConfigFrom(f: Flags): ExperimentConfig {
  const preset: Preset = presetFrom(f);
  const demo = preset === "cpu-demo";
  const pre = pretrainConfigFrom(f, demo ? { epochs: EXPERIMENT_EPOCHS } : {});
  const n = (name: keyof typeof EXPERIMENT_NUMERIC, d: number) =>
    numFlag(name, f[name as keyof typeof f], d, EXPERIMENT_NUMERIC[name]);
  const str = (v: string | boolean | undefined) => typeof v === "string" ? v : undefined;
  const list = (v: string | boolean | undefined, d: string) =>
    (str(v) ?? d).split(",").map((x) => x.trim());
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
  // A given MoCo backbone is one backbone: one seed unless asked for more, which is refused.
  const pretrainSeeds = n("pretrain-seeds", str(f.moco) ? 1 : demo ? EXPERIMENT_SEEDS : 3);
  if (str(f.moco) && pretrainSeeds > 1) {
    throw new UserError(
      `--moco gives one backbone, but --pretrain-seeds ${pretrainSeeds} pretrains ` +
        `${pretrainSeeds} backbones here: pass --pretrain-seeds 1 (the default with --moco), or ` +
        `drop --moco to pretrain them`,
    );
  }
  const low = fractions.filter((x) => x <= 0.01);
  const e2eFractions = numListFlag(
    "e2e-fractions",
    f["e2e-fractions"],
    demo ? (low.length ? low : [Math.min(...fractions)]) : fractions,
    FRACTION,
  );
  return {
    e2eFractions,
    inits,
    protocols,
    fractions,
    draws: n("draws", demo ? 1 : 5),
    linearDraws: n("linear-draws", 5),
    pretrainSeeds,
    imagenet: str(f.imagenet),
    mocoBackbone: str(f.moco),
    pretrain: pre,
    finetune: {
      batchSize: n("ft-batch", 16),
      lr: n("ft-lr", 1e-4),
      weightDecay: 0,
      penaltyGrid: DEFAULT_C_GRID,
      e2eSteps: [Math.min(20, maxSteps), maxSteps],
      evalEvery: 30,
      patience: 0,
      rotateInterp: pre.rotateInterp,
      // gpu and paper: MoCo-CXR's protocol, unless --ft-max-steps asks for a step budget.
      ...(demo || f["ft-max-steps"] !== undefined
        ? {}
        : { e2eEpochs: { maxEpochs: 20, patience: 3 } }),
    },
    seed: pre.seed,
    gradcamImages: n("gradcam", 4),
  };
}

/** The flags the "same data at --preset paper" plan keeps: what the run is, not its size. */
const PAPER_KEEPS = [
  "data",
  "kind",
  "task",
  "backbone",
  "inits",
  "protocols",
  "fractions",
  "ft-data",
  "moco",
  "pretrain-seeds",
] as const;

/** The configuration of the same run at --preset paper (the plan's second estimate). */
export function paperConfigFrom(f: Flags): ExperimentConfig {
  const keep = Object.fromEntries(
    PAPER_KEEPS.filter((k) => f[k] !== undefined).map((k) => [k, f[k]]),
  );
  return experimentConfigFrom({ ...keep, preset: "paper" } as Flags);
}

/** The plan line's count of pretraining seeds, saying why it is 1 with --moco. */
export function seedsText(cfg: ExperimentConfig, explicit: boolean): string {
  return `${cfg.pretrainSeeds} seed(s)` +
    (cfg.mocoBackbone && !explicit ? " (1 by default with --moco: it gives one backbone)" : "");
}

/**
 * The line saying which --fractions get no end-to-end cells and why (null: every one gets them,
 * or the grid has no end-to-end protocol).
 */
export function e2eGapNote(
  cfg: ExperimentConfig,
  explicit: boolean,
  preset: Preset,
): string | null {
  if (!cfg.protocols.includes("e2e") || !cfg.e2eFractions) return null;
  const left = cfg.fractions.filter((x) => !cfg.e2eFractions!.includes(x));
  if (!left.length) return null;
  const pct = (xs: number[]) => xs.map(formatFraction).join(", ");
  const why = explicit
    ? "they are not in --e2e-fractions"
    : `--preset ${preset} runs end-to-end cells only at the fractions at or below 1% (else the ` +
      `smallest), the low-label claims`;
  return `end-to-end cells at ${pct(cfg.e2eFractions)} only, none at ${pct(left)}: ${why}; ` +
    `pass --e2e-fractions ${cfg.fractions.join(",")} to run them all`;
}

/** Runs the task on its arguments (errors: see cli/run_main.ts runMain; `interrupt`: where a Ctrl-C line goes, tests pass their own). */
export async function main(
  args: string[],
  interrupt: InterruptHooks = PROCESS_INTERRUPT,
): Promise<void> {
  const { values: f } = parseArgs({ args, options: EXPERIMENT_OPTIONS });
  if (f.help) {
    return console.log(
      HELP.replaceAll("EXPERIMENT_SEEDS", String(EXPERIMENT_SEEDS))
        .replaceAll("EXPERIMENT_EPOCHS", String(EXPERIMENT_EPOCHS)),
    );
  }
  // Ctrl-C, while the data is read and cached, the plan timed or the grid run: one line on how a
  // rerun continues, exit code 130 (cli/interrupt.ts).
  using _interrupt = interruptScope(() => EXPERIMENT_INTERRUPT_LINE, interrupt);
  const cfg = experimentConfigFrom(f as Flags);
  const pre = cfg.pretrain;
  const run = pretrainRunFrom(f as Flags);
  // A given backbone is read before anything runs (a dry run too): wrong path, wrong backbone.
  if (cfg.mocoBackbone && cfg.inits.includes("moco")) {
    cfg.mocoBackbone = await checkInitWeightsFlag(
      "--moco",
      cfg.mocoBackbone,
      pre.moco.backbone,
      pre.moco.inChannels,
      "MoCo backbone",
    );
  }
  const noE2e = e2eGapNote(cfg, f["e2e-fractions"] !== undefined, presetFrom(f as Flags));
  if (noE2e) console.log(noE2e);
  const maxBad = maxBadFrom(f as Flags);
  const labelFlags = dataLabelFlagsFrom(f);
  const preset = presetFrom(f as Flags);
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
  const pretrainData = await openData({ ...base, ...labelFlags, data: f.data });
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
  // every training-split image but the test patients' (train/splits.ts)
  const pretrainSet = pretrainImages(pretrainData.cache);
  if (cfg.inits.includes("moco") && !cfg.mocoBackbone) {
    checkBatchFits(pre, pretrainSet.indices.length, "pretraining");
  }
  const gpu = await getGpu();
  checkPrecision(gpu, pre.moco.precision);
  const { hooks: tuning } = await openTuner(gpu, f["tune-cache"]);
  console.log(
    cfg.mocoBackbone
      ? `${presetLine(preset, !!f.preset, gpu)}; ${pre.moco.backbone} at ${pre.imageSize} px; ` +
        `no pretraining here: the MoCo backbone is ${cfg.mocoBackbone}`
      : `${presetLine(preset, !!f.preset, gpu)}; ${pre.moco.backbone} at ${pre.imageSize} px, ` +
        `batch ${pre.batchSize}, ${pre.moco.precision ?? "f32"} storage, ${pre.epochs} epoch(s) ` +
        `per pretraining seed, ${seedsText(cfg, f["pretrain-seeds"] !== undefined)}`,
  );
  const B = gpuBackend(gpu);
  const onGpu = viewsOnGpu(run, gpu);
  if (cfg.inits.includes("moco") && !cfg.mocoBackbone) {
    console.log(
      `pretraining's views made on the ${onGpu ? "GPU (uint8 images uploaded)" : "host"}; ` +
        `its loss and accuracy read every ${run.logEvery} step${run.logEvery > 1 ? "s" : ""}`,
    );
  }
  if (pretrainSet.leftOut) {
    console.log(
      `pretraining leaves out ${pretrainSet.leftOut} training-split image(s) of test patients`,
    );
    cfg.pretrain = { ...cfg.pretrain, testLeftOut: pretrainSet.leftOut };
  }
  const probeInit = labelledSource(
    ftData.cache,
    ftData.cache.splitIndices("train").slice(0, 128),
    pre.imageSize,
    pre.moco.inChannels,
  );
  const time = (sizes: PlanSizes): Promise<Timings> =>
    timeRun(B, gpuTrainOps, {
      adapter: gpu.describe(),
      pretrain: pre,
      // a given MoCo backbone: nothing is pretrained here, so no MoCo step is timed
      ...(cfg.mocoBackbone ? { mocoSteps: 0 } : {}),
      source: twoViewSource(
        pretrainData.cache,
        pretrainSet.indices,
        pretrainAugment(pre.augment, pre.imageSize, pre.moco.inChannels, pre.rotateInterp),
      ),
      labelled: probeInit,
      ft: cfg.finetune,
      probeSizes: cfg.protocols.includes("linear") ? sizes.subsets.map((s) => s.n) : [],
      probeSets: sizes,
      ckptDir: out,
      // on a GPU the tuner times what each untimed warm-up met: the plan is of tuned kernels
      settle: tuning.betweenSteps,
    });
  // The same run at --preset paper: its configuration, these timings scaled to its sizes.
  const paperAlso = (sizes: PlanSizes, t: Timings): string[] => {
    if (preset === "paper") return [];
    const paper = paperConfigFrom(f as Flags);
    const scaled = scaleTimings(t, {
      imageSize: paper.pretrain.imageSize,
      batch: paper.pretrain.batchSize,
      ftBatch: paper.finetune.batchSize,
    });
    const p = planExperiment(paper, sizes, scaled);
    return formatPlan(
      `  the same data at --preset paper (${paper.pretrainSeeds} seeds, ${paper.pretrain.epochs} ` +
        `epochs at ${paper.pretrain.imageSize} px, batch ${paper.pretrain.batchSize}; end-to-end ` +
        `by epochs, at most): these timings scaled by images x pixels per step, not timed`,
      p.parts.map((x) => ({ ...x, name: `  ${x.name}` })),
    );
  };
  await runExperiment(
    B,
    gpuTrainOps,
    cfg,
    {
      cache: ftData.cache,
      pretrainCache: pretrainData.cache,
      pretrainIndices: pretrainSet.indices,
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
      preset,
      started: new Date().toISOString(),
    },
    console.log,
    undefined,
    {
      time,
      also: paperAlso,
      dryRun: f["dry-run"],
      viewsOn: onGpu ? gpu : undefined,
      logEvery: run.logEvery,
      ...tuning,
    },
  );
  if (f["dry-run"]) return;
  await evaluateRun(out, { replicates: 1000, seed: 0, level: 0.95, colormap: "inferno" });
  console.log(`\nreport: ${join(out, "report.html")}`);
}

if (import.meta.main) runMain(() => main(Deno.args));
