/**
 * Bring-your-own-data loaders: a folder per class (optionally under train/ valid/ test/ split
 * folders, e.g. NIH's `train/0_normal/*.png`), or a CSV of `path,label[,patient][,split]`.
 * Patients come from a patient column, else from the paths (patients.ts), or a patient pattern.
 */
import { DataError, UnknownTaskError } from "./data_error.ts";
import { basename, dirname, join, relative, resolve } from "node:path";
import { DECIMAL, findColumn, headerText, readCsv, refuseRepeatedColumns } from "./csv.ts";
import { isDir, listDir, type PathCheck, refuseSymlinkEscapes, resolveInside } from "./paths.ts";
import { isImagePath } from "./decode.ts";
import { DuplicatePaths } from "./duplicates.ts";
import {
  onePatientPerImage,
  patientFromFileName,
  patientPatternOver,
  patientsFromPaths,
} from "./patients.ts";
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

export { patientFromFileName };

/**
 * Class folder names read as the negative class of a two-class layout (compared in lower case,
 * after a numeric prefix such as NIH's "0_"): the other class is then the positive one.
 */
export const NEGATIVE_CLASS_NAMES = ["normal", "no_finding", "no finding", "negative", "healthy"];

function isNegativeClass(name: string): boolean {
  return NEGATIVE_CLASS_NAMES.includes(name.toLowerCase().replace(/^\d+[_\- ]*/, ""));
}

function normSplit(v: string): Split | undefined {
  return SPLIT_NAMES[v.trim().toLowerCase()];
}

export interface FolderOptions {
  root: string;
  /**
   * Binary task: the positive class folder (compared case-insensitively). Default: the class
   * that is not named normal / no_finding / no finding / negative / healthy, when one of the two
   * is; else the last class in name order.
   */
  positive?: string;
  /**
   * Patient ids: the first capture group of this regex, over the path relative to the root, else
   * over the file name (patients.ts applyPatientPattern). Default: from the file name.
   */
  patientPattern?: RegExp;
  /** No warnings printed. */
  quiet?: boolean;
}

/**
 * Folder per class. Class names are case-folded (train/Normal and test/normal are one class,
 * named by its first spelling in name order). With exactly two classes there is one task named
 * after the positive class; with more, one task per class (one-hot).
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
  // One class per case-folded name, spelled as its first spelling in name order.
  const spelling = new Map<string, string>();
  for (const name of classDirs.map((c) => c[2]).sort()) {
    if (!spelling.has(name.toLowerCase())) spelling.set(name.toLowerCase(), name);
  }
  const classOf = (name: string) => spelling.get(name.toLowerCase())!;
  const classes = [...spelling.values()].sort();
  if (classes.length < 2) {
    throw new DataError(
      `${opts.root}: expected a folder per class (at least two, e.g. 0_normal/ and 1_abnormal/ ` +
        `holding .png/.jpg images), optionally inside train/ valid/ test/; found ${
          classes.length ? classes.join(", ") : "no class folders"
        }`,
    );
  }
  const binary = classes.length === 2;
  const given = opts.positive === undefined
    ? undefined
    : classes.find((c) => c.toLowerCase() === opts.positive!.toLowerCase());
  if (opts.positive !== undefined && given === undefined) {
    throw new DataError(
      `${opts.root}: positive class "${opts.positive}" not among ${classes.join(", ")}`,
    );
  }
  const negatives = classes.filter(isNegativeClass);
  const positive = given ??
    (binary && negatives.length === 1
      ? classes.find((c) => c !== negatives[0])!
      : classes[classes.length - 1]);
  const tasks = binary ? [positive] : classes;
  const records: DataRecord[] = [];
  for (const [split, dir, folder] of classDirs) {
    const cls = classOf(folder);
    for (const f of await list(dir)) {
      if (!f.isFile || !isImagePath(f.name)) continue;
      const labels = new Float32Array(tasks.length);
      if (binary) labels[0] = cls === positive ? 1 : 0;
      else labels[classes.indexOf(cls)] = 1;
      records.push({
        path: join(dir, f.name),
        patient: patientFromFileName(f.name),
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
  const warn = (m: string | null) => {
    if (m && !opts.quiet) console.warn(`warning: ${opts.root}: ${m}`);
  };
  if (opts.patientPattern) warn(patientPatternOver(records, opts.root, opts.patientPattern));
  else {
    warn(onePatientPerImage(
      records,
      "no patient ids in the file names (as NIH's 00000005_001.png)",
      "give --patient-pattern, or use a CSV with a patient column",
    ));
  }
  return {
    name: basename(opts.root),
    kind: "folder",
    root: opts.root,
    tasks,
    records,
    badRows: [],
    skippedSymlinks: symlinks,
    labelSettings: opts.patientPattern ? { patientPattern: opts.patientPattern.source } : {},
  };
}

export interface CsvOptions {
  /** The CSV file (default: <root>/labels.csv). */
  csv?: string;
  /** Root the paths are resolved in (default: the CSV's folder). */
  root?: string;
  /** Label columns (default: the one named label/target/class). Names become task names. */
  labelColumns?: string[];
  /** For text labels: the value meaning positive (e.g. "PNEUMONIA"; compared case-insensitively). */
  positive?: string;
  /** What -1 means (default "ones": U-Ones). */
  uncertainty?: UncertaintyPolicy;
  /** What a blank label means (default "ignore": masked). */
  blank?: BlankPolicy;
  /** Patient ids from the path (as FolderOptions'), over any patient column's. */
  patientPattern?: RegExp;
  maxBadFraction?: number;
  strict?: boolean;
  quiet?: boolean;
}

/** Patient column names (compared case-insensitively). */
export const PATIENT_COLUMNS = [
  "patient",
  "patient_id",
  "patientid",
  "patient id",
  "subject",
  "subject_id",
  "subjectid",
];

/**
 * CSV of path,label[,patient][,split]; labels 1/0, -1 (uncertain) or blank, or text + positive.
 * Each image once: a repeated row is dropped (one warning), the same path with other labels,
 * patient or split is refused. Without a patient column, patients come from the paths
 * (patients.ts) or opts.patientPattern.
 */
export async function loadCsvDataset(opts: CsvOptions): Promise<Dataset> {
  if (!opts.csv && !opts.root) throw new DataError("CSV dataset: give csv or root");
  const file = resolve(opts.csv ?? join(opts.root!, "labels.csv"));
  const root = resolve(opts.root ?? dirname(file));
  const warn = (m: string | null) => {
    if (m && !opts.quiet) console.warn(`warning: ${m}`);
  };
  const table = await readCsv(file);
  const h = table.header;
  const pathCol = findColumn(h, "path", "image", "file", "filename", "image_path");
  const labelNames = opts.labelColumns ?? [
    h[findColumn(h, "label", "target", "class", "y")] ?? "label",
  ];
  const labelCols = labelNames.map((n) => findColumn(h, n));
  const patientCol = findColumn(h, ...PATIENT_COLUMNS);
  const splitCol = findColumn(h, "split", "set", "fold");
  refuseRepeatedColumns(file, h, [pathCol, ...labelCols, patientCol, splitCol]);
  const special = new Set([pathCol, patientCol, splitCol]);
  const candidates = h.filter((_, i) => !special.has(i));
  if (pathCol >= 0 && opts.labelColumns && labelCols.some((c) => c < 0)) {
    // columns asked for by name (--task): say which the CSV has
    throw new UnknownTaskError(labelNames.filter((_, i) => labelCols[i] < 0), candidates, root);
  }
  if (pathCol >= 0 && labelCols.some((c) => c < 0) && candidates.length) {
    throw new DataError(
      `${file}: no label column named label/target/class/y; name yours with --task ` +
        `(this CSV's other columns: ${candidates.join(", ")})`,
    );
  }
  if (pathCol < 0 || labelCols.some((c) => c < 0)) {
    throw new DataError(
      `${file}: expected a header with a path column (path/image/file) and label column(s) ` +
        `${labelNames.join(", ")}, optionally patient/patient_id/subject_id and split; got ${
          headerText(h)
        }`,
    );
  }
  const tasks = labelCols.map((c) => h[c]);
  const uncertainty = opts.uncertainty ?? "ones", blank = opts.blank ?? "ignore";
  const positive = opts.positive?.trim().toLowerCase();
  const log = new BadRowLog(opts.maxBadFraction, opts.strict, opts.quiet);
  const dups = new DuplicatePaths();
  const records: DataRecord[] = [];
  const patientCells: string[] = [];
  const pathChecks: PathCheck[] = [];
  // Per task: the distinct label cells seen (trimmed; keyed in lower case, first spelling kept).
  const seen = tasks.map(() => new Map<string, string>());
  for (const { line, cells } of table.rows) {
    if (cells.length !== h.length) {
      log.add({ file, row: line, message: `${cells.length} fields, header has ${h.length}` });
      continue;
    }
    const path = resolveInside(root, cells[pathCol], file, line);
    const labels = new Float32Array(labelCols.length), mask = new Float32Array(labelCols.length);
    const values: (number | null)[] = [];
    let bad = false;
    for (let t = 0; t < labelCols.length; t++) {
      const cell = cells[labelCols[t]].trim();
      let raw: number | null;
      if (cell === "") raw = null;
      else if (positive !== undefined && !DECIMAL.test(cell)) {
        raw = cell.toLowerCase() === positive ? 1 : 0;
      } else {
        // Written in decimal ("1", "1.0", "-1"): Number alone would read "0x1" or "0b1" as 1.
        raw = DECIMAL.test(cell) ? Number(cell) : NaN;
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
      values.push(raw);
      [labels[t], mask[t]] = applyPolicy(raw, uncertainty, blank);
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
    const isNew = dups.add(path, {
      file,
      row: line,
      rel: cells[pathCol].trim(),
      cells: labelCols.map((c) => cells[c]),
      values,
      tasks,
      patient: patientCell,
      split: split ?? "",
    });
    if (!isNew) continue;
    pathChecks.push({ base: root, path, rel: cells[pathCol], file, row: line });
    labelCols.forEach((c, t) => {
      const v = cells[c].trim();
      if (!seen[t].has(v.toLowerCase())) seen[t].set(v.toLowerCase(), v);
    });
    patientCells.push(patientCell);
    records.push({ path, patient: patientCell, labels, mask, split });
  }
  log.check(table.rows.length, file);
  warn(dups.warning());
  await refuseSymlinkEscapes(pathChecks);
  if (records.length === 0) throw new DataError(`${file}: no usable rows`);
  checkLabelColumns(file, tasks, seen, records, uncertainty, opts.positive, warn);
  // Patients: the column where given, else from the paths (or the pattern, below).
  if (patientCells.some((c) => c === "")) {
    const rels = records.map((r) => relative(root, r.path).replaceAll("\\", "/"));
    const { patients } = patientsFromPaths(rels);
    records.forEach((r, i) => r.patient ||= patients[i]);
  }
  if (opts.patientPattern) warn(patientPatternOver(records, root, opts.patientPattern));
  else if (patientCol < 0) warn(onePatientPerImage(records, `${file}: no patient column`));
  return {
    name: basename(root),
    kind: "csv",
    root,
    tasks,
    records,
    badRows: log.rows,
    labelSettings: {
      uncertainty,
      blank,
      csv: file,
      ...(opts.patientPattern ? { patientPattern: opts.patientPattern.source } : {}),
      ...(positive ? { positive } : {}),
    },
  };
}

/**
 * Label columns that cannot mean what they say: only 1 and -1 (±1 labels, whose -1 reads as
 * uncertain) is refused where it would leave a single class; a task whose usable labels are all
 * one class gets a warning naming the values seen.
 */
function checkLabelColumns(
  file: string,
  tasks: string[],
  seen: Map<string, string>[],
  records: DataRecord[],
  uncertainty: UncertaintyPolicy,
  positive: string | undefined,
  warn: (m: string) => void,
): void {
  const T = tasks.length;
  for (let t = 0; t < T; t++) {
    const values = [...seen[t].values()];
    const nums = values.map(Number);
    if (
      uncertainty !== "zeros" && values.length > 0 && !values.includes("") &&
      nums.every((v) => v === 1 || v === -1) && nums.includes(1) && nums.includes(-1)
    ) {
      throw new DataError(
        `${file}: column "${tasks[t]}" holds only 1 and -1, and -1 is read as uncertain (${
          uncertainty === "ones" ? "U-Ones: positive" : "ignored"
        }), so every usable label would be positive; if -1 means negative, write it as 0 ` +
          `(labels 1/0, -1 for uncertain)`,
      );
    }
    let used = 0, pos = 0;
    for (const r of records) {
      used += r.mask[t];
      pos += r.mask[t] * r.labels[t];
    }
    if (used > 0 && (pos === 0 || pos === used)) {
      const shown = values.slice(0, 8).map((v) => (v === "" ? "(blank)" : `"${v}"`));
      warn(
        `${file}: every usable label of column "${tasks[t]}" is ${
          pos === 0 ? "negative" : "positive"
        } (values seen: ${shown.join(", ")}${values.length > 8 ? ", …" : ""}${
          positive !== undefined ? `; positive class "${positive}", compared ignoring case` : ""
        })`,
      );
    }
  }
}
