/**
 * Each task run through runMain on bad inputs a user can make (missing or unrecognised data,
 * bad names, bad CSVs, a symlink out of the root, too many unreadable images, --out outside the
 * sandbox): exactly one line on stderr, exit code 1, never a stack trace. Data problems are
 * found before the GPU is set up; prepare and synth check --out before loading anything.
 */
import { join } from "node:path";
import { assert, assertEquals, put } from "./helpers.ts";
import { runMain } from "../cli/run_main.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { main as experimentMain } from "../tasks/experiment.ts";
import { main as prepareMain } from "../tasks/prepare.ts";
import { main as synthMain } from "../tasks/synth.ts";
import { encodePngGray } from "../data/png_encode.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { buildBackbone } from "../train/backbones.ts";
import { exportBackbone } from "../train/weights.ts";
import { pretrainConfigFrom } from "../cli/pretrain_flags.ts";
import { CACHE_ROOT, loadFlaggedDataset, openData } from "../cli/open_data.ts";
import { defaultCacheDir } from "../data/cache/format.ts";

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "tasks_errors_" }));
const PNG = encodePngGray({ width: 4, height: 4, data: new Uint8Array(16).fill(90) });

// Fixture folders: empty, a bad CSV header, a CSV row through a symlink out of the root, and
// a folder layout whose images are all unreadable.
const EMPTY = join(tmp, "empty"), BADCSV = join(tmp, "badcsv"), LINKED = join(tmp, "linked");
const JUNK = join(tmp, "junk");
await Deno.mkdir(EMPTY);
await put(join(BADCSV, "labels.csv"), "name,value\na.png,1\n");
await put(join(LINKED, "a.png"), PNG);
await put(join(LINKED, "labels.csv"), "path,label\na.png,1\nlink.png,0\n");
await put(join(tmp, "secret.png"), PNG);
{
  const { code } = await new Deno.Command("python3", {
    args: [
      "-c",
      "import os,sys; os.symlink(sys.argv[1], sys.argv[2])",
      join(tmp, "secret.png"),
      join(LINKED, "link.png"),
    ],
  }).output();
  assertEquals(code, 0, "symlink made");
}
for (const cls of ["0_a", "1_b"]) {
  for (let i = 0; i < 3; i++) await put(join(JUNK, cls, `${i}.png`), "not a png");
}
// ±1 labels (refused under the default U-Ones) and a second, 0/1 CSV, over unreadable images: a
// run that gets past the labels stops at the cache, so which message comes says which labels
// the task read.
const PM1 = join(tmp, "pm1");
await put(join(PM1, "labels.csv"), "path,label,patient\na.png,1,p1\nb.png,-1,p2\n");
await put(join(PM1, "other.csv"), "path,label,patient\na.png,1,p1\nb.png,0,p2\n");
for (const f of ["a.png", "b.png"]) await put(join(PM1, f), "not a png");

// A CSV of 20 readable images and one unreadable (4.8%: within the default 5% limit).
const GOOD = join(tmp, "good");
{
  const rows = ["path,label,patient"];
  for (let i = 0; i < 20; i++) {
    await put(join(GOOD, `g${i}.png`), PNG);
    rows.push(`g${i}.png,${i % 2},p${i}`);
  }
  await put(join(GOOD, "bad.png"), "not a png");
  rows.push("bad.png,0,p99");
  await put(join(GOOD, "labels.csv"), rows.join("\n") + "\n");
}

/** Runs `fn` with the working folder at the temp folder (the default runs/cache lies there). */
async function inTmp<T>(fn: () => Promise<T>): Promise<T> {
  const cwd = Deno.cwd();
  Deno.chdir(tmp);
  try {
    return await fn();
  } finally {
    Deno.chdir(cwd);
  }
}

// A pretraining run folder as deno task pretrain leaves it (a resnet18 backbone, left at zero),
// one without its backbone, and a backbone file that is not one.
const PT = join(tmp, "pt"), NOPT = join(tmp, "nopt"), JUNKST = join(tmp, "junk.safetensors");
await Deno.mkdir(NOPT);
await put(JUNKST, "not safetensors");
{
  const net = buildBackbone(cpuBackend, "resnet18", { numClasses: 1, inChannels: 1, init: false });
  await Deno.mkdir(PT);
  await exportBackbone(net, join(PT, "backbone.safetensors"), {});
}

/** Runs main(args) through runMain; returns the one line printed. */
async function failure(main: (a: string[]) => Promise<void>, args: string[]): Promise<string> {
  const printed: unknown[] = [];
  let code = 0;
  await runMain(() => main(args), { error: (...d) => printed.push(...d), exit: (c) => (code = c) });
  assertEquals(code, 1, `${args.join(" ")}: exit code`);
  assertEquals(printed.length, 1, `${args.join(" ")}: printed ${printed.length} things`);
  const line = printed[0];
  assert(typeof line === "string", `${args.join(" ")}: not a one-line message: ${line}`);
  assert(!line.includes("\n") && line.startsWith("error: "), `${args.join(" ")}: ${line}`);
  return line;
}

const out = (name: string) => `--out=${join(tmp, "runs", name)}`;

const CASES: [string, (a: string[]) => Promise<void>, string[], RegExp][] = [
  [
    "pretrain",
    pretrainMain,
    ["--data=/nonexistent/cxr"],
    /\/nonexistent\/cxr: dataset folder not found/,
  ],
  ["pretrain", pretrainMain, [`--data=${EMPTY}`], /no dataset layout recognised/],
  [
    "pretrain",
    pretrainMain,
    [`--data=${BADCSV}`],
    /labels\.csv: expected a header with a path column/,
  ],
  ["pretrain", pretrainMain, [`--data=${LINKED}`], /labels\.csv: row 3: refused path "link\.png"/],
  ["pretrain", pretrainMain, [`--data=${EMPTY}`, "--kind=dicom"], /--kind must be one of/],
  ["pretrain", pretrainMain, ["--backbone=vgg"], /vgg/],
  ["pretrain", pretrainMain, ["--optimizer=lamb"], /--optimizer must be adam or sgd/],
  ["pretrain", pretrainMain, ["--augment=heavy"], /--augment must be/],
  [
    "pretrain",
    pretrainMain,
    ["--rotate-interp=bicubic"],
    /--rotate-interp must be nearest or bilinear, got "bicubic"/,
  ],
  ["finetune", finetuneMain, ["--init=moco"], /--init moco needs --weights/],
  [
    "finetune",
    finetuneMain,
    ["--init=imagenet", "--weights=/nonexistent.safetensors"],
    /not found/,
  ],
  ["finetune", finetuneMain, ["--protocol=full"], /--protocol must be linear or e2e/],
  // The weights are read before the data (nonexistent here): the message is about them.
  [
    "finetune",
    finetuneMain,
    ["--init=moco", `--weights=${PT}`, "--backbone=resnet34", "--data=/nonexistent/cxr"],
    /--weights: MoCo backbone .*pt\/backbone\.safetensors lack 80 tensors .* of --backbone resnet34: pass/,
  ],
  [
    "finetune",
    finetuneMain,
    ["--init=moco", `--weights=${NOPT}`, "--data=/nonexistent/cxr"],
    /--weights .*nopt: .*nopt\/backbone\.safetensors not found; pass a finished pretraining run/,
  ],
  ["finetune", finetuneMain, [`--data=${EMPTY}`], /no dataset layout recognised/],
  ["experiment", experimentMain, ["--inits=random,foo"], /--inits: "foo"/],
  ["experiment", experimentMain, ["--protocols=full"], /--protocols: "full"/],
  ["experiment", experimentMain, ["--data=/nonexistent/cxr"], /dataset folder not found/],
  // --moco: a pretraining run folder stands for its backbone.safetensors, checked (a dry run too)
  // before the data is read or anything runs.
  ...[[], ["--dry-run"]].flatMap((
    dry,
  ): [string, (a: string[]) => Promise<void>, string[], RegExp][] => [
    [
      "experiment",
      experimentMain,
      [`--moco=${NOPT}`, "--data=/nonexistent/cxr", ...dry],
      /^error: --moco .*nopt: .*nopt\/backbone\.safetensors not found; pass a finished pretraining/,
    ],
    [
      "experiment",
      experimentMain,
      [`--moco=${PT}`, "--backbone=resnet50", "--data=/nonexistent/cxr", ...dry],
      /^error: --moco .*pt\/backbone\.safetensors does not fit --backbone resnet50 \(.*\): pass/,
    ],
    [
      "experiment",
      experimentMain,
      [`--moco=${JUNKST}`, "--data=/nonexistent/cxr", ...dry],
      /^error: --moco: cannot read init weights .*junk\.safetensors/,
    ],
  ]),
  // The folder resolves to a backbone that fits: the run goes on to the data.
  [
    "experiment",
    experimentMain,
    [`--moco=${PT}`, "--data=/nonexistent/cxr"],
    /dataset folder not found/,
  ],
  [
    "experiment",
    experimentMain,
    [`--moco=${PT}`, "--pretrain-seeds=3"],
    /--moco gives one backbone, but --pretrain-seeds 3 .*: pass --pretrain-seeds 1/,
  ],
  ["prepare", prepareMain, ["--data=/nonexistent/cxr"], /dataset folder not found/],
  ["prepare", prepareMain, [`--data=${LINKED}`], /refused path "link\.png": .*symbolic link/],
  ["prepare", prepareMain, ["--kind=dicom"], /--kind must be one of/],
  ["prepare", prepareMain, [`--data=${EMPTY}`, "--uncertainty=maybe"], /--uncertainty must be/],
  [
    "prepare",
    prepareMain,
    [`--data=${JUNK}`, "--workers=0"],
    /6 of 6 images are unreadable \(limit 5\.0%\)/,
  ],
  ["synth", synthMain, ["--kind=xray"], /--kind must be chexpert, shenzhen or both/],
  // The label and patient flags, in every task that opens data.
  ...([
    ["pretrain", pretrainMain],
    ["finetune", finetuneMain],
    ["experiment", experimentMain],
    ["prepare", prepareMain],
  ] as const).flatMap((
    [task, main],
  ): [string, (a: string[]) => Promise<void>, string[], RegExp][] => [
    [task, main, ["--uncertainty=maybe"], /--uncertainty must be one of ones, zeros, ignore/],
    [
      task,
      main,
      ["--patient-pattern=(person"],
      /--patient-pattern "\(person" is not a valid regular/,
    ],
    [task, main, ["--patient-pattern="], /--patient-pattern needs a regular expression/],
    [task, main, ["--csv=a.csv", "--kind=chexpert"], /--csv .* cannot go with --kind chexpert/],
    [
      task,
      main,
      [`--data=${PM1}`, "--uncertainty=zeros", "--patient-pattern=^(nobody\\d+)"],
      /--patient-pattern "\^\(nobody\\d\+\)" matches none of the 2 images \(tried on their paths/,
    ],
    [task, main, [`--data=${PM1}`], /labels\.csv: column "label" holds only 1 and -1/],
  ]),
];

for (const [task, main, args, want] of CASES) {
  Deno.test(`${task} ${args.join(" ")}: one line, exit 1`, async () => {
    // prepare writes where the trainers read (runs/cache, here under the temp folder): no --out
    const line = main === prepareMain
      ? await inTmp(() => failure(main, args))
      : await failure(main, [...args, out(task)]);
    assert(want.test(line), `${line} !~ ${want}`);
  });
}

Deno.test("synth: --out outside runs/ is refused before anything is written", async () => {
  const line = await failure(synthMain, ["--out=/etc/moco-cache"]);
  assert(/may not write \/etc\/moco-cache.*pass --out runs\/<name>/.test(line), line);
});

Deno.test("prepare: an --out other than the trainers' cache folder is refused before the dataset is read", async () => {
  // The dataset does not exist: were it loaded first, the message would be about it.
  for (const dir of ["/etc/moco-cache", join(tmp, "runs", "mycache"), "runs/cache/mine"]) {
    const line = await inTmp(() =>
      failure(prepareMain, ["--data=/nonexistent/cxr", `--out=${dir}`])
    );
    assertEquals(
      line,
      `error: --out ${dir}: the trainers read caches only from runs/cache/, where prepare ` +
        `writes them; drop --out`,
    );
  }
  // --out runs/cache is where it writes anyway: on to the dataset.
  const line = await inTmp(() =>
    failure(prepareMain, ["--data=/nonexistent/cxr", "--out=runs/cache"])
  );
  assert(/dataset folder not found/.test(line), line);
});

// A batch larger than the images pretraining draws from: said once the images are counted, before
// the GPU is set up and the plan's steps are timed (it came after ~12 s of timing, naming no flag).
Deno.test("pretrain and experiment: a --batch over the pretraining images names the batch that fits", async () => {
  const quiet = console.log;
  console.log = () => {};
  try {
    for (const main of [pretrainMain, experimentMain]) {
      const t0 = performance.now();
      const line = await inTmp(() =>
        failure(main, [`--data=${GOOD}`, "--batch=64", "--split-bn=4", "--out=runs/big"])
      );
      assert(
        /^error: --batch 64 is more than the 15 (training|pretraining) image\(s\): pass --batch 12 or less \(a multiple of --split-bn 4\)$/
          .test(line),
        line,
      );
      assert(performance.now() - t0 < 60_000, "not after timing steps"); // (a guard, not a timing)
    }
    // the default BN sub-batch (16) is itself more than the 15 images
    const line = await inTmp(() => failure(pretrainMain, [`--data=${GOOD}`, "--out=runs/big"]));
    assert(
      line.endsWith(
        "pass --batch 8 --split-bn 8 or less (--split-bn, the BN sub-batch, is 16 now)",
      ),
      line,
    );
  } finally {
    console.log = quiet;
  }
});

Deno.test("prepare: the cache is the one the trainers open at their default --size, and it says so", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...d: unknown[]) => printed.push(d.join(" "));
  try {
    await inTmp(() => prepareMain([`--data=${GOOD}`, "--workers=0"]));
  } finally {
    console.log = log;
  }
  const size = pretrainConfigFrom({}).imageSize;
  assertEquals(size, 32);
  const ds = await loadFlaggedDataset({ root: GOOD });
  const dir = defaultCacheDir(CACHE_ROOT, ds, { size });
  assert(/-36-/.test(dir), dir);
  const last = printed[printed.length - 1];
  assertEquals(
    last,
    `pretrain, finetune and experiment read this cache at --size 32 (their default, --preset ` +
      `cpu-demo) on this --data: they find it in ${dir}`,
  );
  // A trainer's open at its default size reuses it (no rebuild).
  const created = JSON.parse(await Deno.readTextFile(join(tmp, dir, "index.json"))).created;
  const logs: string[] = [];
  const opened = await inTmp(() =>
    openData({ data: GOOD, imageSize: size, inChannels: 1, log: (m) => logs.push(m) })
  );
  assertEquals([opened.cache.index.created, logs], [created, []]);
});

Deno.test("prepare: --task (as the trainers) and --tasks alike; --size below the trainers' 16 with their message", async () => {
  for (const flag of ["--task", "--tasks"]) {
    const line = await inTmp(() => failure(prepareMain, [`--data=${GOOD}`, `${flag}=nope`]));
    assert(/^error: --task "nope": .*good has no such label; its labels: label/.test(line), line);
  }
  const both = await inTmp(() =>
    failure(prepareMain, [`--data=${GOOD}`, "--task=label", "--tasks=nope"])
  );
  assert(/--task and --tasks are the same flag/.test(both), both);
  for (const size of ["8", "2000"]) {
    const mine = await inTmp(() => failure(prepareMain, [`--size=${size}`]));
    const theirs = await failure(pretrainMain, [`--size=${size}`, out("size")]);
    assertEquals(mine, theirs);
    assertEquals(mine, `error: --size must be an integer from 16 to 1024, got "${size}"`);
  }
});

Deno.test("--task naming a label the data lacks: one line listing its labels (CSV and folder layouts)", async () => {
  for (const main of [pretrainMain, finetuneMain, experimentMain]) {
    for (const [data, labels] of [[GOOD, "label"], [JUNK, "1_b"]]) {
      const line = await failure(main, [`--data=${data}`, "--task=nope", out(`task-${main.name}`)]);
      assertEquals(
        line,
        `error: --task "nope": ${data} has no such label; its labels: ${labels} (pass one of ` +
          `them, or drop --task)`,
      );
    }
  }
});

Deno.test("--max-bad holds for a cache built before under a looser limit", async () => {
  await inTmp(async () => {
    // Built by prepare under the default 5% (1 of 21 unreadable) ...
    const log = console.log;
    console.log = () => {};
    try {
      await prepareMain([`--data=${GOOD}`, "--workers=0"]);
    } finally {
      console.log = log;
    }
    // ... then opened with --max-bad 0: refused as a fresh build would be.
    for (const main of [pretrainMain, finetuneMain]) {
      const line = await failure(main, [`--data=${GOOD}`, "--max-bad=0", out(`mb-${main.name}`)]);
      assert(/good: 1 of 21 images are unreadable \(limit 0\.0%\)/.test(line), line);
    }
  });
});

Deno.test("an --out that is a file, or lies under one: one line naming --out, before the data", async () => {
  const file = join(tmp, "a-file");
  await Deno.writeTextFile(file, "x");
  for (const main of [pretrainMain, finetuneMain, experimentMain]) {
    for (const o of [file, join(file, "run")]) {
      const line = await failure(main, ["--data=/nonexistent/cxr", `--out=${o}`]);
      assert(
        line.startsWith(`error: --out ${o} `) && /is a file, not a folder/.test(line),
        `${main.name}: ${line}`,
      );
    }
  }
});

Deno.test("pretrain --resume with other settings or data: refused before the data is cached", async () => {
  const run = join(tmp, "runs", "resume-check");
  await Deno.mkdir(run, { recursive: true });
  await Deno.writeTextFile(join(run, "checkpoint.safetensors"), "not read before the refusal");
  const saved = pretrainConfigFrom({});
  await Deno.writeTextFile(join(run, "config.json"), JSON.stringify(saved));
  // Other settings: refused before the (missing) data is even looked for.
  const lr = await failure(pretrainMain, [
    "--resume",
    "--lr=3e-4",
    "--data=/nonexistent/cxr",
    `--out=${run}`,
  ]);
  assert(
    /checkpoint\.safetensors was written with another configuration \(lr: saved 0\.0001, now 0\.0003\); rerun with the same flags/
      .test(lr),
    lr,
  );
  // Other data: refused once it is listed, before its cache is built (JUNK's images are all
  // unreadable: a build would end on them instead).
  const dataset = { kind: "csv", root: "/data/elsewhere", records: 6, hash: "0".repeat(64) };
  await Deno.writeTextFile(join(run, "config.json"), JSON.stringify({ ...saved, dataset }));
  const other = await inTmp(() =>
    failure(pretrainMain, ["--resume", `--data=${JUNK}`, `--out=${run}`])
  );
  assert(
    /trained on another dataset \(kind csv vs folder\); rerun with the same --data/.test(other),
    other,
  );
});

Deno.test("pretrain and finetune: too many unreadable images end with the message alone; --max-bad", async () => {
  // Relative paths (the default runs/cache) resolve under the temp folder for this test.
  const cwd = Deno.cwd();
  Deno.chdir(tmp);
  try {
    for (const main of [pretrainMain, finetuneMain]) {
      const line = await failure(main, [`--data=${JUNK}`, out(`bad-${main.name}`)]);
      assert(/6 of 6 images are unreadable \(limit 5\.0%\)/.test(line), line);
      const strict = await failure(main, [`--data=${JUNK}`, "--max-bad=0.5", out("bad2")]);
      assert(/\(limit 50\.0%\)/.test(strict), strict);
    }
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("every task reads labels with --uncertainty and --csv (they reach the loader)", async () => {
  // Relative paths (the default runs/cache) resolve under the temp folder for this test.
  const cwd = Deno.cwd();
  Deno.chdir(tmp);
  try {
    for (const main of [pretrainMain, finetuneMain, experimentMain, prepareMain]) {
      const name = `labels-${main.name}`;
      // Past the labels (−1 read as 0, or the 0/1 CSV), the run stops at the unreadable images.
      for (
        const args of [
          [`--data=${PM1}`, "--uncertainty=zeros"],
          [`--csv=${join(PM1, "other.csv")}`],
          [`--data=${PM1}`, `--csv=${join(PM1, "other.csv")}`],
        ]
      ) {
        const line = await failure(
          main,
          main === prepareMain ? [...args, "--workers=0"] : [...args, out(name)],
        );
        assert(/2 of 2 images are unreadable/.test(line), `${main.name} ${args}: ${line}`);
      }
    }
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
