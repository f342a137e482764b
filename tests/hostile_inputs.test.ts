/**
 * Files a hostile or careless user hands the tasks, beyond the decoders' own fuzzing
 * (data_decoder_fuzz, data_hostile_images) and the checkpoint and safetensors checks: a named
 * pipe or a symbolic-link loop where an image or the CSV is expected, an image file too large
 * to read, a UTF-16 or binary CSV, a header naming the path or label column twice, labels
 * written in hex, a run folder's damaged run.json, a damaged kernel tuning cache, an integer
 * RGB stem in init weights. Each is one line naming the file (and row, column or tensor), never
 * a stack trace or a read that blocks forever.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, put } from "./helpers.ts";
import { runMain } from "../cli/run_main.ts";
import { explain } from "../cli/explain.ts";
import { openTuner } from "../cli/run_setup.ts";
import { main as prepareMain } from "../tasks/prepare.ts";
import { main as experimentMain } from "../tasks/experiment.ts";
import { encodePngGray } from "../data/png_encode.ts";
import { MAX_IMAGE_FILE_BYTES, readImageGray } from "../data/decode.ts";
import { loadCsvDataset } from "../data/generic.ts";
import { TuneCacheError, Tuner } from "../kernels/tuner.ts";
import type { Gpu } from "../kernels/device.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { buildBackbone } from "../train/backbones.ts";
import { loadStateDict } from "../model/state.ts";
import type { TensorData } from "../model/safetensors.ts";
import { TensorDtypeError } from "../model/tensor_check.ts";

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "hostile_inputs_" }));
const PNG = encodePngGray({ width: 4, height: 4, data: new Uint8Array(16).fill(90) });

/** Runs a Python snippet with arguments (symbolic links and pipes: Deno's need --allow-all). */
async function py(code: string, ...args: string[]): Promise<void> {
  const { code: rc, stderr } = await new Deno.Command("python3", { args: ["-c", code, ...args] })
    .output();
  assertEquals(rc, 0, new TextDecoder().decode(stderr));
}

/**
 * Opens the named pipe for writing after `ms` and writes `text`, if a reader is blocked on it by
 * then (nonblocking: no reader, nothing done). A regression that reads the pipe then reads `text`
 * and fails its test, instead of hanging the suite.
 */
function unblockLater(fifo: string, text: string, ms = 3000): Promise<Deno.CommandOutput> {
  return new Deno.Command("python3", {
    args: [
      "-c",
      "import os,sys,time; time.sleep(float(sys.argv[3]))\n" +
      "try: fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)\n" +
      "except OSError: sys.exit(0)\n" +
      "os.write(fd, sys.argv[2].encode()); os.close(fd)",
      fifo,
      text,
      String(ms / 1000),
    ],
  }).output();
}

/** Runs main(args) through runMain with the working folder at `cwd`; returns the one line. */
async function failure(
  main: (a: string[]) => Promise<void>,
  args: string[],
  cwd = tmp,
): Promise<string> {
  const printed: unknown[] = [];
  let code = 0;
  const was = Deno.cwd();
  Deno.chdir(cwd);
  const log = console.log;
  console.log = () => {};
  try {
    await runMain(() => main(args), {
      error: (...d) => printed.push(...d),
      exit: (c) => (code = c),
    });
  } finally {
    console.log = log;
    Deno.chdir(was);
  }
  assertEquals(code, 1, `${args.join(" ")}: exit code`);
  assertEquals(printed.length, 1, `${args.join(" ")}: printed ${printed.length} things`);
  const line = printed[0];
  assert(typeof line === "string", `${args.join(" ")}: not a one-line message: ${line}`);
  assert(!line.includes("\n") && line.startsWith("error: "), `${args.join(" ")}: ${line}`);
  return line;
}

/** A CSV dataset of `n` readable 4x4 images, one patient each, plus the `extra` rows. */
async function csvDataset(dir: string, n: number, extra: string[] = []): Promise<void> {
  const rows = ["path,label,patient"];
  for (let i = 0; i < n; i++) {
    await put(join(dir, `g${i}.png`), PNG);
    rows.push(`g${i}.png,${i % 2},p${i}`);
  }
  await put(join(dir, "labels.csv"), [...rows, ...extra].join("\n") + "\n");
}

Deno.test("a CSV row naming a symbolic-link loop is an unreadable image, not a crash", async () => {
  const dir = join(tmp, "loop");
  await csvDataset(dir, 4, ["loop1.png,1,px"]);
  await py(
    "import os,sys; os.symlink('loop2.png', sys.argv[1]); os.symlink('loop1.png', sys.argv[2])",
    join(dir, "loop1.png"),
    join(dir, "loop2.png"),
  );
  const ds = await loadCsvDataset({ root: dir, quiet: true });
  assertEquals(ds.records.length, 5);
  const line = await failure(prepareMain, [`--data=${dir}`, "--workers=0", "--max-bad=0"]);
  assert(
    /1 of 5 images are unreadable \(limit 0\.0%\); first: .*loop1\.png: unreadable \(Too many levels of symbolic links/
      .test(line),
    line,
  );
});

Deno.test("a path with a newline in it (a quoted CSV field) stays on one line in every message", async () => {
  const dir = join(tmp, "newline");
  await csvDataset(dir, 4, ['"two\nlines.png",1,px']);
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...d: unknown[]) => warned.push(d.join(" "));
  try {
    const line = await failure(prepareMain, [`--data=${dir}`, "--workers=0", "--max-bad=0"]);
    assert(!line.includes("\n") && line.includes("two\\nlines.png"), line);
    assertEquals(warned.length, 1, warned.join(" | "));
    assert(!warned[0].includes("\n") && warned[0].includes("two\\nlines.png"), warned[0]);
  } finally {
    console.warn = warn;
  }
});

Deno.test("a named pipe or a folder where an image is expected is refused from its stat, unread", async () => {
  const dir = join(tmp, "pipe");
  await csvDataset(dir, 4, ["pipe.png,1,px", "folder.png,0,py"]);
  await py("import os,sys; os.mkfifo(sys.argv[1])", join(dir, "pipe.png"));
  await Deno.mkdir(join(dir, "folder.png"));
  const writer = unblockLater(join(dir, "pipe.png"), "not a png");
  try {
    await assertRejects(
      () => readImageGray(join(dir, "pipe.png")),
      /pipe\.png: not a regular file \(a pipe, socket or device\)$/,
    );
    await assertRejects(
      () => readImageGray(join(dir, "folder.png")),
      /folder\.png: not a regular file \(a folder\)$/,
    );
    // the whole task, decoding on this thread: two bad images of six, named
    const line = await failure(prepareMain, [`--data=${dir}`, "--workers=0", "--max-bad=0.2"]);
    assert(
      /2 of 6 images are unreadable \(limit 20\.0%\); first: .*pipe\.png: not a regular file \(a pipe/
        .test(line),
      line,
    );
  } finally {
    await writer;
  }
});

Deno.test("an image file over the size limit is refused from its size, before a byte is read", async () => {
  const path = join(tmp, "huge.png");
  const f = await Deno.open(path, { write: true, create: true });
  await f.truncate(MAX_IMAGE_FILE_BYTES + 1); // sparse: nothing is written to the disk
  f.close();
  try {
    await assertRejects(
      () => readImageGray(path),
      /huge\.png: 1024 MiB, over the 1024 MiB limit for an image file/,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("Shenzhen: a folder where a clinical reading is expected is one line naming it", async () => {
  const dir = join(tmp, "shenzhen");
  for (const name of ["CHNCXR_0001_0.png", "CHNCXR_0002_1.png", "CHNCXR_0003_1.png"]) {
    await put(join(dir, name), PNG);
  }
  const txt = join(dir, "ClinicalReadings", "CHNCXR_0001_0.txt");
  await Deno.mkdir(txt, { recursive: true });
  assertEquals(
    await failure(prepareMain, [`--data=${dir}`, "--workers=0"]),
    `error: ${txt}: not a text file (a folder); a clinical reading is a .txt file: move it out ` +
      `of ClinicalReadings/`,
  );
});

Deno.test("--csv naming a named pipe, a folder, or a UTF-16 or binary file: one line", async () => {
  const dir = join(tmp, "csvs");
  await csvDataset(dir, 4);
  const fifo = join(dir, "pipe.csv");
  await py("import os,sys; os.mkfifo(sys.argv[1])", fifo);
  const writer = unblockLater(fifo, "path,label\n");
  try {
    const line = await failure(prepareMain, [`--data=${dir}`, `--csv=${fifo}`, "--workers=0"]);
    assertEquals(
      line,
      `error: ${fifo}: cannot read CSV (a pipe, socket or device, not a file); pass a CSV file`,
    );
  } finally {
    await writer;
  }
  const folder = join(dir, "sub");
  await Deno.mkdir(folder);
  assertEquals(
    await failure(prepareMain, [`--data=${dir}`, `--csv=${folder}`, "--workers=0"]),
    `error: ${folder}: cannot read CSV (a folder, not a file); pass a CSV file`,
  );
  // UTF-16 (with its byte-order mark, as Excel's "Unicode text"), and random bytes
  const utf16 = new Uint8Array([
    0xff,
    0xfe,
    ...[..."path,label\n"].flatMap((c) => [c.charCodeAt(0), 0]),
  ]);
  const binary = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 256);
  for (const [name, bytes] of [["utf16.csv", utf16], ["binary.csv", binary]] as const) {
    await put(join(dir, name), bytes);
    assertEquals(
      await failure(prepareMain, [`--data=${dir}`, `--csv=${join(dir, name)}`, "--workers=0"]),
      `error: ${join(dir, name)}: not a UTF-8 text CSV (it holds NUL bytes: UTF-16 or binary); ` +
        `save it as a UTF-8 CSV`,
    );
  }
});

Deno.test("a CSV header naming the path, label or patient column twice is refused naming it", async () => {
  const dir = join(tmp, "dupcols");
  await csvDataset(dir, 4);
  const cases: [string, string][] = [
    [
      "path,path,label\ng0.png,g1.png,1\ng2.png,g3.png,0\n",
      `column "path" appears twice in the header (columns 1 and 2)`,
    ],
    [
      "path,label,Label\ng0.png,1,0\ng1.png,0,1\n",
      `column "label" appears twice in the header (columns 2 and 3)`,
    ],
    [
      "Patient,path,label,patient\np0,g0.png,1,p9\np1,g1.png,0,p8\n",
      `column "Patient" appears twice in the header (columns 1 and 4)`,
    ],
  ];
  for (const [text, want] of cases) {
    const csv = join(dir, "dup.csv");
    await put(csv, text);
    await assertRejects(
      () => loadCsvDataset({ root: dir, csv, quiet: true }),
      new RegExp(
        `^${csv.replaceAll(".", "\\.")}: ${want.replace(/[()]/g, "\\$&")}; rename or drop one`,
      ),
    );
  }
  // another column repeated (not read) is no one's concern
  const csv = join(dir, "notes.csv");
  await put(csv, "path,label,note,note\ng0.png,1,a,b\ng1.png,0,c,d\n");
  assertEquals((await loadCsvDataset({ root: dir, csv, quiet: true })).records.length, 2);
});

Deno.test("CSV labels: decimals as written (1.0, +1, 1e0) read; hex or Infinity is a bad row", async () => {
  const dir = join(tmp, "labels");
  await csvDataset(dir, 8);
  const csv = join(dir, "odd.csv");
  await put(
    csv,
    "path,label,patient\ng0.png,1.0,p0\ng1.png,0.,p1\ng2.png,+1,p2\ng3.png,1e0,p3\n" +
      "g4.png, -1 ,p4\ng5.png,0x1,p5\ng6.png,0b1,p6\ng7.png,Infinity,p7\n",
  );
  const ds = await loadCsvDataset({ root: dir, csv, quiet: true, maxBadFraction: 0.5 });
  assertEquals(ds.records.map((r) => r.labels[0]), [1, 0, 1, 1, 1]);
  assertEquals(
    ds.badRows.map((b) => b.message.replace(/ \(.*/, "")),
    [
      'label "0x1" is not 1, 0, -1 or blank',
      'label "0b1" is not 1, 0, -1 or blank',
      'label "Infinity" is not 1, 0, -1 or blank',
    ],
  );
  // a CSV row naming the dataset root itself
  await put(csv, "path,label,patient\n.,1,p0\ng1.png,0,p1\n");
  await assertRejects(
    () => loadCsvDataset({ root: dir, csv, quiet: true }),
    /odd\.csv: row 2: refused path "\.": it is the dataset root itself, not an image$/,
  );
});

Deno.test("experiment: a damaged run.json in a run folder with finished cells is one line naming it", async () => {
  const data = join(tmp, "expdata");
  await csvDataset(data, 24);
  const run = join(tmp, "runs", "damaged");
  await put(join(run, "predictions", "x_random_y.json"), "{}");
  for (
    const [text, detail] of [
      ['{"inits": [', "Unexpected end of JSON input"],
      ["null", "it holds null, not an object"],
      ["[1]", "it holds a list, not an object"],
    ]
  ) {
    await put(join(run, "run.json"), text);
    const line = await failure(experimentMain, [
      `--data=${data}`,
      `--out=${run}`,
      "--batch=16", // within the 19 pretraining images
      "--dry-run",
    ]);
    assertEquals(
      line,
      `error: ${run}/run.json is damaged (${detail}); it records the settings of the run in its ` +
        `folder: restore it from a copy, or start a new run folder`,
    );
  }
});

/** A hardware adapter as the tuner sees it (it measures; its cache is read and written). */
const HARDWARE = {
  isSoftware: false,
  adapterInfo: { vendor: "v", architecture: "a", device: "d", description: "test" },
  describe: () => "a test adapter",
} as unknown as Gpu;

Deno.test("--tune-cache: a folder, or a record that is not one, is one line naming the file", async () => {
  const folder = join(tmp, "tune-folder");
  await Deno.mkdir(folder, { recursive: true });
  const file = join(tmp, "tune.json");
  const key = "v|a|d|test";
  for (
    const [path, text, want] of [
      [folder, null, `${folder} is a folder, not a tuning cache file`],
      [file, { version: 1, adapters: { [key]: { "mm:8x8": null } } }, `record "mm:8x8" of adapter`],
      [file, { version: 1, adapters: { [key]: { "mm:8x8": { ms: {} } } } }, "has no label"],
      [file, { version: 1, adapters: { [key]: 7 } }, `adapter "${key}" holds 7, not records`],
    ] as const
  ) {
    if (text !== null) await Deno.writeTextFile(file, JSON.stringify(text));
    const t = new Tuner(HARDWARE);
    let err: unknown = null;
    try {
      await t.load(path);
      t.nearestLabel("mm:8x9"); // what a damaged record crashed mid-run
    } catch (e) {
      err = e;
    }
    assert(err instanceof TuneCacheError, `${path}: ${err}`);
    const msg = explain(err);
    assert(msg !== null && msg.startsWith(`--tune-cache ${path}`) && msg.includes(want), `${msg}`);
  }
  // Through a task's set-up on a GPU that tunes: a cache file from an earlier run opens (it was
  // refused as "a file, not a folder"), a damaged one or a folder is one line, exit 1.
  const setUp = async (path: string) => {
    const printed: unknown[] = [];
    let code = 0;
    const log = console.log;
    console.log = () => {};
    try {
      await runMain(async () => void await openTuner({ ...HARDWARE } as Gpu, path), {
        error: (...d) => printed.push(...d),
        exit: (c) => (code = c),
      });
    } finally {
      console.log = log;
    }
    return [code, ...printed];
  };
  await Deno.writeTextFile(file, JSON.stringify({ version: 1, adapters: {} }));
  assertEquals(await setUp(file), [0]);
  assertEquals(await setUp(join(tmp, "new", "tune.json")), [0], "a cache not made yet");
  await Deno.writeTextFile(file, "{not json");
  assertEquals(await setUp(file), [
    1,
    `error: --tune-cache ${file} is not a tuning cache (invalid JSON); delete it to retune`,
  ]);
  assertEquals(await setUp(folder), [
    1,
    `error: --tune-cache ${folder} is a folder, not a file; pass a file path to --tune-cache`,
  ]);
  assertEquals(await setUp(join(file, "x.json")), [
    1,
    `error: --tune-cache ${join(file, "x.json")} lies under ${file}, which is a file, not a ` +
    `folder; pass another --tune-cache`,
  ]);
});

Deno.test("init weights: an integer (I64) RGB stem is refused naming the tensor, not as a shape", () => {
  const net = buildBackbone(cpuBackend, "resnet18", { numClasses: 1, inChannels: 1, init: false });
  const tensors = new Map<string, TensorData>();
  for (const e of net.stateDict()) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: [...e.shape],
      data: e.dtype === "I64" ? new BigInt64Array(n) : new Float32Array(n).fill(1),
    });
  }
  const [o, , kh, kw] = net.stateDict().find((e) => e.name === net.stemKey)!.shape;
  tensors.set(net.stemKey, {
    dtype: "I64",
    shape: [o, 3, kh, kw],
    data: new BigInt64Array(o * 3 * kh * kw),
  });
  let err: unknown = null;
  try {
    loadStateDict(net, tensors, { strict: false, source: "w.safetensors" });
  } catch (e) {
    err = e;
  }
  assert(err instanceof TensorDtypeError, String(err));
  assertEquals(
    (err as Error).message,
    `w.safetensors: tensor "${net.stemKey}" is an integer tensor (I64) where weights are floats`,
  );
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
