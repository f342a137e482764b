/**
 * train/splits.ts: which images validate, test and pretrain. A dataset's own splits that share
 * patients (the NIH sample's do) are made patient-disjoint with the test split kept whole; a test
 * set drawn from the images does not depend on the run's seed; pretraining never sees a test
 * patient.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./helpers.ts";
import {
  drawnTestPatient,
  makeSplits,
  pretrainImages,
  type SplitSource,
  testImages,
} from "../train/splits.ts";
import { sharedPatients } from "../data/fractions.ts";
import { loadDataset } from "../data/load.ts";
import { ensureCache } from "../data/cache/builder.ts";

type Split = "train" | "valid" | "test";
interface Img {
  patient: string;
  label: number;
  split: Split;
}

/** A SplitSource over the given images (one task). */
function source(imgs: Img[]): SplitSource {
  const records = imgs.map((m, i) => ({
    path: `/mem/${m.patient}/${i}.png`,
    patient: m.patient,
    labels: [m.label],
    mask: [1],
    split: m.split,
  }));
  return {
    records,
    tasks: ["Finding"],
    labels: Float32Array.from(imgs.map((m) => m.label)),
    mask: new Uint8Array(imgs.length).fill(1),
    splitIndices: (s: Split) => imgs.flatMap((m, i) => m.split === s ? [i] : []),
  } as unknown as SplitSource;
}

/** `n` patients of `per` images each in split `split`, named `${prefix}${k}`, alternating labels. */
const patients = (prefix: string, n: number, per: number, split: Split): Img[] =>
  Array.from(
    { length: n * per },
    (_, i) => ({
      patient: `${prefix}${Math.floor(i / per)}`,
      label: Math.floor(i / per) % 2,
      split,
    }),
  );

function assertDisjoint(
  src: SplitSource,
  s: { trainPool: number[]; val: number[]; test: number[] },
) {
  const r = src.records;
  assertEquals(sharedPatients(r, s.trainPool, s.val), []);
  assertEquals(sharedPatients(r, s.trainPool, s.test), []);
  assertEquals(sharedPatients(r, s.val, s.test), []);
}

Deno.test("splits: a dataset's own splits that share patients become patient-disjoint", () => {
  // train: t0..t29 (2 images each); valid: v0..v29; test: e0..e29. Patients t0-t3 also have
  // images in test, t4-t6 in valid, v0-v1 in test.
  const imgs = [
    ...patients("t", 30, 2, "train"),
    ...patients("v", 30, 2, "valid"),
    ...patients("e", 30, 2, "test"),
    ...["t0", "t1", "t2", "t3", "v0", "v1"].map((p): Img => ({
      patient: p,
      label: 0,
      split: "test",
    })),
    ...["t4", "t5", "t6"].map((p): Img => ({ patient: p, label: 1, split: "valid" })),
  ];
  const src = source(imgs);
  const s = makeSplits(src, 0);
  assertDisjoint(src, s);
  // The test split is the dataset's, whole; validation loses v0-v1 (4 images) and the train pool
  // t0-t3 (8), test patients; t4-t6 (2 training images, 1 validation image each) move to training.
  assertEquals(s.test, src.splitIndices("test"));
  assertEquals(s.val.length, src.splitIndices("valid").length - 4 - 3);
  assertEquals(s.trainPool.length, src.splitIndices("train").length - 8 + 3);
  assertEquals(s.overlap, { dropped: 12, moved: 3, patients: 9 });
  assertEquals(s.notes.length, 3, s.notes.join("\n"));
  // A patient with more validation images than training ones moves to validation.
  const toVal = source([
    ...imgs,
    ...[0, 1, 2].map((): Img => ({ patient: "t4", label: 1, split: "valid" })),
  ]);
  const v = makeSplits(toVal, 0);
  assertDisjoint(toVal, v);
  const t4 = toVal.records.flatMap((r, i) => r.patient === "t4" ? [i] : []);
  assertEquals(t4.filter((i) => v.val.includes(i)).length, 6);
  // Pretraining: the training split less the test patients' images (t0-t3), validation kept.
  const p = pretrainImages(src);
  assertEquals(p.leftOut, 8);
  assertEquals(sharedPatients(src.records, p.indices, s.test), []);
  assertEquals(p.indices.length, 52);
});

Deno.test("splits: disjoint own splits are used as they are, nothing left out", () => {
  const src = source([
    ...patients("t", 40, 2, "train"),
    ...patients("v", 30, 2, "valid"),
    ...patients("e", 30, 2, "test"),
  ]);
  const s = makeSplits(src, 3);
  assertEquals([s.trainPool, s.val, s.test], [
    src.splitIndices("train"),
    src.splitIndices("valid"),
    src.splitIndices("test"),
  ]);
  assertEquals([s.overlap, s.notes], [undefined, []]);
  assertEquals(pretrainImages(src), { indices: src.splitIndices("train"), leftOut: 0 });
  // CheXpert's layout: train and valid only; valid is the test set and validation is drawn from
  // train by the run's seed.
  const chexpert = source([...patients("t", 60, 2, "train"), ...patients("v", 30, 2, "valid")]);
  const c = makeSplits(chexpert, 1);
  assertEquals(c.test, chexpert.splitIndices("valid"));
  assertEquals([...c.trainPool, ...c.val].sort((a, b) => a - b), chexpert.splitIndices("train"));
  assert(c.val.length > 0);
  assertDisjoint(chexpert, c);
  assertEquals(pretrainImages(chexpert).leftOut, 0);
});

Deno.test("splits: a dataset without splits has one test set for every seed, never pretrained on", () => {
  // Shenzhen, a folder per class, a CSV without a split column: every image is "train".
  const src = source(patients("p", 100, 2, "train"));
  const a = makeSplits(src, 0), b = makeSplits(src, 7);
  assertEquals(a.test, b.test);
  assertEquals(a.test, testImages(src).indices);
  assert(a.val.join() !== b.val.join(), "validation is drawn by the run's seed");
  for (const s of [a, b]) {
    assertDisjoint(src, s);
    assertEquals(s.trainPool.length + s.val.length + s.test.length, 200);
    assertEquals(s.overlap, undefined); // a drawn test set costs no image
  }
  assert(a.test.length >= 36 && a.test.length <= 44, `test ${a.test.length}`);
  const p = pretrainImages(src);
  assertEquals(p.leftOut, a.test.length);
  assertEquals(sharedPatients(src.records, p.indices, a.test), []);
  assertEquals(p.indices.length + a.test.length, 200);
});

Deno.test("splits: a drawn test set depends on patient ids alone, not labels, tasks or order", () => {
  const imgs = patients("p", 100, 2, "train");
  const a = source(imgs);
  // Other labels (another --task or --uncertainty), and the records in another order.
  const relabelled = source(imgs.map((m, i) => ({ ...m, label: (i * 7) % 3 === 0 ? 1 : 0 })));
  const reversed = source([...imgs].reverse());
  const ids = (src: SplitSource, idx: number[]) => idx.map((i) => src.records[i].patient).sort();
  const t = testImages(a);
  assertEquals(t.from, "drawn");
  assertEquals(ids(relabelled, testImages(relabelled).indices), ids(a, t.indices));
  assertEquals(ids(reversed, testImages(reversed).indices), ids(a, t.indices));
  // Every image of a drawn patient is in the test set, and only those.
  for (const [i, r] of a.records.entries()) {
    assertEquals(t.indices.includes(i), drawnTestPatient(r.patient));
  }
  // The fingerprint follows the splits: another seed draws another validation set.
  assertEquals(makeSplits(a, 0).id, makeSplits(source(imgs), 0).id);
  assert(makeSplits(a, 0).id.hash !== makeSplits(a, 1).id.hash);
  assertEquals(makeSplits(a, 0).id.from, "drawn");
});

const NIH = fileURLToPath(new URL("../../shared/data/nih1000", import.meta.url));

Deno.test({
  name: "splits: the NIH sample's labels.csv splits share patients; the experiment's do not",
  ignore: !existsSync(`${NIH}/labels.csv`),
  async fn() {
    const ds = await loadDataset({ root: NIH });
    const dir = await Deno.makeTempDir({ prefix: "splits_nih_" });
    try {
      const cache = await ensureCache(ds, { dir: `${dir}/cache`, size: 32, workers: 2 });
      const r = cache.records;
      const own = (s: Split) => cache.splitIndices(s);
      assert(sharedPatients(r, own("train"), own("test")).length > 0, "the sample's own overlap");
      const s = makeSplits(cache, 0);
      assertDisjoint(cache, s);
      assertEquals(s.test, own("test"));
      assert(s.overlap && s.overlap.dropped > 0 && s.overlap.moved > 0);
      const p = pretrainImages(cache);
      assertEquals(sharedPatients(r, p.indices, s.test), []);
      assert(p.leftOut > 0 && p.indices.length < own("train").length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
