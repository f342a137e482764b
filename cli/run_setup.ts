/** What the training commands print and set up alike once the GPU is open. */
import type { Gpu } from "../kernels/device.ts";
import { type Tuner, tunerOf } from "../kernels/tuner.ts";
import type { Preset } from "./pretrain_flags.ts";
import { UserError } from "../util/user_error.ts";
import { requireWriteFile } from "./run_main.ts";

/** --precision f16 on an adapter without shader-f16 is an error the user can fix. */
export function checkPrecision(gpu: Gpu, precision: "f32" | "f16" | undefined): void {
  if (precision === "f16" && !gpu.hasF16) {
    throw new UserError(
      `--precision f16 needs the adapter's shader-f16 feature, which ${gpu.describe()} does not ` +
        `offer; use --precision f32 (the default)`,
    );
  }
}

/** Where kernel tuning choices persist unless --tune-cache says otherwise. */
export const DEFAULT_TUNE_CACHE = "runs/tune-cache.json";

/** What a training command does with the tuner: settle it between steps, and say what ran. */
export interface TunerHooks {
  /** Times what the steps so far met (hardware adapters; nothing pending: nothing done). */
  betweenSteps: () => Promise<void>;
  /** The run's record: tuning mode, cache, the kernel each tuned shape ran, the pool's peak. */
  kernels: () => Record<string, unknown>;
}

/**
 * The adapter's kernel tuner with its cache loaded (hardware adapters), the cache's path, and the
 * hooks every training command gives its loop (runExperiment's plan options, pretrain's).
 */
export async function openTuner(
  gpu: Gpu,
  flag: string | boolean | undefined,
): Promise<{ tuner: Tuner; cache: string; hooks: TunerHooks }> {
  const cache = typeof flag === "string" ? flag : DEFAULT_TUNE_CACHE;
  const tuner = tunerOf(gpu);
  // a GPU writes its timings after the first step: a path it may not write is said now, not then
  if (tuner.mode === "measure") await requireWriteFile(cache, "--tune-cache");
  if (tuner.mode !== "off") {
    await tuner.load(cache);
    tuner.persistTo(cache); // saved after every shape timed: a run stopped while tuning keeps it
  }
  console.log(`adapter: ${gpu.describe()}; kernel tuning: ${tuner.mode}`);
  const hooks: TunerHooks = {
    betweenSteps: () => tuner.settle(console.log),
    kernels: () => ({
      tuning: tuner.mode,
      cache,
      used: tuner.summary(),
      gpuPoolBytes: gpu.stats.bytesAllocated, // the buffer pool's peak (it keeps what it makes)
    }),
  };
  return { tuner, cache, hooks };
}

/** "preset: …" with why it is the one in use (never chosen by the adapter). */
export function presetLine(preset: Preset, explicit: boolean, gpu: Gpu): string {
  return `preset: ${preset}${
    explicit ? " (--preset)" : " (the default on every adapter; nothing is chosen by adapter)"
  }${
    preset === "cpu-demo" && !gpu.isSoftware
      ? "; this is a hardware adapter: --preset gpu or paper use it fully (see --help)"
      : ""
  }`;
}
