/**
 * Every numeric flag of every task, walked with 0, negative, fractional, huge, non-numeric and
 * empty values: each is accepted exactly when its range allows it, and refused otherwise with
 * one line naming the flag (a UserError, which runMain prints alone, exit code 1). Valid values
 * run on until the task's first write check (--out outside the test's sandbox), so nothing is
 * trained or loaded. Plus the cases the issue reported and the coverage of each task's options.
 */
import { assert, assertEquals } from "./helpers.ts";
import { inRange, type NumSpecs } from "../cli/flags.ts";
import { explain } from "../cli/explain.ts";
import { runMain } from "../cli/run_main.ts";
import {
  PRETRAIN_NUMERIC,
  PRETRAIN_OPTIONS,
  PRETRAIN_RUN_NUMERIC,
  PRETRAIN_RUN_OPTIONS,
  ROTATE_OPTIONS,
} from "../cli/pretrain_flags.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { FINETUNE_NUMERIC, FINETUNE_OPTIONS, main as finetuneMain } from "../tasks/finetune.ts";
import {
  e2eGapNote,
  EXPERIMENT_NUMERIC,
  EXPERIMENT_OPTIONS,
  experimentConfigFrom,
  main as experimentMain,
  paperConfigFrom,
  seedsText,
} from "../tasks/experiment.ts";
import { main as prepareMain, PREPARE_NUMERIC, PREPARE_OPTIONS } from "../tasks/prepare.ts";
import { pretrainConfigFrom } from "../cli/pretrain_flags.ts";
import { main as synthMain, SYNTH_NUMERIC, SYNTH_OPTIONS } from "../tasks/synth.ts";
import { EVALUATE_NUMERIC, main as evaluateMain } from "../tasks/evaluate.ts";
import { main as reportCheckMain, REPORT_CHECK_NUMERIC } from "../tools/report_check.ts";

/** Not writable in the test sandbox: a valid command line stops here, before any work. */
const OUT = "/etc/moco-flag-walk";
const WRITE_REFUSED = /may not write \/etc\/moco-flag-walk/;
const PREPARE_OUT_REFUSED = /^error: --out \/etc\/moco-flag-walk: the trainers read caches only/;

/**
 * Whether the sandbox refuses OUT, as `deno task test` does. Run with -A, a valid command line
 * would start a real run there (a 180 MiB checkpoint under /etc, seen once), so the tests that
 * walk valid lines are ignored instead.
 */
const SANDBOXED = Deno.permissions.querySync({ name: "write", path: OUT }).state !== "granted";
/** A test that runs valid command lines: only inside the sandbox. */
const sandboxed = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !SANDBOXED, fn });

/** String options that are not numbers (paths, names, lists of names). */
const TEXT = new Set([
  "data",
  "kind",
  "task",
  "backbone",
  "init",
  "optimizer",
  "out",
  "preset",
  "augment",
  "augment-on",
  "rotate-interp",
  "weights",
  "protocol",
  "csv",
  "tasks",
  "uncertainty",
  "inits",
  "imagenet",
  "moco",
  "protocols",
  "ft-data",
  "tune-cache",
  "precision",
  "patient-pattern",
  "positive",
]);

interface Task {
  name: string;
  numeric: NumSpecs;
  options?: Record<string, { type: string }>;
  /** The one-line error of the command line (null: it ran to the write check). */
  run: (args: string[]) => Promise<string | null>;
}

/**
 * Runs a task's main through runMain and returns what it printed (null: only the write check,
 * or `stop`, the check that refuses OUT in a task whose --out is not a run folder).
 */
function viaRunMain(main: (args: string[]) => Promise<void>, stop = WRITE_REFUSED) {
  return async (args: string[]): Promise<string | null> => {
    const printed: unknown[] = [];
    let code = 0;
    await runMain(() => main([...args, `--out=${OUT}`]), {
      error: (...d) => printed.push(...d),
      exit: (c) => (code = c),
    });
    assertEquals(code, 1, `${args}: exit code`);
    assertEquals(printed.length, 1, `${args}: one message`);
    const line = printed[0];
    assert(typeof line === "string", `${args}: a stack trace was printed: ${line}`);
    assert(!line.includes("\n"), `${args}: more than one line: ${line}`);
    return stop.test(line) ? null : line;
  };
}

/** evaluate and report:check return their exit code and print through io / console. */
async function viaCode(args: string[], run: (io: (m: string) => void) => Promise<number>) {
  const printed: string[] = [];
  const code = await run((m) => printed.push(m));
  const line = printed.join("\n");
  if (/must be/.test(line)) {
    assert(code === 1 || code === 2, `${args}: exit code ${code}`);
    assert(!line.includes("\n"), `${args}: more than one line: ${line}`);
    return line;
  }
  return null;
}

const TASKS: Task[] = [
  {
    name: "pretrain",
    numeric: { ...PRETRAIN_NUMERIC, ...PRETRAIN_RUN_NUMERIC },
    options: { ...PRETRAIN_OPTIONS, ...ROTATE_OPTIONS, ...PRETRAIN_RUN_OPTIONS },
    run: viaRunMain(pretrainMain),
  },
  {
    name: "finetune",
    numeric: FINETUNE_NUMERIC,
    options: FINETUNE_OPTIONS,
    run: viaRunMain(finetuneMain),
  },
  {
    name: "experiment",
    numeric: EXPERIMENT_NUMERIC,
    options: EXPERIMENT_OPTIONS,
    run: viaRunMain(experimentMain),
  },
  {
    name: "prepare",
    numeric: PREPARE_NUMERIC,
    options: PREPARE_OPTIONS,
    // prepare's --out may only be the trainers' cache folder: OUT is refused as another folder
    run: viaRunMain(prepareMain, PREPARE_OUT_REFUSED),
  },
  { name: "synth", numeric: SYNTH_NUMERIC, options: SYNTH_OPTIONS, run: viaRunMain(synthMain) },
  {
    name: "evaluate",
    numeric: EVALUATE_NUMERIC,
    run: (args) =>
      viaCode(
        args,
        (out) =>
          evaluateMain([...args, "--scores", "/nonexistent.csv"], { log: () => {}, error: out }),
      ),
  },
  {
    name: "report:check",
    numeric: REPORT_CHECK_NUMERIC,
    run: async (args) => {
      const saved = console.error, printed: string[] = [];
      console.error = (m: string) => printed.push(m);
      try {
        const code = await reportCheckMain([...args, "/nonexistent/report.html"]);
        const line = printed.join("\n");
        if (!/must be/.test(line)) return null;
        assert(code === 2 && !line.includes("\n"), `${args}: ${code} ${line}`);
        return line;
      } finally {
        console.error = saved;
      }
    },
  },
];

const VALUES = ["0", "-1", "0.5", "1e12", "abc", "", "NaN", "Infinity"];

for (const task of TASKS) {
  sandboxed(`${task.name}: every numeric flag has a range and a one-line error`, async () => {
    for (const [flag, spec] of Object.entries(task.numeric)) {
      // Nothing allows negative, huge or infinite values.
      assert(spec.min >= 0 && spec.max <= 1e10, `--${flag}: range [${spec.min}, ${spec.max}]`);
      for (const v of VALUES) {
        const line = await task.run([`--${flag}=${v}`]);
        const ok = v.trim() !== "" && inRange(Number(v), spec);
        if (ok) assert(line === null, `--${flag}=${v} is in range but was refused: ${line}`);
        else {
          assert(line !== null, `--${flag}=${v} was accepted`);
          assert(
            line.includes(`--${flag}`) && /must be (an integer|a number)/.test(line),
            `--${flag}=${v}: ${line}`,
          );
        }
      }
    }
    // Every string option is either numeric (walked above) or a path/name.
    for (const [opt, o] of Object.entries(task.options ?? {})) {
      if (o.type === "string") assert(opt in task.numeric || TEXT.has(opt), `--${opt} unchecked`);
    }
  });
}

sandboxed(
  "the reported cases: --batch 0 --split-bn 0, --queue=-1, --size 0, --lr 1e9",
  async () => {
    const run = viaRunMain(pretrainMain);
    assert(/--batch must be an integer from 2/.test((await run(["--batch=0", "--split-bn=0"]))!));
    assert(/--queue must be/.test((await run(["--queue=-1"]))!));
    assert(/--size must be/.test((await run(["--size=0"]))!));
    assert(/--lr must be a number above 0 and at most 10/.test((await run(["--lr=1e9"]))!));
    assert(/--augment-on must be auto, cpu or gpu/.test((await run(["--augment-on=tpu"]))!));
    assert((await run(["--augment-on=gpu", "--log-every=10"])) === null);
    assert(/--precision must be f32 or f16, got "f8"/.test((await run(["--precision=f8"]))!));
    assert((await run(["--precision=f16"])) === null);
    // Cross-flag limits, also one line.
    assert(/--queue 16 must hold at least one batch/.test((await run(["--queue=16"]))!));
    assert(/not a multiple of --split-bn/.test((await run(["--batch=30", "--split-bn=16"]))!));
    // prepare's --size is the trainers' (16-1024), so --size x --margin stays within 4096 px
    assert(/--size must be an integer from 16 to 1024/.test(
      (await viaRunMain(prepareMain, PREPARE_OUT_REFUSED)(["--size=4000", "--margin=1.2"]))!,
    ));
    // An unknown flag or a missing value: one line, not node:util's stack trace.
    assert(/Unknown option '--bogus'.*--help/.test((await run(["--bogus"]))!));
    assert(/--batch/.test((await run(["--batch"]))!));
    assert(explain(new Error("a bug")) === null, "a plain Error is still a bug");
  },
);

sandboxed(
  "--preset cpu-demo|gpu|paper: the sizes and protocols they set; another is one line",
  async () => {
    for (const run of [viaRunMain(pretrainMain), viaRunMain(experimentMain)]) {
      const line = await run(["--preset=fast"]);
      assert(/--preset must be one of cpu-demo, gpu, paper, got "fast"/.test(line!), `${line}`);
      for (const p of ["cpu-demo", "gpu", "paper"]) {
        assertEquals(
          await run([`--preset=${p}`]),
          null,
        );
      }
    }
    const demo = experimentConfigFrom({});
    assertEquals(
      [demo.pretrainSeeds, demo.pretrain.epochs, demo.pretrain.imageSize, demo.e2eFractions],
      [3, 2, 32, [0.001, 0.01]],
    );
    assertEquals(demo.finetune.e2eEpochs, undefined);
    const gpu = experimentConfigFrom({ preset: "gpu", fractions: "0.01,1" });
    assertEquals([gpu.pretrain.imageSize, gpu.pretrain.batchSize, gpu.draws], [128, 64, 5]);
    assertEquals([gpu.e2eFractions, gpu.finetune.e2eEpochs], [[0.01, 1], {
      maxEpochs: 20,
      patience: 3,
    }]);
    const paper = experimentConfigFrom({
      preset: "paper",
      "ft-max-steps": "40",
      "pretrain-seeds": "2",
    });
    assertEquals([paper.pretrain.imageSize, paper.pretrain.moco.inChannels], [224, 3]);
    assertEquals([paper.finetune.e2eEpochs, paper.pretrainSeeds], [undefined, 2]);
    // An explicit flag wins over the preset.
    assertEquals(experimentConfigFrom({ preset: "paper", size: "64" }).pretrain.imageSize, 64);
  },
);

/** What a task's --help prints. */
async function helpOf(main: (args: string[]) => Promise<void>): Promise<string> {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...d: unknown[]) => printed.push(d.join(" "));
  try {
    await main(["--help"]);
  } finally {
    console.log = log;
  }
  return printed.join("\n");
}

Deno.test("--help tells the truth: finetune's defaults, pretrain's permissions, prepare's flags", async () => {
  // finetune: --init is optional (random), --size's default is the cpu-demo preset's
  const ft = await helpOf(finetuneMain);
  assert(ft.startsWith("deno task finetune [--init random|imagenet|moco]"), ft.split("\n")[0]);
  const size = pretrainConfigFrom({}).imageSize;
  assert(new RegExp(`--size PX +image size \\(default ${size}\\b`).test(ft), ft);
  // pretrain: deno.json grants --allow-read in full, so no advice to extend it
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)))
    .tasks as Record<string, string>;
  assert(/--allow-read(\s|$)/.test(tasks.pretrain), tasks.pretrain);
  const pre = await helpOf(pretrainMain);
  assert(!/add it to --allow-read/.test(pre), "pretrain --help still says to extend --allow-read");
  assert(/reads anywhere \(--allow-read\)/.test(pre) && /--allow-write=runs/.test(pre), pre);
  // prepare: every option documented, --task as the trainers, the trainers' default size
  const prep = await helpOf(prepareMain);
  for (const opt of Object.keys(PREPARE_OPTIONS).filter((o) => o !== "help")) {
    assert(new RegExp(`--${opt}\\b`).test(prep), `prepare --help lacks --${opt}`);
  }
  assert(/--size PX .*\(default 32: their/.test(prep), prep);
});

Deno.test("experiment --moco: one pretraining seed by default, said in the plan line and --help; both flags given explicitly are refused with the fix", async () => {
  const moco = experimentConfigFrom({ moco: "runs/pt" });
  assertEquals(moco.pretrainSeeds, 1);
  assertEquals(
    seedsText(moco, false),
    "1 seed(s) (1 by default with --moco: it gives one backbone)",
  );
  assertEquals(seedsText(moco, true), "1 seed(s)");
  assertEquals(experimentConfigFrom({ moco: "runs/pt", "pretrain-seeds": "1" }).pretrainSeeds, 1);
  assertEquals(experimentConfigFrom({}).pretrainSeeds, 3); // without --moco: the preset's
  let line = "";
  try {
    experimentConfigFrom({ moco: "runs/pt", "pretrain-seeds": "2" });
  } catch (e) {
    line = explain(e) ?? "";
  }
  assert(
    /^--moco gives one backbone, but --pretrain-seeds 2 .*pass --pretrain-seeds 1/.test(line),
    line,
  );
  const help: string[] = [], log = console.log;
  console.log = (m: string) => void help.push(m);
  try {
    await experimentMain(["--help"]);
  } finally {
    console.log = log;
  }
  const text = help.join("\n").replace(/\s+/g, " ");
  assert(/3 with gpu and paper; 1 with --moco, which gives one backbone/.test(text), text);
  assert(/a pretraining run folder \(deno task pretrain\) or its backbone\.safetensors/.test(text));
  // --e2e-fractions: the rule the code applies.
  assert(/at or below 1%, the low-label claims, or the smallest fraction when none is/.test(text));
});

Deno.test("experiment: the plan at --preset paper keeps an explicit --pretrain-seeds", () => {
  assertEquals(paperConfigFrom({ "pretrain-seeds": "1" }).pretrainSeeds, 1);
  assertEquals(paperConfigFrom({ "pretrain-seeds": "5", preset: "gpu" }).pretrainSeeds, 5);
  assertEquals(paperConfigFrom({}).pretrainSeeds, 3);
  assertEquals(paperConfigFrom({ moco: "runs/pt" }).pretrainSeeds, 1);
  assertEquals(paperConfigFrom({ size: "32" }).pretrain.imageSize, 224); // size is the preset's
});

Deno.test("experiment: the fractions without end-to-end cells are named, with why", () => {
  const demo = experimentConfigFrom({ protocols: "e2e", fractions: "0.1,1" });
  assertEquals(demo.e2eFractions, [0.1]); // none ≤ 1%: the smallest
  const note = e2eGapNote(demo, false, "cpu-demo")!;
  assert(
    note.startsWith("end-to-end cells at 10% only, none at 100%: --preset cpu-demo runs"),
    note,
  );
  assert(
    /at or below 1% \(else the smallest\).*pass --e2e-fractions 0\.1,1 to run them all/.test(note),
    note,
  );
  const given = experimentConfigFrom({ fractions: "0.01,0.1,1", "e2e-fractions": "0.1" });
  assert(/at 10% only, none at 1%, 100%: they are not in --e2e-fractions/.test(
    e2eGapNote(given, true, "cpu-demo")!,
  ));
  assertEquals(
    e2eGapNote(experimentConfigFrom({ preset: "gpu", fractions: "0.1,1" }), false, "gpu"),
    null,
  );
  assertEquals(
    e2eGapNote(
      experimentConfigFrom({ protocols: "linear", fractions: "0.1,1" }),
      false,
      "cpu-demo",
    ),
    null,
  );
});

sandboxed("experiment --protocols e2e --fractions 0.1,1 says so before anything runs", async () => {
  const said: string[] = [], log = console.log;
  console.log = (...a: unknown[]) => void said.push(a.join(" "));
  try {
    const line = await viaRunMain(experimentMain)(["--protocols=e2e", "--fractions=0.1,1"]);
    assertEquals(line, null); // on to the write check
  } finally {
    console.log = log;
  }
  assert(
    said.some((l) => l.startsWith("end-to-end cells at 10% only, none at 100%")),
    said.join("\n"),
  );
});
