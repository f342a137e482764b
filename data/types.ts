/** Record and dataset types shared by every loader, the cache and the samplers. */

import { DataError } from "./data_error.ts";

/** A split named by the dataset itself. */
export type Split = "train" | "valid" | "test";
/** The dataset layouts the loaders read. */
export type DatasetKind = "chexpert" | "shenzhen" | "folder" | "csv";

/** One image with its per-task labels. */
export interface DataRecord {
  /** Absolute path of the image file. */
  path: string;
  /** Patient id: no patient may appear on two sides of a split. */
  patient: string;
  /** Per task, 0 or 1 (an ignored label is stored as 0 with mask 0). */
  labels: Float32Array;
  /** Per task, 1 = use in the loss, 0 = ignore (uncertain under the "ignore" policy). */
  mask: Float32Array;
  /** Split given by the dataset itself (CheXpert train/valid, folder train/test, CSV column). */
  split?: Split;
  /** What the dataset tells of the image besides its labels. */
  meta?: RecordMeta;
}

/** Per-image facts a dataset gives besides labels (for reports and filtering). */
export interface RecordMeta {
  /** Patient sex as the dataset writes it. */
  sex?: string;
  /** Patient age in years. */
  age?: number;
  /** "Frontal" or "Lateral". */
  view?: string;
  /** "AP", "PA", "LL", … */
  projection?: string;
  /** Study id (CheXpert). */
  study?: string;
  /** Shenzhen clinical reading text, folder class name, … */
  reading?: string;
  /** Folder layouts: the class folder the image lies in. */
  className?: string;
}

/** A problem row that was skipped (file, 1-based line number, column name). */
export interface BadRow {
  /** The CSV or list file. */
  file: string;
  /** 1-based line number. */
  row: number;
  /** The offending column, where one is. */
  column?: string;
  /** What is wrong with the row. */
  message: string;
}

/** A loaded dataset: its records with per-task labels, and what was skipped. */
export interface Dataset {
  /** Display name (the root folder's name). */
  name: string;
  /** Layout kind it was loaded as. */
  kind: DatasetKind;
  /** The dataset root the paths were resolved in. */
  root: string;
  /** Task (finding) names, one label column each. */
  tasks: string[];
  /** One per image. */
  records: DataRecord[];
  /** Skipped malformed rows (also printed as warnings). */
  badRows: BadRow[];
  /** Folder layouts: symbolic links skipped while listing (never followed). */
  skippedSymlinks?: number;
  /** The settings the labels and patients were read with (recorded in a run's identity). */
  labelSettings?: LabelSettings;
}

/**
 * How a dataset's labels and patients were read, where the layout has a choice: a run records
 * them (data/identity.ts), so resuming it with other settings is refused by name.
 */
export interface LabelSettings {
  /** CheXpert and CSV: what an uncertain (-1) label becomes (a policy, or one per task). */
  uncertainty?: string;
  /** CheXpert and CSV: what a blank label becomes ("zeros" or "ignore": masked). */
  blank?: BlankPolicy;
  /** CheXpert: "frontal" (frontal views only, the default) or "all". */
  views?: "frontal" | "all";
  /** CSV: the CSV file read (absolute path). */
  csv?: string;
  /** The patient pattern (a regular expression's source), when one was given. */
  patientPattern?: string;
  /** CSV text labels: the value read as positive (lower case), when one was given. */
  positive?: string;
}

/** What an uncertain label (-1) becomes: positive (U-Ones), negative (U-Zeros) or masked out. */
export type UncertaintyPolicy = "ones" | "zeros" | "ignore";
/** What a blank label cell becomes: negative, or masked out. */
export type BlankPolicy = "zeros" | "ignore";

export function applyPolicy(
  raw: number | null,
  uncertain: UncertaintyPolicy,
  blank: BlankPolicy,
): [label: number, mask: number] {
  if (raw === null) return blank === "zeros" ? [0, 1] : [0, 0];
  if (raw === -1) {
    if (uncertain === "ones") return [1, 1];
    if (uncertain === "zeros") return [0, 1];
    return [0, 0];
  }
  return [raw > 0 ? 1 : 0, 1];
}

/** Message for a bad row, naming file, row and column. */
export function formatBadRow(b: BadRow): string {
  return `${b.file}: row ${b.row}${b.column ? `, column "${b.column}"` : ""}: ${b.message}`;
}

/**
 * Records a bad row (warning) and throws once the skipped share passes maxBadFraction, so one
 * stray row does not kill a run but a wrong file or layout does.
 */
export class BadRowLog {
  readonly rows: BadRow[] = [];
  constructor(readonly maxBadFraction = 0.05, readonly strict = false, readonly quiet = false) {}

  add(b: BadRow): void {
    if (this.strict) throw new DataError(formatBadRow(b));
    this.rows.push(b);
    if (!this.quiet) console.warn(`warning: skipped ${formatBadRow(b)}`);
  }

  /** Throws when more than maxBadFraction of `total` rows were bad (at least 1 bad row). */
  check(total: number, what: string): void {
    const n = this.rows.length;
    if (n > 0 && n > this.maxBadFraction * total) {
      const first = this.rows.slice(0, 3).map(formatBadRow).join("; ");
      throw new DataError(
        `${what}: ${n} of ${total} rows are malformed (more than ${
          (100 * this.maxBadFraction).toFixed(1)
        }%); first: ${first}`,
      );
    }
  }
}
