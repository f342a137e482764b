/**
 * The training tasks run whole on a small synthetic set: what a user's command writes (the task's
 * wiring beyond the library calls the other tests cover).
 */
import { join } from "node:path";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { ensureSyntheticChexpert } from "../data/synth/write.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { gpu } from "./gpu.ts";

Deno.test("deno task finetune: predictions, the report, and run.json's kernels (the tuner's record)", async () => {
  const tmp = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  try {
    const data = await ensureSyntheticChexpert(tmp, { n: 120, size: 32, seed: 3 }, { workers: 0 });
    Deno.chdir(tmp); // the image cache's default folder (runs/cache) resolves here
    const cache = join(tmp, "tune.json");
    await finetuneMain([
      `--data=${data}`,
      "--size=32",
      "--max-steps=2",
      "--batch=4",
      "--out=runs/ft",
      `--tune-cache=${cache}`,
    ]);
    const run = JSON.parse(await Deno.readTextFile(join(tmp, "runs/ft/run.json")));
    // the tuner the task opened: its mode on this adapter, the cache it was given, and what ran
    // for each tuned shape (none on a software adapter, whose kernels follow the cost model)
    assertEquals(run.kernels.tuning, tunerOf(gpu).mode);
    assertEquals(run.kernels.cache, cache);
    assertEquals(typeof run.kernels.used, "object");
    assertEquals(run.kernels.gpuPoolBytes, gpu.stats.bytesAllocated); // the device memory it took
    assert((await Deno.readTextFile(join(tmp, "runs/ft/results.csv"))).includes("e2e"));
    await Deno.stat(join(tmp, "runs/ft/report.html"));
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task pretrain: the run folder a user gets, kernels.json, and no second run over it", async () => {
  const tmp = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  try {
    const data = await ensureSyntheticChexpert(tmp, { n: 120, size: 32, seed: 4 }, { workers: 0 });
    Deno.chdir(tmp);
    const args = [`--data=${data}`, "--size=32", "--batch=16", "--epochs=1", "--out=runs/pre"];
    await pretrainMain(args);
    const dir = join(tmp, "runs/pre");
    for (const f of ["config.json", "checkpoint.safetensors", "backbone.safetensors"]) {
      await Deno.stat(join(dir, f));
    }
    const metrics = (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    const steps = metrics.filter((m) => "loss" in m);
    const summary = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
    assertEquals(summary.steps, steps.length);
    assert(steps.length > 0 && steps.every((m) => Number.isFinite(m.loss)), "a finite loss a step");
    const kernels = JSON.parse(await Deno.readTextFile(join(dir, "kernels.json")));
    assertEquals(kernels.tuning, tunerOf(gpu).mode);
    assertEquals(kernels.gpuPoolBytes, gpu.stats.bytesAllocated);
    // the same command again is refused: the folder holds a run (--resume continues it)
    await assertRejects(() => pretrainMain(args), /already holds a pretraining run/);
    // --resume of the finished run: nothing left, said before any step is timed
    const said: string[] = [], log = console.log;
    console.log = (...a: unknown[]) => void said.push(a.join(" "));
    try {
      await pretrainMain([...args, "--resume"]);
    } finally {
      console.log = log;
    }
    assert(
      said.some((l) => l.startsWith("nothing left to train: runs/pre finished all")),
      said.join("\n"),
    );
    assert(!said.some((l) => l.startsWith("timing a few steps")), said.join("\n"));
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(tmp, { recursive: true });
  }
});
