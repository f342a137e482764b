/**
 * CheXpert loader (v1.0 and v1.0-small layouts): train.csv / valid.csv with Path, Sex, Age,
 * Frontal/Lateral, AP/PA and 14 observations valued 1.0, 0.0, -1.0 (uncertain) or blank.
 * Per-task uncertainty policy, frontal-only filter, patient id from the path.
 */
import { DataError } from "./data_error.ts";
import { basename, dirname, join, resolve } from "node:path";
import { DECIMAL, findColumn, readCsv, refuseRepeatedColumns } from "./csv.ts";
import {
  exists,
  type PathCheck,
  refuseAbsolute,
  refuseSymlinkEscapes,
  resolveInside,
} from "./paths.ts";
import { isPermissionError } from "../util/fs.ts";
import { DuplicatePaths } from "./duplicates.ts";
import { patientPatternOver } from "./patients.ts";
import {
  applyPolicy,
  BadRowLog,
  type BlankPolicy,
  type DataRecord,
  type Dataset,
  type Split,
  type UncertaintyPolicy,
} from "./types.ts";

export const CHEXPERT_OBSERVATIONS = [
  "No Finding",
  "Enlarged Cardiomediastinum",
  "Cardiomegaly",
  "Lung Opacity",
  "Lung Lesion",
  "Edema",
  "Consolidation",
  "Pneumonia",
  "Atelectasis",
  "Pneumothorax",
  "Pleural Effusion",
  "Pleural Other",
  "Fracture",
  "Support Devices",
] as const;

/** The five CheXpert competition tasks. */
export const CHEXPERT_COMPETITION_TASKS = [
  "Atelectasis",
  "Cardiomegaly",
  "Consolidation",
  "Edema",
  "Pleural Effusion",
];

/** MoCo-CXR's CheXpert task. */
export const CHEXPERT_DEFAULT_TASK = "Pleural Effusion";

export interface ChexpertOptions {
  /** The CheXpert-v1.0[-small] folder, or a folder containing it. */
  root: string;
  /** "default" (Pleural Effusion), "competition" (5), "all" (14), one name, or names. */
  tasks?: string | string[];
  /** One policy for all tasks, or per task name (others: "ones"). Default "ones". */
  uncertainty?: UncertaintyPolicy | { [task: string]: UncertaintyPolicy };
  /** Blank (unmentioned) labels: "zeros" (the usual reading, default) or "ignore". */
  blank?: BlankPolicy;
  /** Keep frontal views only (default true). */
  frontalOnly?: boolean;
  /** Which CSVs to read (default both that exist; train.csv is required). */
  splits?: ("train" | "valid")[];
  /** Patient ids from the path instead of its patientNNNNN (patients.ts applyPatientPattern). */
  patientPattern?: RegExp;
  maxBadFraction?: number;
  strict?: boolean;
  quiet?: boolean;
}

/** Resolves a task spec to canonical CheXpert observation names. */
export function resolveChexpertTasks(spec: string | string[] | undefined): string[] {
  if (spec === undefined || spec === "default") return [CHEXPERT_DEFAULT_TASK];
  if (spec === "competition") return [...CHEXPERT_COMPETITION_TASKS];
  if (spec === "all") return [...CHEXPERT_OBSERVATIONS];
  const names = Array.isArray(spec) ? spec : spec.split(",");
  if (names.length === 0) throw new DataError("no CheXpert task given");
  return names.map((n) => {
    const hit = CHEXPERT_OBSERVATIONS.find((o) => o.toLowerCase() === n.trim().toLowerCase());
    if (!hit) {
      throw new DataError(
        `unknown CheXpert task "${n}"; expected one of: ${CHEXPERT_OBSERVATIONS.join(", ")}` +
          `, or "default", "competition", "all"`,
      );
    }
    return hit;
  });
}

/** Finds the folder holding train.csv: the root itself or a CheXpert-v1.0[-small] child. */
export async function findChexpertRoot(root: string): Promise<string | null> {
  for (const c of [root, join(root, "CheXpert-v1.0-small"), join(root, "CheXpert-v1.0")]) {
    if (await exists(join(c, "train.csv"))) return c;
  }
  return null;
}

function parseLabel(cell: string): number | null | undefined {
  const t = cell.trim();
  if (t === "") return null;
  const v = DECIMAL.test(t) ? Number(t) : NaN;
  if (v === 1 || v === 0 || v === -1) return v;
  return undefined;
}

/**
 * Picks how CSV paths map to files: relative to the dataset root's parent (the CSV paths start
 * with "CheXpert-v1.0-small/"), to the root after dropping that first component (the folder was
 * renamed), or to the root as given. Decided on the first rows, by which candidate exists.
 */
async function pathResolver(
  dsRoot: string,
  samples: string[],
): Promise<{ base: string; strip: boolean }> {
  const parent = dirname(dsRoot);
  const strip = (p: string) => p.replaceAll("\\", "/").split("/").slice(1).join("/");
  const candidates = [
    { base: parent, strip: false },
    { base: dsRoot, strip: true },
    { base: dsRoot, strip: false },
  ];
  for (const c of candidates) {
    for (const s of samples) {
      const rel = c.strip ? strip(s) : s;
      // The root's parent may lie outside a narrowed --allow-read: that candidate is not it.
      const found = rel && !rel.startsWith("..") &&
        await exists(join(c.base, rel)).catch((e) => {
          if (isPermissionError(e)) return false;
          throw e;
        });
      if (found) return c;
    }
  }
  // Nothing found (files missing): follow the standard layout by the first path component.
  const first = samples[0]?.replaceAll("\\", "/").split("/")[0] ?? "";
  if (first === basename(dsRoot)) return candidates[0];
  if (/^CheXpert-v1\.0/i.test(first)) return candidates[1];
  return candidates[2];
}

export async function loadChexpert(opts: ChexpertOptions): Promise<Dataset> {
  const dsRoot = await findChexpertRoot(resolve(opts.root));
  if (!dsRoot) {
    throw new DataError(
      `${opts.root}: not a CheXpert dataset: expected train.csv (and valid.csv) in it or in a ` +
        `CheXpert-v1.0-small/ or CheXpert-v1.0/ folder inside it`,
    );
  }
  const tasks = resolveChexpertTasks(opts.tasks);
  const policy = (t: string): UncertaintyPolicy => {
    const u = opts.uncertainty ?? "ones";
    return typeof u === "string" ? u : u[t] ?? "ones";
  };
  const blank = opts.blank ?? "zeros";
  const frontalOnly = opts.frontalOnly ?? true;
  const log = new BadRowLog(opts.maxBadFraction, opts.strict, opts.quiet);
  const dups = new DuplicatePaths();
  const records: DataRecord[] = [];
  let totalRows = 0;
  const pathChecks: PathCheck[] = [];
  const splits = opts.splits ?? ["train", "valid"];
  for (const split of splits) {
    const file = join(dsRoot, `${split}.csv`);
    if (split !== "train" && !opts.splits && !(await exists(file))) continue;
    const table = await readCsv(file);
    const h = table.header;
    const col = {
      path: findColumn(h, "Path"),
      sex: findColumn(h, "Sex"),
      age: findColumn(h, "Age"),
      view: findColumn(h, "Frontal/Lateral"),
      proj: findColumn(h, "AP/PA"),
    };
    const taskCols = tasks.map((t) => findColumn(h, t));
    refuseRepeatedColumns(file, h, [...Object.values(col), ...taskCols]);
    const missing = [
      ...(col.path < 0 ? ["Path"] : []),
      ...tasks.filter((_, i) => taskCols[i] < 0),
    ];
    if (missing.length) {
      throw new DataError(
        `${file}: not a CheXpert CSV: missing column(s) ${missing.join(", ")}; expected ` +
          `Path, Sex, Age, Frontal/Lateral, AP/PA and the observations (${tasks.join(", ")})`,
      );
    }
    const resolver = await pathResolver(
      dsRoot,
      table.rows.slice(0, 5).map((r) => r.cells[col.path] ?? ""),
    );
    totalRows += table.rows.length;
    for (const { line, cells } of table.rows) {
      if (cells.length !== h.length) {
        log.add({ file, row: line, message: `${cells.length} fields, header has ${h.length}` });
        continue;
      }
      const rawPath = refuseAbsolute(cells[col.path], file, line);
      const relPath = resolver.strip
        ? rawPath.replaceAll("\\", "/").split("/").slice(1).join("/")
        : rawPath;
      const path = resolveInside(resolver.base, relPath || rawPath, file, line);
      // Real paths must stay inside the CheXpert folder itself, even when CSV paths are
      // resolved from its parent.
      pathChecks.push({ base: dsRoot, path, rel: cells[col.path], file, row: line });
      const view = col.view >= 0
        ? cells[col.view].trim()
        : /lateral/i.test(rawPath)
        ? "Lateral"
        : "Frontal";
      if (frontalOnly && view.toLowerCase() !== "frontal") continue;
      const labels = new Float32Array(tasks.length), mask = new Float32Array(tasks.length);
      const values: (number | null)[] = [];
      let bad = false;
      for (let t = 0; t < tasks.length; t++) {
        const raw = parseLabel(cells[taskCols[t]]);
        values.push(raw ?? null);
        if (raw === undefined) {
          log.add({
            file,
            row: line,
            column: tasks[t],
            message: `label "${cells[taskCols[t]]}" is not 1.0, 0.0, -1.0 or blank`,
          });
          bad = true;
          break;
        }
        [labels[t], mask[t]] = applyPolicy(raw, policy(tasks[t]), blank);
      }
      if (bad) continue;
      let age: number | undefined;
      if (col.age >= 0 && cells[col.age].trim() !== "") {
        age = Number(cells[col.age]);
        if (!Number.isFinite(age)) {
          log.add({ file, row: line, column: "Age", message: `"${cells[col.age]}" not a number` });
          continue;
        }
      }
      const patient = rawPath.match(/patient(\d+)/i)?.[1];
      if (!patient) {
        log.add({ file, row: line, column: "Path", message: `no patientNNNNN in "${rawPath}"` });
        continue;
      }
      const isNew = dups.add(path, {
        file,
        row: line,
        rel: rawPath,
        cells: taskCols.map((c) => cells[c]),
        values,
        tasks,
        patient: `patient${patient}`,
        split,
      });
      if (!isNew) continue;
      records.push({
        path,
        patient: `patient${patient}`,
        labels,
        mask,
        split: split as Split,
        meta: {
          sex: col.sex >= 0 ? cells[col.sex].trim() : undefined,
          age,
          view,
          projection: col.proj >= 0 ? cells[col.proj].trim() || undefined : undefined,
          study: rawPath.match(/study(\d+)/i)?.[0],
        },
      });
    }
  }
  log.check(totalRows, `CheXpert ${dsRoot}`);
  const warn = (m: string | null) => {
    if (m && !opts.quiet) console.warn(`warning: ${m}`);
  };
  warn(dups.warning());
  await refuseSymlinkEscapes(pathChecks);
  if (records.length === 0) {
    throw new DataError(
      `${dsRoot}: CheXpert CSVs hold no usable ${frontalOnly ? "frontal " : ""}images`,
    );
  }
  if (opts.patientPattern) warn(patientPatternOver(records, dsRoot, opts.patientPattern));
  const u = opts.uncertainty ?? "ones";
  return {
    name: basename(dsRoot),
    kind: "chexpert",
    root: dsRoot,
    tasks,
    records,
    badRows: log.rows,
    labelSettings: {
      uncertainty: typeof u === "string" ? u : JSON.stringify(tasks.map((t) => [t, policy(t)])),
      blank,
      views: frontalOnly ? "frontal" : "all",
      ...(opts.patientPattern ? { patientPattern: opts.patientPattern.source } : {}),
    },
  };
}
