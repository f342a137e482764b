/**
 * Dataset loaders on small fixture trees written to /tmp in the real layouts: CheXpert (uncertain
 * and blank labels, lateral views, policies, renamed folders, bad rows, path traversal),
 * Shenzhen (clinical readings), folder-per-class and generic CSV, plus auto-detection.
 */
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { join } from "node:path";
import { CHEXPERT_OBSERVATIONS, loadChexpert } from "../data/chexpert.ts";
import { loadShenzhen, parseClinicalReading } from "../data/shenzhen.ts";
import { loadCsvDataset, loadFolder } from "../data/generic.ts";
import { detectKind, loadDataset, splitIndices } from "../data/load.ts";
import { encodePngGray } from "../data/png_encode.ts";
import { UnknownTaskError } from "../data/data_error.ts";

const PNG = encodePngGray({ width: 2, height: 2, data: new Uint8Array([0, 64, 128, 255]) });
const HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", ...CHEXPERT_OBSERVATIONS];

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_loaders_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function touch(path: string, bytes: Uint8Array = PNG): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, bytes);
}

/** A CheXpert CSV row: path, sex, age, view, projection and observation values by name. */
function row(path: string, view: string, proj: string, labels: Record<string, string>): string {
  return [path, "Female", "61", view, proj, ...CHEXPERT_OBSERVATIONS.map((o) => labels[o] ?? "")]
    .join(",");
}

const P = "CheXpert-v1.0-small";
const TRAIN_ROWS = [
  row(`${P}/train/patient00001/study1/view1_frontal.jpg`, "Frontal", "AP", {
    "Pleural Effusion": "1.0",
    "Cardiomegaly": "-1.0",
  }),
  row(`${P}/train/patient00001/study1/view2_lateral.jpg`, "Lateral", "", {
    "Pleural Effusion": "1.0",
  }),
  row(`${P}/train/patient00002/study1/view1_frontal.jpg`, "Frontal", "PA", {
    "Pleural Effusion": "-1.0",
  }),
  row(`${P}/train/patient00003/study1/view1_frontal.jpg`, "Frontal", "PA", { "Edema": "1.0" }),
  row(`${P}/train/patient00003/study2/view1_frontal.jpg`, "Frontal", "AP", {
    "Pleural Effusion": "0.0",
  }),
];
const VALID_ROWS = [
  row(`${P}/valid/patient64541/study1/view1_frontal.jpg`, "Frontal", "PA", {
    "Pleural Effusion": "1.0",
  }),
];

/** Writes a CheXpert tree under dir/<folder>; returns that folder. */
async function chexpert(
  dir: string,
  train = TRAIN_ROWS,
  valid = VALID_ROWS,
  folder = P,
): Promise<string> {
  const root = join(dir, folder);
  await Deno.mkdir(root, { recursive: true });
  await Deno.writeTextFile(join(root, "train.csv"), [HEADER.join(","), ...train].join("\n") + "\n");
  await Deno.writeTextFile(join(root, "valid.csv"), [HEADER.join(","), ...valid].join("\r\n"));
  for (const r of [...train, ...valid]) {
    const rel = r.split(",")[0];
    if (rel.includes("/") && !rel.includes("..")) {
      await touch(join(root, rel.split("/").slice(1).join("/")));
    }
  }
  return root;
}

Deno.test("CheXpert: frontal filter, U-ones default, blanks as zeros, patients, splits", async () => {
  await withDir(async (dir) => {
    const root = await chexpert(dir);
    const ds = await loadChexpert({ root });
    assertEquals(ds.kind, "chexpert");
    assertEquals(ds.tasks, ["Pleural Effusion"]);
    assertEquals(ds.records.length, 5);
    assertEquals(ds.records.map((r) => Array.from(r.labels)[0]), [1, 1, 0, 0, 1]);
    assertEquals(ds.records.map((r) => Array.from(r.mask)[0]), [1, 1, 1, 1, 1]);
    assertEquals(ds.records.map((r) => r.patient), [
      "patient00001",
      "patient00002",
      "patient00003",
      "patient00003",
      "patient64541",
    ]);
    assertEquals(ds.records.map((r) => r.split), ["train", "train", "train", "train", "valid"]);
    assertEquals(ds.records[0].path, join(root, "train/patient00001/study1/view1_frontal.jpg"));
    assertEquals(ds.records[0].meta, {
      sex: "Female",
      age: 61,
      view: "Frontal",
      projection: "AP",
      study: "study1",
    });
    assertEquals(splitIndices(ds, "valid"), [4]);
    // The parent folder works as root too, with the same absolute paths.
    const viaParent = await loadChexpert({ root: dir });
    assertEquals(viaParent.records.map((r) => r.path), ds.records.map((r) => r.path));
  });
});

Deno.test("CheXpert: uncertainty and blank policies, task sets, lateral views", async () => {
  await withDir(async (dir) => {
    const root = await chexpert(dir);
    const ignore = await loadChexpert({ root, uncertainty: "ignore", blank: "ignore" });
    assertEquals(ignore.records.map((r) => [r.labels[0], r.mask[0]]), [
      [1, 1],
      [0, 0], // uncertain
      [0, 0], // blank
      [0, 1],
      [1, 1],
    ]);
    const zeros = await loadChexpert({ root, uncertainty: "zeros" });
    assertEquals(zeros.records.map((r) => r.labels[0]), [1, 0, 0, 0, 1]);
    const comp = await loadChexpert({
      root,
      tasks: "competition",
      uncertainty: { Cardiomegaly: "ignore" },
    });
    assertEquals(comp.tasks, [
      "Atelectasis",
      "Cardiomegaly",
      "Consolidation",
      "Edema",
      "Pleural Effusion",
    ]);
    assertEquals([comp.records[0].labels[1], comp.records[0].mask[1]], [0, 0]); // Cardiomegaly -1
    assertEquals([comp.records[2].labels[3], comp.records[2].mask[3]], [1, 1]); // Edema
    assertEquals((await loadChexpert({ root, tasks: "all" })).tasks.length, 14);
    assertEquals((await loadChexpert({ root, tasks: ["edema", "Pleural Effusion"] })).tasks, [
      "Edema",
      "Pleural Effusion",
    ]);
    await assertRejects(
      () => loadChexpert({ root, tasks: "Pleural Effusions" }),
      /unknown CheXpert task/,
    );
    const all = await loadChexpert({ root, frontalOnly: false });
    assertEquals(all.records.length, 6);
    assertEquals(all.records[1].meta?.view, "Lateral");
  });
});

Deno.test("CheXpert: a renamed dataset folder still resolves the CSV paths", async () => {
  await withDir(async (dir) => {
    const root = await chexpert(dir, TRAIN_ROWS, VALID_ROWS, "my-copy");
    const ds = await loadChexpert({ root });
    assertEquals(ds.records[0].path, join(root, "train/patient00001/study1/view1_frontal.jpg"));
  });
});

Deno.test("CheXpert: malformed rows are skipped and reported with file, row and column", async () => {
  await withDir(async (dir) => {
    const many = Array.from(
      { length: 40 },
      (_, i) =>
        row(
          `${P}/train/patient${String(10 + i).padStart(5, "0")}/study1/view1_frontal.jpg`,
          "Frontal",
          "PA",
          {
            "Pleural Effusion": "1.0",
          },
        ),
    );
    const bad = row(`${P}/train/patient00099/study1/view1_frontal.jpg`, "Frontal", "PA", {
      "Pleural Effusion": "2.0",
    });
    const root = await chexpert(dir, [...many, bad, "too,few,fields"]);
    const ds = await loadChexpert({ root, quiet: true, maxBadFraction: 0.1 });
    assertEquals(ds.records.length, 41);
    assertEquals(ds.badRows.map((b) => [b.row, b.column]), [[42, "Pleural Effusion"], [
      43,
      undefined,
    ]]);
    assert(ds.badRows[0].file.endsWith("train.csv"));
    assert(/not 1\.0, 0\.0, -1\.0 or blank/.test(ds.badRows[0].message));
    await assertRejects(
      () => loadChexpert({ root, quiet: true, maxBadFraction: 0.01 }),
      /2 of 43 rows are malformed.*train\.csv: row 42, column "Pleural Effusion"/,
    );
    await assertRejects(
      () => loadChexpert({ root, strict: true }),
      /train\.csv: row 42, column "Pleural Effusion": label "2\.0"/,
    );
  });
});

Deno.test("CheXpert: paths escaping the root are refused with the row number", async () => {
  await withDir(async (dir) => {
    const esc = row(`${P}/../../etc/passwd`, "Frontal", "PA", {});
    await assertRejects(
      async () => await loadChexpert({ root: await chexpert(dir, [TRAIN_ROWS[0], esc]) }),
      /train\.csv: row 3: refused path .*escapes the dataset root/,
    );
  });
  await withDir(async (dir) => {
    const abs = row(`/etc/passwd`, "Frontal", "PA", {});
    await assertRejects(
      async () => await loadChexpert({ root: await chexpert(dir, [abs]) }),
      /row 2: refused absolute path/,
    );
  });
});

Deno.test("CheXpert: wrong layout or columns say what was expected", async () => {
  await withDir(async (dir) => {
    await assertRejects(
      () => loadChexpert({ root: dir }),
      /not a CheXpert dataset: expected train\.csv/,
    );
    await Deno.writeTextFile(join(dir, "train.csv"), "Path,Label\nx.jpg,1\n");
    await assertRejects(
      () => loadChexpert({ root: dir }),
      /missing column\(s\) Pleural Effusion; expected Path, Sex, Age/,
    );
  });
});

Deno.test("Shenzhen: labels from file names, clinical readings, one patient per image", async () => {
  await withDir(async (dir) => {
    await touch(join(dir, "CXR_png", "CHNCXR_0001_0.png"));
    await touch(join(dir, "CXR_png", "CHNCXR_0002_1.png"));
    await touch(join(dir, "CXR_png", "Thumbs.db"), new Uint8Array(1));
    await Deno.mkdir(join(dir, "ClinicalReadings"));
    await Deno.writeTextFile(
      join(dir, "ClinicalReadings", "CHNCXR_0002_1.txt"),
      "Male 35yrs\n\nPTB in the left upper field\n",
    );
    const ds = await loadShenzhen({ root: dir });
    assertEquals(ds.tasks, ["Tuberculosis"]);
    assertEquals(ds.records.map((r) => [r.patient, r.labels[0]]), [["CHNCXR_0001", 0], [
      "CHNCXR_0002",
      1,
    ]]);
    assertEquals(ds.records[1].meta, {
      sex: "Male",
      age: 35,
      reading: "PTB in the left upper field",
    });
    assertEquals(await detectKind(dir), "shenzhen");
  });
  assertEquals(parseClinicalReading("female 62yr\nnormal"), {
    sex: "Female",
    age: 62,
    reading: "normal",
  });
  await withDir(async (dir) => {
    await assertRejects(() => loadShenzhen({ root: dir }), /expected CHNCXR_####_0\.png/);
  });
});

Deno.test("folder per class: splits, binary task, NIH-style patient ids, multi-class", async () => {
  await withDir(async (dir) => {
    await touch(join(dir, "train", "0_normal", "00000001_000.png"));
    await touch(join(dir, "train", "0_normal", "00000001_001.png"));
    await touch(join(dir, "train", "1_abnormal", "00000002_000.png"));
    await touch(join(dir, "test", "1_abnormal", "00000003_000.jpg"));
    await touch(join(dir, "test", "1_abnormal", "notes.txt"));
    const ds = await loadFolder({ root: dir });
    assertEquals(ds.tasks, ["1_abnormal"]);
    assertEquals(
      ds.records.map((r) => [r.split, r.patient, r.labels[0]]),
      [["test", "00000003", 1], ["train", "00000001", 0], ["train", "00000001", 0], [
        "train",
        "00000002",
        1,
      ]],
    );
    assertEquals((await loadFolder({ root: dir, positive: "0_normal" })).tasks, ["0_normal"]);
  });
  await withDir(async (dir) => {
    for (const c of ["a", "b", "c"]) await touch(join(dir, c, `${c}1.png`));
    const ds = await loadFolder({ root: dir });
    assertEquals(ds.tasks, ["a", "b", "c"]);
    assertEquals(ds.records.map((r) => Array.from(r.labels)), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    assertEquals(ds.records[0].patient, "a1");
  });
  await withDir(async (dir) => {
    await touch(join(dir, "only", "x.png"));
    await assertRejects(
      () => loadFolder({ root: dir }),
      /expected a folder per class \(at least two/,
    );
  });
});

Deno.test("generic CSV: path,label,patient,split; text labels; traversal refused", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "labels.csv"),
      "path,label,label_name,split,patient_id\n" +
        'img/a.png,0,normal,train,p1\nimg/b.png,1,sick,test,p2\n"img/c,d.png",-1,unsure,valid,\n',
    );
    const ds = await loadCsvDataset({ root: dir, quiet: true });
    assertEquals(ds.tasks, ["label"]);
    assertEquals(
      ds.records.map((r) => [r.path, r.patient, r.labels[0], r.mask[0], r.split]),
      [
        [join(dir, "img/a.png"), "p1", 0, 1, "train"],
        [join(dir, "img/b.png"), "p2", 1, 1, "test"],
        [join(dir, "img/c,d.png"), "c,d", 1, 1, "valid"],
      ],
    );
    assertEquals(await detectKind(dir), "csv");
    const text = await loadCsvDataset({
      root: dir,
      labelColumns: ["label_name"],
      positive: "sick",
    });
    assertEquals(text.records.map((r) => r.labels[0]), [0, 1, 0]);
    await Deno.writeTextFile(join(dir, "escape.csv"), "path,label\nok.png,1\n../../x.png,0\n");
    await assertRejects(
      () => loadCsvDataset({ csv: join(dir, "escape.csv") }),
      /escape\.csv: row 3: refused path "\.\.\/\.\.\/x\.png"/,
    );
    await Deno.writeTextFile(join(dir, "bad.csv"), "path,label\nok.png,yes\n");
    await assertRejects(
      () => loadCsvDataset({ csv: join(dir, "bad.csv"), quiet: true }),
      /bad\.csv: row 2, column "label": label "yes" is not 1, 0, -1 or blank/,
    );
    await Deno.writeTextFile(join(dir, "nohead.csv"), "a,b\n1,2\n");
    await assertRejects(
      () => loadCsvDataset({ csv: join(dir, "nohead.csv") }),
      /expected a header with a path column/,
    );
  });
});

Deno.test("loadDataset: auto-detects each layout and explains an unknown one", async () => {
  await withDir(async (dir) => {
    await chexpert(dir);
    assertEquals((await loadDataset({ root: dir })).kind, "chexpert");
    assertEquals((await loadDataset({ root: join(dir, P), tasks: "Edema" })).tasks, ["Edema"]);
  });
  await withDir(async (dir) => {
    await touch(join(dir, "x", "a.png"));
    await touch(join(dir, "y", "b.png"));
    assertEquals((await loadDataset({ root: dir })).kind, "folder");
  });
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "readme.txt"), "nothing here");
    await assertRejects(
      () => loadDataset({ root: dir }),
      /no dataset layout recognised; expected one of/,
    );
    await assertRejects(
      () => loadDataset({ root: join(dir, "missing") }),
      /dataset folder not found/,
    );
  });
});

Deno.test("loadDataset --task on CSV, folder and Shenzhen layouts: kept, reordered or refused", async () => {
  await withDir(async (dir) => {
    // A CSV: its one label column; a name it lacks is refused listing the labels it has.
    await touch(join(dir, "csv", "a.png"));
    await touch(join(dir, "csv", "b.png"));
    await Deno.writeTextFile(join(dir, "csv", "labels.csv"), "path,label\na.png,1\nb.png,0\n");
    const csv = join(dir, "csv");
    for (const tasks of [undefined, "default", "all", "label", "LABEL"]) {
      assertEquals((await loadDataset({ root: csv, tasks, quiet: true })).tasks, ["label"]);
    }
    let err: unknown = null;
    try {
      await loadDataset({ root: csv, tasks: "nope", quiet: true });
    } catch (e) {
      err = e;
    }
    assert(err instanceof UnknownTaskError, String(err));
    assertEquals([err.missing, err.tasks], [["nope"], ["label"]]);
    assert(/no label "nope"; its labels: label/.test(err.message), err.message);
    // A folder per class, several classes: the names given, in their order.
    for (const c of ["a", "b", "c"]) await touch(join(dir, "folder", c, `${c}1.png`));
    const folder = join(dir, "folder");
    const two = await loadDataset({ root: folder, tasks: "c,A", quiet: true });
    assertEquals(two.tasks, ["c", "a"]);
    assertEquals(two.records.map((r) => [Array.from(r.labels), Array.from(r.mask)]), [
      [[0, 1], [1, 1]],
      [[0, 0], [1, 1]],
      [[1, 0], [1, 1]],
    ]);
    await assertRejects(
      () => loadDataset({ root: folder, tasks: "a,Pleural Effusion", quiet: true }),
      /no label "Pleural Effusion"; its labels: a, b, c/,
    );
    // Shenzhen: its one task.
    await touch(join(dir, "sz", "CHNCXR_0001_0.png"));
    await touch(join(dir, "sz", "CHNCXR_0002_1.png"));
    const sz = await loadDataset({ root: join(dir, "sz"), quiet: true });
    assertEquals(
      (await loadDataset({ root: join(dir, "sz"), tasks: sz.tasks[0] })).tasks,
      sz.tasks,
    );
    await assertRejects(
      () => loadDataset({ root: join(dir, "sz"), tasks: "nope" }),
      new RegExp(`no label "nope"; its labels: ${sz.tasks[0]}`),
    );
  });
});
