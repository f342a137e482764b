/**
 * Which images of a dataset each stage may use, by patient.
 *
 * Test: the dataset's own `test` split when usable (≥ 50 images, both classes of the primary
 * task), else its own `valid` split when usable, else the images of the ~20% of patients whose id
 * hashes low (drawnTestPatient). The test set never depends on a run's seed or on which labels it
 * reads, so `deno task pretrain`, which cannot know how a later fine-tuning will run, leaves out
 * the same images as the experiment.
 * Validation: the dataset's own `valid` split when it also has a usable `test` split, else 12% of
 * the remaining training patients (seeded by the run), the valid split's images among them where
 * that split is not the test set.
 * Pretraining: the training split's images less those of test patients. (Validation images stay
 * in: MoCo-CXR pretrained on the whole CheXpert training set and validated on part of it.)
 *
 * A dataset's own splits may share patients; the NIH sample's `labels.csv` does (8 patients in
 * both train and test, 14 in train and valid). The test split is kept whole and the other splits
 * lose the test patients' images; a patient in both train and valid moves wholly to the one
 * holding more of their images. What changed is reported (`notes`), and a run records it
 * (`overlap`) so that a run made before this rule is not resumed on other splits.
 */
import { createHash } from "node:crypto";
import { groupByPatient, type LabeledItem, splitByPatient } from "../data/fractions.ts";
import type { ImageCache } from "../data/cache/reader.ts";

/** The fine-tuning splits of a cache, as image indices (ascending). */
export interface Splits {
  /** Training pool the label fractions are drawn from. */
  trainPool: number[];
  /** Validation images (model and penalty selection). */
  val: number[];
  /** Test images (the reported AUCs). */
  test: number[];
  /**
   * What made the dataset's own splits patient-disjoint (absent when they already were): images
   * left out as test patients', images moved between training and validation, and the patients
   * concerned.
   */
  overlap?: { dropped: number; moved: number; patients: number };
  /** One line per overlap resolved, for the run's log. */
  notes: string[];
  /** The splits' fingerprint (splitsId). */
  id: SplitsId;
}

/** A dataset split is usable as validation or test with this many images (and both classes). */
const MIN_SPLIT = 50;

/** The part of an ImageCache the split rules read. */
export type SplitSource = Pick<
  ImageCache,
  "records" | "tasks" | "labels" | "mask" | "splitIndices"
>;

function hasBothClasses(cache: SplitSource, idx: number[]): boolean {
  const T = cache.tasks.length;
  const ys = idx.filter((i) => cache.mask[i * T] > 0).map((i) => cache.labels[i * T]);
  return ys.some((y) => y > 0) && ys.some((y) => y === 0);
}

const usable = (cache: SplitSource, idx: number[]) =>
  idx.length >= MIN_SPLIT && hasBothClasses(cache, idx);

/**
 * `idx` less the images of patients found in `held`, and how many of those were not themselves
 * in `held` (the images an overlap of patients costs; a split drawn by patient costs none).
 */
function without(
  records: LabeledItem[],
  idx: number[],
  held: number[],
): { kept: number[]; images: number; patients: number } {
  const heldImages = new Set(held);
  const heldPatients = new Set(held.map((i) => records[i].patient));
  const kept = idx.filter((i) => !heldPatients.has(records[i].patient));
  const cost = idx.filter((i) => heldPatients.has(records[i].patient) && !heldImages.has(i));
  return { kept, images: cost.length, patients: groupByPatient(records, cost).size };
}

/** Where a test set comes from: the dataset's test or valid split, or drawn from its images. */
export type TestSource = "test" | "valid" | "drawn";

/** The share of patients a drawn test set takes (see drawnTestPatient). */
export const DRAWN_TEST_SHARE = 0.2;

/**
 * Whether a patient is in a drawn test set: the first 32 bits of SHA-256("moco-cxr-test:" + id)
 * fall in the lowest DRAWN_TEST_SHARE of their range. A patient's place depends on its id alone,
 * not on labels, tasks, views or the order of the records, so `deno task pretrain` and a later
 * fine-tuning with another --task, --uncertainty or --all-views leave out the same patients.
 */
export function drawnTestPatient(patient: string): boolean {
  const h = createHash("sha256").update(`moco-cxr-test:${patient}`).digest();
  return h.readUInt32BE(0) < DRAWN_TEST_SHARE * 2 ** 32;
}

/** The test images of a cache and where they come from; they depend on the data alone. */
export function testImages(cache: SplitSource): { indices: number[]; from: TestSource } {
  const test = cache.splitIndices("test"), valid = cache.splitIndices("valid");
  if (usable(cache, test)) return { indices: test, from: "test" };
  if (usable(cache, valid)) return { indices: valid, from: "valid" };
  const pool = [...cache.splitIndices("train"), ...valid].sort((a, b) => a - b);
  const drawn = pool.filter((i) => drawnTestPatient(cache.records[i].patient));
  return { indices: drawn, from: "drawn" };
}

/**
 * A fingerprint of a run's splits: where its test set comes from and a SHA-256 over the paths of
 * its test, validation and train-pool images. A run records it, and a resume on other splits is
 * refused (train/experiment.ts).
 */
export function splitsId(
  cache: SplitSource,
  s: Pick<Splits, "test" | "val" | "trainPool">,
  from: TestSource,
): SplitsId {
  const h = createHash("sha256");
  for (const [name, idx] of [["test", s.test], ["val", s.val], ["train", s.trainPool]] as const) {
    h.update(`${name}:${idx.length}\n`);
    for (const i of idx) h.update(`${cache.records[i].path}\n`);
  }
  return { from, hash: h.digest("hex") };
}

/** What splitsId returns. */
export interface SplitsId {
  /** Where the test set comes from. */
  from: TestSource;
  /** SHA-256 (hex) over the test, validation and train-pool image paths. */
  hash: string;
}

/**
 * The images pretraining may use: the training split less the test patients' images, and how
 * many training-split images that leaves out (0 for a dataset whose test split is its own).
 */
export function pretrainImages(cache: SplitSource): { indices: number[]; leftOut: number } {
  const train = cache.splitIndices("train");
  const kept = without(cache.records, train, testImages(cache).indices).kept;
  return { indices: kept, leftOut: train.length - kept.length };
}

/**
 * The dataset's own train and valid splits with no patient in both: each shared patient goes
 * wholly to the split holding more of their images (ties: training), so no image is lost.
 */
function untangle(
  records: LabeledItem[],
  train: number[],
  valid: number[],
): { train: number[]; valid: number[]; moved: number; patients: number } {
  const inTrain = groupByPatient(records, train), inValid = groupByPatient(records, valid);
  const toTrain = new Set<string>(), toValid = new Set<string>();
  for (const [p, v] of inValid) {
    const t = inTrain.get(p);
    if (t) (t.length >= v.length ? toTrain : toValid).add(p);
  }
  const side = (i: number, own: "train" | "valid") => {
    const p = records[i].patient;
    return toTrain.has(p) ? "train" : toValid.has(p) ? "valid" : own;
  };
  const all = [
    ...train.map((i) => [i, side(i, "train")]),
    ...valid.map((i) => [i, side(i, "valid")]),
  ];
  const pick = (s: string) =>
    all.filter((x) => x[1] === s).map((x) => x[0] as number)
      .sort((a, b) => a - b);
  const moved = train.filter((i) => toValid.has(records[i].patient)).length +
    valid.filter((i) => toTrain.has(records[i].patient)).length;
  return {
    train: pick("train"),
    valid: pick("valid"),
    moved,
    patients: toTrain.size + toValid.size,
  };
}

/** Train pool / validation / test by patient, no patient in two of them (see the header). */
export function makeSplits(cache: SplitSource, seed: number): Splits {
  const records = cache.records;
  const { indices: test, from } = testImages(cache);
  const notes: string[] = [];
  let dropped = 0, moved = 0, patients = 0;
  const leave = (idx: number[], what: string): number[] => {
    const r = without(records, idx, test);
    if (r.images > 0) {
      dropped += r.images;
      patients += r.patients;
      notes.push(
        `${r.images} ${what} image(s) of ${r.patients} patient(s) who are also in the test set ` +
          `left out`,
      );
    }
    return r.kept;
  };
  const train = leave(cache.splitIndices("train"), "training");
  const valid = from === "valid" ? [] : leave(cache.splitIndices("valid"), "validation");
  const done = (trainPool: number[], val: number[]): Splits => ({
    trainPool,
    val,
    test,
    notes,
    id: splitsId(cache, { trainPool, val, test }, from),
    ...(dropped + moved > 0 ? { overlap: { dropped, moved, patients } } : {}),
  });
  if (from === "test" && usable(cache, valid)) {
    const u = untangle(records, train, valid);
    if (usable(cache, u.valid)) {
      if (u.patients > 0) {
        moved = u.moved;
        patients += u.patients;
        notes.push(
          `${u.patients} patient(s) in both the training and validation splits, each moved ` +
            `wholly to the split holding more of their images (${u.moved} image(s) moved)`,
        );
      }
      return done(u.train, u.valid);
    }
    notes.push("the validation split is too small once patient-disjoint: drawn from training");
  }
  // Validation drawn from the training patients. A valid split that is not the test set (too
  // small to validate on beside a test split, or beside a test set drawn from the images) joins
  // the pool: its labelled images train and validate like the rest.
  const pool = from === "valid" ? train : [...train, ...valid].sort((a, b) => a - b);
  const s = splitByPatient(records, { pool, ratios: { train: 0.88, valid: 0.12, test: 0 }, seed });
  return done(s.train, s.valid);
}
