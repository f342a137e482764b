/**
 * Each task run through runMain on bad inputs a user can make (missing or unrecognised data,
 * bad names, bad CSVs, a symlink out of the root, too many unreadable images, --out outside the
 * sandbox): exactly one line on stderr, exit code 1, never a stack trace. Data problems are
 * found before the GPU is set up; prepare and synth check --out before loading anything.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers.ts";
import { runMain } from "../cli/run_main.ts";
import { main as pretrainMain } from "../tasks/pretrain.ts";
import { main as finetuneMain } from "../tasks/finetune.ts";
import { main as experimentMain } from "../tasks/experiment.ts";
import { main as prepareMain } from "../tasks/prepare.ts";
import { main as synthMain } from "../tasks/synth.ts";
import { encodePngGray } from "../data/png_encode.ts";

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "tasks_errors_" }));
const PNG = encodePngGray({ width: 4, height: 4, data: new Uint8Array(16).fill(90) });

async function put(path: string, bytes: Uint8Array | string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
  else await Deno.writeFile(path, bytes);
}

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
  ["finetune", finetuneMain, [`--data=${EMPTY}`], /no dataset layout recognised/],
  ["experiment", experimentMain, ["--inits=random,foo"], /--inits: "foo"/],
  ["experiment", experimentMain, ["--protocols=full"], /--protocols: "full"/],
  ["experiment", experimentMain, ["--data=/nonexistent/cxr"], /dataset folder not found/],
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
    const line = await failure(main, [...args, out(task)]);
    assert(want.test(line), `${line} !~ ${want}`);
  });
}

Deno.test("prepare and synth: --out outside runs/ is refused before the dataset is read", async () => {
  // The dataset does not exist: were it loaded first, the message would be about it.
  for (
    const [main, extra] of [[prepareMain, ["--data=/nonexistent/cxr"]], [synthMain, []]] as const
  ) {
    const line = await failure(main, [...extra, "--out=/etc/moco-cache"]);
    assert(/may not write \/etc\/moco-cache.*pass --out runs\/<name>/.test(line), line);
  }
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
          [...args, "--workers=0", out(name)].filter((a) =>
            main === prepareMain || a !== "--workers=0"
          ),
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
