/**
 * How the loaders read labels and patients from real-world files: patient columns by alias,
 * patients from the paths when a CSV names none (MIMIC-like view names, flat folders), the
 * patient pattern, images listed twice, text labels, ±1 labels, rows with extra fields, class
 * folders that differ in case or name the negative class, and Shenzhen's clinical readings.
 */
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { join } from "node:path";
import { CHEXPERT_OBSERVATIONS, loadChexpert } from "../data/chexpert.ts";
import { loadShenzhen, parseClinicalReading } from "../data/shenzhen.ts";
import { loadCsvDataset, loadFolder } from "../data/generic.ts";
import { loadDataset } from "../data/load.ts";
import { PatientPatternError, patientsFromPaths } from "../data/patients.ts";
import { encodePngGray } from "../data/png_encode.ts";
import type { Dataset } from "../data/types.ts";
import { dataLabelFlagsFrom } from "../cli/open_data.ts";

const PNG = encodePngGray({ width: 2, height: 2, data: new Uint8Array([0, 64, 128, 255]) });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_labels_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function touch(path: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, PNG);
}

/** Writes <dir>/labels.csv and an image for every path in its first column. */
async function csv(dir: string, lines: string[]): Promise<void> {
  await Deno.writeTextFile(join(dir, "labels.csv"), lines.join("\n") + "\n");
  for (const l of lines.slice(1)) await touch(join(dir, l.split(",")[0]));
}

/** Runs fn, returning its result and the warning lines it printed. */
async function warned<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const saved = console.warn, lines: string[] = [];
  console.warn = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return [await fn(), lines];
  } finally {
    console.warn = saved;
  }
}

const patients = (ds: Dataset) => ds.records.map((r) => r.patient);

Deno.test("CSV patient column aliases: subject_id, PatientID, patient_id (any case)", async () => {
  await withDir(async (dir) => {
    for (const col of ["subject_id", "PatientID", "patient_id", "Patient ID", "SUBJECT"]) {
      await csv(dir, [`path,label,${col}`, "a.png,1,s1", "b.png,0,s1", "c.png,0,s2"]);
      const [ds, warnings] = await warned(() => loadCsvDataset({ root: dir }));
      assertEquals(patients(ds), ["s1", "s1", "s2"], col);
      assertEquals(warnings, [], col);
    }
  });
});

Deno.test("CSV without a patient column: folders when view names repeat, else file names", async () => {
  // MIMIC-like: the file name is a view name; the patient is the folder above the study.
  assertEquals(
    patientsFromPaths([
      "p1/s1/view1_frontal.png",
      "p1/s2/view1_frontal.png",
      "p2/s1/view1_frontal.png",
      "p2/s1/view2_lateral.png",
      "files/p10/p10000032/s50414267/view1_frontal.jpg",
      "files/p10/p10000032/s50414268/view1_frontal.jpg",
    ]).patients,
    ["p1", "p1", "p2", "p2", "files/p10/p10000032", "files/p10/p10000032"],
  );
  // Folders that are not studies are the patient themselves.
  assertEquals(patientsFromPaths(["pat1/front.png", "pat2/front.png"]).patients, ["pat1", "pat2"]);
  // Flat folders and class folders: the file name (NIH style ids kept).
  assertEquals(patientsFromPaths(["a.png", "b.png", "00000005_001.png"]), {
    patients: ["a", "b", "00000005"],
    rule: "file",
  });
  // Class folders whose files are numbered alike: the folders are classes, not patients.
  assertEquals(
    patientsFromPaths(["normal/1.png", "normal/2.png", "tb/1.png", "tb/2.png", "tb/3.png"])
      .patients,
    ["1", "2", "1", "2", "3"],
  );
  await withDir(async (dir) => {
    await csv(dir, [
      "path,label",
      "p1/s1/view1_frontal.png,1",
      "p1/s2/view1_frontal.png,0",
      "p2/s1/view1_frontal.png,1",
      "p3/s1/view1_frontal.png,0",
    ]);
    const [ds, warnings] = await warned(() => loadCsvDataset({ root: dir }));
    assertEquals(patients(ds), ["p1", "p1", "p2", "p3"]);
    assertEquals(warnings, []);
  });
  await withDir(async (dir) => {
    // A patient column with blanks: the blanks fall back to the same rule.
    await csv(dir, ["path,label,patient", "x/a.png,1,", "x/b.png,0,pb"]);
    assertEquals(patients(await loadCsvDataset({ root: dir, quiet: true })), ["a", "pb"]);
    await csv(dir, ["path,label", "a.png,1", "b.png,0", "c.png,1"]);
    const [flat, warnings] = await warned(() => loadCsvDataset({ root: dir }));
    assertEquals(patients(flat), ["a", "b", "c"]);
    assertEquals(warnings.length, 1);
    assert(
      warnings[0].includes(
        "labels.csv: no patient column: each image is its own patient; label fractions and " +
          "splits cannot keep a patient's images together — add a patient column or " +
          "--patient-pattern",
      ),
      warnings[0],
    );
    assertEquals((await warned(() => loadCsvDataset({ root: dir, quiet: true })))[1], []);
  });
});

Deno.test("patient pattern: first capture group over the relative path, else the file name", async () => {
  await withDir(async (root) => {
    // Kermany's pneumonia set: personN_bacteria_M / personN_virus_M are one patient's images.
    for (
      const f of [
        "train/NORMAL/IM-0115-0001.jpeg",
        "train/PNEUMONIA/person1_bacteria_1.jpeg",
        "train/PNEUMONIA/person1_virus_6.jpeg",
        "test/PNEUMONIA/person2_virus_7.jpeg",
      ]
    ) await touch(join(root, f));
    const [plain, w0] = await warned(() => loadFolder({ root }));
    assertEquals(new Set(patients(plain)).size, 4);
    assertEquals(w0.length, 1);
    assert(w0[0].includes("each image is its own patient"), w0[0]);
    const [ds, w1] = await warned(() => loadFolder({ root, patientPattern: /^(person\d+)_/ }));
    assertEquals(patients(ds), ["person2", "IM-0115-0001", "person1", "person1"]);
    assertEquals(w1.length, 1);
    assert(/matched 3 of 4 images.*first: "train\/NORMAL\/IM-0115-0001\.jpeg"/.test(w1[0]), w1[0]);
    // Over the path: a folder part, an alternation (its first group that matched).
    const [alt] = await warned(() =>
      loadDataset({ root, patientPattern: /(person\d+)_|IM-(\d+)-/, quiet: true })
    );
    assertEquals(patients(alt), ["person2", "0115", "person1", "person1"]);
    const [split] = await warned(() => loadFolder({ root, patientPattern: /^(train|test)\// }));
    assertEquals(patients(split), ["test", "train", "train", "train"]);
    const err = await loadFolder({ root, patientPattern: /^(patient\d+)/, quiet: true }).then(
      () => null,
      (e) => e,
    );
    assert(err instanceof PatientPatternError, `${err}`);
    assert(/matches none of the 4 images/.test(err.message), err.message);
  });
  await withDir(async (root) => {
    // A CSV with a patient column: the pattern wins where given; recorded in the settings.
    await csv(root, ["path,label,patient", "p7/x.png,1,a", "p8/y.png,0,b"]);
    const ds = await loadCsvDataset({ root, patientPattern: /^(p\d+)\//, quiet: true });
    assertEquals(patients(ds), ["p7", "p8"]);
    assertEquals(ds.labelSettings?.patientPattern, "^(p\\d+)\\/");
  });
});

Deno.test("CSV images listed twice: conflicting rows refused, exact repeats dropped once", async () => {
  await withDir(async (dir) => {
    const head = "path,label,patient,split";
    await csv(dir, [head, "a.png,1,p1,train", "b.png,0,p2,train", "./a.png,0,p1,train"]);
    await assertRejects(
      () => loadCsvDataset({ root: dir }),
      /labels\.csv: rows 2 and 4 both list "\.\/a\.png" with different labels \(label: "1" vs "0"\)/,
    );
    await csv(dir, [head, "a.png,1,p1,train", "a.png,1,p9,train"]);
    await assertRejects(() => loadCsvDataset({ root: dir }), /different patients \("p1" vs "p9"\)/);
    await csv(dir, [head, "a.png,1,p1,train", "a.png,1,p1,test"]);
    await assertRejects(() => loadCsvDataset({ root: dir }), /different splits/);
    // -1 and 1 read alike under U-Ones, yet they are different labels.
    await csv(dir, [head, "a.png,1,p1,train", "a.png,-1,p1,train"]);
    await assertRejects(() => loadCsvDataset({ root: dir }), /"1" vs "-1"/);
    await csv(dir, [head, "a.png,1,p1,train", "b.png,0,p2,train", "a.png,1.0,p1,train"]);
    const [ds, warnings] = await warned(() => loadCsvDataset({ root: dir }));
    assertEquals(ds.records.map((r) => [r.path, r.labels[0]]), [
      [join(dir, "a.png"), 1],
      [join(dir, "b.png"), 0],
    ]);
    assertEquals(warnings.length, 1);
    assert(/1 repeated row dropped .*row 4 repeats row 2, "a\.png"/.test(warnings[0]), warnings[0]);
  });
  await withDir(async (dir) => {
    // CheXpert too (the review's probe: the same view with 1.0 and 0.0).
    const root = join(dir, "CheXpert-v1.0-small");
    const header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", ...CHEXPERT_OBSERVATIONS];
    const row = (v: string) =>
      [
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg",
        "Male",
        "40",
        "Frontal",
        "AP",
        ...CHEXPERT_OBSERVATIONS.map((o) => o === "Pleural Effusion" ? v : ""),
      ].join(",");
    await Deno.mkdir(root, { recursive: true });
    await Deno.writeTextFile(
      join(root, "train.csv"),
      [header.join(","), row("1.0"), row("0.0")].join("\n"),
    );
    await touch(join(root, "train/patient00001/study1/view1_frontal.jpg"));
    await assertRejects(
      () => loadChexpert({ root }),
      /train\.csv: rows 2 and 3 both list ".*view1_frontal\.jpg" with different labels \(Pleural Effusion: "1\.0" vs "0\.0"\)/,
    );
    await Deno.writeTextFile(
      join(root, "train.csv"),
      [header.join(","), row("1.0"), row("1")].join("\n"),
    );
    const [ds, warnings] = await warned(() => loadChexpert({ root }));
    assertEquals(ds.records.length, 1);
    assert(/1 repeated row dropped.*row 3 repeats row 2/.test(warnings.join("\n")), `${warnings}`);
  });
});

Deno.test("CSV text labels compare case-insensitively; a one-class task names its values", async () => {
  await withDir(async (dir) => {
    await csv(dir, [
      "path,label,patient",
      "a.png,Pneumonia,1",
      "b.png,Normal,2",
      "c.png,PNEUMONIA,3",
    ]);
    const [ds, w] = await warned(() => loadCsvDataset({ root: dir, positive: "pneumonia" }));
    assertEquals(ds.records.map((r) => r.labels[0]), [1, 0, 1]);
    assertEquals(w, []);
    const [none, w2] = await warned(() => loadCsvDataset({ root: dir, positive: "TB" }));
    assertEquals(none.records.map((r) => r.labels[0]), [0, 0, 0]);
    assertEquals(w2.length, 1);
    assert(
      /every usable label of column "label" is negative \(values seen: "Pneumonia", "Normal"; positive class "TB"/
        .test(w2[0]),
      w2[0],
    );
    await csv(dir, ["path,label,patient", "a.png,1,1", "b.png,1,2"]);
    const [, w3] = await warned(() => loadCsvDataset({ root: dir }));
    assert(/is positive \(values seen: "1"\)/.test(w3.join("\n")), w3.join("\n"));
  });
});

Deno.test("CSV ±1 labels are refused with the fix named, unless -1 reads as 0", async () => {
  await withDir(async (dir) => {
    await csv(dir, ["path,label,patient", "a.png,1,1", "b.png,-1,2", "c.png,-1,3"]);
    for (const uncertainty of [undefined, "ignore"] as const) {
      await assertRejects(
        () => loadCsvDataset({ root: dir, uncertainty }),
        /labels\.csv: column "label" holds only 1 and -1, .*every usable label would be positive; if -1 means negative, write it as 0/,
      );
    }
    const zeros = await loadCsvDataset({ root: dir, uncertainty: "zeros" });
    assertEquals(zeros.records.map((r) => r.labels[0]), [1, 0, 0]);
    // With 0s or blanks present, -1 is an uncertain label as usual.
    await csv(dir, ["path,label,patient", "a.png,1,1", "b.png,-1,2", "c.png,0,3"]);
    assertEquals((await loadCsvDataset({ root: dir })).records.map((r) => r.labels[0]), [1, 1, 0]);
  });
});

Deno.test("CSV rows with more fields than the header are refused naming file and row", async () => {
  await withDir(async (dir) => {
    const rows = Array.from({ length: 30 }, (_, i) => `i${i}.png,${i % 2},p${i}`);
    await csv(dir, ["path,label,patient", ...rows, "x.png,1,px,extra"]);
    const ds = await loadCsvDataset({ root: dir, quiet: true });
    assertEquals(ds.records.length, 30);
    assertEquals(ds.badRows.map((b) => [b.row, b.message]), [[32, "4 fields, header has 3"]]);
    await assertRejects(
      () => loadCsvDataset({ root: dir, strict: true }),
      /labels\.csv: row 32: 4 fields, header has 3/,
    );
  });
});

Deno.test("class folders: one class whatever its case; normal/healthy/... is the negative", async () => {
  await withDir(async (root) => {
    await touch(join(root, "train", "Normal", "x1.png"));
    await touch(join(root, "train", "Tuberculosis", "x2.png"));
    await touch(join(root, "test", "normal", "x3.png"));
    await touch(join(root, "test", "tuberculosis", "x4.png"));
    const ds = await loadFolder({ root, quiet: true });
    assertEquals(ds.tasks, ["Tuberculosis"]);
    assertEquals(
      ds.records.map((r) => [r.split, r.meta?.className, r.labels[0]]),
      [
        ["test", "Normal", 0],
        ["test", "Tuberculosis", 1],
        ["train", "Normal", 0],
        ["train", "Tuberculosis", 1],
      ],
    );
    assertEquals((await loadFolder({ root, positive: "NORMAL", quiet: true })).tasks, ["Normal"]);
  });
  for (
    const [neg, pos] of [
      ["normal", "abnormal"],
      ["No Finding", "Effusion"],
      ["no_finding", "cardiomegaly"],
      ["healthy", "sick"],
      ["negative", "positive"],
      ["0_normal", "1_abnormal"],
    ]
  ) {
    await withDir(async (root) => {
      await touch(join(root, neg, "a.png"));
      await touch(join(root, pos, "b.png"));
      const ds = await loadFolder({ root, quiet: true });
      assertEquals(ds.tasks, [pos], `${neg} / ${pos}`);
      assertEquals(
        ds.records.map((r) => [r.meta?.className, r.labels[0]]).sort(),
        [
          [neg, 0],
          [pos, 1],
        ].sort(),
      );
    });
  }
  await withDir(async (root) => {
    // Neither (or both) named as negatives: the last class in name order, as before.
    for (const c of ["cats", "dogs"]) await touch(join(root, c, `${c}.png`));
    assertEquals((await loadFolder({ root, quiet: true })).tasks, ["dogs"]);
  });
});

Deno.test("Shenzhen readings: sex glued to the age, ages in months", () => {
  assertEquals(parseClinicalReading("female35yrs\nPTB in the left upper field"), {
    sex: "Female",
    age: 35,
    reading: "PTB in the left upper field",
  });
  assertEquals(parseClinicalReading("female 07month\nnormal"), {
    sex: "Female",
    age: 7 / 12,
    reading: "normal",
  });
  assertEquals(parseClinicalReading("male 10 months\nnormal").age, 10 / 12);
  assertEquals(parseClinicalReading("Male, 35 yrs\r\nnormal"), {
    sex: "Male",
    age: 35,
    reading: "normal",
  });
  assertEquals(parseClinicalReading("O 47yrs\nnormal"), {
    sex: undefined,
    age: 47,
    reading: "normal",
  });
});

Deno.test("Shenzhen: a patient pattern is applied and recorded", async () => {
  await withDir(async (dir) => {
    await touch(join(dir, "CHNCXR_0001_0.png"));
    await touch(join(dir, "CHNCXR_0002_1.png"));
    const ds = await loadShenzhen({ root: dir, patientPattern: /^(CHNCXR)_/ });
    assertEquals(patients(ds), ["CHNCXR", "CHNCXR"]);
    assertEquals(ds.labelSettings, { patientPattern: "^(CHNCXR)_" });
  });
});

Deno.test("CSV label columns by --task (any name), text labels by --positive; clear refusals", async () => {
  await withDir(async (dir) => {
    await csv(dir, [
      "path,finding,effusion",
      "a.png,PNEUMONIA,1",
      "b.png,normal,0",
      "c.png,Pneumonia,0",
    ]);
    // no column named label/target/class/y: the refusal names the columns --task can take
    await assertRejects(
      () => loadDataset({ root: dir, quiet: true }),
      /no label column named label\/target\/class\/y; name yours with --task \(this CSV's other columns: finding, effusion\)/,
    );
    const eff = await loadDataset({ root: dir, tasks: "effusion", quiet: true });
    assertEquals(eff.tasks, ["effusion"]);
    assertEquals(eff.records.map((r) => r.labels[0]), [1, 0, 0]);
    // text labels: the --positive value (case ignored) is 1, the others 0, and it is recorded
    const text = await loadDataset({ root: dir, tasks: "finding", positive: "pneumonia" });
    assertEquals(text.records.map((r) => r.labels[0]), [1, 0, 1]);
    assertEquals(text.labelSettings?.positive, "pneumonia");
    await assertRejects(
      () => loadDataset({ root: dir, tasks: "nope", quiet: true }),
      /no label "nope"; its labels: finding, effusion/,
    );
  });
});

Deno.test("--positive: trimmed and passed on; an empty one is a flag error", () => {
  assertEquals(dataLabelFlagsFrom({ positive: " PNEUMONIA " }).positive, "PNEUMONIA");
  let msg = "";
  try {
    dataLabelFlagsFrom({ positive: " " });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/^--positive needs the label value read as positive/.test(msg), msg);
});
