/**
 * The kNN pretraining monitor on a class-sorted dataset (every negative listed before every
 * positive, as in many labels.csv layouts): its reference and validation sets are drawn by
 * patient and class, seeded, so the experiment's monitor reports a real AUC every epoch (a
 * prefix of the training pool held negatives only: AUC 0.5); when no monitor can be built, the
 * log and metrics.jsonl say why.
 */
import { join } from "node:path";
import { gpuBackend } from "../model/backend_gpu.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { type ExperimentConfig, runExperiment } from "../train/experiment.ts";
import { makeSplits, testImages } from "../train/splits.ts";
import { drawMonitorSets, stratifiedByPatient } from "../train/monitor_sets.ts";
import { pretrainMonitor } from "../train/cache_sources.ts";
import { pretrain } from "../train/pretrain.ts";
import { readMetrics } from "../train/metrics.ts";
import { sharedPatients } from "../data/fractions.ts";
import type { ImageCache } from "../data/cache/reader.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { memoryCache } from "./memory_cache.ts";
import { TinyNet } from "./tiny_net.ts";
import { imageBatch } from "../train/sources.ts";

const B = gpuBackend(gpu);
const S = 16;
const backbone = (o: object) => new TinyNet(B, o);

function classes(cache: ImageCache, idx: number[]): [number, number] {
  const pos = idx.filter((i) => cache.labels[i] > 0).length;
  return [idx.length - pos, pos];
}

Deno.test("monitor sets: by patient, stratified by class, seeded, from a class-sorted list", () => {
  const cache = memoryCache({ n: 1000, valid: 100, positive: 0.2, sorted: true });
  const train = cache.splitIndices("train");
  // The layout this guards against: the first 600 training images are all negatives.
  assertEquals(classes(cache, train.slice(0, 600))[1], 0);
  const m = drawMonitorSets(cache.records, train, cache.splitIndices("valid"), {
    seed: 0,
    taskName: "Disc",
  });
  assert(m.ok);
  const [rn, rp] = classes(cache, m.reference), [tn, tp] = classes(cache, train);
  assert(m.reference.length >= 600 && m.reference.length <= 602, `${m.reference.length}`);
  // Each class keeps its share of the pool (within one patient).
  assert(Math.abs(rp - (600 * tp) / (tn + tp)) <= 2, `${rp} positives of ${rn + rp}`);
  assertEquals(sharedPatients(cache.records, m.reference, m.validation), []);
  // Negatives come from the whole pool, not from the start of its listing.
  const negatives = m.reference.filter((i) => cache.labels[i] === 0);
  assert(Math.max(...negatives) > train[600], "negatives drawn from the list's start only");
  // Whole patients: a patient's every image or none.
  const chosen = new Set(m.reference);
  for (const i of m.reference) {
    const p = cache.records[i].patient;
    train.filter((j) => cache.records[j].patient === p).forEach((j) => assert(chosen.has(j)));
  }
  // The validation split (100 images) is small enough to be used whole.
  assertEquals(m.validation, cache.splitIndices("valid"));
  // Seeded: the same seed draws the same set, another seed another.
  assertEquals(stratifiedByPatient(cache.records, train, 600, 0), m.reference);
  assert(
    JSON.stringify(stratifiedByPatient(cache.records, train, 600, 1)) !==
      JSON.stringify(m.reference),
  );
});

Deno.test("monitor sets: a one-class validation split is replaced by held-out training patients", () => {
  const cache = memoryCache({ n: 400, valid: 40, sorted: true });
  const valid = cache.splitIndices("valid");
  const negatives = valid.filter((i) => cache.labels[i] === 0);
  const m = drawMonitorSets(cache.records, cache.splitIndices("train"), negatives, {
    seed: 0,
    taskName: "Disc",
  });
  assert(m.ok && /held out/.test(m.describe), JSON.stringify(m));
  assert(classes(cache, m.validation).every((c) => c > 0));
  assertEquals(sharedPatients(cache.records, m.reference, m.validation), []);
  // pretrain's own wiring (deno task pretrain) draws from the cache's splits the same way.
  const p = pretrainMonitor(cache, 0, S, 1);
  assert(p.sets !== null);
  assert(
    p.sets.reference.labels.some((y) => y > 0) && p.sets.reference.labels.some((y) => y === 0),
  );
});

Deno.test("pretrain's monitor never reads the test set: CheXpert's valid split is the test", () => {
  const cache = memoryCache({ n: 400, valid: 100 });
  const test = new Set(testImages(cache).indices.map((i) => cache.records[i].path));
  assertEquals(test.size, 100);
  const p = pretrainMonitor(cache, 0, S, 1);
  assert(p.sets !== null, "a monitor");
  for (const set of [p.sets.reference, p.sets.validation]) {
    assert(set.ids.every((id) => !test.has(id)), "a monitor image from the test set");
  }
  assert(p.sets.validation.ids.length > 0);
});

Deno.test("no monitor on one-class data: the reason is logged and written to metrics.jsonl", async () => {
  const cache = memoryCache({ n: 64, valid: 16, positive: 0 });
  const p = pretrainMonitor(cache, 0, S, 1);
  assert(p.sets === null);
  assert(/only negative labels for "Disc"/.test(p.reason), p.reason);
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  const train = cache.splitIndices("train");
  await pretrain(
    B,
    gpuTrainOps,
    { ...cfg.pretrain, epochs: 1 },
    {
      count: train.length,
      twoViews: (idx) => {
        const x = new Float32Array(idx.length * S * S).map((_, k) => Math.sin(k));
        return { xq: imageBatch(x, idx.length, 1, S), xk: imageBatch(x, idx.length, 1, S) };
      },
    },
    dir,
    { quiet: true, log: (m) => logs.push(m), backbone, monitorOff: p.reason },
  );
  assert(logs.some((l) => l === `kNN monitor off: ${p.reason}`), logs.join("\n"));
  const rows = await readMetrics(join(dir, "metrics.jsonl")) as Record<string, unknown>[];
  assertEquals(rows[0].monitor_off, p.reason);
  await Deno.remove(dir, { recursive: true });
});

const cfg: ExperimentConfig = {
  inits: ["moco"],
  protocols: ["linear"],
  fractions: [1],
  draws: 1,
  pretrain: {
    moco: {
      backbone: "resnet18", // TinyNet below
      inChannels: 1,
      dim: 16,
      queueSize: 32,
      temperature: 0.2,
      momentum: 0.9,
      bnGroups: 2,
    },
    imageSize: S,
    batchSize: 16,
    epochs: 2,
    optimizer: { kind: "adam", weightDecay: 1e-4 },
    lr: 3e-3,
    schedule: { kind: "constant" },
    seed: 0,
    ckptEvery: 100,
    monitorEvery: 1,
    init: "random",
    augment: "mococxr",
  },
  finetune: {
    batchSize: 16,
    lr: 1e-3,
    weightDecay: 0,
    penaltyGrid: [0.01, 1],
    e2eSteps: [10, 20],
    evalEvery: 5,
    patience: 0,
  },
  seed: 0,
  gradcamImages: 0,
};

Deno.test("experiment on a class-sorted dataset: the kNN monitor reports a real AUC every epoch", async () => {
  const cache = memoryCache({ n: 1100, valid: 100, positive: 0.2, sorted: true });
  const pool = makeSplits(cache, 0).trainPool;
  assert(pool.length > 600 && classes(cache, pool.slice(0, 600))[1] === 0);
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  await runExperiment(
    B,
    gpuTrainOps,
    cfg,
    {
      cache,
      // Pretraining reads a few images (the monitor is under test, not MoCo).
      pretrainCache: cache,
      pretrainIndices: cache.splitIndices("train").filter((_, i) => i % 25 === 0),
      describe: "memory, class-sorted",
    },
    dir,
    {},
    (m) => logs.push(m),
    backbone,
  );
  assert(logs.some((l) => /^kNN monitor: reference \d+\+\/\d+− images/.test(l)), logs.join("\n"));
  const rows = await readMetrics(join(dir, "metrics", "pretrain.jsonl"));
  const knn = rows.filter((r) => "knn_auc" in r).map((r) => r.knn_auc);
  assertEquals(knn.length, 2);
  // The disc is visible to a barely trained network's features: well above chance.
  assert(knn.every((a) => a > 0.7), `knn_auc ${knn}`);
  // each epoch's end says what it cost beside the steps (a checkpoint is written at every one,
  // after the monitor's line, so a kill after the save keeps the epoch's AUC)
  for (const r of rows.filter((r) => "knn_auc" in r)) {
    const ckpt = rows.find((c) => c.step === r.step && "checkpoint_s" in c);
    assert(
      r.monitor_s > 0 && ckpt && ckpt.checkpoint_s > 0,
      `monitor_s ${r.monitor_s}, checkpoint_s ${ckpt?.checkpoint_s}`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});
