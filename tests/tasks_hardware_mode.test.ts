/**
 * The user-facing tasks run the way they run on a hardware GPU, end to end, on a tiny synthetic
 * set: the device reads as hardware (`isSoftware` false: the GPU's kernels, tiles and grid caps,
 * GPU augmentation where a task chooses it) and its tuner measures, every task given the same
 * --tune-cache file, in the order a user on a lent card would go: pretrain (a fresh cache: tuned
 * and saved), pretrain again into another folder (starts tuned), --resume of the finished first
 * run, finetune from it, and an experiment. The test suite otherwise runs on lavapipe, where the
 * tuner is off, so a fault here (a refused cache, a record written wrong) would first show on a
 * lent GPU's few minutes: a second `deno task pretrain` once refused the existing cache at once.
 *
 * Each task is a fresh process on a card: its tuner starts empty and loads the cache file. Here
 * the tasks share a process and a device, so before each task the device's tuner is reset to a
 * new Tuner's state (what a new process gets), and restored at the end.
 *
 * Timing every candidate of every kernel shape on lavapipe takes ~35 s a shape (each candidate
 * compiled; ResNet-18's MoCo step meets ~40 shapes), over 20 minutes a run. So only the heads'
 * weight-gradient GEMMs (`matmul:TN:` keys, two at the first step: ~3 s in all) are timed for real;
 * the other shapes' timings are made up (the prior fastest, then the candidates in order) at the
 * one call that times a problem's candidates (Tuner.timeAllAtOnce; lavapipe has timestamp
 * queries), so everything around it runs as on a card: the shapes the steps meet are queued,
 * settled between steps, recorded with every candidate's time, saved after each shape, loaded by
 * the next task and answered from the cache there. The data is the smallest that every task
 * accepts (48 images: one MoCo step an epoch at batch 16), and the experiment runs the linear
 * protocol of the MoCo init alone (finetune runs end to end). About 105 s on 2 cores.
 */
import { join } from "node:path";
import { main as experimentMain } from "../tasks/experiment.ts";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { ensureSyntheticChexpert } from "../data/synth/write.ts";
import { getGpu } from "../kernels/device.ts";
import { adapterKey, type Problem, type TuneCacheFile, Tuner, tunerOf } from "../kernels/tuner.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";

/** Problems timed for real on this adapter (the heads' weight gradients: small, ~1.5 s each). */
const REAL = /^matmul:TN:/;

type TimeAll = (
  p: Problem<unknown>,
  s: { run: (c: unknown) => void },
  targetMs: number,
) => Promise<Record<string, number> | null>;

/** The tuner's batch timing (private: reached here to stand in for the slow shapes). */
const realTimeAll = (Tuner.prototype as unknown as { timeAllAtOnce: TimeAll }).timeAllAtOnce;

/** Made-up timings for a problem not in REAL: the prior fastest, then the candidates in order. */
const madeUp = (p: Problem<unknown>) =>
  Object.fromEntries(p.candidates.map((c, i) => [c.label, 1 + i]));

/**
 * The device's tuner as a new process's (a new Tuner's fields: empty, in this adapter's mode,
 * nothing loaded), its slow shapes' timings made up (see the file's comment).
 */
function freshTuner(t: Tuner): void {
  Object.assign(t, new Tuner(gpu));
  const timeAll: TimeAll = function (this: Tuner, p, s, targetMs) {
    return REAL.test(p.key) ? realTimeAll.call(this, p, s, targetMs) : Promise.resolve(madeUp(p));
  };
  (t as unknown as { timeAllAtOnce: TimeAll }).timeAllAtOnce = timeAll;
}

/** Runs a task's main with its console.log/warn captured: the lines it printed. */
async function quietly(f: () => Promise<void>): Promise<string[]> {
  const said: string[] = [], log = console.log, warn = console.warn;
  console.log = console.warn = (...a: unknown[]) => void said.push(a.join(" "));
  try {
    await f();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- the task printed:\n${said.join("\n")}`, {
      cause: e,
    });
  } finally {
    console.log = log;
    console.warn = warn;
  }
  const unsaved = said.find((l) => l.includes("could not save the kernel tuning cache"));
  assert(unsaved === undefined, String(unsaved));
  return said;
}

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

Deno.test("the tasks on a hardware adapter, one --tune-cache: pretrain twice, resume, finetune, experiment", async () => {
  assert((await getGpu()) === gpu, "the tasks' getGpu() is the tests' device");
  // renamed, the stand-in would go unused and every shape be timed for real (20+ minutes)
  assert(typeof realTimeAll === "function", "Tuner.prototype.timeAllAtOnce is gone: update REAL");
  const tmp = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  const t = tunerOf(gpu);
  const before = { ...t }; // the tuner's own fields, restored at the end
  Object.defineProperty(gpu, "isSoftware", { value: false, configurable: true });
  try {
    const data = await ensureSyntheticChexpert(tmp, { n: 48, size: 32, seed: 5 }, { workers: 0 });
    Deno.chdir(tmp); // runs/ (and the image cache, runs/cache) resolve here
    const cache = "runs/tune.json";
    const key = adapterKey(gpu);
    const records = async () => ((await readJson(cache)) as TuneCacheFile).adapters[key] ?? {};
    const pre = (out: string, ...more: string[]) => [
      `--data=${data}`,
      "--size=32",
      "--batch=16",
      "--split-bn=16",
      "--epochs=1",
      `--out=${out}`,
      `--tune-cache=${cache}`,
      ...more,
    ];
    /** What ran (kernels.json / run.json `kernels`) is what the cache holds for each tuned shape. */
    const ranAsRecorded = (
      used: Record<string, string>,
      recs: Record<string, { label: string }>,
    ) => {
      const tuned = Object.keys(used).filter((k) => k in recs);
      assert(tuned.length > 0, `some shapes ran from the cache: ${Object.keys(used).join(", ")}`);
      for (const k of tuned) assertEquals(used[k], recs[k].label, k);
    };
    const kernelsRecord = (k: Record<string, unknown>) => {
      assertEquals(k.tuning, "measure");
      assertEquals(k.cache, cache);
      assert(typeof k.used === "object" && k.used !== null, "the kernels each shape ran");
    };

    // 1. pretrain, the cache new: the first step's shapes are timed between steps and saved
    freshTuner(t);
    assertEquals(t.mode, "measure", "a hardware adapter's tuner measures");
    const first = await quietly(() => pretrainMain(pre("runs/pre")));
    const said1 = first.join("\n");
    assert(said1.includes("kernel tuning: measure"), said1);
    assert(said1.includes("augmentation on the GPU (uint8 images uploaded)"), said1);
    assert(
      first.some((l) => /^kernel tuning: timing \d+ kernel shapes? on this adapter/.test(l)) &&
        said1.includes(`the choices are kept in ${cache}`),
      said1,
    );
    assertEquals(t.failures, [], "every candidate timed ran");
    for (const f of ["checkpoint.safetensors", "backbone.safetensors", "summary.json"]) {
      await Deno.stat(join("runs/pre", f));
    }
    const k1 = await readJson("runs/pre/kernels.json");
    kernelsRecord(k1);
    assertEquals(k1.adapter, gpu.describe());
    const recs1 = await records();
    const file1 = await readJson(cache) as TuneCacheFile;
    assertEquals(file1.version, 1);
    assertEquals(Object.keys(file1.adapters), [key], "records for this adapter only");
    // every record has a time for each candidate it chose among, and the real ones are real
    for (const [k, r] of Object.entries(recs1)) {
      assert(r.label in r.ms, `${k}: its choice was timed`);
      assert(Object.values(r.ms).every((ms) => ms > 0), `${k}: ${JSON.stringify(r.ms)}`);
    }
    assert(Object.keys(recs1).some((k) => REAL.test(k)), "a head GEMM timed for real");
    ranAsRecorded(k1.used, recs1); // each shape ran again after it was timed

    // 2. pretrain again into another folder, the same cache: accepted, and it starts tuned
    freshTuner(t);
    const second = await quietly(() => pretrainMain(pre("runs/pre2")));
    const said2 = second.join("\n");
    assert(!second.some((l) => l.startsWith("kernel tuning: timing")), said2);
    assertEquals(t.tuningMs, 0, "nothing timed");
    const k2 = await readJson("runs/pre2/kernels.json");
    kernelsRecord(k2);
    assertEquals(k2.used, k1.used, "the same kernels as the run that tuned them");
    assertEquals(await records(), recs1, "the cache as the first run left it");
    await Deno.stat("runs/pre2/backbone.safetensors");

    // 3. --resume of the finished first run: nothing left, said before the GPU is set up
    freshTuner(t);
    const resumed = await quietly(() => pretrainMain(pre("runs/pre", "--resume")));
    assert(
      resumed.some((l) => l.startsWith("nothing left to train: runs/pre finished all")),
      resumed.join("\n"),
    );
    assert(!resumed.some((l) => l.startsWith("timing a few steps")), resumed.join("\n"));

    // 4. finetune from the first run's backbone (end to end), the same cache
    freshTuner(t);
    const ft = await quietly(() =>
      finetuneMain([
        `--data=${data}`,
        "--size=32",
        "--init=moco",
        "--weights=runs/pre",
        "--protocol=e2e",
        "--batch=16",
        "--max-steps=2",
        "--out=runs/ft",
        `--tune-cache=${cache}`,
      ])
    );
    assert(ft.join("\n").includes("kernel tuning: measure"), ft.join("\n"));
    assertEquals(t.failures, []);
    const runFt = await readJson("runs/ft/run.json");
    kernelsRecord(runFt.kernels);
    const recs4 = await records();
    for (const k of Object.keys(recs1)) assert(k in recs4, `${k}: kept in the cache`);
    ranAsRecorded(runFt.kernels.used, recs1); // the shapes cached when it started
    assert((await Deno.readTextFile("runs/ft/results.csv")).includes("e2e"));
    await Deno.stat("runs/ft/report.html");

    // 5. the experiment: its own pretraining, the linear protocol, the report, the same cache
    freshTuner(t);
    const ex: string[] = await quietly(() =>
      experimentMain([
        `--data=${data}`,
        "--size=32",
        "--batch=16",
        "--split-bn=16",
        "--epochs=1",
        "--pretrain-seeds=1",
        "--fractions=1",
        "--protocols=linear",
        "--inits=moco",
        "--out=runs/exp",
        `--tune-cache=${cache}`,
      ])
    );
    assert(ex.join("\n").includes("kernel tuning: measure"), ex.join("\n"));
    // its pretraining makes the views on the GPU, as deno task pretrain does on hardware
    assert(ex.join("\n").includes("pretraining's views made on the GPU"), ex.join("\n"));
    assert(/data pipeline \d+ img\/s \(GPU augmentation/.test(ex.join("\n")), ex.join("\n"));
    assertEquals(t.failures, []);
    await Deno.stat("runs/exp/pretrain/backbone.safetensors");
    const runEx = await readJson("runs/exp/run.json");
    kernelsRecord(runEx.kernels);
    const recs5 = await records();
    for (const k of Object.keys(recs4)) assert(k in recs5, `${k}: kept in the cache`);
    ranAsRecorded(runEx.kernels.used, recs4); // the shapes cached when it started
    const results = await Deno.readTextFile("runs/exp/results.csv");
    assert(results.includes("linear"), results);
    await Deno.stat("runs/exp/report.html");
  } finally {
    Deno.chdir(cwd);
    delete (gpu as unknown as Record<string, unknown>).isSoftware;
    delete (t as unknown as Record<string, unknown>).timeAllAtOnce;
    Object.assign(t, before);
    await Deno.remove(tmp, { recursive: true });
  }
});
