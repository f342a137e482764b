/**
 * The pretraining flags' optimisation defaults: Adam's step schedule is MoCo-CXR's (main_moco.py
 * `--schedule` default [12, 18, 24], ×0.1 at each) at every preset, which leaves the short default
 * runs' learning rate as it was; `--milestones none` is the constant rate runs made before that
 * default recorded, and such a run resumed under the new default is refused, naming the schedule;
 * SGD's default rate is MoCo v2's 0.03 scaled linearly from batch 256.
 */
import { gpuBackend } from "../model/backend_gpu.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { pretrain } from "../train/pretrain.ts";
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
