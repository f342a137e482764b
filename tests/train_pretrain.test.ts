/**
 * The pretraining loop on a tiny backbone and an in-memory image set: the
 * loss falls and the contrastive accuracy rises; a run killed mid-way and
 * resumed replays the uninterrupted run's loss sequence bit for bit; a NaN
 * loss stops the run naming the last good checkpoint; reading the loss every
 * few steps changes none of it; views made on the GPU resume bit for bit too.
 */
import { join } from "node:path";
import { gpuBackend } from "../model/backend_gpu.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { pretrain } from "../train/pretrain.ts";
import { readMetrics } from "../train/metrics.ts";
import { NonFiniteError, saveCheckpoint } from "../train/checkpoint.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertRejects } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { TinyNet, tinyPretrainConfig } from "./tiny_net.ts";
import { discSource, imageSource, labelledDiscs, twoViewImages } from "./image_source.ts";
import { pretrainAugment } from "../train/cache_sources.ts";
import { knnMonitor } from "../train/monitor.ts";
import type { Moco } from "../train/moco.ts";

const S = 16;
const B = gpuBackend(gpu);

const cfg = (epochs: number) => tinyPretrainConfig(epochs);
const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };

Deno.test("pretraining: loss falls and contrastive accuracy rises", async () => {
  const dir = await Deno.makeTempDir();
  const s = await pretrain(B, gpuTrainOps, cfg(10), discSource(64), dir, opts);
  const m = await readMetrics(join(dir, "metrics.jsonl"));
  assertEquals(s.steps, 40);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // From step 3 on, the queue holds real keys (before, random vectors make it easy).
  const first = m.slice(2, 10), last = m.slice(-8);
  assert(mean(last.map((r) => r.loss)) < mean(first.map((r) => r.loss)) - 0.03, "loss falls");
  assert(mean(last.map((r) => r.acc)) > mean(first.map((r) => r.acc)), "accuracy rises");
  for (
    const f of ["checkpoint.safetensors", "backbone.safetensors", "config.json", "summary.json"]
  ) {
    await Deno.stat(join(dir, f));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretraining: the steps' img/s leaves out what happens between steps (tuning, checkpoints)", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  // 150 ms between every step, as a GPU's first run spends tuning kernels between its first steps
  const between = () => new Promise<void>((r) => setTimeout(r, 150));
  await pretrain(B, gpuTrainOps, cfg(2), discSource(64), dir, {
    ...opts,
    log: (l: string) => lines.push(l),
    betweenSteps: between,
  });
  const m = await readMetrics(join(dir, "metrics.jsonl"));
  const last = m[m.length - 1];
  // img_s counts the pauses, step_img_s does not: a tiny step here takes far less than 150 ms
  assert(
    last.step_img_s > 1.5 * last.img_s,
    `step_img_s ${last.step_img_s} against img_s ${last.img_s}`,
  );
  const t = lines.find((l) => l.startsWith("throughput:"));
  assert(t && /\(its steps [\d.]+ img\/s; [\d.]+ s in checkpoints/.test(t), String(t));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretraining: a killed run resumes to the same loss sequence, bit for bit", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  await pretrain(B, gpuTrainOps, cfg(3), discSource(64), a, opts);
  // "Kill" after step 7: the last checkpoint is step 6, step 7's metrics line is stale.
  await assertRejects(
    () =>
      pretrain(B, gpuTrainOps, cfg(3), discSource(64), b, {
        ...opts,
        afterStep: (s) => {
          if (s === 7) throw new Error("killed");
        },
      }),
    /killed/,
  );
  await pretrain(B, gpuTrainOps, cfg(3), discSource(64), b, { ...opts, resume: true });
  const ma = await readMetrics(join(a, "metrics.jsonl"));
  const mb = await readMetrics(join(b, "metrics.jsonl"));
  assertEquals(mb.map((r) => r.step), ma.map((r) => r.step));
  assertEquals(mb.map((r) => r.loss), ma.map((r) => r.loss));
  assertEquals(mb.map((r) => r.acc), ma.map((r) => r.acc));
  const wa = await Deno.readFile(join(a, "backbone.safetensors"));
  const wb = await Deno.readFile(join(b, "backbone.safetensors"));
  assertEquals(wb, wa);
  // summary.json describes the whole run (first loss of step 1, not of the resumed part), and
  // so does resuming a finished run.
  const summary = async (dir: string) => {
    const { steps, firstLoss, lastLoss, meanAccLastEpoch } = JSON.parse(
      await Deno.readTextFile(join(dir, "summary.json")),
    );
    return { steps, firstLoss, lastLoss, meanAccLastEpoch };
  };
  const sa = await summary(a);
  assertEquals(sa.firstLoss, ma[0].loss);
  assertEquals(await summary(b), sa);
  await pretrain(B, gpuTrainOps, cfg(3), discSource(64), a, { ...opts, resume: true });
  assertEquals(await summary(a), sa);
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("pretraining: resuming with other settings is refused", async () => {
  const dir = await Deno.makeTempDir();
  await pretrain(B, gpuTrainOps, cfg(1), discSource(32), dir, opts);
  const other = { ...cfg(1), lr: 1e-2 };
  await assertRejects(
    () => pretrain(B, gpuTrainOps, other, discSource(32), dir, { ...opts, resume: true }),
    /another configuration/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretraining: resuming on another dataset is refused", async () => {
  const dir = await Deno.makeTempDir();
  const data = { kind: "csv" as const, root: "/data/a", records: 32, hash: "1".repeat(64) };
  await pretrain(B, gpuTrainOps, { ...cfg(1), dataset: data }, discSource(32), dir, opts);
  const other = { ...cfg(1), dataset: { ...data, hash: "2".repeat(64) } };
  await assertRejects(
    () => pretrain(B, gpuTrainOps, other, discSource(32), dir, { ...opts, resume: true }),
    /trained on another dataset \(the same number of records with other paths or labels\)/,
  );
  // The same dataset resumes (here: a finished run, nothing left to do).
  const again = { ...cfg(1), dataset: data };
  await pretrain(B, gpuTrainOps, again, discSource(32), dir, { ...opts, resume: true });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretraining: a NaN loss stops the run and names the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(
    () => pretrain(B, gpuTrainOps, cfg(2), discSource(64, 4), dir, opts),
    // Caught at the loss, or (where a driver drops the NaN before the loss) at the weights.
    /(loss became NaN|diverged: non-finite values in .*) at step 4.*checkpoint\.safetensors \(step 2\)/s,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint with non-finite weights is refused and the previous one stays", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "checkpoint.safetensors");
  const net = new TinyNet(B, { inChannels: 1, seed: new Rng(1) });
  await saveCheckpoint(path, B, { modules: { q: net }, tensors: {}, meta: { step: 1 } });
  const good = await Deno.readFile(path);
  const w = net.parameters()[0];
  const bad = await w.read();
  bad[3] = NaN;
  B.write(w.value, bad);
  let err: unknown = null;
  try {
    await saveCheckpoint(path, B, { modules: { q: net }, tensors: {}, meta: { step: 2 } });
  } catch (e) {
    err = e;
  }
  assert(err instanceof NonFiniteError && err.tensor === "q.conv1.weight", String(err));
  assertEquals(await Deno.readFile(path), good);
  net.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretraining: loss read every 5 steps logs every step as before; a NaN still stops it before the save", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir(), c = await Deno.makeTempDir();
  const run = { ...cfg(2), ckptEvery: 1000 };
  await pretrain(B, gpuTrainOps, run, discSource(96), a, opts);
  await pretrain(B, gpuTrainOps, run, discSource(96), b, { ...opts, logEvery: 5 });
  const ma = await readMetrics(join(a, "metrics.jsonl"));
  const mb = await readMetrics(join(b, "metrics.jsonl"));
  assertEquals(mb.map((r) => r.step), [...Array(12).keys()].map((s) => s + 1));
  assertEquals(mb.map((r) => [r.loss, r.acc]), ma.map((r) => [r.loss, r.acc]));
  // Step 5's loss is read with step 6's, before step 6's checkpoint: step 4's stays the last.
  let msg = "";
  try {
    await pretrain(B, gpuTrainOps, cfg(2), discSource(64, 5), c, { ...opts, logEvery: 5 });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/checkpoint\.safetensors \(step 4\)/.test(msg), msg);
  if (!/loss became NaN at step 5/.test(msg)) {
    // A driver that drops the NaN before the loss: caught at the weights, after both were read.
    assert(/diverged: non-finite values in .* at step 6/.test(msg), msg);
    const mc = await readMetrics(join(c, "metrics.jsonl"));
    assertEquals(mc.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  }
  for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
});

Deno.test("pretraining with the views made on the GPU: a killed run resumes bit for bit", async () => {
  const images = imageSource(20, 64), aug = pretrainAugment("mococxr", S, 1);
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const onGpu = () => {
    const source = twoViewImages(images, aug);
    return { source, o: { ...opts, logEvery: 3, deviceViews: source.onDevice!(gpu) } };
  };
  const u = onGpu();
  await pretrain(B, gpuTrainOps, cfg(3), u.source, a, u.o);
  const k = onGpu();
  await assertRejects(
    () =>
      pretrain(B, gpuTrainOps, cfg(3), k.source, b, {
        ...k.o,
        afterStep: (s) => {
          if (s === 7) throw new Error("killed");
        },
      }),
    /killed/,
  );
  const r = onGpu();
  await pretrain(B, gpuTrainOps, cfg(3), r.source, b, { ...r.o, resume: true });
  const ma = await readMetrics(join(a, "metrics.jsonl"));
  const mb = await readMetrics(join(b, "metrics.jsonl"));
  assertEquals(ma.length, 12);
  assertEquals(mb.map((r) => [r.step, r.loss, r.acc]), ma.map((r) => [r.step, r.loss, r.acc]));
  // The GPU views are the host's to ~1e-4, not bit for bit: the loss follows closely.
  const host = await Deno.makeTempDir();
  await pretrain(B, gpuTrainOps, cfg(3), twoViewImages(images, aug), host, opts);
  const mh = await readMetrics(join(host, "metrics.jsonl"));
  assertClose(ma.map((r) => r.loss), mh.map((r) => r.loss), { atol: 0, rtol: 1e-3 });
  for (const d of [a, b, host]) await Deno.remove(d, { recursive: true });
});

Deno.test("pretraining: killed right after an epoch-end checkpoint, every epoch keeps its kNN AUC; the monitor changes nothing saved", async () => {
  const sets = { reference: labelledDiscs(40, 1, S), validation: labelledDiscs(24, 2, S) };
  const run = { ...cfg(3), monitorEvery: 1, ckptEvery: 1000 };
  const withMonitor = {
    ...opts,
    monitor: (moco: Moco) => knnMonitor(B, moco.encQ, sets),
  };
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir(), c = await Deno.makeTempDir();
  await pretrain(B, gpuTrainOps, run, discSource(64), a, withMonitor);
  // Killed as soon as epoch 1's checkpoint (step 4) is on disk.
  await assertRejects(
    () =>
      pretrain(B, gpuTrainOps, run, discSource(64), b, {
        ...withMonitor,
        afterCheckpoint: (s) => {
          if (s === 4) throw new Error("killed");
        },
      }),
    /killed/,
  );
  const starts: number[][] = [];
  await pretrain(B, gpuTrainOps, run, discSource(64), b, {
    ...withMonitor,
    resume: true,
    started: (step, total) => starts.push([step, total]),
  });
  assertEquals(starts, [[4, 12]]);
  const ma = await readMetrics(join(a, "metrics.jsonl"));
  const mb = await readMetrics(join(b, "metrics.jsonl"));
  const knn = (m: Record<string, number>[]) =>
    m.filter((r) => "knn_auc" in r).map((r) => [r.step, r.epoch, r.knn_auc]);
  assertEquals(knn(ma).map(([s, e]) => [s, e]), [[4, 1], [8, 2], [12, 3]]);
  assertEquals(knn(mb), knn(ma));
  // The epoch's monitor line comes before its checkpoint's (what the end of an epoch cost).
  const at4 = mb.filter((r) => r.step === 4 && !("loss" in r)).map((r) => Object.keys(r).sort());
  assertEquals(at4, [["epoch", "knn_auc", "monitor_s", "step"], [
    "checkpoint_s",
    "epoch",
    "step",
  ]]);
  const steps = (m: Record<string, number>[]) =>
    m.filter((r) => "loss" in r).map((r) => [r.step, r.loss, r.acc]);
  assertEquals(steps(mb), steps(ma));
  assertEquals(
    await Deno.readFile(join(b, "backbone.safetensors")),
    await Deno.readFile(join(a, "backbone.safetensors")),
  );
  // Without the monitor, the same losses and weights: it leaves BN statistics and all else alone.
  await pretrain(B, gpuTrainOps, { ...run, monitorEvery: 0 }, discSource(64), c, opts);
  assertEquals(steps(await readMetrics(join(c, "metrics.jsonl"))), steps(ma));
  assertEquals(
    await Deno.readFile(join(c, "backbone.safetensors")),
    await Deno.readFile(join(a, "backbone.safetensors")),
  );
  for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
});
