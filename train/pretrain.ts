/**
 * The MoCo pretraining loop: data order, augmentation, steps, LR schedule,
 * metrics, progress, checkpoints, exact resume, NaN guard, the optional kNN
 * monitor and the final torchvision-named backbone export.
 *
 * Exact resume: every random choice of step s (which images, their two
 * augmentations, the key shuffle) is drawn from a generator seeded by
 * (seed, s), and the epoch order from (seed, epoch), so a checkpoint needs
 * only the step counter besides the tensors; a resumed run then replays the
 * same loss sequence bit for bit on the same adapter.
 *
 * Overlap: step s + 1's inputs (the host's augmentation and f32 upload, or the uint8 upload and
 * the GPU augmentation's dispatches, which then go out with step s + 1's commands) are made while
 * step s runs; loss and accuracy wait on the GPU and are read every `logEvery` steps
 * (train/step_scalars.ts), always before a checkpoint or the monitor, so a NaN still stops the run
 * before anything non-finite is saved. metrics.jsonl keeps one line a step either way.
 */
import { join } from "node:path";
import type { Backend, BTensor } from "../model/backend.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { Rng } from "../util/rng.ts";
import { UserError } from "../util/user_error.ts";
import {
  DamagedCheckpointError,
  OtherDataError,
  OtherSettingsError,
  TrainingDivergedError,
} from "./run_errors.ts";
import { exists, writeJsonAtomic } from "../util/fs.ts";
import { Moco, type MocoConfig } from "./moco.ts";
import { type OptimConfig, Optimizer } from "./optimizer.ts";
import type { TrainOps } from "./train_ops.ts";
import { learningRate, type Schedule } from "./schedule.ts";
import { lossHistory, MetricsLog, readMetrics } from "./metrics.ts";
import { Progress } from "./progress.ts";
import { loadCheckpoint, NonFiniteError, saveCheckpoint } from "./checkpoint.ts";
import { exportBackbone, loadInitWeights } from "./weights.ts";
import type { DeviceViews, TwoViewSource } from "./sources.ts";
import { StepScalars, type StepValues } from "./step_scalars.ts";
import { LossScaler, type LossScaleStats } from "./loss_scale.ts";
import type { PretrainAugment } from "./cache_sources.ts";
import type { Interp } from "../data/augment.ts";
import { type DatasetIdentity, identityDifference } from "../data/identity.ts";

/** A MoCo pretraining run: MoCo's settings, data size, optimisation, checkpoints, monitor. */
export interface PretrainConfig {
  /** MoCo's encoders, queue, temperature, momentum, split BN. */
  moco: MocoConfig;
  /** Crop side in pixels. */
  imageSize: number;
  /** Images per step. */
  batchSize: number;
  /** Passes over the training images. */
  epochs: number;
  /** Optimizer of the query encoder. */
  optimizer: OptimConfig;
  /** Base learning rate. */
  lr: number;
  /** Learning-rate schedule over epochs. */
  schedule: Schedule;
  /** Seed of the initialisation and of every step's draws. */
  seed: number;
  /** Checkpoint every this many steps (and at each epoch's end). */
  ckptEvery: number;
  /** kNN monitor every this many epochs (0 = off). */
  monitorEvery: number;
  /** "random" or a safetensors file of ImageNet (torchvision) weights. */
  init: string;
  /** Augmentation of the two views (see train/cache_sources.ts pretrainAugment). */
  augment: PretrainAugment;
  /**
   * Interpolation of the views' rotation (data/augment.ts AugmentOptions.interp), as the caller's
   * source makes them: recorded so that a resume with the other is refused. Absent: bilinear,
   * what every run recorded before the choice used (rotateInterpOf).
   */
  rotateInterp?: Interp;
  /** The data the run trains on; --resume refuses another dataset. */
  dataset?: DatasetIdentity;
  /**
   * Training-split images left out because their patients are in the test set
   * (train/splits.ts pretrainImages); absent when none were. A resume compares it.
   */
  testLeftOut?: number;
}

/** A config's rotation interpolation: bilinear where it records none (runs before the choice). */
export function rotateInterpOf(c: { rotateInterp?: Interp }): Interp {
  return c.rotateInterp ?? "bilinear";
}

/**
 * Refuses to resume the run in `runDir`, saved with `saved`, with `now`: OtherDataError when the
 * datasets differ (runs from before datasets were recorded carry none: only their settings are
 * compared), OtherSettingsError naming every other setting that differs (runs from before the
 * interpolation choice record none: they made bilinear views). The task checks config.json with
 * it before any data is cached or step timed; pretrain() checks the checkpoint's own config.
 */
export function refuseOtherRun(
  saved: Partial<PretrainConfig>,
  now: Partial<PretrainConfig>,
  runDir: string,
): void {
  const ckptPath = join(runDir, "checkpoint.safetensors");
  const { dataset: savedData, ...savedRest } = saved;
  const { dataset: nowData, ...nowRest } = now;
  const savedCfg = { ...savedRest, rotateInterp: rotateInterpOf(savedRest) };
  const nowCfg = { ...nowRest, rotateInterp: rotateInterpOf(nowRest) };
  const dataDiff = savedData && nowData ? identityDifference(savedData, nowData) : null;
  if (dataDiff) {
    throw new OtherDataError(
      `${ckptPath} was trained on another dataset (${dataDiff})`,
      join(runDir, "config.json"),
    );
  }
  const differ = (Object.keys({ ...savedCfg, ...nowCfg }) as (keyof typeof nowCfg)[])
    .filter((k) => JSON.stringify(savedCfg[k]) !== JSON.stringify(nowCfg[k]));
  if (differ.length) {
    const show = (v: unknown) => JSON.stringify(v) ?? "none";
    throw new OtherSettingsError(
      `${ckptPath} was written with another configuration (${
        differ.map((k) => `${k}: saved ${show(savedCfg[k])}, now ${show(nowCfg[k])}`).join("; ")
      })`,
      join(runDir, "config.json"),
    );
  }
}

/**
 * A checkpoint's counters, checked before any of its tensors is loaded: `step` a whole number in
 * [0, totalSteps], `optimizerStep` a whole number ≥ 0, `ptr` a queue row in [0, queueSize), and
 * the recorded configuration this run's (refuseOtherRun). DamagedCheckpointError names the field.
 */
function checkResumeMeta(
  meta: Record<string, unknown>,
  ckptPath: string,
  runDir: string,
  cfg: PretrainConfig,
  totalSteps: number,
): void {
  const whole = (field: string, lo: number, hi: number, range: string) => {
    const v = meta[field];
    if (!Number.isSafeInteger(v) || (v as number) < lo || (v as number) > hi) {
      throw new DamagedCheckpointError(
        ckptPath,
        `meta.${field} is ${JSON.stringify(v) ?? "missing"}, not a whole number in ${range}`,
      );
    }
  };
  whole("step", 0, Number.MAX_SAFE_INTEGER, "[0, ∞)");
  whole("optimizerStep", 0, Number.MAX_SAFE_INTEGER, "[0, ∞)");
  whole("ptr", 0, Number.MAX_SAFE_INTEGER, "[0, ∞)");
  const config = meta.config ?? {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new DamagedCheckpointError(ckptPath, `meta.config is not a JSON object`);
  }
  // Another configuration (other epochs, queue size) is named as such before the ranges below.
  refuseOtherRun(config as PretrainConfig, cfg, runDir);
  whole("step", 0, totalSteps, `[0, ${totalSteps}] (this run's steps)`);
  const k = cfg.moco.queueSize;
  whole("ptr", 0, k - 1, `[0, ${k}) (the queue's rows)`);
}

/** Optional callbacks and overrides of a pretraining run. */
export interface PretrainHooks {
  /** Called after each step's metrics are written; throwing aborts (tests simulate a kill). */
  afterStep?: (step: number, loss: number) => void;
  /** Called after each checkpoint is saved; throwing aborts (tests simulate a kill there). */
  afterCheckpoint?: (step: number) => void;
  /**
   * Called once before the first step: the step the run starts from (a resumed run's checkpoint
   * step, else 0) and the run's total.
   */
  started?: (step: number, totalSteps: number) => void;
  /** Runs the monitor; returns named values to log (e.g. { knn_auc }). */
  monitor?: (moco: Moco, epoch: number) => Promise<Record<string, number>>;
  /** Why there is no monitor (logged, and written to metrics.jsonl as monitor_off). */
  monitorOff?: string;
  /** Progress lines (default console.log). */
  log?: (msg: string) => void;
  /** No progress bar. */
  quiet?: boolean;
  /** Backbone factory override (tests use a tiny network). */
  backbone?: (o: NetOptions) => ClassifierNet;
  /** Called after each step, before the next: the GPU tuner times what the step met (kernels/tuner.ts). */
  betweenSteps?: () => Promise<void>;
  /**
   * Read loss and accuracy every this many steps (default 1: each step). Between reads the
   * values wait on the GPU (train/step_scalars.ts); everything is read before a checkpoint, the
   * monitor and the end, and metrics.jsonl still has one line a step.
   */
  logEvery?: number;
  /** Make the two views on the GPU (source.onDevice) instead of source.twoViews on the host. */
  deviceViews?: DeviceViews | null;
}

/** What a pretraining run reports (also written to summary.json). */
export interface PretrainSummary {
  /** Steps of the whole run. */
  steps: number;
  /** Loss of the first step. */
  firstLoss: number;
  /** Loss of the last step. */
  lastLoss: number;
  /** Mean contrastive top-1 accuracy over the last epoch. */
  meanAccLastEpoch: number;
  /** Throughput over the run. */
  imgPerSec: number;
  /** Images a second the data pipeline made (host time making and uploading batches). */
  dataImgPerSec: number;
  /** The exported query backbone (torchvision names). */
  backbonePath: string;
  /** The last checkpoint. */
  checkpointPath: string;
  /** f16 runs: the final loss scale and the steps skipped for a non-finite gradient. */
  lossScale?: LossScaleStats;
}

/** Per-step generator: a pure function of (seed, step). */
export function stepRng(seed: number, step: number): Rng {
  return new Rng((seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0);
}

function epochOrder(seed: number, epoch: number, n: number): number[] {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x85ebca6b) ^ 0x5bd1e995) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * Pretrains MoCo on `source` into runDir (checkpoints, metrics, backbone export); with resume,
 * continues from its checkpoint bit for bit.
 */
export async function pretrain(
  B: Backend,
  ops: TrainOps,
  cfg: PretrainConfig,
  source: TwoViewSource,
  runDir: string,
  opts: { resume?: boolean } & PretrainHooks = {},
): Promise<PretrainSummary> {
  const log = opts.log ?? console.log;
  const n = source.count;
  const stepsPerEpoch = Math.floor(n / cfg.batchSize);
  if (stepsPerEpoch < 1) {
    throw new UserError(
      `${n} training images is fewer than one batch of ${cfg.batchSize}: pass a smaller --batch`,
    );
  }
  if (cfg.batchSize % cfg.moco.bnGroups !== 0) {
    throw new UserError(
      `batch ${cfg.batchSize} does not split into ${cfg.moco.bnGroups} BN sub-batches`,
    );
  }
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const ckptPath = join(runDir, "checkpoint.safetensors");
  await Deno.mkdir(runDir, { recursive: true });

  const moco = await Moco.create(B, ops, cfg.moco, cfg.seed, opts.backbone);
  if (cfg.init !== "random") {
    const report = await loadInitWeights(moco.encQ, cfg.init);
    log(`init: loaded ${report.loaded.length} tensors from ${cfg.init}`);
    await moco.copyQueryToKey();
  }
  const opt = new Optimizer(B, ops, moco.encQ.namedParameters(), cfg.optimizer, moco.scaler);
  const state = () => ({
    modules: { encoder_q: moco.encQ, encoder_k: moco.encK },
    tensors: Object.fromEntries([
      ["queue", moco.queue],
      ...opt.namedState().map(([k, t]) => [`optimizer.${k}`, t]),
      // f16: the loss scale and its counters (u32 words stored as f32 bits: found, good, skipped,
      // applied — Adam's step count under the scaler), for exact resume
      ...(moco.scaler
        ? [["loss_scale.scale", moco.scaler.amp.scale], ["loss_scale.flags", moco.scaler.amp.flags]]
        : []),
    ]),
  });

  let step = 0;
  if (opts.resume && await exists(ckptPath)) {
    // Checkpoints from before the applied-step count hold 3 flag words: Adam's count goes on from
    // the optimizer step they recorded (which counted skipped steps too).
    const meta = await loadCheckpoint(ckptPath, B, state(), {
      "loss_scale.flags": {
        from: [3],
        convert: (saved, m) => LossScaler.flagsOfOldCheckpoint(saved, m.optimizerStep as number),
      },
    }, (m) => checkResumeMeta(m, ckptPath, runDir, cfg, totalSteps));
    step = meta.step as number;
    moco.ptr = meta.ptr as number;
    opt.step = meta.optimizerStep as number;
    log(`resumed from ${ckptPath} at step ${step}/${totalSteps}`);
  } else if (opts.resume) {
    log(`no checkpoint in ${runDir}: starting from step 0`);
  }
  await writeJsonAtomic(join(runDir, "config.json"), cfg);
  const metricsPath = join(runDir, "metrics.jsonl");
  const metrics = await MetricsLog.open(metricsPath, step);
  // A resumed run's summary describes the whole run: the steps before it come from the log.
  const before = step > 0 ? lossHistory(await readMetrics(metricsPath), step) : lossHistory([], 0);
  if (cfg.monitorEvery > 0 && !opts.monitor) {
    const why = opts.monitorOff ?? "no labelled reference and validation sets were given";
    log(`kNN monitor off: ${why}`);
    metrics.write({ step, epoch: Math.floor(step / stepsPerEpoch), monitor_off: why });
  }
  opts.started?.(step, totalSteps);
  const progress = new Progress("pretrain");
  let lastGood = step;
  const lastGoodText = () =>
    lastGood > 0 ? `${ckptPath} (step ${lastGood})` : "none (no step had been saved)";
  const save = async () => {
    try {
      await saveCheckpoint(ckptPath, B, {
        ...state(),
        meta: { step, ptr: moco.ptr, optimizerStep: opt.step, config: cfg },
      });
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      throw new TrainingDivergedError(
        `training diverged: non-finite values in ${e.tensor} at step ${step}; stopped without ` +
          `saving them. The last good checkpoint is ${lastGoodText()}.`,
      );
    }
    lastGood = step;
  };

  const N = cfg.batchSize;
  const device = opts.deviceViews ?? null;
  let order: number[] = [], orderEpoch = -1;
  let { firstLoss, lastLoss } = before, imgs = 0, dataMs = 0;
  const accOf = (epoch: number) => ({
    ...(before.accByEpoch.get(epoch + 1) ?? { sum: 0, count: 0 }),
  });
  let { sum: accSum, count: accCount } = accOf(Math.floor(Math.max(0, step - 1) / stepsPerEpoch));
  let accEpoch = -1;

  /**
   * Step s's inputs on the device: its images, their two views (on the host and uploaded, or
   * made on the GPU from the uploaded uint8 images) and the key shuffle, all drawn from
   * stepRng(seed, s) — a pure function of s, so they can be made while step s − 1 runs.
   */
  const inputsOf = (s: number) => {
    const t = performance.now();
    const epoch = Math.floor(s / stepsPerEpoch), pos = s % stepsPerEpoch;
    if (epoch !== orderEpoch) {
      order = epochOrder(cfg.seed, epoch, n);
      orderEpoch = epoch;
    }
    const idx = order.slice(pos * N, (pos + 1) * N);
    const rng = stepRng(cfg.seed, s);
    const unshuffle = (perm: number[]) => {
      const inv = new Float32Array(N);
      perm.forEach((p, j) => (inv[p] = j));
      return B.fromArray(inv, [N]);
    };
    let out: BTensor[];
    if (device) {
      // Exactly the one draw source.twoViews makes (a batch seed), then the shuffle. Uploads
      // come before the augmentation's dispatches, which then go out with the step's commands
      // (an upload submits what is recorded).
      const seed = rng.nextU32();
      const perm = rng.shuffle(Array.from({ length: N }, (_, i) => i));
      const un = unshuffle(perm);
      const { xq, xk } = device.views(idx, seed, perm);
      out = [xq, xk, un];
    } else {
      const v = source.twoViews(idx, rng);
      const perm = rng.shuffle(Array.from({ length: N }, (_, i) => i));
      const plane = v.xk.data.length / N;
      const xkShuf = new Float32Array(N * plane);
      perm.forEach((p, j) => xkShuf.set(v.xk.data.subarray(p * plane, (p + 1) * plane), j * plane));
      out = [B.fromArray(v.xq.data, v.xq.shape), B.fromArray(xkShuf, v.xk.shape), unshuffle(perm)];
    }
    dataMs += performance.now() - t;
    return out;
  };
  const scalars = new StepScalars(B, opts.logEvery ?? 1, moco.scaler?.amp ?? null);
  /** Steps recorded whose loss is not read yet, oldest first. */
  const unread: { step: number; epoch: number; lr: number }[] = [];
  /** A step's values, once read: NaN guard, metrics line, progress, hook. */
  const record = (m: { step: number; epoch: number; lr: number }, v: StepValues) => {
    const { loss, amp } = v, acc = v.correct / N;
    if (!Number.isFinite(loss)) {
      throw new TrainingDivergedError(
        `loss became ${loss} at step ${m.step}; stopped without saving it. The last good ` +
          `checkpoint is ${lastGoodText()}.`,
        true,
        m.step === 1,
      );
    }
    if (m.epoch !== accEpoch) {
      ({ sum: accSum, count: accCount } = accOf(m.epoch - 1));
      accEpoch = m.epoch;
    }
    if (Number.isNaN(firstLoss)) firstLoss = loss;
    lastLoss = loss;
    accSum += acc;
    accCount++;
    imgs += N;
    const now = performance.now(), sec = (now - t0) / 1000;
    const imgPerSec = imgs / sec, dataImgPerSec = imgs / Math.max(1e-9, dataMs / 1000);
    const stepImgPerSec = imgs / Math.max(1e-9, (now - t0 - pauseMs) / 1000);
    metrics.write({
      step: m.step,
      epoch: m.epoch,
      loss,
      acc,
      lr: m.lr,
      img_s: imgPerSec,
      step_img_s: stepImgPerSec,
      data_img_s: dataImgPerSec,
      ...(amp ? { loss_scale: amp.scale, skipped_steps: amp.skipped } : {}),
    });
    if (!opts.quiet) {
      progress.update({
        step: m.step,
        totalSteps,
        epoch: m.epoch,
        loss,
        acc,
        lr: m.lr,
        imgPerSec: stepImgPerSec,
        extra: `(data ${dataImgPerSec.toFixed(0)} img/s${
          amp ? `; loss scale ${amp.scale}, ${amp.skipped} skipped` : ""
        })`,
      });
    }
    opts.afterStep?.(m.step, loss);
  };

  const t0 = performance.now();
  /**
   * Ms of the run spent beside the steps: checkpoints, the kNN monitor and whatever betweenSteps
   * does (kernel tuning on a GPU's first run). The progress line's img/s and `step_img_s` leave it
   * out, so they show the pace a longer run converges to per step; `img_s` keeps it in.
   */
  let pauseMs = 0;
  let next = step < totalSteps ? inputsOf(step) : null;
  try {
    while (step < totalSteps) {
      const epoch = Math.floor(step / stepsPerEpoch), pos = step % stepsPerEpoch;
      const lr = learningRate(cfg.lr, cfg.schedule, epoch + pos / stepsPerEpoch);
      const [xq, xk, un] = next!;
      next = null;
      const r = moco.step(xq, xk, un);
      opt.update(lr);
      // Released now, reused by the next upload: the queue orders its writes after these reads.
      for (const t of [xq, xk, un]) B.dispose(t);
      scalars.push(r.loss, r.correct);
      B.flush();
      step++;
      unread.push({ step, epoch: epoch + 1, lr });
      // The next batch is made and uploaded while this step runs.
      if (step < totalSteps) next = inputsOf(step);
      const epochEnd = step % stepsPerEpoch === 0;
      const saveNow = step % cfg.ckptEvery === 0 || epochEnd;
      const monitorNow = epochEnd && !!opts.monitor && cfg.monitorEvery > 0 &&
        (epoch + 1) % cfg.monitorEvery === 0;
      // Everything is read before a checkpoint: a NaN stops the run before it is saved.
      for (const v of await scalars.collect(saveNow || monitorNow || step === totalSteps)) {
        record(unread.shift()!, v);
      }
      const b0 = performance.now();
      await opts.betweenSteps?.();
      pauseMs += performance.now() - b0;
      // The monitor runs before the epoch-end checkpoint, so a run killed right after the save
      // keeps the epoch's kNN AUC (a resume never reruns it). It changes nothing the checkpoint
      // holds: the features are taken in eval mode (no BN running-stat update, no tape) and
      // the key encoder, queue and optimizer are not touched.
      if (monitorNow) {
        const m0 = performance.now();
        const m = await opts.monitor!(moco, epoch + 1);
        const monitorS = (performance.now() - m0) / 1000;
        pauseMs += monitorS * 1000;
        metrics.write({ step, epoch: epoch + 1, ...m, monitor_s: monitorS });
        progress.log(
          `epoch ${epoch + 1}: ${
            Object.entries(m).map(([k, x]) => `${k} ${x.toFixed(4)}`).join(" ")
          } (kNN monitor ${monitorS.toFixed(1)} s)`,
        );
      }
      if (saveNow) {
        const c0 = performance.now();
        await save();
        const checkpointS = (performance.now() - c0) / 1000;
        pauseMs += checkpointS * 1000;
        // what an epoch's end costs beside the steps, so a run shows which one to make rarer
        if (monitorNow) metrics.write({ step, epoch: epoch + 1, checkpoint_s: checkpointS });
        opts.afterCheckpoint?.(step);
      }
    }
  } finally {
    for (const t of next ?? []) B.dispose(t);
    scalars.dispose();
    metrics.close();
    if (!opts.quiet) progress.done();
  }
  if (imgs > 0) {
    // Host time making batches (with GPU views: the uploads and parameters; the kernel itself
    // runs in the step's command buffer, see `deno task bench --only data`).
    const sec = (performance.now() - t0) / 1000, share = dataMs / 1000 / sec;
    log(
      `throughput: the run ${(imgs / sec).toFixed(1)} img/s (its steps ${
        (imgs / Math.max(1e-9, sec - pauseMs / 1000)).toFixed(1)
      } img/s; ${
        (pauseMs / 1000).toFixed(1)
      } s in checkpoints, the kNN monitor and kernel tuning), its data pipeline ` +
        `${(imgs / (dataMs / 1000)).toFixed(0)} img/s (${device ? "GPU" : "host"} augmentation, ${
          (100 * share).toFixed(0)
        }% of the run's time): the ${share > 0.5 ? "data pipeline" : "step"} limits this run`,
    );
  }
  const backbonePath = join(runDir, "backbone.safetensors");
  await exportBackbone(moco.encQ, backbonePath, { source: "moco-pretrain", steps: String(step) });
  const summary: PretrainSummary = {
    steps: step,
    firstLoss,
    lastLoss,
    meanAccLastEpoch: accCount ? accSum / accCount : NaN,
    imgPerSec: imgs / ((performance.now() - t0) / 1000),
    dataImgPerSec: dataMs > 0 ? imgs / (dataMs / 1000) : 0,
    backbonePath,
    checkpointPath: ckptPath,
    ...(moco.scaler ? { lossScale: await moco.scaler.read() } : {}),
  };
  await writeJsonAtomic(join(runDir, "summary.json"), summary);
  opt.dispose();
  moco.dispose();
  return summary;
}
