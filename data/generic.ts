/**
 * Bring-your-own-data loaders: a folder per class (optionally under train/ valid/ test/ split
 * folders, e.g. NIH's `train/0_normal/*.png`), or a CSV of `path,label[,patient][,split]`.
 */
import { DataError } from "./data_error.ts";
import { basename, dirname, join, resolve } from "node:path";
import { findColumn, readCsv } from "./csv.ts";
import { isDir, listDir, type PathCheck, refuseSymlinkEscapes, resolveInside } from "./paths.ts";
import { isImagePath } from "./decode.ts";
import {
  applyPolicy,
  BadRowLog,
  type BlankPolicy,
  type DataRecord,
  type Dataset,
  type Split,
  type UncertaintyPolicy,
} from "./types.ts";

const SPLIT_NAMES: { [dir: string]: Split } = {
  train: "train",
  training: "train",
  valid: "valid",
  val: "valid",
  validation: "valid",
  test: "test",
  testing: "test",
};

/** Patient id from a file name: NIH's "00000005_001.png" → "00000005", else the stem. */
export function patientFromFileName(name: string, pattern?: RegExp): string {
  const stem = basename(name).replace(/\.[^.]+$/, "");
  const m = stem.match(pattern ?? /^(\d+)_\d+$/);
  return m ? (m[1] ?? m[0]) : stem;
}

function normSplit(v: string): Split | undefined {
  return SPLIT_NAMES[v.trim().toLowerCase()];
}

export interface FolderOptions {
  root: string;
  /** Binary task: the positive class folder (default: the last class in name order). */
  positive?: string;
  /** Regex whose first group is the patient id in a file name. */
  patientPattern?: RegExp;
}

/**
 * Folder per class. With exactly two classes there is one task named after the positive class;
 * with more, one task per class (one-hot).
 */
export async function loadFolder(opts: FolderOptions): Promise<Dataset> {
  opts = { ...opts, root: resolve(opts.root) };
  if (!(await isDir(opts.root))) throw new DataError(`${opts.root}: dataset folder not found`);
  // Symbolic links are never followed (one could lead out of the root): skipped and counted.
  let symlinks = 0;
  const list = async (dir: string) => {
    const all = await listDir(dir);
    symlinks += all.filter((e) => e.isSymlink).length;
    return all;
  };
  const top = (await list(opts.root)).filter((e) => e.isDirectory);
  const splitDirs = top.filter((e) => normSplit(e.name));
  // [split or undefined, class folder path, class name]
  const classDirs: [Split | undefined, string, string][] = [];
  if (splitDirs.length > 0) {
    for (const s of splitDirs) {
      for (const c of await list(join(opts.root, s.name))) {
        if (c.isDirectory) {
          classDirs.push([normSplit(s.name), join(opts.root, s.name, c.name), c.name]);
        }
      }
    }
  } else {
    for (const c of top) classDirs.push([undefined, join(opts.root, c.name), c.name]);
  }
  const classes = [...new Set(classDirs.map((c) => c[2]))].sort();
  if (classes.length < 2) {
    throw new DataError(
      `${opts.root}: expected a folder per class (at least two, e.g. 0_normal/ and 1_abnormal/ ` +
        `holding .png/.jpg images), optionally inside train/ valid/ test/; found ${
          classes.length ? classes.join(", ") : "no class folders"
        }`,
    );
  }
  const binary = classes.length === 2;
  if (opts.positive !== undefined && !classes.includes(opts.positive)) {
    throw new DataError(
      `${opts.root}: positive class "${opts.positive}" not among ${classes.join(", ")}`,
    );
  }
  const positive = opts.positive ?? classes[classes.length - 1];
  const tasks = binary ? [positive] : classes;
  const records: DataRecord[] = [];
  for (const [split, dir, cls] of classDirs) {
    for (const f of await list(dir)) {
      if (!f.isFile || !isImagePath(f.name)) continue;
      const labels = new Float32Array(tasks.length);
      if (binary) labels[0] = cls === positive ? 1 : 0;
      else labels[classes.indexOf(cls)] = 1;
      records.push({
        path: join(dir, f.name),
        patient: patientFromFileName(f.name, opts.patientPattern),
        labels,
        mask: new Float32Array(tasks.length).fill(1),
        split,
        meta: { className: cls },
      });
    }
  }
  if (records.length === 0) {
    throw new DataError(
      `${opts.root}: class folders ${classes.join(", ")} hold no .png/.jpg images`,
    );
  }
  return {
    name: basename(opts.root),
    kind: "folder",
    root: opts.root,
    tasks,
    records,
    badRows: [],
    skippedSymlinks: symlinks,
  };
}

export interface CsvOptions {
  /** The CSV file (default: <root>/labels.csv). */
  csv?: string;
  /** Root the paths are resolved in (default: the CSV's folder). */
  root?: string;
  /** Label columns (default: the one named label/target/class). Names become task names. */
  labelColumns?: string[];
  /** For text labels: the value meaning positive (e.g. "PNEUMONIA"). */
  positive?: string;
  uncertainty?: UncertaintyPolicy;
  blank?: BlankPolicy;
  maxBadFraction?: number;
  strict?: boolean;
  quiet?: boolean;
}

/** CSV of path,label[,patient][,split]; labels 1/0, -1 (uncertain) or blank, or text + positive. */
export async function loadCsvDataset(opts: CsvOptions): Promise<Dataset> {
  if (!opts.csv && !opts.root) throw new DataError("CSV dataset: give csv or root");
  const file = resolve(opts.csv ?? join(opts.root!, "labels.csv"));
  const root = resolve(opts.root ?? dirname(file));
  const table = await readCsv(file);
  const h = table.header;
  const pathCol = findColumn(h, "path", "image", "file", "filename", "image_path");
  const labelNames = opts.labelColumns ?? [
    h[findColumn(h, "label", "target", "class", "y")] ?? "label",
  ];
  const labelCols = labelNames.map((n) => findColumn(h, n));
  const patientCol = findColumn(h, "patient", "patient_id", "patientid", "patient id", "subject");
  const splitCol = findColumn(h, "split", "set", "fold");
  if (pathCol < 0 || labelCols.some((c) => c < 0)) {
    throw new DataError(
      `${file}: expected a header with a path column (path/image/file) and label column(s) ` +
        `${labelNames.join(", ")}, optionally patient/patient_id and split; got ${h.join(",")}`,
    );
  }
  const log = new BadRowLog(opts.maxBadFraction, opts.strict, opts.quiet);
  const records: DataRecord[] = [];
  const pathChecks: PathCheck[] = [];
  for (const { line, cells } of table.rows) {
    if (cells.length < h.length) {
      log.add({ file, row: line, message: `${cells.length} fields, header has ${h.length}` });
      continue;
    }
    const path = resolveInside(root, cells[pathCol], file, line);
    pathChecks.push({ base: root, path, rel: cells[pathCol], file, row: line });
    const labels = new Float32Array(labelCols.length), mask = new Float32Array(labelCols.length);
    let bad = false;
    for (let t = 0; t < labelCols.length; t++) {
      const cell = cells[labelCols[t]].trim();
      let raw: number | null;
      if (cell === "") raw = null;
      else if (opts.positive !== undefined && Number.isNaN(Number(cell))) {
        raw = cell === opts.positive ? 1 : 0;
      } else {
        raw = Number(cell);
        if (!(raw === 0 || raw === 1 || raw === -1)) {
          log.add({
            file,
            row: line,
            column: h[labelCols[t]],
            message: `label "${cell}" is not 1, 0, -1 or blank` +
              (opts.positive === undefined ? " (text labels need a positive class)" : ""),
          });
          bad = true;
          break;
        }
      }
      [labels[t], mask[t]] = applyPolicy(raw, opts.uncertainty ?? "ones", opts.blank ?? "ignore");
    }
    if (bad) continue;
    let split: Split | undefined;
    if (splitCol >= 0 && cells[splitCol].trim() !== "") {
      split = normSplit(cells[splitCol]);
      if (!split) {
        log.add({
          file,
          row: line,
          column: h[splitCol],
          message: `split "${cells[splitCol]}" is not train/valid/test`,
        });
        continue;
      }
    }
    const patientCell = patientCol >= 0 ? cells[patientCol].trim() : "";
    records.push({
      path,
      patient: patientCell || patientFromFileName(path),
      labels,
      mask,
      split,
    });
  }
  log.check(table.rows.length, file);
  await refuseSymlinkEscapes(pathChecks);
  if (records.length === 0) throw new DataError(`${file}: no usable rows`);
  return {
    name: basename(root),
    kind: "csv",
    root,
    tasks: labelCols.map((c) => h[c]),
    records,
    badRows: log.rows,
  };
}
