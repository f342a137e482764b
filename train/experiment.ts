/**
 * The MoCo-CXR experiment grid: initialisation (random, ImageNet, MoCo) ×
 * protocol (linear, end-to-end) × label fraction × draw, for one backbone,
 * written as a run folder that eval/ turns into results and report.html.
 *
 * Resumable at two levels: pretraining continues from its checkpoint, and a
 * cell whose predictions file exists is skipped. Splits (train/splits.ts): the
 * dataset's own test split, else its valid split (as MoCo-CXR evaluated on
 * CheXpert's valid set), else a fixed patient-disjoint share is the test set;
 * the fine-tuning validation set is the dataset's valid split beside its own
 * test split, else a patient-disjoint share of the training split, and label
 * fractions are drawn by patient from the rest, nested across fractions. No
 * patient is in two of them, and pretraining never sees a test patient.
 *
 * Pretraining seeds (pretrainSeeds K > 1): seed k pretrains its own MoCo backbone (pretrain
 * seed + 1000·k, in pretrain/ for k = 0 and pretrain_s<k>/ after) and runs every cell on it; the
 * baselines get seed k's random initialisation (fine-tuning seeds + 1000·k). The label subsets,
 * validation and test sets are the same for every seed, so a seed's MoCo and baseline cells pair
 * as before and the spread between seeds is the pretraining's own (eval/seeds.ts). Seed 0's cells
 * keep the file names of a one-seed run, so a run can grow from one seed to several.
 *
 * Normalisation per initialisation (initNormalization, recorded in run.json): the ImageNet init's
 * images (frozen features, end-to-end training, validation, test, Grad-CAM) are normalised as
 * torchvision's weights expect; MoCo and random inits get the pretraining's (MoCo-CXR's CheXpert
 * statistics). A frozen backbone's BN running statistics cannot absorb the difference.
 */
import { type DatasetIdentity, identityDifference } from "../data/identity.ts";
import { basename, dirname, join } from "node:path";
import type { Backend } from "../model/backend.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { labelFractionSubsets, sharedPatients } from "../data/fractions.ts";
import { makeSplits, type SplitsId } from "./splits.ts";
import type { ImageCache } from "../data/cache/reader.ts";
import { codeVersion, predictionsFileName, writePredictionsFile } from "../eval/run_files.ts";
import { formatFraction, type Init } from "../eval/results.ts";
import { INIT_LABEL } from "../eval/format.ts";
import { exists, rethrowIfDenied, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { UserError } from "../util/user_error.ts";
import {
  ConflictingSettingsError,
  MissingImagenetWeightsError,
  OtherDataError,
  OtherSettingsError,
} from "./run_errors.ts";
import type { TrainOps } from "./train_ops.ts";
import { pretrain, type PretrainConfig, rotateInterpOf } from "./pretrain.ts";
import type { Interp } from "../data/augment.ts";
import type { Gpu } from "../kernels/device.ts";
import {
  buildClassifier,
  finetune,
  type FinetuneConfig,
  type FrozenFeatures,
  type Protocol,
  stepsFor,
} from "./finetune.ts";
import { extractFeatures } from "./features.ts";
import { gradCam } from "./gradcam.ts";
import {
  type LabelledNorm,
  labelledSource,
  pretrainAugment,
  twoViewSource,
} from "./cache_sources.ts";
import type { LabelledSource } from "./sources.ts";
import { knnMonitor } from "./monitor.ts";
import { drawMonitorSets } from "./monitor_sets.ts";
import {
  estimateCells,
  estimatePretrain,
  formatPlan,
  type Plan,
  type PlannedCell,
  type Timings,
} from "./plan.ts";

/** Seed k's pretraining and fine-tuning seeds are the run's + SEED_STRIDE·k. */
export const SEED_STRIDE = 1000;

/**
 * How an initialisation's labelled images are normalised: torchvision's ImageNet weights get
 * ImageNet's statistics (train/cache_sources.ts: folded to gray as the 1-channel stem is summed, or
 * per channel for a 3-channel stem); MoCo and random inits get the pretraining's, MoCo-CXR's
 * CheXpert statistics ("mococxr").
 */
export function initNormalization(init: Init): LabelledNorm {
  return init === "imagenet" ? "imagenet" : "mococxr";
}

/**
 * The experiment grid: initialisations × protocols × label fractions × draws, and how each part
 * trains.
 */
export interface ExperimentConfig {
  /** Backbone initialisations to compare. */
  inits: Init[];
  /** Fine-tuning protocols: linear probe and/or end to end. */
  protocols: Protocol[];
  /** Label fractions of the training pool (drawn by patient, nested). */
  fractions: number[];
  /** Draws of each fraction (end to end). */
  draws: number;
  /** Pretraining seeds (default 1): every cell runs on each seed's backbone. */
  pretrainSeeds?: number;
  /** Fractions with end-to-end cells (default: every fraction). */
  e2eFractions?: number[];
  /**
   * Draws for the linear protocol, if more (its cells reuse one feature extraction per init and
   * take seconds, so more draws tighten its low-label differences almost for free).
   */
  linearDraws?: number;
  /** ImageNet (torchvision) backbone safetensors, for the "imagenet" init. */
  imagenet?: string;
  /** An existing MoCo backbone export; without it, pretraining runs first. */
  mocoBackbone?: string;
  /** MoCo pretraining (for the "moco" init without mocoBackbone). */
  pretrain: PretrainConfig;
  /** Fine-tuning settings shared by every cell. */
  finetune: {
    /** End-to-end batch size. */
    batchSize: number;
    /** End-to-end learning rate (Adam). */
    lr: number;
    /** End-to-end weight decay. */
    weightDecay: number;
    /** Linear protocol: inverse L2 penalties C tried per cell, chosen on validation AUC. */
    penaltyGrid: number[];
    /** End-to-end: steps per cell within this range (stepsFor). */
    e2eSteps: [number, number];
    /** End-to-end: validation AUC every this many steps. */
    evalEvery: number;
    /** End-to-end: stop after this many evaluations without improvement (0 = never). */
    patience: number;
    /**
     * End-to-end protocol: absent, the miniature step budget above (e2eSteps, evalEvery); "epochs",
     * MoCo-CXR's: up to maxEpochs epochs of the subset, validation every epoch, the best
     * validation weights kept, stopping after `patience` epochs without gain. An epoch is
     * ceil(n / batchSize) steps of full batches (e2eSchedule), not exactly one pass over the n
     * images.
     */
    e2eEpochs?: { maxEpochs: number; patience: number };
    /** Linear protocol: L-BFGS iteration cap per C (default 5000; tests force a tiny one). */
    probeMaxIter?: number;
    /**
     * End-to-end training batches' rotation interpolation (data/augment.ts; the views' choice,
     * --rotate-interp; nearest when absent). Runs recorded before it have none and rotated
     * bilinearly, so a resume compares an absent one as bilinear (rotateInterpOf); the tasks
     * always record it.
     */
    rotateInterp?: Interp;
  };
  /** Seed of the splits, the fraction draws and the fine-tuning runs. */
  seed: number;
  /** Grad-CAM examples per init (end-to-end, largest fraction, first draw). */
  gradcamImages: number;
  /** The fine-tuning data (the pretraining data: pretrain.dataset); a rerun refuses others. */
  dataset?: DatasetIdentity;
  /**
   * What made the dataset's own splits patient-disjoint (train/splits.ts `overlap`); absent when
   * they were. Set by runExperiment and compared on resume, so that a run made before that rule
   * is not continued on other splits.
   */
  splitsOverlap?: { dropped: number; moved: number; patients: number };
  /**
   * The splits' fingerprint (train/splits.ts splitsId: where the test set comes from, a hash of
   * the test, validation and train-pool images). Set by runExperiment; a resume on other splits
   * is refused.
   */
  splitsId?: SplitsId;
}

/** The images an experiment runs on. */
export interface ExperimentData {
  /** Fine-tuning dataset (cached). */
  cache: ImageCache;
  /** Pretraining images (cache and indices); the fine-tuning set's training split by default. */
  pretrainCache: ImageCache;
  /** Indices into pretrainCache of the pretraining images. */
  pretrainIndices: number[];
  /** One line describing the data, for run.json and logs. */
  describe: string;
}

/** Whether a configuration pretrains its MoCo backbone in the run folder (none given). */
function pretrainsHere(c: ExperimentConfig): boolean {
  return c.inits.includes("moco") && !c.mocoBackbone;
}

/** Whether a recorded pretraining config is a whole one (not finetuneView's part of one). */
function isWholePretrain(p: unknown): p is PretrainConfig {
  return typeof p === "object" && p !== null && "epochs" in p;
}

/**
 * What fine-tuning reads of the pretraining config (image size, input channels, backbone): all
 * run.json records of it when the run pretrains nothing, rather than settings nobody used.
 */
export function finetuneView(p: PretrainConfig): {
  moco: { backbone: string; inChannels: number };
  imageSize: number;
} {
  return {
    moco: { backbone: p.moco.backbone, inChannels: p.moco.inChannels },
    imageSize: p.imageSize,
  };
}

/** What a run folder holds already: cells by init, and pretraining made in it. */
interface FolderState {
  /** Prediction files by init (file names with `_<init>_`). */
  cells: Record<Init, number>;
  /** Any cell at all. */
  anyCell: boolean;
  /** A pretraining checkpoint or backbone in pretrain/ or pretrain_s<k>/. */
  pretrained: boolean;
}

async function folderState(runDir: string): Promise<FolderState> {
  const names = async (dir: string) =>
    (await exists(dir)) ? [...Deno.readDirSync(dir)].map((e) => e.name) : [];
  const preds = (await names(join(runDir, "predictions"))).filter((n) => n.endsWith(".json"));
  let pretrained = false;
  for (const d of await names(runDir)) {
    if (!/^pretrain(_s\d+)?$/.test(d)) continue;
    for (const f of ["checkpoint.safetensors", "backbone.safetensors"]) {
      if (await exists(join(runDir, d, f))) pretrained = true;
    }
  }
  const cells = Object.fromEntries(
    (["random", "imagenet", "moco"] as Init[]).map((i) => [
      i,
      preds.filter((n) => n.includes(`_${i}_`)).length,
    ]),
  ) as Record<Init, number>;
  return { cells, anyCell: preds.length > 0, pretrained };
}

/**
 * A rerun resumes a run folder only with the settings its finished cells were made with; the grid
 * itself (inits, protocols, fractions, draws) may grow, since each cell is its own file. The
 * ImageNet weights are compared only when this run and the folder both have ImageNet cells, the
 * MoCo backbone only when both have MoCo cells (or the folder a pretraining), and the whole
 * pretraining config only when this run pretrains and the folder holds a pretraining's cells; else
 * what fine-tuning reads of it (finetuneView). A folder where nothing finished (no cell, no
 * pretraining checkpoint: a run that failed early) takes the new settings, said in one line.
 * Returns the saved run.json to merge into the new one (null: none, or replaced).
 */
async function checkResumable(
  runDir: string,
  cfg: ExperimentConfig,
  log: (m: string) => void,
): Promise<Record<string, unknown> | null> {
  const file = join(runDir, "run.json");
  if (!(await exists(file))) return null;
  const state = await folderState(runDir);
  if (!state.anyCell && !state.pretrained) {
    log(
      `${runDir}: no cell or pretraining of its earlier run finished; this run's settings ` +
        `replace those in its run.json`,
    );
    return null;
  }
  const record = await readRunRecord(file);
  // Cells of an init made on other normalised images (runs before per-init normalisation recorded
  // none: every init had "mococxr") would mix with new ones.
  const normWas = (record.normalization ?? {}) as Record<string, string>;
  for (const init of cfg.inits) {
    const was = normWas[init] ?? "mococxr", now = initNormalization(init);
    if (was === now) continue;
    const cells = state.cells[init];
    if (cells) {
      throw new OtherSettingsError(
        `${runDir} holds ${cells} ${init} cell(s) made on images normalised as "${was}", ` +
          `now "${now}" (remove them to redo them)`,
        file,
      );
    }
  }
  const saved = record.config as ExperimentConfig | undefined;
  if (!saved) return record;
  const mocoMade = state.cells.moco > 0 || state.pretrained;
  const whole = pretrainsHere(cfg) && mocoMade && isWholePretrain(saved.pretrain);
  // Runs from before datasets were recorded carry none: their settings are compared alone.
  const named = (c: ExperimentConfig): Record<string, unknown> => ({
    ...Object.fromEntries(
      Object.entries(
        whole
          ? { ...c.pretrain, dataset: undefined, rotateInterp: rotateInterpOf(c.pretrain) }
          : finetuneView(c.pretrain),
      ).map(([k, v]) => [`pretrain ${k}`, v]),
    ),
    ...Object.fromEntries(
      Object.entries({ ...c.finetune, rotateInterp: rotateInterpOf(c.finetune) })
        .map(([k, v]) => [`fine-tuning ${k}`, v]),
    ),
    seed: c.seed,
    ...(cfg.inits.includes("imagenet") && state.cells.imagenet
      ? { imagenet: c.imagenet ?? null }
      : {}),
    ...(cfg.inits.includes("moco") && mocoMade ? { "moco backbone": c.mocoBackbone ?? null } : {}),
    "splits made patient-disjoint": c.splitsOverlap ?? null,
    // runs before splits were fingerprinted: compared where the rule could not have changed
    ...(saved.splitsId ? { splits: c.splitsId ?? null } : {}),
  });
  for (
    const [what, a, b] of [
      ["fine-tuning", saved.dataset, cfg.dataset],
      ["pretraining", whole ? saved.pretrain?.dataset : undefined, cfg.pretrain.dataset],
    ] as const
  ) {
    const diff = a && b ? identityDifference(a, b) : null;
    if (diff) {
      throw new OtherDataError(`${runDir} holds a run made on other ${what} data (${diff})`, file);
    }
  }
  const was = named(saved), now = named(cfg);
  if (!saved.splitsId && cfg.splitsId?.from === "drawn") {
    // The rule for a test set drawn from the images changed in session 16 (by patient id, not a
    // seeded stratified draw): a run made before holds cells tested on other images.
    was.splits = "none (made before this version's rule for a test set drawn from the images)";
    now.splits = cfg.splitsId;
  }
  const show = (v: unknown) => JSON.stringify(v) ?? "none";
  const differ = [...new Set([...Object.keys(was), ...Object.keys(now)])]
    .filter((k) => show(was[k]) !== show(now[k]));
  if (differ.length) {
    throw new OtherSettingsError(
      `${runDir} holds a run made with other settings (${
        differ.map((k) => `${k}: saved ${show(was[k])}, now ${show(now[k])}`).join("; ")
      })`,
      file,
    );
  }
  return record;
}

/**
 * A run folder's run.json, which must hold one JSON object: a damaged one (cut short, edited into
 * invalid JSON, a folder at its path) is refused naming it, as resuming would compare settings
 * with a record it cannot read.
 */
async function readRunRecord(file: string): Promise<Record<string, unknown>> {
  let detail: string;
  try {
    const record = JSON.parse(await Deno.readTextFile(file));
    if (typeof record === "object" && record !== null && !Array.isArray(record)) return record;
    detail = `it holds ${Array.isArray(record) ? "a list" : JSON.stringify(record)}, not an object`;
  } catch (e) {
    rethrowIfDenied(e);
    detail = (e as Error).message.replace(/\s+/g, " ");
  }
  throw new UserError(
    `${file} is damaged (${detail}); it records the settings of the run in its folder: restore ` +
      `it from a copy, or start a new run folder`,
  );
}

/**
 * Where the given MoCo backbone's pretraining settings are recorded: the config.json that
 * `deno task pretrain` writes beside its backbone.safetensors, else none (never this run's
 * defaults, which did not make it).
 */
async function givenBackbonePretraining(backbone: string): Promise<Record<string, unknown>> {
  const from = join(dirname(backbone), "config.json");
  try {
    const config = JSON.parse(await Deno.readTextFile(from));
    if (typeof config === "object" && config !== null) return { backbone, from, config };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) && !(e instanceof SyntaxError)) throw e;
  }
  return {
    backbone,
    from: null,
    config: null,
    note: `no readable config.json beside ${backbone}: its pretraining settings are unknown`,
  };
}

/**
 * The run.json record of this run: its settings, merged with the saved record of the folder's
 * earlier cells where this run has none (the ImageNet weights, the MoCo backbone and its
 * pretraining, a pretraining made here), so growing the grid by inits loses no record.
 */
function recordedConfig(
  cfg: ExperimentConfig,
  saved: Record<string, unknown> | null,
): ExperimentConfig {
  const was = saved?.config as Partial<ExperimentConfig> | undefined;
  const keepPretrain = !pretrainsHere(cfg) && was && !was.mocoBackbone &&
    isWholePretrain(was.pretrain);
  return {
    ...cfg,
    pretrain: pretrainsHere(cfg)
      ? cfg.pretrain
      : keepPretrain
      ? was.pretrain!
      : finetuneView(cfg.pretrain) as unknown as PretrainConfig,
    imagenet: cfg.imagenet ?? was?.imagenet,
    mocoBackbone: cfg.mocoBackbone ?? was?.mocoBackbone,
  };
}

/** Whether the grid has end-to-end cells at this fraction. */
function hasE2e(cfg: ExperimentConfig, fraction: number): boolean {
  return !cfg.e2eFractions || cfg.e2eFractions.includes(fraction);
}

/**
 * An end-to-end cell's steps, evaluation interval and patience for a subset of n images.
 *
 * With `e2eEpochs`, an "epoch" is ceil(n / B) steps (B = batchSize), each a full batch of B rows
 * (train/finetune.ts): the subset is shuffled and cut into batches, the tail of a shuffle that
 * cannot fill a batch (n mod B rows) is skipped and a new shuffle starts, and a subset smaller than
 * B is repeated to fill one. So an epoch draws ceil(n/B)·B rows, not n: it is one pass only when B
 * divides n, and it may show an image twice or not at all (n = 17, B = 16: 2 steps of 32 rows).
 * Kept as it is: existing runs' results depend on it.
 */
export function e2eSchedule(
  fc: ExperimentConfig["finetune"],
  n: number,
): { steps: number; evalEvery: number; patience: number; evals: number; protocol: string } {
  if (fc.e2eEpochs) {
    const perEpoch = Math.max(1, Math.ceil(n / fc.batchSize));
    return {
      steps: perEpoch * fc.e2eEpochs.maxEpochs,
      evalEvery: perEpoch,
      patience: fc.e2eEpochs.patience,
      evals: fc.e2eEpochs.maxEpochs,
      protocol: `epochs (up to ${fc.e2eEpochs.maxEpochs}, best validation kept, early stop ` +
        `after ${fc.e2eEpochs.patience} without gain)`,
    };
  }
  const steps = stepsFor(n, fc.batchSize, fc.e2eSteps[0], fc.e2eSteps[1]);
  return {
    steps,
    evalEvery: fc.evalEvery,
    patience: fc.patience,
    evals: Math.ceil(steps / fc.evalEvery),
    protocol: `miniature step budget (${fc.e2eSteps[0]}-${fc.e2eSteps[1]} steps, best ` +
      `validation of every ${fc.evalEvery} kept)`,
  };
}

/** What the plan needs to know of a run's data. */
export interface PlanSizes {
  /** Images pretraining reads. */
  pretrainImages: number;
  /** Images the kNN monitor embeds at each check. */
  monitorImages: number;
  /** Fine-tuning pool, validation and test split sizes. */
  trainPool: number;
  /** Validation images. */
  val: number;
  /** Test images. */
  test: number;
  /** Subset sizes by (fraction, draw). */
  subsets: { fraction: number; draw: number; n: number }[];
}

/**
 * The run's work and its estimate from timings: pretraining per seed (unless given or done), the
 * feature extractions and cells not yet done (`done` says which cells and seeds are finished).
 */
export function planExperiment(
  cfg: ExperimentConfig,
  sizes: PlanSizes,
  t: Timings,
  done: {
    cell?: (
      seed: number,
      init: Init,
      protocol: Protocol,
      fraction: number,
      draw: number,
    ) => boolean;
    pretrained?: (seed: number) => boolean;
  } = {},
): { parts: { name: string; plan: Plan }[]; seconds: number; cells: number; steps: number } {
  const K = cfg.pretrainSeeds ?? 1;
  const linearDraws = Math.max(cfg.draws, cfg.linearDraws ?? 0);
  const parts: { name: string; plan: Plan }[] = [];
  let steps = 0, nCells = 0;
  for (let k = 0; k < K; k++) {
    if (cfg.inits.includes("moco") && !cfg.mocoBackbone && !done.pretrained?.(k)) {
      const p = estimatePretrain(cfg.pretrain, sizes.pretrainImages, sizes.monitorImages, t);
      steps += p.lines[0].count;
      parts.push({ name: `seed ${k + 1}/${K}: pretraining`, plan: p });
    }
    const cells: PlannedCell[] = [];
    let extractions = 0;
    for (const init of cfg.inits) {
      let features = false;
      for (const protocol of cfg.protocols) {
        for (const sub of sizes.subsets) {
          if (sub.draw >= (protocol === "linear" ? linearDraws : cfg.draws)) continue;
          if (protocol === "e2e" && !hasE2e(cfg, sub.fraction)) continue;
          if (done.cell?.(k, init, protocol, sub.fraction, sub.draw)) continue;
          if (protocol === "linear") {
            features = true;
            cells.push({ protocol, n: sub.n });
          } else {
            const e = e2eSchedule(cfg.finetune, sub.n);
            cells.push({ protocol, n: sub.n, steps: e.steps, evals: e.evals });
            steps += e.steps;
          }
        }
      }
      if (features) extractions++;
    }
    nCells += cells.length;
    parts.push({
      name: `seed ${k + 1}/${K}: fine-tuning`,
      plan: estimateCells(cells, extractions, sizes, t),
    });
  }
  return { parts, seconds: parts.reduce((s, p) => s + p.plan.seconds, 0), cells: nCells, steps };
}

/**
 * Options of a run: its plan (timings measured by the task, what to print besides, dry run) and
 * the hooks of the kernel tuner.
 */
export interface ExperimentPlanOptions {
  /** Times a few steps of this run's configuration (train/plan.ts timeRun); absent: no plan. */
  time?: (sizes: PlanSizes) => Promise<Timings>;
  /** Lines printed after the plan (e.g. the same plan at --preset paper). */
  also?: (sizes: PlanSizes, t: Timings) => string[];
  /** Print the plan and return before the first step. */
  dryRun?: boolean;
  /**
   * Called between pretraining steps, between end-to-end fine-tuning steps and after each cell
   * (the GPU kernel tuner, kernels/tuner.ts).
   */
  betweenSteps?: () => Promise<void>;
  /** What ran for each kernel shape, added to run.json as `kernels` when the grid is done. */
  kernels?: () => unknown;
  /**
   * The device that makes pretraining's two views (uint8 images uploaded, kernels/augment.ts),
   * where the task chose the GPU (`--augment-on`); absent: the host makes them.
   */
  viewsOn?: Gpu;
  /** Pretraining reads its loss and accuracy every this many steps (default 1: pretrain()'s). */
  logEvery?: number;
}

/**
 * Runs (or resumes) the grid into runDir: pretraining if needed, every cell's fine-tuning and test
 * predictions, Grad-CAM examples; then evaluateRun makes the report.
 */
export async function runExperiment(
  B: Backend,
  ops: TrainOps,
  cfg: ExperimentConfig,
  data: ExperimentData,
  runDir: string,
  meta: Record<string, unknown>,
  log: (m: string) => void = console.log,
  /** Backbone factory override (tests use a tiny network). */
  backbone?: (o: NetOptions) => ClassifierNet,
  plan?: ExperimentPlanOptions,
): Promise<{ planned?: number; seconds: number }> {
  const { cache } = data;
  const pc = cfg.pretrain, S = pc.imageSize, C = pc.moco.inChannels;
  if (cfg.inits.includes("imagenet") && !cfg.imagenet) {
    throw new MissingImagenetWeightsError();
  }
  const K = cfg.pretrainSeeds ?? 1;
  if (K > 1 && cfg.mocoBackbone) {
    throw new ConflictingSettingsError(
      "backbone-and-seeds",
      `a given MoCo backbone is one backbone, but ${K} pretraining seeds pretrain one each here: ` +
        `give one or the other`,
    );
  }
  for (const x of cfg.e2eFractions ?? []) {
    if (!cfg.fractions.includes(x)) {
      throw new ConflictingSettingsError(
        "e2e-fraction",
        `end-to-end fraction ${x} is not one of the grid's fractions (${cfg.fractions.join(", ")})`,
      );
    }
  }
  const splits = makeSplits(cache, cfg.seed);
  for (const n of splits.notes) log(`splits: ${n}`);
  if (data.pretrainCache === cache) {
    const seen = sharedPatients(cache.records, splits.test, data.pretrainIndices);
    if (seen.length) {
      throw new ConflictingSettingsError(
        "pretrain-test",
        `the pretraining images include ${seen.length} test patient(s) (e.g. ${seen[0]}): ` +
          `pretrain on pretrainImages(cache) (train/splits.ts)`,
      );
    }
  }
  if (splits.overlap) cfg = { ...cfg, splitsOverlap: splits.overlap };
  cfg = { ...cfg, splitsId: splits.id };
  const saved = await checkResumable(runDir, cfg, log);
  const T = cache.tasks.length;
  const linearDraws = Math.max(cfg.draws, cfg.linearDraws ?? 0);
  const subsets = labelFractionSubsets(cache.records, splits.trainPool, {
    fractions: cfg.fractions,
    draws: linearDraws,
    seed: cfg.seed,
  });
  const drawsOf = (p: Protocol) => p === "linear" ? linearDraws : cfg.draws;
  log(
    `splits: ${splits.trainPool.length} train pool, ${splits.val.length} validation, ${splits.test.length} test; ` +
      `subsets: ${
        subsets.map((s) => `${formatFraction(s.fraction)}#${s.draw}=${s.indices.length}`)
          .join(" ")
      }`,
  );

  const monitorSets = drawMonitorSets(cache.records, splits.trainPool, splits.val, {
    seed: cfg.seed,
    taskName: cache.tasks[0],
  });
  const pdirOf = (k: number) => join(runDir, k === 0 ? "pretrain" : `pretrain_s${k}`);
  const keyOf = (k: number, init: Init, protocol: Protocol, fraction: number, draw: number) => ({
    init,
    protocol,
    fraction,
    draw,
    backbone: pc.moco.backbone,
    task: cache.tasks[0],
    // One seed: no field, the files of runs made before seeds.
    ...(K > 1 ? { pretrain_seed: k } : {}),
  });
  const cellFile = (key: ReturnType<typeof keyOf>) =>
    join(runDir, "predictions", predictionsFileName(key));

  // The plan: what will run and how long it should take, from a few timed steps.
  let planned: number | undefined;
  if (plan?.time) {
    const sizes: PlanSizes = {
      pretrainImages: data.pretrainIndices.length,
      monitorImages: pc.monitorEvery > 0 && monitorSets.ok
        ? monitorSets.reference.length + monitorSets.validation.length
        : 0,
      trainPool: splits.trainPool.length,
      val: splits.val.length,
      test: splits.test.length,
      subsets: subsets.map((s) => ({ fraction: s.fraction, draw: s.draw, n: s.indices.length })),
    };
    const doneCells = new Set<string>();
    const donePre = new Set<number>();
    for (let k = 0; k < K; k++) {
      if (await exists(join(pdirOf(k), "backbone.safetensors"))) donePre.add(k);
      for (const init of cfg.inits) {
        for (const protocol of cfg.protocols) {
          for (const s of subsets) {
            const key = keyOf(k, init, protocol, s.fraction, s.draw);
            if (await exists(cellFile(key))) doneCells.add(predictionsFileName(key));
          }
        }
      }
    }
    log(`timing a few steps of this configuration on this adapter…`);
    const t = await plan.time(sizes);
    const p = planExperiment(cfg, sizes, t, {
      cell: (k, i, pr, f, d) => doneCells.has(predictionsFileName(keyOf(k, i, pr, f, d))),
      pretrained: (k) => donePre.has(k),
    });
    planned = p.seconds;
    const e2e = cfg.protocols.includes("e2e")
      ? `; end-to-end protocol: ${e2eSchedule(cfg.finetune, 1).protocol}`
      : "";
    for (
      const line of [
        `plan: ${K} pretraining seed(s) x ${cfg.inits.join("/")} x ${cfg.protocols.join("/")} x ` +
        `fractions ${cfg.fractions.map(formatFraction).join(",")}; ${p.cells} cells to run` +
        (doneCells.size ? ` (${doneCells.size} already done)` : "") +
        `, ${p.steps} training steps${e2e}`,
        `  data: ${sizes.pretrainImages} pretraining images; ${sizes.trainPool} train pool, ` +
        `${sizes.val} validation, ${sizes.test} test`,
        `  timed on ${t.adapter}: MoCo step ${t.mocoStep.toFixed(2)} s (batch ${t.batch}, ` +
        `${t.imageSize} px), fine-tuning step ${t.ftStep.toFixed(2)} s (batch ${t.ftBatch}), ` +
        `forward ${(1000 * t.forward).toFixed(1)} ms/image`,
        ...formatPlan("  estimate:", p.parts).slice(1),
        ...(plan.also?.(sizes, t) ?? []),
      ]
    ) log(line);
    if (plan.dryRun) return { planned, seconds: 0 };
  }
  // The plan's estimate covers what follows (not its own timing steps).
  const tRun = performance.now();
  await Deno.mkdir(join(runDir, "predictions"), { recursive: true });
  await Deno.mkdir(join(runDir, "metrics"), { recursive: true });
  // The MoCo backbone's pretraining: this run's config when it pretrains here; a given
  // backbone's own config.json, or none; kept from the saved record when this run has no MoCo.
  const mocoPretraining = cfg.mocoBackbone && cfg.inits.includes("moco")
    ? await givenBackbonePretraining(cfg.mocoBackbone)
    : pretrainsHere(cfg)
    ? undefined
    : saved?.moco_pretraining;
  await writeJsonAtomic(join(runDir, "run.json"), {
    ...meta,
    config: recordedConfig(cfg, saved),
    data: data.describe,
    pretrain_seeds: K,
    e2e_protocol: cfg.protocols.includes("e2e")
      ? e2eSchedule(cfg.finetune, 1).protocol
      : saved?.e2e_protocol,
    normalization: {
      ...(saved?.normalization as Record<string, string> | undefined),
      ...Object.fromEntries(cfg.inits.map((i) => [i, initNormalization(i)])),
    },
    ...(mocoPretraining ? { moco_pretraining: mocoPretraining } : {}),
    // What the report's metadata and results table show of the data and the command.
    splits: Object.fromEntries(
      ([["train_pool", splits.trainPool], ["validation", splits.val], [
        "test",
        splits.test,
      ]] as const)
        .map(([k, idx]) => [k, {
          images: idx.length,
          positives: idx.filter((i) => {
            const r = cache.records[i];
            return r.mask[0] > 0 && r.labels[0] > 0;
          }).length,
        }]),
    ),
    subsets: subsets.map((s) => ({
      fraction: s.fraction,
      draw: s.draw,
      images: s.indices.length,
      positives: s.positives,
    })),
    command: { task: "experiment", args: Deno.args },
    code_version: await codeVersion(),
  });

  /** The labelled sets as an initialisation sees them (normalised per initNormalization). */
  const setsByNorm = new Map<LabelledNorm, Record<"test" | "val" | "train", LabelledSource>>();
  const setsOf = (init: Init) => {
    const norm = initNormalization(init);
    if (!setsByNorm.has(norm)) {
      setsByNorm.set(norm, {
        test: labelledSource(cache, splits.test, S, C, norm),
        val: labelledSource(cache, splits.val, S, C, norm),
        train: labelledSource(cache, splits.trainPool, S, C, norm, cfg.finetune.rotateInterp),
      });
    }
    return setsByNorm.get(norm)!;
  };
  const pos = new Map(splits.trainPool.map((c, i) => [c, i]));
  const largest = Math.max(...cfg.fractions.filter((x) => hasE2e(cfg, x)));

  for (let k = 0; k < K; k++) {
    const seedNote = K > 1 ? `seed ${k + 1}/${K}: ` : "";
    // MoCo backbone: given, or pretrained here (resumable).
    let mocoPath = cfg.mocoBackbone;
    if (cfg.inits.includes("moco") && !mocoPath) {
      const pdir = pdirOf(k);
      mocoPath = join(pdir, "backbone.safetensors");
      const pck = { ...pc, seed: pc.seed + SEED_STRIDE * k };
      if (!(await exists(mocoPath))) {
        log(
          `${seedNote}pretraining MoCo, seed ${pck.seed} (the run continues from its checkpoint ` +
            `if interrupted)`,
        );
        const m = monitorSets;
        if (pc.monitorEvery > 0 && m.ok) log(m.describe); // pretrain() logs why when it is off
        const sets = m.ok
          ? {
            reference: labelledSource(cache, m.reference, S, C),
            validation: labelledSource(cache, m.validation, S, C),
          }
          : null;
        const views = twoViewSource(
          data.pretrainCache,
          data.pretrainIndices,
          pretrainAugment(pc.augment, S, C, pc.rotateInterp),
        );
        await pretrain(
          B,
          ops,
          pck,
          views,
          pdir,
          {
            resume: true,
            backbone,
            log,
            deviceViews: plan?.viewsOn ? views.onDevice?.(plan.viewsOn) : null,
            logEvery: plan?.logEvery,
            betweenSteps: plan?.betweenSteps,
            monitor: sets ? (moco) => knnMonitor(B, moco.encQ, sets) : undefined,
            monitorOff: m.ok ? undefined : m.reason,
          },
        );
      }
      await Deno.copyFile(
        join(pdir, "metrics.jsonl"),
        join(runDir, "metrics", k === 0 ? "pretrain.jsonl" : `pretrain_s${k}.jsonl`),
      );
    }
    const initFile = (init: Init) =>
      init === "random" ? "random" : init === "imagenet" ? cfg.imagenet! : mocoPath!;
    const ftSeed = cfg.seed + SEED_STRIDE * k;

    for (const init of cfg.inits) {
      const { test, val, train: trainSrc } = setsOf(init);
      // The frozen backbone of this init's linear cells, kept with its features: each linear cell
      // fits its head and returns it (no second backbone per cell).
      let feats: FrozenFeatures | undefined;
      try {
        for (const protocol of cfg.protocols) {
          for (const sub of subsets) {
            if (sub.draw >= drawsOf(protocol)) continue;
            if (protocol === "e2e" && !hasE2e(cfg, sub.fraction)) continue;
            const key = keyOf(k, init, protocol, sub.fraction, sub.draw);
            const file = cellFile(key);
            if (await exists(file)) continue;
            const fc = cfg.finetune;
            const e = e2eSchedule(fc, sub.indices.length);
            const ftc: FinetuneConfig = {
              backbone: pc.moco.backbone,
              inChannels: C,
              imageSize: S,
              protocol,
              init: initFile(init),
              initLabel: init === "imagenet" ? "ImageNet weights" : "MoCo backbone",
              batchSize: fc.batchSize,
              lr: fc.lr,
              weightDecay: fc.weightDecay,
              steps: e.steps,
              evalEvery: e.evalEvery,
              patience: e.patience,
              seed: ftSeed + sub.draw,
              penaltyGrid: fc.penaltyGrid,
              probeMaxIter: fc.probeMaxIter,
              selectTask: 0, // the task the predictions file reports
            };
            if (protocol === "linear" && !feats) {
              log(
                `${seedNote}${init}: frozen features of ${
                  trainSrc.count + val.count + test.count
                } images`,
              );
              // One frozen backbone serves every draw, so its seed must not depend on
              // which draw happens to run first (a resumed run starts at a later one).
              const net = await buildClassifier(B, { ...ftc, seed: ftSeed }, T, backbone);
              try {
                feats = {
                  train: await extractFeatures(B, net, trainSrc),
                  val: await extractFeatures(B, net, val),
                  test: await extractFeatures(B, net, test),
                  net,
                };
              } catch (e) {
                net.dispose();
                throw e;
              }
            }
            const t0 = performance.now();
            const trainIdx = sub.indices.map((c) => pos.get(c)!);
            const r = await finetune(B, ops, ftc, {
              train: trainSrc,
              trainIdx,
              val,
              test,
              features: protocol === "linear" ? feats : undefined,
            }, { backbone, betweenSteps: plan?.betweenSteps });
            const metricsName = predictionsFileName(key).replace(/\.json$/, ".jsonl");
            // Linear: one line per C of the penalty path, the chosen one marked; end-to-end: one
            // line per evaluation.
            const probeC = r.penalty && Number.isFinite(r.penalty.C[0])
              ? r.penalty.C[0]
              : undefined;
            // Fallbacks are marked on the kept line: a linear C chosen by default (validation has
            // one class), end-to-end weights kept as the last (no validation AUC).
            const linearDefault = r.penalty?.chosenBy[0] === "default";
            await writeFileAtomic(
              join(runDir, "metrics", metricsName),
              r.curve.map((c) =>
                JSON.stringify(
                  protocol === "linear"
                    ? {
                      ...c,
                      epoch: 0,
                      chosen: c.C === probeC,
                      ...(linearDefault && c.C === probeC ? { chosen_by: "default" } : {}),
                    }
                    : {
                      ...c,
                      epoch: (c.step * fc.batchSize) / trainIdx.length,
                      ...(r.keptBy === "last" && c.step === r.bestStep ? { kept_by: "last" } : {}),
                    },
                )
              ).join("\n") + "\n",
            );
            const scores = Array.from({ length: test.count }, (_, i) => r.test.scores[i * T]);
            const labels = Array.from({ length: test.count }, (_, i) => r.test.labels[i * T]);
            const keep = Array.from({ length: test.count }, (_, i) => i).filter((i) =>
              r.test.mask[i * T] > 0
            );
            await writePredictionsFile(runDir, {
              ...key,
              labels: keep.map((i) => labels[i]),
              scores: keep.map((i) => scores[i]),
              ids: keep.map((i) => test.ids[i]),
              metrics_file: join("metrics", metricsName),
              probe_C: probeC,
            });
            const how = protocol !== "linear"
              ? `${r.curve.at(-1)?.step ?? ftc.steps} of ${ftc.steps} steps, ` +
                (r.keptBy === "last"
                  ? `last weights kept at ${r.bestStep} (no validation AUC: validation has one class)`
                  : `best at ${r.bestStep}`)
              : probeC === undefined
              ? "L2 probe not fitted (one class among the labelled training images)"
              : `L2 probe C ${probeC.toPrecision(2)}${
                r.penalty!.chosenBy[0] === "default" ? " (default: validation has one class)" : ""
              }`;
            const cellName = `${seedNote}${init} ${protocol} ${formatFraction(sub.fraction)} ` +
              `draw ${sub.draw}`;
            log(
              `${cellName}: ${trainIdx.length} images, ${how}, best val AUC ` +
                `${Number.isNaN(r.bestValAuc) ? "none" : r.bestValAuc.toFixed(3)} ` +
                `(${((performance.now() - t0) / 1000).toFixed(0)} s)`,
            );
            const unconverged = r.penalty?.unconverged.reduce((a, b) => a + b, 0) ?? 0;
            if (unconverged > 0) {
              log(
                `${cellName}: ${unconverged} of ${
                  r.penalty!.grid.length * T
                } C values did not converge (L-BFGS stopped at its iteration cap ` +
                  `${ftc.probeMaxIter ?? 5000} or without a representable decrease; ` +
                  `"converged": false in ${join("metrics", metricsName)})`,
              );
            }
            if (
              protocol === "e2e" && sub.fraction === largest && sub.draw === 0 && k === 0 &&
              cfg.gradcamImages > 0
            ) {
              await writeGradCams(B, r.net, test, S, C, cfg.gradcamImages, init, runDir, {
                fraction: sub.fraction,
                seed: pc.seed,
              });
            }
            if (r.net !== feats?.net) r.net.dispose();
            await plan?.betweenSteps?.();
          }
        }
      } finally {
        feats?.net.dispose();
      }
    }
  }
  if (plan?.kernels) {
    const runJson = join(runDir, "run.json");
    await writeJsonAtomic(runJson, {
      ...JSON.parse(await Deno.readTextFile(runJson)),
      kernels: plan.kernels(),
    });
  }
  const seconds = (performance.now() - tRun) / 1000;
  if (planned !== undefined) {
    log(
      `fine-tuning grid and pretraining took ${(seconds / 60).toFixed(1)} min (the plan ` +
        `estimated ${(planned / 60).toFixed(1)} min)`,
    );
  }
  return { planned, seconds };
}

async function writeGradCams(
  B: Backend,
  net: Parameters<typeof gradCam>[1],
  test: LabelledSource,
  S: number,
  C: number,
  count: number,
  init: Init,
  runDir: string,
  /** The cell the network comes from: its label fraction (draw 0) and pretraining seed. */
  cell: { fraction: number; seed: number },
): Promise<void> {
  const T = test.tasks.length;
  // The first `count` test positives in test order (the same images for every init).
  const positives = Array.from({ length: test.count }, (_, i) => i)
    .filter((i) => test.mask[i * T] > 0 && test.labels[i * T] > 0).slice(0, count);
  if (!positives.length) return;
  const images = test.images(positives);
  const cam = await gradCam(B, net, images);
  for (let j = 0; j < positives.length; j++) {
    const img = images.data.subarray(j * C * S * S, j * C * S * S + S * S);
    await writeJsonAtomic(join(runDir, "gradcam", `${init}_${j}.json`), {
      title: `${INIT_LABEL[init]}, end-to-end at ${formatFraction(cell.fraction)} of the labels ` +
        `(draw 0, pretraining seed ${cell.seed}): ${test.tasks[0]}, Grad-CAM on ${cam.layer}; ` +
        `test positive ${j + 1} of the first ${positives.length}, ${
          basename(test.ids[positives[j]])
        }`,
      width: S,
      height: S,
      image: Array.from(img),
      heatmap: Array.from(cam.maps[j]),
      label: `${test.tasks[0]} positive`,
      score: cam.probs[j],
    });
  }
}
