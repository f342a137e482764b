/**
 * Developer probe: does MoCo pretraining make the first task (Pleural Effusion) more linearly
 * separable than a random backbone, at few labels? Faster than the full experiment grid, so a
 * change to the synthetic generator or the pretraining defaults can be measured in minutes.
 *
 *   deno run -A tools/probe_representation.ts [--data DIR] [--size 32] [--epochs 3] [--out DIR]
 *       [--e2e 50,200] [--jitter] [--skip-moco] [pretrain flags…]
 *
 * --e2e also fine-tunes end to end from each init on that many labels; --jitter adds
 * contrast/brightness jitter to MoCo's views. ~15 min on a 2-core CPU, ~1 min on an H200 (run
 * several variants in parallel there). Results that shaped generator v3: README "Status".
 *
 * Prints, for the random backbone, raw pixels and the MoCo backbone: test AUC of an L2 logistic
 * regression on standardized frozen features, trained on n labelled images (mean over draws).
 * Test = valid.csv + the validation split (≈300 images), so the numbers are less noisy than the
 * experiment's test column.
 */
import { parseArgs } from "node:util";
import { trainAugment } from "../data/augment.ts";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { auc } from "../eval/auc.ts";
import { Rng } from "../util/rng.ts";
import { buildBackbone } from "../train/backbones.ts";
import { openData } from "../cli/open_data.ts";
import { pretrainAugment, twoViewSource } from "../train/cache_sources.ts";
import { labelledSource } from "../train/cache_sources.ts";
import { makeSplits, pretrainImages } from "../train/splits.ts";
import { extractFeatures } from "../train/features.ts";
import { finetune, meanAuc, stepsFor } from "../train/finetune.ts";
import { standardize } from "../train/linear_protocol.ts";
import { pretrain } from "../train/pretrain.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { loadInitWeights } from "../train/weights.ts";
import { PRETRAIN_OPTIONS, pretrainConfigFrom } from "../cli/pretrain_flags.ts";

const { values: f } = parseArgs({
  options: {
    ...PRETRAIN_OPTIONS,
    "skip-moco": { type: "boolean" },
    e2e: { type: "string" },
    jitter: { type: "boolean" },
  },
});
const cfg = pretrainConfigFrom(f);
cfg.monitorEvery = 0;
const S = cfg.imageSize, C = cfg.moco.inChannels;
const gpu = await getGpu();
const B = gpuBackend(gpu);
const { cache } = await openData({
  data: f.data as string | undefined,
  kind: f.kind as string | undefined,
  imageSize: S,
  inChannels: C,
  log: console.log,
});
const splits = makeSplits(cache, 0);
const T = cache.tasks.length;
const usable = (idx: number[]) => idx.filter((i) => cache.mask[i * T] > 0);
const pool = usable(splits.trainPool), test = usable([...splits.test, ...splits.val]);
const yPool = pool.map((i) => cache.labels[i * T]), yTest = test.map((i) => cache.labels[i * T]);
const prev = (y: number[]) => (y.reduce((a, b) => a + b, 0) / y.length).toFixed(2);
console.log(
  `pool ${pool.length} (prevalence ${prev(yPool)}), test ${test.length} (${prev(yTest)})`,
);

/** L2 logistic regression by gradient descent on standardized features; returns test AUC. */
function probe(fPool: Float32Array, fTest: Float32Array, F: number, n: number, draws: number) {
  // The linear protocol's standardization (training-pool statistics).
  const std = standardize({ train: fPool, val: fTest, test: fTest }, F);
  const z = (src: "train" | "test", i: number, j: number) => std[src][i * F + j];
  const aucs: number[] = [];
  for (let d = 0; d < draws; d++) {
    const rng = new Rng(1000 + d);
    let idx = rng.shuffle(pool.map((_, i) => i)).slice(0, n);
    while (new Set(idx.map((i) => yPool[i])).size < 2) idx = rng.shuffle(idx.concat()).slice(0, n);
    const w = new Float64Array(F), lam = 1 / Math.max(n, 1) + 1e-3;
    let b = 0;
    for (let it = 0; it < 300; it++) {
      const g = new Float64Array(F);
      let gb = 0;
      for (const i of idx) {
        let s = b;
        for (let j = 0; j < F; j++) s += w[j] * z("train", i, j);
        const e = 1 / (1 + Math.exp(-s)) - yPool[i];
        for (let j = 0; j < F; j++) g[j] += (e * z("train", i, j)) / idx.length;
        gb += e / idx.length;
      }
      for (let j = 0; j < F; j++) w[j] -= 0.5 * (g[j] + lam * w[j]);
      b -= 0.5 * gb;
    }
    const scores = test.map((_, i) => {
      let s = b;
      for (let j = 0; j < F; j++) s += w[j] * z("test", i, j);
      return s;
    });
    aucs.push(auc(yTest, scores));
  }
  return aucs.reduce((a, x) => a + x, 0) / aucs.length;
}

const NS = [20, 50, 200, pool.length];
function report(name: string, fPool: Float32Array, fTest: Float32Array, F: number) {
  const row = NS.map((n) =>
    `n=${n}: ${probe(fPool, fTest, F, n, n >= pool.length ? 1 : 8).toFixed(3)}`
  );
  console.log(`${name.padEnd(10)} ${row.join("  ")}`);
}

async function features(net: ReturnType<typeof buildBackbone>) {
  const a = await extractFeatures(B, net, labelledSource(cache, pool, S, C));
  const b = await extractFeatures(B, net, labelledSource(cache, test, S, C));
  return { a, b };
}

// Raw pixels, 8×8 block means of the centre crop.
{
  const src = labelledSource(cache, [...pool, ...test], S, C), k = S / 8;
  const x = src.images([...pool, ...test].map((_, i) => i)).data;
  const F = 64, out = new Float32Array((pool.length + test.length) * F);
  for (let i = 0; i < pool.length + test.length; i++) {
    for (let p = 0; p < S * S; p++) {
      const r = Math.floor(p / S / k), c = Math.floor((p % S) / k);
      out[i * F + r * 8 + c] += x[i * C * S * S + p] / (k * k);
    }
  }
  report("pixels8x8", out.subarray(0, pool.length * F), out.subarray(pool.length * F), F);
}
const random = buildBackbone(B, cfg.moco.backbone, { inChannels: C, seed: new Rng(cfg.seed) });
const fr = await features(random);
report("random", fr.a, fr.b, random.featureDim);
if (!f["skip-moco"]) {
  const out = (f.out as string) ?? "/tmp/probe_run";
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const all = pretrainImages(cache).indices;
  const t0 = performance.now();
  const s = await pretrain(
    B,
    gpuTrainOps,
    cfg,
    twoViewSource(
      cache,
      all,
      f.jitter
        ? trainAugment(S, { channels: C, contrast: 0.3, brightness: 0.1 })
        : pretrainAugment(cfg.augment, S, C, cfg.rotateInterp),
    ),
    out,
    { quiet: true, log: () => {} },
  );
  console.log(
    `pretrain: ${s.steps} steps, loss ${s.firstLoss.toFixed(3)} → ${s.lastLoss.toFixed(3)}, ` +
      `acc ${s.meanAccLastEpoch.toFixed(3)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  const net = buildBackbone(B, cfg.moco.backbone, { inChannels: C, seed: new Rng(cfg.seed) });
  await loadInitWeights(net, s.backbonePath);
  const fm = await features(net);
  report("moco", fm.a, fm.b, net.featureDim);
}

/** End-to-end fine-tuning from `init` on n labelled images (comma list in --e2e), test AUC. */
async function e2e(init: string, name: string) {
  if (!f.e2e) return;
  const row: string[] = [];
  for (const n of (f.e2e as string).split(",").map(Number)) {
    const rng = new Rng(77);
    let idx = rng.shuffle(pool.map((_, i) => i)).slice(0, n);
    while (new Set(idx.map((i) => yPool[i])).size < 2) idx = rng.shuffle(idx.concat()).slice(0, n);
    const r = await finetune(B, gpuTrainOps, {
      backbone: cfg.moco.backbone,
      inChannels: C,
      imageSize: S,
      protocol: "e2e",
      init,
      batchSize: 16,
      lr: 1e-4,
      weightDecay: 1e-4,
      steps: stepsFor(n, 16, 30, 200),
      evalEvery: 25,
      patience: 0,
      seed: 1,
    }, {
      train: labelledSource(cache, pool, S, C),
      trainIdx: idx,
      val: labelledSource(cache, usable(splits.val), S, C),
      test: labelledSource(cache, usable(splits.test), S, C),
    });
    row.push(`n=${n}: ${meanAuc(r.test).toFixed(3)}`);
  }
  console.log(`${(name + "-e2e").padEnd(10)} ${row.join("  ")}`);
}
await e2e("random", "random");
if (!f["skip-moco"]) {
  await e2e((f.out as string ?? "/tmp/probe_run") + "/backbone.safetensors", "moco");
}
