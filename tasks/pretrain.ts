/**
 * deno task pretrain — MoCo-CXR pretraining.
 *
 * With no flags: the built-in synthetic radiographs, a configuration sized for
 * a 2-core machine without a GPU (see HELP). With --data: a real dataset.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import { UserError } from "../util/user_error.ts";
import { exists, readTextOrNull, writeJsonAtomic } from "../util/fs.ts";
import { checkPrecision, openTuner, presetLine } from "../cli/run_setup.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import {
  pretrain,
  type PretrainConfig,
  refuseOtherRun,
  rotateInterpOf,
} from "../train/pretrain.ts";
import {
  type InterruptHooks,
  interruptScope,
  pretrainInterruptLine,
  type PretrainProgress,
  PROCESS_INTERRUPT,
} from "../cli/interrupt.ts";
import {
  checkBatchFits,
  maxBadFrom,
  presetFrom,
  PRETRAIN_OPTIONS,
  PRETRAIN_RUN_OPTIONS,
  pretrainConfigFrom,
  pretrainRunFrom,
  ROTATE_OPTIONS,
  viewsOnGpu,
} from "../cli/pretrain_flags.ts";
import {
  DATA_LABEL_OPTIONS,
  dataLabelFlagsFrom,
  dataLabelHelp,
  openTrainingData,
} from "../cli/open_data.ts";
import { knnMonitor } from "../train/monitor.ts";
import {
  estimatePretrain,
  formatPlan,
  scaleTimings,
  timeForward,
  timeMocoStep,
  type Timings,
} from "../train/plan.ts";
import { buildBackbone } from "../train/backbones.ts";
import { Rng } from "../util/rng.ts";

const HELP = `deno task pretrain [flags]   MoCo v2 pretraining (MoCo-CXR)

Data
  --data DIR            dataset root (CheXpert, Shenzhen, folder-per-class or CSV).
                        Default: the built-in synthetic radiographs (generated once into
                        runs/synthetic).
  --kind K              chexpert | shenzhen | folder | csv (default: detected)
  --task NAME           label used by the monitor (default: Pleural Effusion)
  --augment A           mococxr (MoCo-CXR's crop, flip, ±10° rotation; default) or strong
                        (adds a 30-100% random resized crop and contrast/brightness jitter)
  --rotate-interp I     nearest (default: torchvision RandomRotation's, MoCo-CXR's; views keep the
                        stored pixels' sharpness) or bilinear (every run before this flag). With
                        strong it also scales the resized crop (one resampling pass). A run
                        recorded without it resumes only with --rotate-interp bilinear
  --size PX             training crop (default 32, sized for a 2-core CPU; 64-128 on a GPU;
                        MoCo-CXR used 224-320)
${dataLabelHelp()}
Model
  --backbone B          resnet18 | resnet34 | resnet50 | densenet121 (default resnet18)
  --in-channels 1|3     stem input channels (default 1: gray images, the RGB stem's kernels
                        summed, so it still loads torchvision weights)
  --init random|FILE    start from random weights or a torchvision safetensors file
  --precision f32|f16   f16: the backbones store activations and weight casts as f16 and
                        compute in f32 (f32 master weights, heads and loss; dynamic loss
                        scaling, skipped steps logged). Needs the adapter's shader-f16.
                        Default f32 (experiment: its pretraining; fine-tuning stays f32)
MoCo
  --queue K             negatives in the queue (default 1024 for the small default data;
                        MoCo-CXR's code used 24576, MoCo v2 65536)
  --momentum M          key-encoder EMA momentum (default 0.99: a time constant of ~100 steps
                        learns within a few thousand steps, where 0.999 (~1,000) barely starts;
                        use 0.999 for the paper's long runs)
  --temperature T       softmax temperature (default 0.2)
  --split-bn N          BN sub-batch size for shuffled split BN (default 16; 0 = off)
  --dim D               output feature size (default 128)
Optimisation
  --optimizer adam|sgd  adam: MoCo-CXR (lr 1e-4, wd 1e-4, x0.1 step decay at --milestones);
                        sgd: MoCo v2 (lr 0.03 at batch 256, scaled by --batch; momentum 0.9,
                        cosine decay). Default adam: Adam at 1e-4 moves the loss within the
                        first hundred steps.
  --lr LR               default 1e-4 (adam) or 0.03 x batch / 256 (sgd: MoCo v2's 0.03 at batch
                        256, linearly scaled as facebookresearch/moco advises; 0.00375 at 32)
  --weight-decay W      default 1e-4
  --milestones E,E|none epochs at which adam's lr is multiplied by 0.1 (default 12,18,24:
                        MoCo-CXR's --schedule, so runs of 12 epochs or fewer never decay; the
                        20-epoch presets decay at 12 and 18); none: a constant lr, as runs made
                        before this default recorded (resume those with --milestones none)
  --batch N             default 32 (two BN sub-batches of 16)
  --epochs N            default 2 (about 6 minutes on a 2-core CPU with lavapipe; on the
                        synthetic set the kNN monitor peaks within the first epochs)
  --seed S              default 0
Run
  --out DIR             run folder (default runs/pretrain)
  --resume              continue the run in --out from its last checkpoint, exactly
  --ckpt-every N        checkpoint every N steps (default 50) and at each epoch's end
  --monitor-every N     kNN AUC on the labelled validation split every N epochs (default 1; 0 off)
  --augment-on WHERE    auto | cpu | gpu: make the two views on the host (TypeScript) or on the
                        GPU (uint8 images uploaded, kernels/augment.ts); auto (default): the GPU
                        on hardware adapters, the host on software ones (lavapipe)
  --log-every N         read loss and accuracy every N steps (default 1), each read while the
                        next steps run, so the GPU never idles for a readback; metrics.jsonl
                        still has one line a step, and everything is read before each checkpoint
  --tune-cache PATH     kernel tuning choices for this adapter (default runs/tune-cache.json);
                        hardware GPUs time each kernel shape once, software adapters skip it
  --max-bad F           tolerated share of unreadable images, 0-1 (default 0.05, as prepare)
  --preset P            cpu-demo (the default on every adapter: the sizes above), gpu (128 px,
                        batch 64, 20 epochs, queue 4096) or paper (MoCo-CXR: 224 px, batch 24,
                        20 epochs, queue 24576, momentum 0.999, 3 channels); flags given
                        explicitly still win. Nothing is chosen by adapter: the plan printed
                        before the first step says which preset ran
  --dry-run             print the plan (images, steps, a wall-time estimate from a few timed
                        steps on this adapter, and the same at --preset paper) and exit

Permissions (deno.json's "pretrain" line): reads anywhere (--allow-read), so --data may be any
folder; writes only runs/ (--allow-write=runs), so --out must lie under runs/ unless its folder
is added to --allow-write; environment variables; no network, no subprocesses. README's
"Sandboxing" shows how to narrow --allow-read to the repository and the data.`;

/**
 * Runs the task on its arguments (errors: see cli/run_main.ts runMain); `interrupt`: where a
 * Ctrl-C's line goes (tests pass their own).
 */
export async function main(
  args: string[],
  interrupt: InterruptHooks = PROCESS_INTERRUPT,
): Promise<void> {
  const { values: f } = parseArgs({
    args,
    options: {
      ...PRETRAIN_OPTIONS,
      ...ROTATE_OPTIONS,
      ...PRETRAIN_RUN_OPTIONS,
      ...DATA_LABEL_OPTIONS,
      "tune-cache": { type: "string" },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) return console.log(HELP);
  const flagsCfg = pretrainConfigFrom(f);
  const maxBad = maxBadFrom(f);
  const run = pretrainRunFrom(f);
  const labelFlags = dataLabelFlagsFrom(f);
  const { batchSize, epochs } = flagsCfg;
  const out = f.out ?? "runs/pretrain";
  await requireWrite(out);
  const resuming = await exists(join(out, "checkpoint.safetensors"));
  if (!f.resume && resuming) {
    throw new UserError(
      `${out} already holds a pretraining run. Pass --resume to continue it, or --out NEW_DIR.`,
    );
  }
  // Ctrl-C from here on: one line saying where it stopped and how a rerun goes on.
  const at: PretrainProgress = {
    began: false,
    resuming,
    step: 0,
    totalSteps: 0,
    checkpointStep: null,
  };
  using _interrupt = interruptScope(() => pretrainInterruptLine(at), interrupt);
  // A resume with other settings or data is refused as pretrain() would, but before the data is
  // cached and steps are timed: the settings now, the data once it is listed.
  const saved = f.resume && resuming ? await savedConfig(out) : null;
  if (saved) refuseOtherRun(runSettings(saved), runSettings(flagsCfg), out);
  // The data first: a wrong --data is reported before the GPU is set up.
  const data = await openTrainingData({
    beforeCache: saved?.dataset
      ? (identity) => refuseOtherRun({ dataset: saved.dataset }, { dataset: identity }, out)
      : undefined,
    data: f.data,
    kind: f.kind,
    task: f.task,
    imageSize: flagsCfg.imageSize,
    inChannels: flagsCfg.moco.inChannels,
    augment: flagsCfg.augment,
    rotateInterp: flagsCfg.rotateInterp,
    seed: flagsCfg.seed,
    maxBad,
    log: console.log,
    ...labelFlags,
  });
  checkBatchFits(flagsCfg, data.train.count);
  const cfg = {
    ...flagsCfg,
    dataset: data.identity,
    ...(data.testLeftOut ? { testLeftOut: data.testLeftOut } : {}),
  };
  if (data.testLeftOut) {
    console.log(
      `pretraining leaves out ${data.testLeftOut} training-split image(s) of the patients ` +
        `fine-tuning tests on (train/splits.ts)`,
    );
  }
  if (f.resume) {
    // A finished run resumed with its own settings has nothing left: say so before the GPU is set
    // up and the plan's steps are timed (other settings go on to pretrain's clear refusal).
    const done = await finishedRun(out, cfg, epochs * Math.floor(data.train.count / batchSize));
    if (done) return console.log(done);
  }
  if (data.monitor && cfg.monitorEvery > 0) console.log(data.monitorNote);
  const gpu = await getGpu();
  checkPrecision(gpu, cfg.moco.precision);
  const { hooks: tuning } = await openTuner(gpu, f["tune-cache"]);
  console.log(
    `data: ${data.describe}; ${cfg.moco.backbone} at ${cfg.imageSize} px, batch ${batchSize}, ` +
      `${epochs} epochs, ${cfg.moco.precision ?? "f32"} storage -> ${out}`,
  );
  const B = gpuBackend(gpu);
  const onGpu = viewsOnGpu(run, gpu);
  console.log(
    `augmentation on the ${onGpu ? "GPU (uint8 images uploaded)" : "host"}; loss and accuracy ` +
      `read every ${run.logEvery} step${run.logEvery > 1 ? "s" : ""}`,
  );
  // The plan: a few timed steps of this configuration, and the same data at --preset paper.
  const preset = presetFrom(f);
  console.log(presetLine(preset, !!f.preset, gpu));
  console.log("timing a few steps of this configuration on this adapter…");
  // On a GPU the tuner times what the untimed first step met, so the plan is of tuned kernels.
  const settle = tuning.betweenSteps;
  const timed = await timeMocoStep(B, gpuTrainOps, cfg, data.train, { ckptDir: out, settle });
  const mocoStep = timed.step;
  const net = buildBackbone(B, cfg.moco.backbone, {
    inChannels: cfg.moco.inChannels,
    seed: new Rng(1),
  });
  const monitorImages = data.monitor && cfg.monitorEvery > 0
    ? data.monitor.reference.count + data.monitor.validation.count
    : 0;
  const forward = data.monitor ? await timeForward(B, net, data.monitor.reference, settle) : 0;
  net.dispose();
  const t: Timings = {
    adapter: gpu.describe(),
    imageSize: cfg.imageSize,
    batch: batchSize,
    ftBatch: 1,
    mocoStep,
    ftStep: 0,
    ftCell: 0,
    forward,
    probe: [],
    checkpoint: timed.checkpoint,
  };
  const plan = estimatePretrain(cfg, data.train.count, monitorImages, t);
  for (
    const line of formatPlan(
      `plan: ${data.train.count} images, ${epochs} epochs of ${
        Math.floor(data.train.count / batchSize)
      } steps (batch ${batchSize}, ${cfg.imageSize} px)${
        f.resume ? "; a resumed run has fewer left" : ""
      }; timed MoCo step ${mocoStep.toFixed(2)} s on this adapter`,
      [{ name: "pretraining", plan }],
    )
  ) console.log(line);
  if (preset !== "paper") {
    const paper = pretrainConfigFrom({ preset: "paper" });
    const scaled = scaleTimings(t, {
      imageSize: paper.imageSize,
      batch: paper.batchSize,
      ftBatch: 1,
    });
    for (
      const line of formatPlan(
        `  the same data at --preset paper (${paper.epochs} epochs at ${paper.imageSize} px, ` +
          `batch ${paper.batchSize}): these timings scaled by images x pixels per step, not timed`,
        [{
          name: "  pretraining",
          plan: estimatePretrain(paper, data.train.count, monitorImages, scaled),
        }],
      )
    ) console.log(line);
  }
  if (f["dry-run"]) return;
  const t0 = performance.now();
  const s = await pretrain(B, gpuTrainOps, cfg, data.train, out, {
    resume: f.resume,
    logEvery: run.logEvery,
    deviceViews: onGpu ? data.train.onDevice?.(gpu) : null,
    betweenSteps: tuning.betweenSteps,
    monitor: data.monitor ? (moco) => knnMonitor(B, moco.encQ, data.monitor!) : undefined,
    monitorOff: data.monitor ? undefined : data.monitorNote,
    started: (step, totalSteps) =>
      Object.assign(at, {
        began: true,
        step,
        totalSteps,
        checkpointStep: step > 0 ? step : null,
      }),
    afterStep: (step) => (at.step = step),
    afterCheckpoint: (step) => (at.checkpointStep = step),
  });
  // the same record as a fine-tuning run's or an experiment's run.json holds as `kernels`
  await writeJsonAtomic(join(out, "kernels.json"), {
    adapter: gpu.describe(),
    ...tuning.kernels(),
  });
  console.log(
    `done: ${s.steps} steps, loss ${s.firstLoss.toFixed(3)} -> ${s.lastLoss.toFixed(3)}, ` +
      `contrastive top-1 ${(100 * s.meanAccLastEpoch).toFixed(1)}% (last epoch), ` +
      `${
        s.imgPerSec.toFixed(1)
      } img/s\n  backbone: ${s.backbonePath}\n  checkpoint: ${s.checkpointPath}` +
      `\n  metrics: ${join(out, "metrics.jsonl")}` +
      `\n  GPU memory: ${(gpu.stats.bytesAllocated / 2 ** 30).toFixed(2)} GiB in the buffer pool ` +
      `at its peak` +
      `\n  took ${((performance.now() - t0) / 60000).toFixed(1)} min (the plan estimated ` +
      `${(plan.seconds / 60).toFixed(1)} min)`,
  );
}

if (import.meta.main) runMain(() => main(Deno.args));

/** A run's settings alone: its config less what the data decides (compared once data is read). */
function runSettings(c: Partial<PretrainConfig>): Partial<PretrainConfig> {
  const { dataset: _d, testLeftOut: _t, ...rest } = c;
  return rest;
}

/** The config.json of the run in `out`, or null when it is missing or unreadable. */
async function savedConfig(out: string): Promise<Partial<PretrainConfig> | null> {
  const text = await readTextOrNull(join(out, "config.json"));
  if (text === null) return null;
  try {
    const c = JSON.parse(text);
    return c && typeof c === "object" ? c : null;
  } catch {
    return null; // pretrain()'s own checks read the checkpoint's copy
  }
}

/**
 * A config as comparable JSON: its fields in name order, rotateInterp filled in as a resume reads
 * it (bilinear where a run from before --rotate-interp records none).
 */
function settingsKey(c: Record<string, unknown>): string {
  const all: Record<string, unknown> = { ...c, rotateInterp: rotateInterpOf(c) };
  return JSON.stringify(Object.fromEntries(Object.keys(all).sort().map((k) => [k, all[k]])));
}

/**
 * The line to print when `out` holds a run that finished all `totalSteps` with these settings
 * (its config.json equals `cfg`, its summary.json counts the steps), else null.
 */
async function finishedRun(
  out: string,
  cfg: Record<string, unknown>,
  totalSteps: number,
): Promise<string | null> {
  const [config, summary] = await Promise.all(
    ["config.json", "summary.json"].map((f) => readTextOrNull(join(out, f))),
  );
  if (config === null || summary === null) return null;
  try {
    const steps = JSON.parse(summary).steps;
    if (settingsKey(JSON.parse(config)) !== settingsKey(cfg)) return null;
    if (!(Number.isInteger(steps) && steps >= totalSteps)) return null;
    return `nothing left to train: ${out} finished all ${steps} steps with these settings ` +
      `(its backbone: ${join(out, "backbone.safetensors")})`;
  } catch {
    return null; // unreadable summary or config: pretrain's own checks report the run
  }
}
