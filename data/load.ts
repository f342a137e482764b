/** One entry point for every dataset layout: auto-detects the kind or takes it from the spec. */
import { DataError } from "./data_error.ts";
import { join } from "node:path";
import { type ChexpertOptions, findChexpertRoot, loadChexpert } from "./chexpert.ts";
import { findShenzhenImages, loadShenzhen } from "./shenzhen.ts";
import { type CsvOptions, type FolderOptions, loadCsvDataset, loadFolder } from "./generic.ts";
import { exists, isDir } from "./paths.ts";
import type { Dataset, DatasetKind } from "./types.ts";

export type DatasetSpec =
  & { root: string; kind?: DatasetKind }
  & Omit<ChexpertOptions, "root">
  & Omit<FolderOptions, "root">
  & Omit<CsvOptions, "root">;

/** Which layout a folder holds, or null. Order: CheXpert, Shenzhen, labels.csv, class folders. */
export async function detectKind(root: string): Promise<DatasetKind | null> {
  if (await findChexpertRoot(root)) return "chexpert";
  if (await findShenzhenImages(root)) return "shenzhen";
  if (await exists(join(root, "labels.csv"))) return "csv";
  if (await isDir(root)) {
    for await (const e of Deno.readDir(root)) if (e.isDirectory) return "folder";
  }
  return null;
}

export async function loadDataset(spec: DatasetSpec): Promise<Dataset> {
  if (!spec.csv && !(await isDir(spec.root))) {
    throw new DataError(`${spec.root}: dataset folder not found`);
  }
  if (spec.csv && spec.kind && spec.kind !== "csv") {
    throw new DataError(
      `${spec.csv}: a CSV of path,label is read as the csv layout, not as ${spec.kind}`,
    );
  }
  const kind = spec.kind ?? (spec.csv ? "csv" : await detectKind(spec.root));
  switch (kind) {
    case "chexpert":
      return await loadChexpert(spec);
    case "shenzhen":
      return await loadShenzhen(spec);
    case "folder":
      return await loadFolder(spec);
    case "csv":
      return await loadCsvDataset(spec);
    default:
      throw new DataError(
        `${spec.root}: no dataset layout recognised; expected one of: CheXpert (train.csv + ` +
          `valid.csv, possibly inside CheXpert-v1.0-small/), Shenzhen (CHNCXR_####_0|1.png), ` +
          `a labels.csv of path,label[,patient], or a folder per class`,
      );
  }
}

/** Indices of the records of a split (records with no split count as "train"). */
export function splitIndices(ds: Dataset, split: string): number[] {
  const out: number[] = [];
  ds.records.forEach((r, i) => {
    if ((r.split ?? "train") === split) out.push(i);
  });
  return out;
}
