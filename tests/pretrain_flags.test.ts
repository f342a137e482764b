/**
 * The pretraining flags' optimisation defaults: Adam's step schedule is MoCo-CXR's (main_moco.py
 * `--schedule` default [12, 18, 24], ×0.1 at each) at every preset, which leaves the short default
 * runs' learning rate as it was; `--milestones none` is the constant rate runs made before that
 * default recorded, and such a run resumed under the new default is refused, naming the schedule;
 * SGD's default rate is MoCo v2's 0.03 scaled linearly from batch 256. --rotate-interp: nearest
 * by default (MoCo-CXR's), recorded; a run recorded before it (no field) resumes as bilinear only.
 */
import { gpuBackend } from "../model/backend_gpu.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { join } from "node:path";
import { pretrain, type PretrainConfig, rotateInterpOf } from "../train/pretrain.ts";
import { learningRate } from "../train/schedule.ts";
import { OtherSettingsError } from "../train/run_errors.ts";
import { UserError } from "../util/user_error.ts";
import { MOCO_CXR_MILESTONES, PRESETS, pretrainConfigFrom, sgdLr } from "../cli/pretrain_flags.ts";
import { experimentConfigFrom } from "../tasks/experiment.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { TinyNet, tinyPretrainConfig } from "./tiny_net.ts";
import { discSource } from "./image_source.ts";

const MOCO_CXR = { kind: "step", milestones: [12, 18, 24], gamma: 0.1 };

Deno.test("Adam's schedule: MoCo-CXR's x0.1 at epochs 12, 18, 24 at every preset (pretrain, experiment)", () => {
  assertEquals([...MOCO_CXR_MILESTONES], [12, 18, 24]);
  for (const preset of PRESETS) {
    const c = pretrainConfigFrom({ preset });
    assertEquals([c.optimizer.kind, c.lr, c.schedule], ["adam", 1e-4, MOCO_CXR], preset);
    assertEquals(experimentConfigFrom({ preset }).pretrain.schedule, MOCO_CXR, preset);
  }
  // paper's 20 epochs: 1e-4, then 1e-5 from epoch 12, 1e-6 from 18
  const paper = pretrainConfigFrom({ preset: "paper" });
  const at = (e: number) => learningRate(paper.lr, paper.schedule, e);
  assertEquals([at(0), at(11.99)], [1e-4, 1e-4]);
  assertClose([at(12), at(17.99), at(18), at(19.99)], [1e-5, 1e-5, 1e-6, 1e-6], {
    rtol: 1e-12,
    atol: 0,
  });
});

Deno.test("--milestones: a list of epochs, or none (a constant lr); a bad item is one line", () => {
  assertEquals(pretrainConfigFrom({ milestones: "none" }).schedule, {
    ...MOCO_CXR,
    milestones: [],
  });
  assertEquals(pretrainConfigFrom({ milestones: " none " }).schedule.kind, "step");
  assertEquals(pretrainConfigFrom({ milestones: "5,10" }).schedule, {
    ...MOCO_CXR,
    milestones: [5, 10],
  });
  for (const bad of ["0", "", "none,5", "x"]) {
    assertThrows(() => pretrainConfigFrom({ milestones: bad }), UserError, "--milestones");
  }
  // SGD's cosine schedule has no milestones
  assertEquals(pretrainConfigFrom({ optimizer: "sgd" }).schedule, { kind: "cosine", epochs: 2 });
});

Deno.test("the default runs (pretrain's and experiment's 2 epochs) keep their lr at every step", () => {
  for (const c of [pretrainConfigFrom({}), experimentConfigFrom({}).pretrain]) {
    assertEquals([c.epochs, c.lr], [2, 1e-4]);
    // the schedule before MoCo-CXR's milestones became the default: none
    const before = { kind: "step" as const, milestones: [], gamma: 0.1 };
    for (let e = 0; e < c.epochs; e += 1 / 64) {
      const lr = learningRate(c.lr, c.schedule, e);
      assert(Object.is(lr, learningRate(c.lr, before, e)) && lr === 1e-4, `epoch ${e}: ${lr}`);
    }
  }
});

Deno.test("--optimizer sgd: lr 0.03 x batch / 256 by default (MoCo v2's linear scaling)", () => {
  const lr = (f: Record<string, string>) => pretrainConfigFrom({ optimizer: "sgd", ...f }).lr;
  assertEquals(lr({ batch: "256", "split-bn": "16" }), 0.03);
  assertEquals(lr({ batch: "128", "split-bn": "16" }), 0.015); // facebookresearch/moco's README
  assertClose([lr({}), lr({ preset: "paper" })], [0.00375, 0.0028125], { rtol: 1e-12, atol: 0 });
  assertEquals(lr({}), sgdLr(32));
  assertEquals(lr({ lr: "0.1" }), 0.1); // an explicit --lr wins
  // Adam's rate does not scale with the batch
  assertEquals(pretrainConfigFrom({ batch: "256", "split-bn": "16" }).lr, 1e-4);
});

Deno.test("a run recorded without milestones is refused under the new default, naming the schedule; --milestones none resumes it", async () => {
  const B = gpuBackend(gpu);
  const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };
  const withSchedule = (f: Record<string, string>) => ({
    ...tinyPretrainConfig(1),
    schedule: pretrainConfigFrom(f).schedule,
  });
  const dir = await Deno.makeTempDir();
  try {
    // What the default recorded before: no milestones.
    const old = withSchedule({ milestones: "none" });
    assertEquals(old.schedule, { kind: "step", milestones: [], gamma: 0.1 });
    await pretrain(B, gpuTrainOps, old, discSource(32), dir, opts);
    let e: unknown = null;
    try {
      await pretrain(B, gpuTrainOps, withSchedule({}), discSource(32), dir, {
        ...opts,
        resume: true,
      });
    } catch (x) {
      e = x;
    }
    assert(e instanceof OtherSettingsError, `not refused: ${e}`);
    assert(
      e.message.includes(
        'schedule: saved {"kind":"step","milestones":[],"gamma":0.1}, now ' +
          '{"kind":"step","milestones":[12,18,24],"gamma":0.1}',
      ),
      e.message,
    );
    // The run's own schedule, given as a flag, resumes it (finished: nothing left to do).
    const s = await pretrain(
      B,
      gpuTrainOps,
      withSchedule({ milestones: "none" }),
      discSource(32),
      dir,
      {
        ...opts,
        resume: true,
      },
    );
    assertEquals(s.steps, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--rotate-interp: nearest by default (pretrain and experiment), bilinear on request, else one line", () => {
  assertEquals(pretrainConfigFrom({}).rotateInterp, "nearest");
  assertEquals(experimentConfigFrom({}).pretrain.rotateInterp, "nearest");
  assertEquals(pretrainConfigFrom({ "rotate-interp": "bilinear" }).rotateInterp, "bilinear");
  assertEquals(pretrainConfigFrom({ "rotate-interp": "nearest" }).rotateInterp, "nearest");
  for (const bad of ["bicubic", "", "Nearest"]) {
    assertThrows(
      () => pretrainConfigFrom({ "rotate-interp": bad }),
      UserError,
      "--rotate-interp must be nearest or bilinear",
    );
  }
  // a config without the field (runs before the flag) made bilinear views
  assertEquals(rotateInterpOf(tinyPretrainConfig(1)), "bilinear");
  assertEquals(rotateInterpOf({ rotateInterp: "nearest" }), "nearest");
});

Deno.test("a run recorded without rotateInterp resumes as bilinear and is refused as nearest; a nearest run refuses bilinear", async () => {
  const B = gpuBackend(gpu);
  const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };
  const withInterp = (f: Record<string, string>) => ({
    ...tinyPretrainConfig(1),
    rotateInterp: pretrainConfigFrom(f).rotateInterp,
  });
  const refusal = async (cfg: PretrainConfig, dir: string) => {
    try {
      await pretrain(B, gpuTrainOps, cfg, discSource(32), dir, { ...opts, resume: true });
    } catch (x) {
      return x;
    }
    return null;
  };
  const old = await Deno.makeTempDir(), now = await Deno.makeTempDir();
  try {
    // What every run recorded before the flag: no rotateInterp.
    const before = tinyPretrainConfig(1);
    assert(!("rotateInterp" in before));
    await pretrain(B, gpuTrainOps, before, discSource(32), old, opts);
    const saved = JSON.parse(await Deno.readTextFile(join(old, "config.json")));
    assert(!("rotateInterp" in saved), "the old run's config.json has no rotateInterp");
    const e = await refusal(withInterp({}), old);
    assert(e instanceof OtherSettingsError, `not refused: ${e}`);
    assert(e.message.includes('rotateInterp: saved "bilinear", now "nearest"'), e.message);
    // --rotate-interp bilinear resumes it (finished: nothing left to do), and so does the old
    // config itself.
    assertEquals(await refusal(withInterp({ "rotate-interp": "bilinear" }), old), null);
    assertEquals(await refusal(before, old), null);
    // A new run records nearest; resuming it as bilinear (or as an old config) is refused.
    await pretrain(B, gpuTrainOps, withInterp({}), discSource(32), now, opts);
    const rec = JSON.parse(await Deno.readTextFile(join(now, "config.json")));
    assertEquals(rec.rotateInterp, "nearest");
    for (const other of [withInterp({ "rotate-interp": "bilinear" }), before]) {
      const x = await refusal(other, now);
      assert(x instanceof OtherSettingsError, `not refused: ${x}`);
      assert(x.message.includes('rotateInterp: saved "nearest", now "bilinear"'), x.message);
    }
    assertEquals(await refusal(withInterp({}), now), null);
  } finally {
    await Deno.remove(old, { recursive: true });
    await Deno.remove(now, { recursive: true });
  }
});
