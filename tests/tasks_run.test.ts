/**
 * The training tasks run whole on a small synthetic set: what a user's command writes (the task's
 * wiring beyond the library calls the other tests cover).
 */
import { join } from "node:path";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { ensureSyntheticChexpert } from "../data/synth/write.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { assert, assertEquals } from "./helpers.ts";
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
