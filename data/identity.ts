/**
 * A dataset's identity as a run records it: kind, root, record count, a content hash of the
 * record list (paths relative to the root, patients, labels, masks, splits) and the settings the
 * labels and patients were read with. Two loads of the same data give the same identity; another
 * folder, CSV, task, label policy or patient assignment does not.
 */
import { createHash } from "node:crypto";
import { relative } from "node:path";
import type { Dataset, DatasetKind, LabelSettings } from "./types.ts";

/** What a run records of its dataset, to refuse resuming on other data. */
export interface DatasetIdentity {
  /** Layout kind. */
  kind: DatasetKind;
  /** Dataset root folder. */
  root: string;
  /** Number of records. */
  records: number;
  /** sha256 (hex) of the record list: changes with any path, patient, label, mask or split. */
  hash: string;
  /**
   * How labels and patients were read (uncertainty and blank policies, views, CSV file, patient
   * pattern). Absent in runs recorded before it was: then the hash alone is compared.
   */
  labels?: LabelSettings;
}

export function datasetIdentity(ds: Dataset): DatasetIdentity {
  const h = createHash("sha256").update(JSON.stringify(ds.tasks));
  for (const r of ds.records) {
    h.update(
      JSON.stringify([
        relative(ds.root, r.path),
        r.patient,
        Array.from(r.labels),
        Array.from(r.mask),
        r.split ?? "",
      ]) + "\n",
    );
  }
  return {
    kind: ds.kind,
    root: ds.root,
    records: ds.records.length,
    hash: h.digest("hex"),
    ...(ds.labelSettings ? { labels: ds.labelSettings } : {}),
  };
}

/** The settings in words, in this order. */
const SETTING_WORDS: [keyof LabelSettings, string][] = [
  ["uncertainty", "uncertain labels"],
  ["blank", "blank labels"],
  ["views", "views"],
  ["csv", "CSV"],
  ["patientPattern", "patient pattern"],
  ["positive", "positive label"],
];

/** Why two identities differ, in words (null when they are the same dataset). */
export function identityDifference(saved: DatasetIdentity, now: DatasetIdentity): string | null {
  if (saved.kind !== now.kind) return `kind ${saved.kind} vs ${now.kind}`;
  if (saved.root !== now.root) return `root ${saved.root} vs ${now.root}`;
  if (saved.labels && now.labels) {
    const differ = SETTING_WORDS.filter(([k]) => saved.labels![k] !== now.labels![k])
      .map(([k, w]) => `${w} ${saved.labels![k] ?? "none"} vs ${now.labels![k] ?? "none"}`);
    if (differ.length) return `labels read with other settings: ${differ.join(", ")}`;
  }
  if (saved.records !== now.records) return `${saved.records} vs ${now.records} records`;
  // (The wording is matched by the training tests; patients and splits are in the hash too.)
  if (saved.hash !== now.hash) return "the same number of records with other paths or labels";
  return null;
}
