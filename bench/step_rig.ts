/**
 * What the step benchmarks that drive one ResNet-18 MoCo step by hand share (bench/step_overlap.ts,
 * bench/step_timeline.ts): their flags, a tuned model, and the step's inputs uploaded, recorded and
 * dropped the way a training loop does.
 *
 *   --size 224 --batch 64 --steps N --precision f32|f16 --tune-cache PATH
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import type { Backend, BTensor } from "../model/backend.ts";
import type { Moco } from "../train/moco.ts";
import type { Optimizer } from "../train/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { benchMoco, loadTuneCache, randomStepInputs } from "./moco_step.ts";

export type StepInputs = ReturnType<typeof randomStepInputs>;
/** A step's inputs on the device. */
export interface Uploaded {
  xq: BTensor;
  xk: BTensor;
  un: BTensor;
}

export interface StepRig {
  gpu: Gpu;
  B: Backend;
  moco: Moco;
  opt: Optimizer;
  /** Image size, batch, steps to run and storage precision, from the flags. */
  S: number;
  N: number;
  steps: number;
  precision: "f32" | "f16";
  rng: Rng;
  /** Fresh random host inputs of one step (what the loader would provide). */
  inputs: () => StepInputs;
  upload: (h: StepInputs) => Uploaded;
  /** Records one step on uploaded inputs; returns the loss (the caller reads or drops it). */
  record: (u: Uploaded) => BTensor;
  drop: (u: Uploaded) => void;
  dispose: () => void;
}

/**
 * Parses the flags (exit 2 with a one-line message on a bad one), opens the adapter, loads the
 * tuning cache, builds the model and runs three warm-up steps (compiling every pipeline, timing the
 * tuner's candidates on hardware after the first, settling the pool and the bind groups).
 */
export async function stepRig(defaultSteps: number): Promise<StepRig> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "224" },
      batch: { type: "string", default: "64" },
      steps: { type: "string", default: String(defaultSteps) },
      precision: { type: "string", default: "f32" },
      "tune-cache": { type: "string" },
    },
  });
  const S = Number(values.size), N = Number(values.batch), steps = Number(values.steps);
  for (const [flag, v] of [["size", S], ["batch", N], ["steps", steps]] as const) {
    if (!Number.isInteger(v) || v < 2) {
      console.error(`--${flag}: expected an integer >= 2`);
      Deno.exit(2);
    }
  }
  const precision = values.precision;
  if (precision !== "f32" && precision !== "f16") {
    console.error(`--precision: f32 or f16, got ${precision}`);
    Deno.exit(2);
  }
  const gpu = await getGpu();
  if (values["tune-cache"]) await loadTuneCache(gpu, values["tune-cache"]);
  const B = gpuBackend(gpu);
  const { moco, opt } = await benchMoco(B, { precision });
  const rng = new Rng(S);
  const upload = (h: StepInputs): Uploaded => ({
    xq: B.fromArray(h.xq, [N, 1, S, S]),
    xk: B.fromArray(h.xk, [N, 1, S, S]),
    un: B.fromArray(h.inv, [N]),
  });
  const record = (u: Uploaded) => {
    const r = moco.step(u.xq, u.xk, u.un);
    opt.update(0.03);
    B.dispose(r.correct);
    return r.loss;
  };
  const drop = (u: Uploaded) => [u.xq, u.xk, u.un].forEach((t) => B.dispose(t));
  const inputs = () => randomStepInputs(rng, N, S);
  for (let s = 0; s < 3; s++) {
    if (s === 1 && tunerOf(gpu).pendingCount > 0) await tunerOf(gpu).tunePending();
    const u = upload(inputs());
    const loss = record(u);
    const v = (await B.read(loss))[0];
    B.dispose(loss);
    drop(u);
    if (!Number.isFinite(v)) throw new Error(`warm-up step ${s}: loss ${v}`);
  }
  return {
    gpu,
    B,
    moco,
    opt,
    S,
    N,
    steps,
    precision,
    rng,
    inputs,
    upload,
    record,
    drop,
    dispose: () => {
      opt.dispose();
      moco.dispose();
    },
  };
}
