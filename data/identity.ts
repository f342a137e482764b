/**
 * A dataset's identity as a run records it: kind, root, record count and a content hash of the
 * record list (paths relative to the root, patients, labels, masks, splits). Two loads of the
 * same data give the same identity; another folder, CSV, task or label policy does not.
 */
import { createHash } from "node:crypto";
import { relative } from "node:path";
import type { Dataset, DatasetKind } from "./types.ts";

/** What a run records of its dataset, to refuse resuming on other data. */
export interface DatasetIdentity {
  /** Layout kind. */
  kind: DatasetKind;
  /** Dataset root folder. */
  root: string;
  /** Number of records. */
  records: number;
  /** sha256 (hex) of the record list. */
  hash: string;
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
  return { kind: ds.kind, root: ds.root, records: ds.records.length, hash: h.digest("hex") };
}

/** Why two identities differ, in words (null when they are the same dataset). */
export function identityDifference(saved: DatasetIdentity, now: DatasetIdentity): string | null {
  if (saved.kind !== now.kind) return `kind ${saved.kind} vs ${now.kind}`;
  if (saved.root !== now.root) return `root ${saved.root} vs ${now.root}`;
  if (saved.records !== now.records) return `${saved.records} vs ${now.records} records`;
  if (saved.hash !== now.hash) return "the same number of records with other paths or labels";
  return null;
}
