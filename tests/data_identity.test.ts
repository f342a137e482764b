/**
 * The dataset identity a run records (kind, root, record count, record-list hash, label
 * settings): the same data loaded twice has one identity; another label, path, root, record
 * count, patient assignment or label setting does not, and the difference is said in words.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers.ts";
import { loadCsvDataset } from "../data/generic.ts";
import { loadDataset } from "../data/load.ts";
import { CHEXPERT_OBSERVATIONS } from "../data/chexpert.ts";
import { loadFlaggedDataset } from "../cli/open_data.ts";
import { datasetIdentity, identityDifference } from "../data/identity.ts";
import { encodePngGray } from "../data/png_encode.ts";

const PNG = encodePngGray({ width: 2, height: 2, data: new Uint8Array(4) });

Deno.test("dataset identity: stable for the same data, different for other data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data_identity_" });
  try {
    for (const f of ["a.png", "b.png", "c.png"]) await Deno.writeFile(join(dir, f), PNG);
    const load = async (csv: string) => {
      await Deno.writeTextFile(join(dir, "labels.csv"), csv);
      return datasetIdentity(await loadCsvDataset({ root: dir, quiet: true }));
    };
    const base = await load("path,label\na.png,1\nb.png,0\n");
    assertEquals(base.kind, "csv");
    assertEquals(base.records, 2);
    assertEquals(await load("path,label\na.png,1\nb.png,0\n"), base);
    assertEquals(identityDifference(base, base), null);
    const relabelled = await load("path,label\na.png,0\nb.png,0\n");
    assert(relabelled.hash !== base.hash);
    assertEquals(
      identityDifference(base, relabelled),
      "the same number of records with other paths or labels",
    );
    const other = await load("path,label\na.png,1\nc.png,0\n");
    assert(identityDifference(base, other) !== null, "another file");
    const more = await load("path,label\na.png,1\nb.png,0\nc.png,1\n");
    assertEquals(identityDifference(base, more), "2 vs 3 records");
    assertEquals(
      identityDifference(base, { ...base, root: "/elsewhere" }),
      `root ${base.root} vs /elsewhere`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset identity: patients and label settings are part of it, named when they differ", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data_identity_" });
  try {
    for (const f of ["p1_a.png", "p1_b.png", "p2_a.png"]) await Deno.writeFile(join(dir, f), PNG);
    await Deno.writeTextFile(
      join(dir, "labels.csv"),
      "path,label\np1_a.png,1\np1_b.png,0\np2_a.png,-1\n",
    );
    const plain = datasetIdentity(await loadCsvDataset({ root: dir, quiet: true }));
    const byPattern = datasetIdentity(
      await loadCsvDataset({ root: dir, quiet: true, patientPattern: /^(p\d)_/ }),
    );
    assert(byPattern.hash !== plain.hash, "another patient assignment, another hash");
    assertEquals(
      identityDifference(plain, byPattern),
      "labels read with other settings: patient pattern none vs ^(p\\d)_",
    );
    const zeros = datasetIdentity(
      await loadCsvDataset({ root: dir, quiet: true, uncertainty: "zeros" }),
    );
    assert(zeros.hash !== plain.hash);
    assertEquals(
      identityDifference(plain, zeros),
      "labels read with other settings: uncertain labels ones vs zeros",
    );
    // Runs recorded before the settings were: the hash alone decides.
    const { labels: _, ...old } = plain;
    assertEquals(identityDifference(old, plain), null);
    assertEquals(
      identityDifference(old, zeros),
      "the same number of records with other paths or labels",
    );
    // CheXpert: views and uncertainty, through the flags' loader.
    const cx = join(dir, "cx");
    await Deno.mkdir(cx);
    const head = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", ...CHEXPERT_OBSERVATIONS];
    const row = (p: string, view: string, pe: string) =>
      [
        p,
        "F",
        "50",
        view,
        "",
        ...CHEXPERT_OBSERVATIONS.map((o) => (o === "Pleural Effusion" ? pe : "")),
      ]
        .join(",");
    await Deno.writeTextFile(
      join(cx, "train.csv"),
      [
        head.join(","),
        row("train/patient00001/study1/view1_frontal.png", "Frontal", "-1.0"),
        row("train/patient00001/study1/view2_lateral.png", "Lateral", "1.0"),
        row("train/patient00002/study1/view1_frontal.png", "Frontal", "0.0"),
      ].join("\n"),
    );
    const base = await loadFlaggedDataset({ root: cx });
    assertEquals(base.labelSettings, { uncertainty: "ones", blank: "zeros", views: "frontal" });
    assertEquals(base.records.map((r) => r.labels[0]), [1, 0]);
    const flagged = await loadFlaggedDataset({ root: cx, uncertainty: "zeros", allViews: true });
    assertEquals(flagged.records.map((r) => r.labels[0]), [0, 1, 0]);
    assertEquals(
      identityDifference(datasetIdentity(base), datasetIdentity(flagged)),
      "labels read with other settings: uncertain labels ones vs zeros, views frontal vs all",
    );
    assertEquals(
      datasetIdentity(await loadDataset({ root: cx })),
      datasetIdentity(base),
      "the flags' defaults are the loader's",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
