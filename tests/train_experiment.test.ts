/**
 * The experiment grid end to end on a tiny backbone and an in-memory image
 * cache: pretraining, every cell's predictions file, results and report; a
 * rerun skips finished cells; label-fraction subsets are patient-disjoint
 * from validation and test.
 */
import { join } from "node:path";
import { gpuBackend } from "../model/backend_gpu.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { type ExperimentConfig, planExperiment, runExperiment } from "../train/experiment.ts";
import { makeSplits, pretrainImages } from "../train/splits.ts";
import { scaleTimings, timeRun, type Timings } from "../train/plan.ts";
import { labelledSource, pretrainAugment, twoViewSource } from "../train/cache_sources.ts";
import { ImageCache } from "../data/cache/reader.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertRejects } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { TinyNet } from "./tiny_net.ts";
import { ConflictingSettingsError, OtherSettingsError } from "../train/run_errors.ts";
import { explain } from "../cli/explain.ts";
import type { Backend } from "../model/backend.ts";
import { exportBackbone } from "../train/weights.ts";
import { IMAGENET_GRAY_NORM, IMAGENET_RGB_NORM } from "../data/augment.ts";

const B = gpuBackend(gpu);
const STORED = 18, S = 16;

/** 120 images of 60 patients; positives carry a bright disc. */
function memoryCache(): ImageCache {
  const n = 120, px = STORED * STORED;
  const pixels = new Uint8Array(n * px);
  const r = new Rng(5);
  const records = Array.from({ length: n }, (_, i) => {
    const pos = r.uniform() < 0.4;
    const cx = 5 + r.uniform() * 8, cy = 5 + r.uniform() * 8;
    for (let y = 0; y < STORED; y++) {
      for (let x = 0; x < STORED; x++) {
        const disc = pos && Math.hypot(x - cx, y - cy) < 3 ? 90 : 0;
        pixels[i * px + y * STORED + x] = 80 + disc + Math.floor(r.uniform() * 40);
      }
    }
    return {
      path: `/mem/p${Math.floor(i / 2)}/img${i}.png`,
      patient: `p${Math.floor(i / 2)}`,
      labels: [pos ? 1 : 0],
      mask: [1],
      split: (i >= 90 ? "valid" : "train") as "train" | "valid",
    };
  });
  return new ImageCache("/mem", {
    format: "moco-cxr-image-cache",
    version: 1,
    checksum: "",
    storedSize: STORED,
    cropSize: S,
    count: n,
    tasks: ["Disc"],
    dataset: { name: "mem", kind: "csv", root: "/mem" },
    records,
    badImages: [],
    shards: [{ file: "mem", count: n }],
    created: "",
  }, [pixels]);
}

const cfg: ExperimentConfig = {
  inits: ["random", "moco"],
  protocols: ["linear", "e2e"],
  fractions: [0.25, 1],
  draws: 1,
  linearDraws: 2,
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
    ckptEvery: 4,
    monitorEvery: 1,
    init: "random",
    augment: "mococxr",
  },
  finetune: {
    batchSize: 16,
    lr: 1e-3,
    weightDecay: 0,
    penaltyGrid: [1e-3, 1e-2, 1e-1, 1],
    e2eSteps: [10, 20],
    evalEvery: 5,
    patience: 0,
  },
  seed: 0,
  gradcamImages: 2,
  dataset: { kind: "csv", root: "/mem", records: 120, hash: "0".repeat(64) },
};

Deno.test("experiment grid: pretrain, every cell, results and report; a rerun resumes", async () => {
  const cache = memoryCache();
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  let between = 0;
  const run = () =>
    runExperiment(
      B,
      gpuTrainOps,
      cfg,
      {
        cache,
        pretrainCache: cache,
        pretrainIndices: pretrainImages(cache).indices,
        describe: "memory",
      },
      dir,
      { test: true },
      (m) => logs.push(m),
      (o) => new TinyNet(B, o),
      {
        betweenSteps: () => Promise.resolve(void between++),
        kernels: () => ({ used: { k: "v" } }),
      },
    );
  await run();
  const cells = [...Deno.readDirSync(join(dir, "predictions"))].map((e) => e.name).sort();
  // Per init: linear 25% × 2 draws + 100% once; end-to-end 25% and 100% once each.
  assertEquals(cells.length, 2 * (3 + 2));
  // the tuner's hooks: called after every pretraining and end-to-end step and after every cell;
  // what ran is in run.json
  const metrics = (f: string) =>
    Deno.readTextFileSync(join(dir, "metrics", f)).trim().split("\n").map((l) => JSON.parse(l));
  const pretrainSteps = metrics("pretrain.jsonl").filter((l) => "lr" in l).length;
  const e2eSteps = [...Deno.readDirSync(join(dir, "metrics"))]
    .filter((e) => e.name.includes("_e2e_"))
    .reduce((n, e) => n + metrics(e.name).at(-1).step, 0);
  assert(pretrainSteps > 0 && e2eSteps > 0, `${pretrainSteps} ${e2eSteps}`);
  assertEquals(between, pretrainSteps + e2eSteps + cells.length);
  assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "run.json"))).kernels, {
    used: { k: "v" },
  });
  assert(cells.includes("resnet18_moco_e2e_f1_d0_Disc.json"), cells.join(" "));
  assert(cells.includes("resnet18_moco_linear_f0.25_d1_Disc.json"), cells.join(" "));
  assert(!cells.includes("resnet18_moco_e2e_f0.25_d1_Disc.json"), cells.join(" "));
  await Deno.stat(join(dir, "pretrain", "backbone.safetensors"));
  await Deno.stat(join(dir, "metrics", "pretrain.jsonl"));
  assertEquals([...Deno.readDirSync(join(dir, "gradcam"))].length, 4);
  // Each example names its cell and image (init, fraction, draw, seed, which test positive).
  const cam = JSON.parse(await Deno.readTextFile(join(dir, "gradcam", "moco_1.json")));
  assert(
    /^MoCo-CXR, end-to-end at 100% of the labels \(draw 0, pretraining seed 0\): .*test positive 2 of the first 2, img\d+\.png$/
      .test(cam.title),
    cam.title,
  );

  const before = logs.length;
  await run(); // everything exists: nothing is trained again
  assertEquals(logs.slice(before).filter((l) => / draw \d+: /.test(l)), []);

  // A cell redone on resume equals the one from the uninterrupted run, also when
  // it is the first linear cell to run (the frozen random backbone must not
  // depend on which draw comes first).
  for (const init of ["random", "moco"]) {
    const cell = join(dir, "predictions", `resnet18_${init}_linear_f0.25_d1_Disc.json`);
    const first = JSON.parse(await Deno.readTextFile(cell));
    await Deno.remove(cell);
    await run();
    const again = JSON.parse(await Deno.readTextFile(cell));
    assertEquals(again.scores, first.scores, `${init} linear draw 1 changed on resume`);
  }

  // Other data in the same folder would mix cells of two datasets: refused.
  const otherData = { ...cfg, dataset: { ...cfg.dataset!, hash: "1".repeat(64) } };
  await assertRejects(
    () =>
      runExperiment(
        B,
        gpuTrainOps,
        otherData,
        {
          cache,
          pretrainCache: cache,
          pretrainIndices: pretrainImages(cache).indices,
          describe: "memory",
        },
        dir,
        {},
      ),
    /made on other fine-tuning data \(the same number of records with other paths or labels/,
  );
  // Other settings in the same folder would mix cells of two configurations: refused.
  const other = { ...cfg, finetune: { ...cfg.finetune, lr: 5e-4 } };
  await assertRejects(
    () =>
      runExperiment(
        B,
        gpuTrainOps,
        other,
        {
          cache,
          pretrainCache: cache,
          pretrainIndices: pretrainImages(cache).indices,
          describe: "memory",
        },
        dir,
        {},
      ),
    /other settings \(fine-tuning lr: saved 0\.001, now 0\.0005\)/,
  );

  await evaluateRun(dir, { replicates: 50, seed: 0, level: 0.95, colormap: "jet" }, () => {});
  const results = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
  assertEquals(results.cells.length, 10);
  const html = await Deno.readTextFile(join(dir, "report.html"));
  // Each linear cell records the penalty its probe chose on validation, in its predictions,
  // metrics (one line per C, the chosen one marked) and results; end-to-end cells have none.
  for (const c of results.cells as { protocol: string; probe_C?: number; scores_file: string }[]) {
    const pred = JSON.parse(await Deno.readTextFile(join(dir, c.scores_file)));
    if (c.protocol === "e2e") {
      assertEquals([c.probe_C, pred.probe_C], [undefined, undefined]);
      continue;
    }
    assert(cfg.finetune.penaltyGrid.includes(c.probe_C!), `probe_C ${c.probe_C}`);
    assertEquals(pred.probe_C, c.probe_C);
    const path = (await Deno.readTextFile(join(dir, pred.metrics_file))).trim().split("\n")
      .map((l) => JSON.parse(l));
    assertEquals(path.map((p) => p.C), cfg.finetune.penaltyGrid);
    const chosen = path.filter((p) => p.chosen);
    assertEquals(chosen.map((p) => p.C), [c.probe_C]);
    assertEquals(chosen[0].val_auc, Math.max(...path.map((p) => p.val_auc)));
  }
  const csv = (await Deno.readTextFile(join(dir, "results.csv"))).split("\n");
  assert(csv[0].endsWith(",probe_C"), csv[0]);
  assert(html.includes("log10 C (inverse L2 penalty)"), "linear curves are plotted against C");
  assert(html.includes("<svg") && html.includes("Grad-CAM"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment: the ImageNet init sees ImageNet-normalised images, linear cells reuse the feature network, unconverged C values are logged", async () => {
  const cache = memoryCache();
  const dir = await Deno.makeTempDir();
  const imagenet = join(dir, "imagenet.safetensors");
  const inet = new TinyNet(B, { inChannels: 1, seed: new Rng(9) });
  await exportBackbone(inet, imagenet, {});
  inet.dispose();
  // Every image batch uploaded, by the backbone built last: the experiment builds one per init
  // for the linear cells' features, one per end-to-end cell.
  const phases: Float32Array[][] = [];
  const recording: Backend = {
    ...B,
    fromArray: (data, shape) => {
      if (shape.length === 4) phases.at(-1)!.push(Float32Array.from(data));
      return B.fromArray(data, shape);
    },
  };
  const logs: string[] = [];
  const c: ExperimentConfig = {
    ...cfg,
    inits: ["random", "imagenet"],
    imagenet,
    fractions: [0.5, 1],
    e2eFractions: [1],
    draws: 1,
    linearDraws: 2,
    gradcamImages: 1,
    finetune: { ...cfg.finetune, probeMaxIter: 1 },
  };
  await runExperiment(
    recording,
    gpuTrainOps,
    c,
    { cache, pretrainCache: cache, pretrainIndices: [], describe: "memory" },
    dir,
    {},
    (m) => logs.push(m),
    (o) => (phases.push([]), new TinyNet(B, o)),
  );
  // Per init: the feature network (its three linear cells fit its head), then the end-to-end cell's.
  assertEquals(phases.length, 4, "no backbone built per linear cell");
  // Both inits read the same images in the same order (same subsets, seeds and augmentations):
  // the random init's normalised with CheXpert's statistics, the ImageNet init's with ImageNet's
  // (features, end-to-end training, validation, test, Grad-CAM).
  const inv = IMAGENET_GRAY_NORM;
  for (const [r, i] of [[0, 2], [1, 3]]) {
    assertEquals(phases[i].length, phases[r].length);
    assert(phases[r].length > 0);
    phases[r].forEach((x, b) => {
      const want = x.map((v) => (v * 0.0856 + 0.502 - inv.mean) / inv.std);
      assertClose(phases[i][b], want, { atol: 2e-4, rtol: 0, label: `phase ${i} batch ${b}` });
    });
  }
  const runJson = join(dir, "run.json"), run = JSON.parse(await Deno.readTextFile(runJson));
  assertEquals(run.normalization, { random: "mococxr", imagenet: "imagenet" });
  // A run folder from before (no record: every init had CheXpert's statistics) is not continued
  // over its ImageNet cells; without them it is, and the new record says how they are made.
  await Deno.writeTextFile(runJson, JSON.stringify({ ...run, normalization: undefined }));
  const rerun = () =>
    runExperiment(
      B,
      gpuTrainOps,
      c,
      { cache, pretrainCache: cache, pretrainIndices: [], describe: "memory" },
      dir,
      {},
      () => {},
      (o) => new TinyNet(B, o),
    );
  await assertRejects(
    rerun,
    /holds 4 imagenet cell\(s\) made on images normalised as "mococxr", now "imagenet"/,
  );
  for (const e of [...Deno.readDirSync(join(dir, "predictions"))]) {
    if (e.name.includes("_imagenet_")) await Deno.remove(join(dir, "predictions", e.name));
  }
  phases.length = 0;
  await rerun();
  assertEquals(JSON.parse(await Deno.readTextFile(runJson)).normalization, run.normalization);
  // One iteration per C cannot converge: each linear cell says so in one line and in its metrics.
  const capped = logs.filter((l) => l.includes("C values did not converge"));
  assertEquals(capped.length, 6, logs.join("\n"));
  assert(
    capped[0].startsWith(
      `random linear 50% draw 0: ${cfg.finetune.penaltyGrid.length} of ` +
        `${cfg.finetune.penaltyGrid.length} C values did not converge (L-BFGS stopped at its ` +
        `iteration cap 1`,
    ),
    capped[0],
  );
  for (const init of ["random", "imagenet"]) {
    const path = (await Deno.readTextFile(
      join(dir, "metrics", `resnet18_${init}_linear_f0.5_d1_Disc.jsonl`),
    )).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(path.map((p) => p.converged), cfg.finetune.penaltyGrid.map(() => false));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("labelled sources per normalisation: ImageNet per channel for an RGB stem, folded as the summed gray stem", () => {
  const cache = memoryCache(), idx = [0, 1, 2, 3], rows = [0, 1, 2, 3];
  const chexpert = labelledSource(cache, idx, S, 1);
  assertEquals(labelledSource(cache, idx, S, 1, "mococxr").images(rows), chexpert.images(rows));
  const gray = chexpert.images(rows).data.map((v) => v * 0.0856 + 0.502); // pixels on [0, 1]
  const px = S * S;
  for (const aug of [false, true]) {
    const get = (ch: 1 | 3) => {
      const src = labelledSource(cache, idx, S, ch, "imagenet");
      return aug ? src.augmented(rows, new Rng(4)) : src.images(rows);
    };
    const one = get(1), three = get(3);
    assertEquals(three.shape, [4, 3, S, S]);
    const raw = aug
      ? labelledSource(cache, idx, S, 1).augmented(rows, new Rng(4)).data.map((v) =>
        v * 0.0856 + 0.502
      )
      : gray;
    for (let n = 0; n < 4; n++) {
      const v = raw.subarray(n * px, (n + 1) * px);
      // RGB stem: the gray image replicated, each channel with its own ImageNet statistics.
      for (let c = 0; c < 3; c++) {
        const m = IMAGENET_RGB_NORM.mean[c], sd = IMAGENET_RGB_NORM.std[c];
        assertClose(
          three.data.subarray((n * 3 + c) * px, (n * 3 + c + 1) * px),
          v.map((p) => (p - m) / sd),
          { atol: 2e-4, rtol: 0, label: `image ${n} channel ${c}` },
        );
      }
      // Gray stem (the RGB kernels summed): a colour-agnostic kernel sees the same input, i.e. the
      // gray value is the mean of the three channels.
      const mean3 = v.map((_, k) =>
        (three.data[(n * 3) * px + k] + three.data[(n * 3 + 1) * px + k] +
          three.data[(n * 3 + 2) * px + k]) / 3
      );
      assertClose(one.data.subarray(n * px, (n + 1) * px), mean3, { atol: 2e-4, rtol: 0 });
    }
  }
});

Deno.test("experiment splits: a dataset's own test split is the test set, valid validation", () => {
  const cache = memoryCache();
  const withSplits = (split: (i: number) => "train" | "valid" | "test") =>
    new ImageCache("/mem", {
      ...cache.index,
      records: cache.records.map((r, i) => ({ ...r, split: split(i) })),
    }, cache.shards);
  // 20 train, 50 test, 50 valid images: each split is used as such.
  const three = withSplits((i) => i < 20 ? "train" : i < 70 ? "test" : "valid");
  const s = makeSplits(three, 0);
  assertEquals(s.test, three.splitIndices("test"));
  assertEquals(s.val, three.splitIndices("valid"));
  assertEquals(s.trainPool, three.splitIndices("train"));
  // A valid split too small to validate on (30): a patient-disjoint share of train and valid
  // instead, so its labelled images are not lost.
  const small = withSplits((i) => i < 30 ? "train" : i < 90 ? "test" : "valid");
  const t = makeSplits(small, 0);
  assertEquals(t.test, small.splitIndices("test"));
  assertEquals(
    [...t.trainPool, ...t.val].sort((a, b) => a - b),
    [...small.splitIndices("train"), ...small.splitIndices("valid")].sort((a, b) => a - b),
  );
  assert(t.val.length > 0);
});

Deno.test("experiment: pretraining images that include test patients are refused", async () => {
  // memoryCache has no test split and a valid split too small to test on: the test set is drawn
  // from its training images, so the whole training split holds test patients.
  const cache = memoryCache();
  const dir = await Deno.makeTempDir();
  const e = await runExperiment(
    B,
    gpuTrainOps,
    cfg,
    { cache, pretrainCache: cache, pretrainIndices: cache.splitIndices("train"), describe: "m" },
    dir,
    {},
    () => {},
    (o) => new TinyNet(B, o),
  ).then(() => null, (x) => x);
  assert(e instanceof ConflictingSettingsError && e.conflict === "pretrain-test", String(e));
  assertEquals([...Deno.readDirSync(dir)], [], "nothing written");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment splits are patient-disjoint", () => {
  const cache = memoryCache();
  const s = makeSplits(cache, 0);
  const pats = (idx: number[]) => new Set(idx.map((i) => cache.records[i].patient));
  const [a, b, c] = [pats(s.trainPool), pats(s.val), pats(s.test)];
  for (const p of a) assert(!b.has(p) && !c.has(p), `patient ${p} on two sides`);
  for (const p of b) assert(!c.has(p), `patient ${p} on two sides`);
  assertEquals(s.trainPool.length + s.val.length + s.test.length, cache.count);
});

const TIMINGS: Timings = {
  adapter: "test",
  imageSize: 16,
  batch: 16,
  ftBatch: 16,
  mocoStep: 2,
  ftStep: 1,
  ftCell: 3,
  forward: 0.01,
  probe: [[10, 1], [100, 2]],
  checkpoint: 0.5,
};

Deno.test("plan: steps, cells and seconds from given timings; finished work is left out", () => {
  const c: ExperimentConfig = { ...cfg, pretrainSeeds: 2 };
  const sizes = {
    pretrainImages: 64,
    monitorImages: 20,
    trainPool: 50,
    val: 20,
    test: 30,
    subsets: [
      { fraction: 0.25, draw: 0, n: 10 },
      { fraction: 0.25, draw: 1, n: 12 },
      { fraction: 1, draw: 0, n: 40 },
    ],
  };
  // Per seed: 4 steps per epoch x 2 epochs x 2 s, 2 checkpoints (every 4 steps and at each
  // epoch's end: the same steps here) x 0.5 s, 2 monitor passes of 20 images (17.4 s);
  // per init, 3 linear cells (1 + 1.0222 + 1.3333 s, interpolated) after one extraction of 100
  // images (1 s), and 2 end-to-end cells of 20 steps and 4 evaluations each:
  // 2 x (3 + 30 x 0.01) + 40 x 1 + 8 x 20 x 0.01 = 48.2 s.
  const perSeed = 17.4 + 2 * (1 + (1 + (1 + 2 / 90) + (1 + 30 / 90)) + 48.2);
  const p = planExperiment(c, sizes, TIMINGS);
  assertClose([p.seconds], [2 * perSeed], { atol: 1e-9, rtol: 0 });
  assertEquals([p.cells, p.steps], [20, 2 * (8 + 4 * 20)]);
  const done = planExperiment(c, sizes, TIMINGS, {
    pretrained: (k) => k === 0,
    cell: (k) => k === 0,
  });
  assertClose([done.seconds], [perSeed], { atol: 1e-9, rtol: 0 });
  // MoCo-CXR's end-to-end protocol: up to 20 epochs of ceil(n / 16) steps, one evaluation each.
  const epochs = planExperiment(
    { ...c, finetune: { ...c.finetune, e2eEpochs: { maxEpochs: 20, patience: 3 } } },
    sizes,
    TIMINGS,
  );
  assertEquals(epochs.steps, 2 * (8 + 2 * 20 * (1 + 3)));
  // Another size: images x pixels per step.
  const s = scaleTimings(TIMINGS, { imageSize: 32, batch: 64, ftBatch: 8 });
  assertEquals([s.mocoStep, s.ftStep, s.forward], [2 * 4 * 4, 1 * 4 / 2, 0.04]);
});

Deno.test("experiment over two pretraining seeds: grows a one-seed run, pairs within seeds", async () => {
  const cache = memoryCache();
  const dir = await Deno.makeTempDir();
  const small: ExperimentConfig = { ...cfg, fractions: [1], linearDraws: 1, gradcamImages: 1 };
  const logs: string[] = [];
  const data = {
    cache,
    pretrainCache: cache,
    pretrainIndices: pretrainImages(cache).indices,
    describe: "memory",
  };
  const run = (c: ExperimentConfig, plan?: Parameters<typeof runExperiment>[8]) =>
    runExperiment(
      B,
      gpuTrainOps,
      c,
      data,
      dir,
      {},
      (m) => logs.push(m),
      (o) => new TinyNet(B, o),
      plan,
    );
  await run(small);
  const one = [...Deno.readDirSync(join(dir, "predictions"))].map((e) => e.name).sort();
  assertEquals(one.length, 4);
  const firstMoco = await Deno.readTextFile(
    join(dir, "predictions", one.find((n) => n.includes("moco_e2e"))!),
  );

  // The dry run at two seeds plans only the second seed's work and writes nothing.
  const two = { ...small, pretrainSeeds: 2 };
  const dry = await run(two, { time: () => Promise.resolve(TIMINGS), dryRun: true });
  assert(dry.planned! > 0);
  assert(logs.some((l) => l.includes("4 cells to run (4 already done)")), logs.join("\n"));
  assert(!logs.some((l) => l.includes("seed 1/2: pretraining:")), "seed 1 is pretrained");
  assert(logs.some((l) => l.includes("seed 2/2: pretraining:")), logs.join("\n"));
  assertEquals([...Deno.readDirSync(join(dir, "predictions"))].length, 4);
  await assertRejects(() => Deno.stat(join(dir, "pretrain_s1")), /No such file|not found/i);

  const res = await run(two, { time: () => Promise.resolve(TIMINGS) });
  assertEquals(res.planned, dry.planned);
  const names = [...Deno.readDirSync(join(dir, "predictions"))].map((e) => e.name).sort();
  assertEquals(names.length, 8);
  assert(names.includes("resnet18_moco_e2e_f1_d0_Disc_s1.json"), names.join(" "));
  await Deno.stat(join(dir, "pretrain_s1", "backbone.safetensors"));
  await Deno.stat(join(dir, "metrics", "pretrain_s1.jsonl"));
  assertEquals(
    JSON.parse(await Deno.readTextFile(join(dir, "pretrain_s1", "config.json"))).seed,
    1000,
  );
  // Seed 0's cells were kept; seed 1's models differ from them (another backbone, another init).
  assertEquals(
    await Deno.readTextFile(join(dir, "predictions", one.find((n) => n.includes("moco_e2e"))!)),
    firstMoco,
  );
  for (const init of ["random", "moco"]) {
    const a = JSON.parse(
      await Deno.readTextFile(join(dir, "predictions", `resnet18_${init}_linear_f1_d0_Disc.json`)),
    );
    const b = JSON.parse(
      await Deno.readTextFile(
        join(dir, "predictions", `resnet18_${init}_linear_f1_d0_Disc_s1.json`),
      ),
    );
    assertEquals(b.pretrain_seed, 1);
    assert(JSON.stringify(a.scores) !== JSON.stringify(b.scores), `${init}: seed 1 = seed 0`);
  }
  assert(logs.some((l) => l.startsWith("seed 2/2: moco e2e 100% draw 0")), logs.join("\n"));
  assert(logs.some((l) => /took .* min \(the plan estimated/.test(l)));
  assertEquals([...Deno.readDirSync(join(dir, "gradcam"))].length, 2); // seed 0 only

  await evaluateRun(dir, { replicates: 50, seed: 0, level: 0.95, colormap: "jet" }, () => {});
  const results = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
  for (const d of results.differences) {
    assertEquals([d.p_method, d.seeds.n_seeds, d.seeds.seed_diffs.length], ["seed-t", 2, 2]);
  }
  // The report names the end-to-end protocol that ran and the seeds.
  const html = await Deno.readTextFile(join(dir, "report.html"));
  assert(html.includes("e2e_protocol") && html.includes("miniature step budget"), "protocol");
  assert(html.includes("Over 2 pretraining seeds"), "seeds in the caption");
  // A second resume at two seeds trains nothing.
  const before = logs.length;
  await run(two);
  assertEquals(logs.slice(before).filter((l) => / draw \d+: /.test(l)), []);
  await assertRejects(
    () => run({ ...two, mocoBackbone: "x.safetensors" }),
    /a given MoCo backbone is one backbone, but 2 pretraining seeds/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment: MoCo-CXR's end-to-end protocol evaluates every epoch, keeps the best, may stop early", async () => {
  const cache = memoryCache();
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  const c: ExperimentConfig = {
    ...cfg,
    inits: ["random"],
    protocols: ["e2e"],
    fractions: [1],
    gradcamImages: 0,
    finetune: { ...cfg.finetune, e2eEpochs: { maxEpochs: 8, patience: 1 } },
  };
  await runTiny(c, dir, logs);
  const pool = makeSplits(cache, 0).trainPool.length, perEpoch = Math.ceil(pool / 16);
  const curve =
    (await Deno.readTextFile(join(dir, "metrics", "resnet18_random_e2e_f1_d0_Disc.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
  // One evaluation per epoch, at most 8, stopping once an epoch brings no gain (patience 1).
  assertEquals(curve.map((r) => r.step), curve.map((_, i) => (i + 1) * perEpoch));
  let stop = 8, top = -Infinity;
  for (let i = 0; i < 8 && i < curve.length; i++) {
    if (curve[i].val_auc > top) top = curve[i].val_auc;
    else {
      stop = i + 1;
      break;
    }
  }
  assertEquals(curve.length, stop);
  assert(
    stop < 8,
    "this subset's validation AUC stalls within 8 epochs (the early stop is tested)",
  );
  const best = Math.max(...curve.map((r) => r.val_auc));
  const bestAt = curve.findIndex((r) => r.val_auc === best);
  const line = logs.find((l) => l.startsWith("random e2e 100% draw 0"))!;
  assert(line.includes(`of ${8 * perEpoch} steps, best at ${(bestAt + 1) * perEpoch}`), line);
  const run = JSON.parse(await Deno.readTextFile(join(dir, "run.json")));
  assert(run.e2e_protocol.startsWith("epochs (up to 8"), run.e2e_protocol);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the plan's timing lets the tuner settle after each warm-up, then times", async () => {
  const cache = memoryCache(), train = cache.splitIndices("train");
  let settled = 0;
  const t = await timeRun(B, gpuTrainOps, {
    adapter: "test",
    pretrain: cfg.pretrain,
    source: twoViewSource(cache, train, pretrainAugment("mococxr", S, 1)),
    labelled: labelledSource(cache, train.slice(0, 32), S, 1),
    ft: cfg.finetune,
    probeSizes: [8],
    probeSets: { trainPool: 32, val: 16, test: 16 },
    mocoSteps: 1,
    ftSteps: 1,
    backbone: (o) => new TinyNet(B, o),
    // what a GPU's tuner does here: time the shapes the warm-up met
    settle: () => Promise.resolve(void settled++),
  });
  // the MoCo step's, the eval-mode forward's and the end-to-end cell's warm-ups
  assertEquals(settled, 3);
  for (const x of [t.mocoStep, t.forward, t.ftStep, t.ftCell, t.probe[0][1]]) {
    assert(Number.isFinite(x) && x >= 0, JSON.stringify(t));
  }
  assert(t.mocoStep > 0 && t.forward > 0, JSON.stringify(t));
});

Deno.test("the plan times no MoCo step when nothing is pretrained (a given backbone)", async () => {
  const cache = memoryCache(), train = cache.splitIndices("train");
  const untouched = () => {
    throw new Error("a MoCo view was made");
  };
  const t = await timeRun(B, gpuTrainOps, {
    adapter: "test",
    pretrain: cfg.pretrain,
    source: { count: train.length, twoViews: untouched } as unknown as Parameters<
      typeof timeRun
    >[2]["source"],
    labelled: labelledSource(cache, train.slice(0, 32), S, 1),
    ft: cfg.finetune,
    probeSizes: [],
    probeSets: { trainPool: 32, val: 16, test: 16 },
    mocoSteps: 0,
    ftSteps: 1,
    backbone: (o) => new TinyNet(B, o),
  });
  assertEquals([t.mocoStep, t.checkpoint], [0, 0]);
  assert(t.forward > 0, JSON.stringify(t));
});

Deno.test("experiment: a resume on other splits is refused, as is a drawn-test run from before", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c: ExperimentConfig = {
      ...cfg,
      inits: ["random"],
      protocols: ["linear"],
      fractions: [1],
      gradcamImages: 0,
    };
    await runTiny(c, dir);
    const runJson = join(dir, "run.json");
    const run = JSON.parse(await Deno.readTextFile(runJson));
    assertEquals(run.config.splitsId.from, "drawn"); // memoryCache has no test split of its own
    await runTiny(c, dir); // the same splits: resumes (nothing left to do)
    const edit = async (f: (config: Record<string, unknown>) => void) => {
      const r = structuredClone(run);
      f(r.config);
      await Deno.writeTextFile(runJson, JSON.stringify(r));
    };
    await edit((config) => (config.splitsId as { hash: string }).hash = "0".repeat(64));
    await assertRejects(() => runTiny(c, dir), /other settings \(splits: saved/);
    await edit((config) => delete config.splitsId);
    await assertRejects(() => runTiny(c, dir), /made before this version's rule/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("experiment: a run recorded before --rotate-interp resumes only with bilinear batches", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c: ExperimentConfig = {
      ...cfg,
      inits: ["random"],
      protocols: ["linear"],
      fractions: [1],
      gradcamImages: 0,
      finetune: { ...cfg.finetune, rotateInterp: "nearest" },
    };
    await runTiny(c, dir);
    const runJson = join(dir, "run.json");
    const run = JSON.parse(await Deno.readTextFile(runJson));
    assertEquals(run.config.finetune.rotateInterp, "nearest");
    delete run.config.finetune.rotateInterp; // as every run before the flag recorded it
    await Deno.writeTextFile(runJson, JSON.stringify(run));
    await assertRejects(
      () => runTiny(c, dir),
      /fine-tuning rotateInterp: saved "bilinear", now "nearest"/,
    );
    await runTiny({ ...c, finetune: { ...c.finetune, rotateInterp: "bilinear" } }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("labelledSource: the augmented batches rotate by the given interpolation", () => {
  const cache = memoryCache();
  const idx = [0, 1, 2, 3];
  const batch = (interp: "nearest" | "bilinear") => {
    const src = labelledSource(cache, [...cache.splitIndices("train")], S, 1, "mococxr", interp);
    return Array.from(src.augmented(idx, new Rng(9)).data);
  };
  const nearest = batch("nearest"), bilinear = batch("bilinear");
  assert(nearest.join() !== bilinear.join(), "the interpolation reaches the batches");
  // Nearest reads stored pixels: every value is one of the 256 normalised gray levels.
  const levels = new Set(
    Array.from({ length: 256 }, (_, v) => Math.fround((v / 255 - 0.502) / 0.0856)),
  );
  assert(
    nearest.filter((v) => !levels.has(Math.fround(v))).length === 0,
    "nearest reads stored pixels",
  );
});

/** runExperiment on the memory cache with TinyNet, logging into `logs`. */
function runTiny(c: ExperimentConfig, dir: string, logs: string[] = []) {
  const cache = memoryCache();
  return runExperiment(
    B,
    gpuTrainOps,
    c,
    {
      cache,
      pretrainCache: cache,
      pretrainIndices: pretrainImages(cache).indices,
      describe: "memory",
    },
    dir,
    {},
    (m) => logs.push(m),
    (o) => new TinyNet(B, o),
  );
}

/** One linear cell per init at 100% (seconds on lavapipe). */
const oneCell = (over: Partial<ExperimentConfig>): ExperimentConfig => ({
  ...cfg,
  protocols: ["linear"],
  fractions: [1],
  draws: 1,
  linearDraws: 1,
  gradcamImages: 0,
  finetune: { ...cfg.finetune, probeMaxIter: 5 },
  ...over,
});

Deno.test("experiment: a folder where nothing finished takes new settings; else the refusal says how to start over", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A run that failed before any cell: run.json, empty predictions/ and metrics/.
    const fixed = oneCell({ inits: ["random"] });
    const failed = { ...fixed, finetune: { ...fixed.finetune, lr: 5e-4 } };
    await Deno.mkdir(join(dir, "predictions"));
    await Deno.mkdir(join(dir, "metrics"));
    await Deno.writeTextFile(join(dir, "run.json"), JSON.stringify({ config: failed }));
    const logs: string[] = [];
    await runTiny(fixed, dir, logs);
    assert(
      logs.some((l) =>
        /no cell or pretraining of its earlier run finished; this run's settings/.test(l)
      ),
      logs.join("\n"),
    );
    const run = JSON.parse(await Deno.readTextFile(join(dir, "run.json")));
    assertEquals(run.config.finetune.lr, fixed.finetune.lr);
    // Now a cell is there: other settings are refused, and the advice says how to start over.
    const e = await runTiny(failed, dir).then(() => null, (e) => e);
    assert(e instanceof OtherSettingsError, `${e}`);
    const line = explain(e)!;
    assert(/other settings \(fine-tuning lr: saved 0\.001, now 0\.0005\)/.test(line), line);
    assert(line.endsWith(`give a new --out folder, or delete ${dir}.`), line);
    // A pretraining checkpoint alone counts as finished work too.
    const dir2 = await Deno.makeTempDir();
    await Deno.mkdir(join(dir2, "pretrain"));
    await Deno.writeTextFile(join(dir2, "pretrain", "checkpoint.safetensors"), "x");
    await Deno.writeTextFile(join(dir2, "run.json"), JSON.stringify({ config: failed }));
    await assertRejects(() => runTiny(fixed, dir2), /holds a run made with other settings/);
    await Deno.remove(dir2, { recursive: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("experiment: MoCo and random cells from separate runs share a folder; run.json keeps the backbone and its pretraining config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Two exported backbones: one beside its pretraining run's config.json, one alone.
    const pre = join(dir, "pre"), lone = join(dir, "lone");
    await Deno.mkdir(pre);
    await Deno.mkdir(lone);
    const net = new TinyNet(B, { inChannels: 1, seed: new Rng(4) });
    await exportBackbone(net, join(pre, "backbone.safetensors"), {});
    await exportBackbone(net, join(lone, "backbone.safetensors"), {});
    net.dispose();
    const preConfig = { ...cfg.pretrain, epochs: 7, lr: 0.03 };
    await Deno.writeTextFile(join(pre, "config.json"), JSON.stringify(preConfig));
    const backbone = join(pre, "backbone.safetensors");
    const out = join(dir, "run"), runJson = join(out, "run.json");
    const moco = oneCell({ inits: ["moco"], mocoBackbone: backbone });
    // finetune --init random first, then --init moco, then --init random again: all accepted.
    await runTiny(oneCell({ inits: ["random"] }), out);
    let run = JSON.parse(await Deno.readTextFile(runJson));
    // Nothing was pretrained: only what fine-tuning reads of the pretraining config is recorded.
    assertEquals(run.config.pretrain, {
      moco: { backbone: "resnet18", inChannels: 1 },
      imageSize: S,
    });
    await runTiny(moco, out);
    await runTiny(oneCell({ inits: ["random"] }), out);
    const cells = [...Deno.readDirSync(join(out, "predictions"))].map((e) => e.name).sort();
    assertEquals(cells, [
      "resnet18_moco_linear_f1_d0_Disc.json",
      "resnet18_random_linear_f1_d0_Disc.json",
    ]);
    run = JSON.parse(await Deno.readTextFile(runJson));
    // The record of the MoCo cells survives the random-only run.
    assertEquals(run.config.mocoBackbone, backbone);
    assertEquals(run.normalization, { random: "mococxr", moco: "mococxr" });
    // The given backbone's pretraining is its own run's config, not this run's defaults.
    assertEquals(run.moco_pretraining, {
      backbone,
      from: join(pre, "config.json"),
      config: preConfig,
    });
    assertEquals(run.config.pretrain.epochs, undefined);
    // Another backbone over the MoCo cells is refused.
    await assertRejects(
      () =>
        runTiny(
          oneCell({ inits: ["moco"], mocoBackbone: join(lone, "backbone.safetensors") }),
          out,
        ),
      /moco backbone: saved ".*pre\/backbone\.safetensors", now ".*lone\/backbone\.safetensors"/,
    );
    // A backbone without a config.json beside it: no pretraining config recorded.
    const out2 = join(dir, "run2");
    await runTiny(
      oneCell({ inits: ["moco"], mocoBackbone: join(lone, "backbone.safetensors") }),
      out2,
    );
    const run2 = JSON.parse(await Deno.readTextFile(join(out2, "run.json")));
    assertEquals([run2.moco_pretraining.from, run2.moco_pretraining.config], [null, null]);
    assert(
      /no readable config\.json beside/.test(run2.moco_pretraining.note),
      run2.moco_pretraining.note,
    );
    // The report's metadata says where the pretraining config came from.
    await evaluateRun(out, { replicates: 20, seed: 0, level: 0.95, colormap: "jet" }, () => {});
    const html = await Deno.readTextFile(join(out, "report.html"));
    assert(html.includes(`its run's config, from ${join(pre, "config.json")}`), "metadata line");
    await evaluateRun(out2, { replicates: 20, seed: 0, level: 0.95, colormap: "jet" }, () => {});
    assert(
      (await Deno.readTextFile(join(out2, "report.html"))).includes("not recorded (no readable"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
