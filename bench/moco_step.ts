/**
 * Images per second of one ResNet-18 MoCo step (query forward + backward,
 * EMA, key forward, InfoNCE, enqueue, SGD) on our GPU backend, side by side
 * with TF.js's WebGPU backend doing a plain ResNet-18 training step of the
 * same batch and size on the same adapter (bench/tfjs_resnet18.ts).
 *
 *   deno run --allow-read --allow-env --allow-sys=loadavg bench/moco_step.ts \
 *     [--sizes 64,112,224] [--tf-sizes 112] [--batch 8] [--steps 2] [--warmup 1]
 *     [--tf-steps 2] [--no-tf] [--conv-algo auto|gemm|winograd|winograd4|col2im]
 *     [--precision f32|f16]
 *     [--tune-cache PATH]   (read before, written as each shape is timed: later runs start tuned)
 *     [--tune measure|cached|off]  (the tuner's mode, default the adapter's: "cached" times
 *                            nothing, shapes the cache lacks run the nearest cached shape's
 *                            choice or the prior; a first figure for a backbone whose first
 *                            tuning outlasts a lease, as DenseNet-121's)
 *
 * or `deno task bench --only moco` (defaults; `--no-tf`, `--reps-scale` apply).
 * Each timed step ends with a loss readback, so it covers the device work.
 * Each row is followed by the data pipeline's img/s at the same shape (host
 * and GPU augmentation, bench/data_pipeline.ts) as a multiple of the step's.
 * Rates use the fastest timed step on both sides (the least disturbed
 * estimate on a shared CPU); the load average is printed with each row.
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { CONV_ALGOS, type ConvAlgo, setConvAlgo } from "../kernels/conv/conv2d.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import type { Backend } from "../model/backend.ts";
import { Moco, type MocoConfig } from "../train/moco.ts";
import { Optimizer } from "../train/optimizer.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { Rng } from "../util/rng.ts";
import { steadyPeriodMs } from "./timeline.ts";
import { TUNE_MODES, type TuneMode, tunerOf } from "../kernels/tuner.ts";
import { type BackboneName, checkBackbone } from "../train/backbones.ts";
import type { BenchEntry } from "./harness.ts";
import { loadTf } from "./tfjs.ts";
import { timeTfResnet18Step } from "./tfjs_resnet18.ts";
import { formatDataRates, timeDataPipeline } from "./data_pipeline.ts";

export interface MocoBenchConfig {
  /** The encoders' backbone (default resnet18). */
  backbone?: BackboneName;
  sizes: number[];
  /** Sizes that also get the TF.js reference (it is slow: minutes a step at 112 px on lavapipe). */
  tfSizes: number[];
  batch: number;
  warmup: number;
  steps: number;
  /** TF.js timed steps (after one warm-up step that compiles its shape-specialised shaders). */
  tfSteps: number;
  /** f16 storage in the backbones (--precision f16; needs shader-f16). Default f32. */
  precision?: "f32" | "f16";
}

export interface MocoBenchRow {
  size: number;
  batch: number;
  /** Timed step wall times (ms). */
  oursMs: number[];
  /** Time spent recording a step's commands before waiting on the device (ms, fastest step). */
  oursEncodeMs: number;
  /** TF.js step times, or the reason there are none. */
  tf: { ms: number[] } | { error: string } | null;
  load: [number, number, number] | null;
}

/**
 * FLOPs of one MoCo step per image: ResNet-18 forward ≈ 1.82 GMAC = 3.64 GFLOP at 224 px
 * (1-channel stem: 3% less, ignored), ×3 for the query's forward + backward,
 * +1 for the key's forward; scaled by area for other sizes.
 */
export const MOCO_FLOPS_PER_IMAGE = (size: number, backbone: BackboneName = "resnet18") =>
  4 * GMAC_224[backbone] * 1e9 * (size / 224) ** 2 * 2;

/** Forward multiply-adds of each backbone at 224 px, in billions (torchvision's reference counts). */
const GMAC_224: Record<BackboneName, number> = {
  resnet18: 1.82,
  resnet34: 3.67,
  resnet50: 4.11,
  densenet121: 2.87,
};

export const MOCO_CFG: MocoConfig = {
  backbone: "resnet18",
  inChannels: 1,
  dim: 128,
  queueSize: 4096,
  temperature: 0.2,
  momentum: 0.999,
  bnGroups: 2,
};

export const DEFAULT_BENCH: MocoBenchConfig = {
  sizes: [64, 112, 224],
  // 112 px is the size of the speed target; TF.js at 64 px is opt-in (--tf-sizes 64,112).
  tfSizes: [112],
  batch: 8,
  warmup: 1,
  steps: 2,
  tfSteps: 2,
};

/**
 * The benchmarks' MoCo model and optimizer: MOCO_CFG with this backbone and storage precision,
 * SGD with momentum 0.9 and weight decay 1e-4 (MoCo v2's), seed 1.
 */
export async function benchMoco(
  B: Backend,
  o: { backbone?: BackboneName; precision?: "f32" | "f16" } = {},
): Promise<{ moco: Moco; opt: Optimizer }> {
  const cfg = { ...MOCO_CFG, backbone: o.backbone ?? MOCO_CFG.backbone, precision: o.precision };
  const moco = await Moco.create(B, gpuTrainOps, cfg, 1);
  const opt = new Optimizer(B, gpuTrainOps, moco.encQ.namedParameters(), {
    kind: "sgd",
    momentum: 0.9,
    weightDecay: 1e-4,
  }, moco.scaler);
  return { moco, opt };
}

/** 1-, 5- and 15-minute load averages, or null without --allow-sys=loadavg. */
export function loadAvg(): [number, number, number] | null {
  if (Deno.permissions.querySync({ name: "sys", kind: "loadavg" }).state !== "granted") return null;
  return Deno.loadavg() as [number, number, number];
}

function fmtLoad(l: [number, number, number] | null): string {
  return l ? l.map((x) => x.toFixed(1)).join(" ") : "n/a";
}

/**
 * Host inputs of one MoCo step: two random N×1×S×S views and the inverse of a
 * random key-batch shuffle (what the loader would provide).
 */
export function randomStepInputs(rng: Rng, N: number, S: number) {
  const xq = new Float32Array(N * S * S).map(() => rng.normal());
  const xk = new Float32Array(N * S * S).map(() => rng.normal());
  const perm = rng.shuffle([...Array(N).keys()]);
  const inv = new Float32Array(N);
  perm.forEach((p, j) => (inv[p] = j));
  return { xq, xk, inv };
}

/** The --conv-algo flag's value, or exit 2 with the choices. */
export function convAlgoFlag(value: string): ConvAlgo {
  const algo = CONV_ALGOS.find((a) => a === value);
  if (!algo) {
    console.error(`--conv-algo: one of ${CONV_ALGOS.join(", ")}, got ${value}`);
    Deno.exit(2);
  }
  return algo;
}

/**
 * Loads a --tune-cache file into the adapter's tuner, which then saves there after every shape it
 * times (kept even if a time limit ends the run); or exits 2 with the file's problem.
 */
export async function loadTuneCache(gpu: Gpu, path: string): Promise<void> {
  if ((await Deno.permissions.query({ name: "write", path })).state !== "granted") {
    console.error(`--tune-cache: this run may not write ${path}; add --allow-write=${path}`);
    Deno.exit(2);
  }
  try {
    await tunerOf(gpu).load(path);
    tunerOf(gpu).persistTo(path);
  } catch (e) {
    console.error(`--tune-cache: ${(e as Error).message}`);
    Deno.exit(2);
  }
}

/** Back-to-back steps timed on a hardware adapter, at least (see timeMoco). */
const B2B_MIN_STEPS = 12;
/** Steps run first on a hardware adapter while its clock ramps up (see timeMoco). */
const CLOCK_RAMP_STEPS = 6;

const rate = (batch: number, ms: number[]) => batch / (Math.min(...ms) / 1000);

/** Times `warmup` + `steps` MoCo steps at one size on a fresh model (seeded inputs). */
async function timeMoco(gpu: Gpu, size: number, cfg: MocoBenchConfig) {
  const B = gpuBackend(gpu), N = cfg.batch, S = size;
  const backbone = cfg.backbone ?? "resnet18";
  const precision = cfg.precision ?? "f32";
  const { moco, opt } = await benchMoco(B, { backbone, precision });
  const rng = new Rng(size);
  const oursMs: number[] = [];
  let encodeMs = Infinity, pipelinedMs = NaN, steadyMs = NaN;
  const tuner = tunerOf(gpu);
  try {
    for (let s = 0; s < cfg.warmup + cfg.steps; s++) {
      // after the first step, time the candidates of every shape it met (hardware adapters)
      if (s === 1 && tuner.pendingCount > 0) await tuner.tunePending();
      // Views and the shuffle are drawn before the clock starts (the loader's job).
      const { xq: xqHost, xk: xkHost, inv } = randomStepInputs(rng, N, S);

      const t0 = performance.now();
      const xq = B.fromArray(xqHost, [N, 1, S, S]);
      const xk = B.fromArray(xkHost, [N, 1, S, S]);
      const un = B.fromArray(inv, [N]);
      const r = moco.step(xq, xk, un);
      opt.update(0.03);
      const t1 = performance.now();
      const loss = (await B.read(r.loss))[0];
      const t2 = performance.now();
      for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
      if (!Number.isFinite(loss)) throw new Error(`MoCo step at ${S} px: loss is ${loss}`);
      if (s >= cfg.warmup) {
        oursMs.push(t2 - t0);
        encodeMs = Math.min(encodeMs, t1 - t0);
      }
    }
    // Throughput: the timed steps again, back to back, reading only the last loss
    // (what a training loop that reads its metrics every few steps would see). On hardware at
    // least B2B_MIN_STEPS of them after CLOCK_RAMP_STEPS more, cycling the inputs, every pass
    // timestamped where the device can: an H200 idling between steps drops its clock to 345 MHz
    // and needs ~300 ms of steady work to reach 1,980 again (session 12: the first three of 12
    // steps back to back took 122, 109 and 76 ms of GPU time, the rest 26.9 each), so the wall
    // time over the run includes the ramp and the steady figure is the GPU's period a step
    // (steadyPeriodMs) over the steps after it.
    if (cfg.steps > 1) {
      const inputs = Array.from({ length: cfg.steps }, () => randomStepInputs(rng, N, S));
      const ramp = gpu.isSoftware ? 0 : CLOCK_RAMP_STEPS;
      const n = gpu.isSoftware ? cfg.steps : ramp + Math.max(cfg.steps, B2B_MIN_STEPS);
      const timed = !gpu.isSoftware && gpu.hasTimestamps && n <= 64;
      await gpu.sync();
      if (timed) gpu.startTimer(2048);
      const t0 = performance.now();
      let lastLoss = NaN;
      for (let i = 0; i < n; i++) {
        const { xq: a, xk: b, inv } = inputs[i % inputs.length];
        const xq = B.fromArray(a, [N, 1, S, S]), xk = B.fromArray(b, [N, 1, S, S]);
        const un = B.fromArray(inv, [N]);
        if (timed) gpu.beginTimed();
        const r = moco.step(xq, xk, un);
        opt.update(0.03);
        if (timed) gpu.endTimed();
        if (i === n - 1) lastLoss = (await B.read(r.loss))[0];
        for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
      }
      pipelinedMs = (performance.now() - t0) / n;
      if (timed) {
        const done = await gpu.stopTimer();
        if (done.every((x) => x !== null)) steadyMs = steadyPeriodMs(gpu.lastTimeline, ramp);
      }
      if (!Number.isFinite(lastLoss)) throw new Error(`MoCo step at ${S} px: loss ${lastLoss}`);
    }
  } finally {
    opt.dispose();
    moco.dispose();
  }
  return { oursMs, encodeMs, pipelinedMs, steadyMs, bytes: gpu.stats.bytesAllocated };
}

function fmtRate(batch: number, ms: number[]): string {
  return `${rate(batch, ms).toFixed(2)} (${ms.map((m) => (m / 1000).toFixed(1)).join("/")} s)`;
}

/** One table line per size; TF.js failures are printed, never turned into numbers. */
export function formatRow(r: MocoBenchRow): string {
  const ours = fmtRate(r.batch, r.oursMs);
  let tf = "-", ratio = "-";
  if (r.tf && "ms" in r.tf) {
    tf = fmtRate(r.batch, r.tf.ms);
    ratio = `${(rate(r.batch, r.oursMs) / rate(r.batch, r.tf.ms)).toFixed(2)}x`;
  } else if (r.tf) tf = "failed";
  return `${String(r.size).padStart(4)} ${String(r.batch).padStart(5)} ${ours.padStart(26)} ` +
    `${tf.padStart(26)} ${ratio.padStart(8)}   ${fmtLoad(r.load)}`;
}

export const TABLE_HEADER = `${"px".padStart(4)} ${"batch".padStart(5)} ` +
  `${"ours img/s (step times)".padStart(26)} ${"TF.js img/s (step times)".padStart(26)} ` +
  `${"ours/TF".padStart(8)}   load 1/5/15 min`;

export async function runMocoBench(
  gpu: Gpu,
  cfg: MocoBenchConfig,
  withTf: boolean,
  log: (line: string) => void = console.log,
): Promise<MocoBenchRow[]> {
  log(
    `MoCo step: ${cfg.backbone ?? "resnet18"}, ${
      cfg.precision ?? "f32"
    } storage, ${MOCO_CFG.inChannels}-channel stem, queue ${MOCO_CFG.queueSize}, ` +
      `bnGroups ${MOCO_CFG.bnGroups}, SGD; ${cfg.warmup} warm-up + ${cfg.steps} timed steps ` +
      `a size. TF.js: ${
        withTf
          ? `plain ResNet-18 training step (softmax CE, SGD momentum), same batch/size/adapter, ` +
            `1 warm-up + ${cfg.tfSteps} timed steps at ${cfg.tfSizes.join(", ")} px.`
          : "skipped (--no-tf)."
      }`,
  );
  const load0 = loadAvg();
  log(
    `adapter: ${gpu.describe()}; load at start ${fmtLoad(load0)}` +
      (load0 ? "" : " (reading the load needs --allow-sys=loadavg)"),
  );
  log(TABLE_HEADER);
  const rows: MocoBenchRow[] = [];
  for (const size of cfg.sizes) {
    const { oursMs, encodeMs, pipelinedMs, steadyMs, bytes } = await timeMoco(gpu, size, cfg);
    let tf: MocoBenchRow["tf"] = null;
    if (withTf && cfg.tfSizes.includes(size)) {
      try {
        const t = await loadTf();
        const r = await timeTfResnet18Step(
          t,
          {
            batch: cfg.batch,
            size,
            inChannels: MOCO_CFG.inChannels,
            numClasses: 1000,
          },
          1,
          cfg.tfSteps,
        );
        tf = { ms: r.stepsMs };
      } catch (e) {
        tf = { error: e instanceof Error ? e.message : String(e) };
      }
    }
    const row = { size, batch: cfg.batch, oursMs, oursEncodeMs: encodeMs, tf, load: loadAvg() };
    rows.push(row);
    log(formatRow(row));
    log(
      `       (ours: ${
        encodeMs.toFixed(0)
      } ms to record a step's commands (fastest of the timed steps); back to back ${
        Number.isFinite(pipelinedMs)
          ? `${(cfg.batch / (pipelinedMs / 1000)).toFixed(1)} img/s (${
            pipelinedMs.toFixed(1)
          } ms a step, ${
            (MOCO_FLOPS_PER_IMAGE(size, cfg.backbone) * cfg.batch / (pipelinedMs * 1e6)).toFixed(0)
          } GFLOP/s)`
          : "not timed (--steps 2 or more)"
      }${
        Number.isFinite(steadyMs)
          ? `; at a steady clock ${(cfg.batch / (steadyMs / 1000)).toFixed(1)} img/s (${
            steadyMs.toFixed(1)
          } ms a step by GPU timestamps, ${
            (MOCO_FLOPS_PER_IMAGE(size, cfg.backbone) * cfg.batch / (steadyMs * 1e6)).toFixed(0)
          } GFLOP/s)`
          : ""
      }; pool ${(bytes / 2 ** 30).toFixed(2)} GiB)`,
    );
    if (tf && "error" in tf) log(`       TF.js webgpu failed at ${size} px: ${tf.error}`);
    // The data pipeline at the same shape, beside the step (which of the two limits a run).
    const stepMs = Number.isFinite(steadyMs) ? steadyMs : pipelinedMs;
    const stepRate = cfg.steps > 1 ? cfg.batch / (stepMs / 1000) : rate(cfg.batch, oursMs);
    log(`       (${formatDataRates(await timeDataPipeline(gpu, size, cfg.batch), stepRate)})`);
  }
  return rows;
}

export const mocoBench: BenchEntry = {
  name: "moco",
  description:
    "ResNet-18 MoCo step img/s at 64/112/224 px (data pipeline beside it) vs a TF.js training step",
  async run(ctx) {
    const scale = (n: number) => Math.max(1, Math.round(n * ctx.opts.repScale));
    console.log("");
    await runMocoBench(ctx.gpu, {
      ...DEFAULT_BENCH,
      steps: scale(DEFAULT_BENCH.steps),
      tfSteps: scale(DEFAULT_BENCH.tfSteps),
    }, !ctx.opts.noTf);
  },
};

function parseSizes(flag: string, s: string): number[] {
  const v = s.split(",").map((x) => Number(x.trim()));
  if (!v.every((x) => Number.isInteger(x) && x >= 32)) {
    throw new Error(`--${flag}: expected comma-separated integers >= 32, got "${s}"`);
  }
  return v;
}

function positiveInt(flag: string, s: string, min: number): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: expected an integer >= ${min}`);
  return v;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: DEFAULT_BENCH.sizes.join(",") },
      "tf-sizes": { type: "string", default: DEFAULT_BENCH.tfSizes.join(",") },
      batch: { type: "string", default: String(DEFAULT_BENCH.batch) },
      steps: { type: "string", default: String(DEFAULT_BENCH.steps) },
      warmup: { type: "string", default: String(DEFAULT_BENCH.warmup) },
      "tf-steps": { type: "string", default: String(DEFAULT_BENCH.tfSteps) },
      "no-tf": { type: "boolean", default: false },
      "conv-algo": { type: "string", default: "auto" },
      backbone: { type: "string", default: "resnet18" },
      precision: { type: "string", default: "f32" },
      "tune-cache": { type: "string" },
      tune: { type: "string" },
    },
  });
  setConvAlgo(convAlgoFlag(values["conv-algo"]));
  let cfg: MocoBenchConfig;
  try {
    cfg = {
      backbone: checkBackbone(values.backbone),
      sizes: parseSizes("sizes", values.sizes),
      tfSizes: parseSizes("tf-sizes", values["tf-sizes"]),
      batch: positiveInt("batch", values.batch, MOCO_CFG.bnGroups),
      steps: positiveInt("steps", values.steps, 1),
      warmup: positiveInt("warmup", values.warmup, 0),
      tfSteps: positiveInt("tf-steps", values["tf-steps"], 1),
      precision: values.precision === "f16" ? "f16" : "f32",
    };
    if (values.precision !== "f32" && values.precision !== "f16") {
      throw new Error(`--precision: f32 or f16, got ${values.precision}`);
    }
    if (values.tune !== undefined && !TUNE_MODES.includes(values.tune as TuneMode)) {
      throw new Error(`--tune: ${TUNE_MODES.join(", ")}, got ${values.tune}`);
    }
    // Split BN: the batch falls into bnGroups equal sub-batches.
    if (cfg.batch % MOCO_CFG.bnGroups) {
      throw new Error(`--batch: must be a multiple of bnGroups (${MOCO_CFG.bnGroups})`);
    }
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const t0 = performance.now();
  const gpu = await getGpu();
  // --tune-cache: start from earlier timings of these shapes and keep this run's
  const cache = values["tune-cache"];
  if (cache) await loadTuneCache(gpu, cache);
  if (values.tune) tunerOf(gpu).mode = values.tune as TuneMode;
  console.log(`tuner: ${tunerOf(gpu).mode}`);
  await runMocoBench(gpu, cfg, !values["no-tf"]);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
