/**
 * Results on disk: results.json (the full Results object) and three CSV views of it —
 * results.csv (one row per cell), summary.csv (mean over draws), differences.csv (paired
 * differences). All writes are atomic.
 */
import { join } from "node:path";
import { EvalInputError } from "./auc.ts";
import { writeFileAtomic } from "../util/fs.ts";
import {
  type CellResult,
  type PairedDifference,
  type Results,
  RESULTS_SCHEMA,
  type SummaryRow,
} from "./results.ts";

type Cell = string | number | null | undefined;

function csvField(v: Cell): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

type Columns<T> = [string, (row: T) => Cell][];

const CELL_COLUMNS: Columns<CellResult> = [
  ["backbone", (c) => c.backbone],
  ["task", (c) => c.task],
  ["protocol", (c) => c.protocol],
  ["init", (c) => c.init],
  ["fraction", (c) => c.fraction],
  ["draw", (c) => c.draw],
  ["pretrain_seed", (c) => c.pretrain_seed ?? 0],
  ["auc", (c) => c.auc],
  ["ci_lo", (c) => c.ci[0]],
  ["ci_hi", (c) => c.ci[1]],
  ["n_test", (c) => c.n_test],
  ["n_pos", (c) => c.n_pos],
  ["n_neg", (c) => c.n_neg],
  ["se_delong", (c) => c.se_delong],
  ["scores_file", (c) => c.scores_file],
  ["metrics_file", (c) => c.metrics_file],
  ["probe_C", (c) => c.probe_C],
];

const SUMMARY_COLUMNS: Columns<SummaryRow> = [
  ["backbone", (s) => s.backbone],
  ["task", (s) => s.task],
  ["protocol", (s) => s.protocol],
  ["init", (s) => s.init],
  ["fraction", (s) => s.fraction],
  ["n_draws", (s) => s.n_draws],
  ["auc", (s) => s.auc],
  ["ci_lo", (s) => s.ci[0]],
  ["ci_hi", (s) => s.ci[1]],
  ["auc_sd", (s) => s.auc_sd],
  ["n_seeds", (s) => s.n_seeds],
  ["seed_sd", (s) => s.seed_sd],
];

const DIFFERENCE_COLUMNS: Columns<PairedDifference> = [
  ["backbone", (d) => d.backbone],
  ["task", (d) => d.task],
  ["protocol", (d) => d.protocol],
  ["fraction", (d) => d.fraction],
  ["init", (d) => d.init],
  ["baseline", (d) => d.baseline],
  ["n_draws", (d) => d.n_draws],
  ["diff", (d) => d.diff],
  ["ci_lo", (d) => d.ci[0]],
  ["ci_hi", (d) => d.ci[1]],
  ["p", (d) => d.p],
  ["p_method", (d) => d.p_method],
  ["p_bootstrap", (d) => d.p_bootstrap],
  ["p_delong", (d) => d.p_delong],
  ["ci_delong_lo", (d) => d.ci_delong?.[0]],
  ["ci_delong_hi", (d) => d.ci_delong?.[1]],
  ["draw_sd", (d) => d.draw_sd],
  ["draw_diffs", (d) => d.draw_diffs.join(";")],
  ["n_seeds", (d) => d.seeds?.n_seeds ?? 1],
  ["seed_diffs", (d) => d.seeds?.seed_diffs.join(";")],
  ["seeds_positive", (d) => d.seeds?.seeds_positive],
  ["se", (d) => d.seeds?.se],
  ["se_seed", (d) => d.seeds?.se_seed],
  ["se_test", (d) => d.seeds?.se_test],
  ["seed_share", (d) => d.seeds?.seed_share],
  ["df", (d) => d.seeds?.df],
  ["ci_test_lo", (d) => d.seeds?.ci_test[0]],
  ["ci_test_hi", (d) => d.seeds?.ci_test[1]],
  ["ci_hier_lo", (d) => d.seeds?.ci_hier[0]],
  ["ci_hier_hi", (d) => d.seeds?.ci_hier[1]],
  ["test_var", (d) => d.seeds?.test_var],
  ["test_cov", (d) => d.seeds?.test_cov],
];

function toCsv<T>(columns: Columns<T>, rows: T[]): string {
  const lines = [columns.map(([name]) => name).join(",")];
  for (const r of rows) lines.push(columns.map(([, get]) => csvField(get(r))).join(","));
  return lines.join("\n") + "\n";
}

/** The three CSV views of a Results object (empty fields for null/absent values). */
export function resultsToCsv(r: Results): { cells: string; summary: string; differences: string } {
  return {
    cells: toCsv(CELL_COLUMNS, r.cells),
    summary: toCsv(SUMMARY_COLUMNS, r.summary),
    differences: toCsv(DIFFERENCE_COLUMNS, r.differences),
  };
}

/** File names written by writeResults, relative to the output folder. */
export const RESULTS_FILES = {
  json: "results.json",
  cells: "results.csv",
  summary: "summary.csv",
  differences: "differences.csv",
} as const;

/** Writes results.json, results.csv, summary.csv and differences.csv into `dir`; returns paths. */
export async function writeResults(dir: string, r: Results): Promise<string[]> {
  const csv = resultsToCsv(r);
  const out: [string, string][] = [
    [RESULTS_FILES.json, JSON.stringify(r, null, 2) + "\n"],
    [RESULTS_FILES.cells, csv.cells],
    [RESULTS_FILES.summary, csv.summary],
    [RESULTS_FILES.differences, csv.differences],
  ];
  const paths: string[] = [];
  for (const [name, text] of out) {
    const p = join(dir, name);
    await writeFileAtomic(p, text);
    paths.push(p);
  }
  return paths;
}

/** Reads a results.json written by writeResults (checks the schema tag). */
export async function readResults(path: string): Promise<Results> {
  const r = JSON.parse(await Deno.readTextFile(path));
  if (r?.schema !== RESULTS_SCHEMA) {
    throw new EvalInputError(
      `${path}: not a results file (schema "${r?.schema}", want "${RESULTS_SCHEMA}")`,
    );
  }
  return r as Results;
}
