/**
 * The MoCo-CXR experiment grid: initialisation (random, ImageNet, MoCo) ×
 * protocol (linear, end-to-end) × label fraction × draw, for one backbone,
 * written as a run folder that eval/ turns into results and report.html.
 *
 * Resumable at two levels: pretraining continues from its checkpoint, and a
 * cell whose predictions file exists is skipped. Splits: the dataset's own
 * validation split is the test set (as MoCo-CXR evaluated on CheXpert's
 * valid set) when it has both classes, else a patient-disjoint share of the
 * training split; the fine-tuning validation set is a patient-disjoint share
 * of the training split, and label fractions are drawn by patient from the
 * rest, nested across fractions.
 */
import { type DatasetIdentity, identityDifference } from "../data/identity.ts";
import { join } from "node:path";
import type { Backend } from "../model/backend.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { labelFractionSubsets, splitByPatient } from "../data/fractions.ts";
import type { ImageCache } from "../data/cache/reader.ts";
import { predictionsFileName, writePredictionsFile } from "../eval/run_files.ts";
import { formatFraction, type Init } from "../eval/results.ts";
import { exists, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { MissingImagenetWeightsError, OtherDataError, OtherSettingsError } from "./run_errors.ts";
import type { TrainOps } from "./train_ops.ts";
import { pretrain, type PretrainConfig } from "./pretrain.ts";
import {
  buildClassifier,
  finetune,
  type FinetuneConfig,
  type Protocol,
  stepsFor,
} from "./finetune.ts";
import { extractFeatures } from "./features.ts";
import { gradCam } from "./gradcam.ts";
import { labelledSource, pretrainAugment, twoViewSource } from "./cache_sources.ts";
import type { LabelledSource } from "./sources.ts";
import { knnMonitor } from "./monitor.ts";
import { drawMonitorSets } from "./monitor_sets.ts";

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
  };
  /** Seed of the splits, the fraction draws and the fine-tuning runs. */
  seed: number;
  /** Grad-CAM examples per init (end-to-end, largest fraction, first draw). */
  gradcamImages: number;
  /** The fine-tuning data (the pretraining data: pretrain.dataset); a rerun refuses others. */
  dataset?: DatasetIdentity;
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

/** The fine-tuning splits of a cache, as image indices. */
export interface Splits {
  /** Training pool the label fractions are drawn from. */
  trainPool: number[];
  /** Validation images (model and penalty selection). */
  val: number[];
  /** Test images (the reported AUCs). */
  test: number[];
}

function hasBothClasses(cache: ImageCache, idx: number[]): boolean {
  const T = cache.tasks.length;
  const ys = idx.filter((i) => cache.mask[i * T] > 0).map((i) => cache.labels[i * T]);
  return ys.some((y) => y > 0) && ys.some((y) => y === 0);
}

/**
 * Train pool / validation / test by patient: the dataset's own validation split when it is usable,
 * else drawn from the training patients.
 */
export function makeSplits(cache: ImageCache, seed: number): Splits {
  const records = cache.records;
  const train = cache.splitIndices("train"), valid = cache.splitIndices("valid");
  if (valid.length >= 50 && hasBothClasses(cache, valid)) {
    const s = splitByPatient(records, {
      pool: train,
      ratios: { train: 0.88, valid: 0.12, test: 0 },
      seed,
    });
    return { trainPool: s.train, val: s.valid, test: valid };
  }
  const s = splitByPatient(records, {
    pool: [...train, ...valid],
    ratios: { train: 0.7, valid: 0.1, test: 0.2 },
    seed,
  });
  return { trainPool: s.train, val: s.valid, test: s.test };
}

/**
 * A rerun resumes a run folder only with the settings its finished cells were made with; the grid
 * itself (inits, protocols, fractions, draws) may grow, since each cell is its own file.
 */
async function checkResumable(runDir: string, cfg: ExperimentConfig): Promise<void> {
  const file = join(runDir, "run.json");
  if (!(await exists(file))) return;
  const saved = JSON.parse(await Deno.readTextFile(file)).config as ExperimentConfig | undefined;
  if (!saved) return;
  // Runs from before datasets were recorded carry none: their settings are compared alone.
  const pick = (c: ExperimentConfig) =>
    JSON.stringify([
      { ...c.pretrain, dataset: undefined },
      c.finetune,
      c.seed,
      c.imagenet ?? null,
      c.mocoBackbone ?? null,
    ]);
  for (
    const [what, a, b] of [
      ["fine-tuning", saved.dataset, cfg.dataset],
      ["pretraining", saved.pretrain?.dataset, cfg.pretrain.dataset],
    ] as const
  ) {
    const diff = a && b ? identityDifference(a, b) : null;
    if (diff) {
      throw new OtherDataError(`${runDir} holds a run made on other ${what} data (${diff})`, file);
    }
  }
  if (pick(saved) !== pick(cfg)) {
    throw new OtherSettingsError(`${runDir} holds a run made with other settings`, file);
  }
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
): Promise<void> {
  const { cache } = data;
  const pc = cfg.pretrain, S = pc.imageSize, C = pc.moco.inChannels;
  if (cfg.inits.includes("imagenet") && !cfg.imagenet) {
    throw new MissingImagenetWeightsError();
  }
  await checkResumable(runDir, cfg);
  await Deno.mkdir(join(runDir, "predictions"), { recursive: true });
  await Deno.mkdir(join(runDir, "metrics"), { recursive: true });
  await writeJsonAtomic(join(runDir, "run.json"), { ...meta, config: cfg, data: data.describe });

  const splits = makeSplits(cache, cfg.seed);
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

  // MoCo backbone: given, or pretrained here (resumable).
  let mocoPath = cfg.mocoBackbone;
  if (cfg.inits.includes("moco") && !mocoPath) {
    const pdir = join(runDir, "pretrain");
    mocoPath = join(pdir, "backbone.safetensors");
    if (!(await exists(mocoPath))) {
      log("pretraining MoCo (the run continues from its checkpoint if interrupted)");
      const m = drawMonitorSets(cache.records, splits.trainPool, splits.val, {
        seed: cfg.seed,
        taskName: cache.tasks[0],
      });
      if (pc.monitorEvery > 0 && m.ok) log(m.describe); // pretrain() logs why when it is off
      const sets = m.ok
        ? {
          reference: labelledSource(cache, m.reference, S, C),
          validation: labelledSource(cache, m.validation, S, C),
        }
        : null;
      await pretrain(
        B,
        ops,
        pc,
        twoViewSource(data.pretrainCache, data.pretrainIndices, pretrainAugment(pc.augment, S, C)),
        pdir,
        {
          resume: true,
          backbone,
          log,
          monitor: sets ? (moco) => knnMonitor(B, moco.encQ, sets) : undefined,
          monitorOff: m.ok ? undefined : m.reason,
        },
      );
    }
    await Deno.copyFile(join(pdir, "metrics.jsonl"), join(runDir, "metrics", "pretrain.jsonl"));
  }
  const initFile = (init: Init) =>
    init === "random" ? "random" : init === "imagenet" ? cfg.imagenet! : mocoPath!;

  const test = labelledSource(cache, splits.test, S, C);
  const val = labelledSource(cache, splits.val, S, C);
  const trainSrc = labelledSource(cache, splits.trainPool, S, C);
  const pos = new Map(splits.trainPool.map((c, i) => [c, i]));
  const largest = Math.max(...cfg.fractions);

  for (const init of cfg.inits) {
    let feats: { train: Float32Array; val: Float32Array; test: Float32Array } | undefined;
    for (const protocol of cfg.protocols) {
      for (const sub of subsets) {
        if (sub.draw >= drawsOf(protocol)) continue;
        const key = {
          init,
          protocol,
          fraction: sub.fraction,
          draw: sub.draw,
          backbone: pc.moco.backbone,
          task: cache.tasks[0],
        };
        const file = join(runDir, "predictions", predictionsFileName(key));
        if (await exists(file)) continue;
        const fc = cfg.finetune;
        const ftc: FinetuneConfig = {
          backbone: pc.moco.backbone,
          inChannels: C,
          imageSize: S,
          protocol,
          init: initFile(init),
          batchSize: fc.batchSize,
          lr: fc.lr,
          weightDecay: fc.weightDecay,
          steps: stepsFor(sub.indices.length, fc.batchSize, fc.e2eSteps[0], fc.e2eSteps[1]),
          evalEvery: fc.evalEvery,
          patience: fc.patience,
          seed: cfg.seed + sub.draw,
          penaltyGrid: fc.penaltyGrid,
        };
        if (protocol === "linear" && !feats) {
          log(`${init}: frozen features of ${trainSrc.count + val.count + test.count} images`);
          // One frozen backbone serves every draw, so its seed must not depend on
          // which draw happens to run first (a resumed run starts at a later one).
          const net = await buildClassifier(B, { ...ftc, seed: cfg.seed }, T, backbone);
          feats = {
            train: await extractFeatures(B, net, trainSrc),
            val: await extractFeatures(B, net, val),
            test: await extractFeatures(B, net, test),
          };
          net.dispose();
        }
        const t0 = performance.now();
        const trainIdx = sub.indices.map((c) => pos.get(c)!);
        const r = await finetune(B, ops, ftc, {
          train: trainSrc,
          trainIdx,
          val,
          test,
          features: protocol === "linear" ? feats : undefined,
        }, { backbone });
        const metricsName = predictionsFileName(key).replace(/\.json$/, ".jsonl");
        // Linear: one line per C of the penalty path, the chosen one marked; end-to-end: one
        // line per evaluation.
        const probeC = r.penalty && Number.isFinite(r.penalty.C[0]) ? r.penalty.C[0] : undefined;
        await writeFileAtomic(
          join(runDir, "metrics", metricsName),
          r.curve.map((c) =>
            JSON.stringify(
              protocol === "linear"
                ? { ...c, epoch: 0, chosen: c.C === probeC }
                : { ...c, epoch: (c.step * fc.batchSize) / trainIdx.length },
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
          ? `${ftc.steps} steps`
          : probeC === undefined
          ? "L2 probe not fitted (one class among the labelled training images)"
          : `L2 probe C ${probeC.toPrecision(2)}${
            r.penalty!.chosenBy[0] === "default" ? " (default: validation has one class)" : ""
          }`;
        log(
          `${init} ${protocol} ${formatFraction(sub.fraction)} draw ${sub.draw}: ` +
            `${trainIdx.length} images, ${how}, best val AUC ${r.bestValAuc.toFixed(3)} ` +
            `(${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        );
        if (
          protocol === "e2e" && sub.fraction === largest && sub.draw === 0 && cfg.gradcamImages > 0
        ) {
          await writeGradCams(B, r.net, test, S, C, cfg.gradcamImages, init, runDir);
        }
        r.net.dispose();
      }
    }
  }
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
): Promise<void> {
  const T = test.tasks.length;
  const positives = Array.from({ length: test.count }, (_, i) => i)
    .filter((i) => test.mask[i * T] > 0 && test.labels[i * T] > 0).slice(0, count);
  if (!positives.length) return;
  const images = test.images(positives);
  const cam = await gradCam(B, net, images);
  for (let j = 0; j < positives.length; j++) {
    const img = images.data.subarray(j * C * S * S, j * C * S * S + S * S);
    await writeJsonAtomic(join(runDir, "gradcam", `${init}_${j}.json`), {
      title: `${init} init, end-to-end: ${test.tasks[0]}, Grad-CAM on ${cam.layer}`,
      width: S,
      height: S,
      image: Array.from(img),
      heatmap: Array.from(cam.maps[j]),
      label: `${test.tasks[0]} positive`,
      score: cam.probs[j],
    });
  }
}
