/** One entry point for every dataset layout: auto-detects the kind or takes it from the spec. */
import { DataError, UnknownTaskError } from "./data_error.ts";
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
      return selectTasks(await loadShenzhen(spec), spec.tasks);
    case "folder":
      return selectTasks(await loadFolder(spec), spec.tasks);
    case "csv": {
      // named tasks are the CSV's label columns (any names); none, "default" or "all": the column
      // named label/target/class/y
      const names = taskNames(spec.tasks);
      const columns = spec.labelColumns ?? names;
      return selectTasks(
        await loadCsvDataset({ ...spec, ...(columns ? { labelColumns: columns } : {}) }),
        spec.tasks,
      );
    }
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

/**
 * The named tasks of a layout whose labels are what its files hold (Shenzhen, folder, CSV;
 * CheXpert picks its tasks while reading): "default", "all" or none keep them all; names
 * (compared ignoring case, in the order given) keep those label columns; a name the dataset
 * does not have is refused (UnknownTaskError, listing the labels it has).
 */
/** The task names a spec asks for (trimmed, each once), or undefined for none/default/all. */
function taskNames(spec: string | string[] | undefined): string[] | undefined {
  if (spec === undefined) return undefined;
  const names = [
    ...new Set((Array.isArray(spec) ? spec : spec.split(",")).map((n) => n.trim())),
  ].filter((n) => n !== "");
  if (names.length === 0 || (names.length === 1 && ["default", "all"].includes(names[0]))) {
    return undefined;
  }
  return names;
}

export function selectTasks(ds: Dataset, spec: string | string[] | undefined): Dataset {
  const names = taskNames(spec);
  if (names === undefined) return ds;
  const cols = names.map((n) => ds.tasks.findIndex((t) => t.toLowerCase() === n.toLowerCase()));
  const missing = names.filter((_, i) => cols[i] < 0);
  if (missing.length) throw new UnknownTaskError(missing, ds.tasks, ds.root);
  if (cols.length === ds.tasks.length && cols.every((c, i) => c === i)) return ds;
  return {
    ...ds,
    tasks: cols.map((c) => ds.tasks[c]),
    records: ds.records.map((r) => ({
      ...r,
      labels: Float32Array.from(cols, (c) => r.labels[c]),
      mask: Float32Array.from(cols, (c) => r.mask[c]),
    })),
  };
}
