/**
 * runMain (cli/run_main.ts): what a command prints and the exit code it gives, for success, an
 * error the user can act on (one line), a typed error of a lower layer (worded with its flag by
 * cli/explain.ts), and a bug (the error itself, with its stack); requireWrite's up-front refusal,
 * also of a tuning cache (cli/run_setup.ts openTuner).
 */
import { parseArgs } from "node:util";
import { explain, noAdapterMessage } from "../cli/explain.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import { UnknownDatasetKindError, UnknownTaskError } from "../data/data_error.ts";
import { MissingRunFolderError } from "../eval/run_files.ts";
import { RunFolderNotWritableError } from "../eval/evaluate_run.ts";
import { DeviceLostError, NoAdapterError } from "../kernels/device.ts";
import {
  BackboneMismatchError,
  ConflictingSettingsError,
  DamagedCheckpointError,
  MissingImagenetWeightsError,
  OtherDataError,
  OtherSettingsError,
  TrainingDivergedError,
} from "../train/run_errors.ts";
import { UserError } from "../util/user_error.ts";
import { openTuner } from "../cli/run_setup.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { gpu } from "./gpu.ts";

/** Runs `main` through runMain with captured output; returns what was printed and the exit. */
async function run(main: () => Promise<void>) {
  const printed: unknown[][] = [];
  const exits: number[] = [];
  await runMain(main, { error: (...d) => printed.push(d), exit: (c) => exits.push(c) });
  return { printed, exits };
}

Deno.test("runMain: a main that succeeds prints nothing and does not exit", async () => {
  let ran = false;
  assertEquals(await run(() => Promise.resolve(void (ran = true))), { printed: [], exits: [] });
  assert(ran);
});

Deno.test("runMain: an error the user can act on is one line, exit code 1", async () => {
  const r = await run(() => Promise.reject(new UserError("runs/x: the dataset has no images")));
  assertEquals(r, { printed: [["error: runs/x: the dataset has no images"]], exits: [1] });
  // node:util's own flag errors: one line pointing at --help, not a stack trace.
  const flag = await run(() =>
    Promise.resolve().then(() => void parseArgs({ args: ["--bogus"], options: {} }))
  );
  assertEquals(flag.exits, [1]);
  assertEquals(flag.printed.length, 1);
  assert(/^error: Unknown option '--bogus'.*\(see --help\)$/.test(String(flag.printed[0][0])));
});

Deno.test("runMain: a bug is printed as the error itself (with its stack), exit code 1", async () => {
  const bug = new TypeError("x is undefined");
  assertEquals(await run(() => Promise.reject(bug)), { printed: [[bug]], exits: [1] });
});

Deno.test("runMain: lower layers' typed errors name no flag; the command line words them", async () => {
  const cases: [Error, RegExp][] = [
    [new UnknownDatasetKindError("dicom", ["chexpert", "csv"]), /^--kind must be one of chexpert/],
    [new OtherDataError("r/ckpt was trained on another dataset (x)", "r/config.json"), /--data/],
    [new OtherSettingsError("r/ckpt was written with another configuration", "r/c"), /--out/],
    [new TrainingDivergedError("loss became NaN at step 3; …"), /step 3; … Lower --lr.*--resume/],
    [
      new TrainingDivergedError("fine-tuning loss became NaN at step 3.", false),
      /step 3\. Lower the fine-tuning learning rate \(--lr, or --ft-lr/,
    ],
    [
      new TrainingDivergedError("fine-tuning loss became NaN at step 1.", false, true),
      /step 1\. No update had run yet, so the learning rate is not the cause: check the input data and the initial weights \(--weights/,
    ],
    [
      new TrainingDivergedError("loss became NaN at step 1; …", true, true),
      /step 1; … No update had run yet, .*: check the input data\.$/,
    ],
    [new DamagedCheckpointError("r/ckpt", "cut short"), /damaged \(cut short\).*--out/],
    [
      new ConflictingSettingsError("backbone-and-seeds", "…"),
      /--moco gives one backbone.*--pretrain-seeds/,
    ],
    [
      new ConflictingSettingsError("e2e-fraction", "end-to-end fraction 0.5 is not one of…"),
      /^--e2e-fractions: 0\.5/,
    ],
    [new MissingImagenetWeightsError(), /--imagenet FILE/],
    [new BackboneMismatchError("w.safetensors does not fit"), /fit\. Check --backbone/],
    [new DeviceLostError("unknown", "reset"), /device lost \(unknown\): reset.*--resume/],
    [new MissingRunFolderError("runs/nope"), /"runs\/nope" does not exist.*--run/],
    [new RunFolderNotWritableError("/x"), /--allow-write=runs/],
    [
      new UnknownTaskError(["nope"], ["label"], "/d/nih"),
      /^--task "nope": \/d\/nih has no such label; its labels: label/,
    ],
  ];
  for (const [e, words] of cases) {
    assert(!/--\w/.test(e.message), `${e.name} names a flag: ${e.message}`);
    const line = explain(e);
    assert(line !== null && words.test(line), `${e.name}: ${line}`);
  }
  // Through runMain, the worded line is what the user sees.
  const r = await run(() => Promise.reject(cases[0][0]));
  assertEquals(r, {
    printed: [['error: --kind must be one of chexpert, csv, got "dicom"']],
    exits: [1],
  });
});

Deno.test("a device file (Deno asks --allow-all of it) is named as one, not granted as a flag", async () => {
  let err: unknown = null;
  try {
    await Deno.stat("/dev/null/backbone.safetensors"); // what --weights /dev/null looks up
  } catch (e) {
    err = e;
  }
  assert(err instanceof Deno.errors.NotCapable, `${err}`);
  const line = explain(err);
  assert(
    line?.startsWith("/dev/null/backbone.safetensors: a device or other special file") &&
      line.endsWith("pass a regular file or folder to the flag that names it") &&
      !line.includes("--allow-all"),
    `${line}`,
  );
});

Deno.test("requireWrite: a path outside the write sandbox is refused up front, naming the flag", async () => {
  await assertRejects(() => requireWrite("/etc/moco-run"), /may not write \/etc\/moco-run.*--out/s);
  await assertRejects(
    () => requireWrite("/etc/moco-synth", "--data"),
    /pass --data runs\/<name>/,
  );
  await requireWrite("/tmp/moco-run"); // the tests may write /tmp
});

Deno.test("requireWrite: an --out that is a file, or lies under one, is one line naming --out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli_run_main_" });
  const file = `${dir}/taken`;
  await Deno.writeTextFile(file, "x");
  try {
    await assertRejects(() => requireWrite(file), /^--out .*taken is a file, not a folder/);
    await assertRejects(
      () => requireWrite(`${file}/a/b`, "--run"),
      /^--run .*taken\/a\/b lies under .*taken, which is a file, not a folder/,
    );
    await requireWrite(`${dir}/new/deeper`); // folders yet to be made are fine
    await requireWrite(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("no WebGPU adapter: the advice without a stack trace, naming DENO_WEBGPU_BACKEND when set", async () => {
  const e = new NoAdapterError();
  const r = await run(() => Promise.reject(e));
  assertEquals(r.exits, [1]);
  assertEquals(r.printed.length, 1);
  const text = r.printed[0][0];
  assert(typeof text === "string" && text.startsWith("error: No WebGPU adapter"), String(text));
  assert(text.includes("mesa-vulkan-drivers") && !/\bat .*device\.ts/.test(text), text);
  const set = noAdapterMessage(e.message, "dx12");
  assert(
    /^No WebGPU adapter was found\. DENO_WEBGPU_BACKEND=dx12 is set: that backend is the likely cause/
      .test(set),
    set,
  );
  assertEquals(set.split("\n").slice(1), e.message.split("\n").slice(1));
  assertEquals(noAdapterMessage(e.message, undefined), e.message);
  assertEquals(noAdapterMessage(e.message, ""), e.message);
});

Deno.test("on a GPU that tunes, a --tune-cache the task may not write is refused before any step", async () => {
  const t = tunerOf(gpu), mode = t.mode;
  t.mode = "measure"; // as on a hardware adapter
  try {
    await assertRejects(
      () => openTuner(gpu, "/etc/moco-tune-cache.json"),
      /may not write \/etc\/moco-tune-cache\.json\..*pass --tune-cache runs\/<name>/,
    );
    const ok = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.remove(ok);
    await openTuner(gpu, ok); // a writable one: loaded (absent: empty) and saved to as timed
    assertEquals(t.persistedAt, ok);
  } finally {
    t.mode = mode;
    t.persistTo(null);
  }
});
