/**
 * Small RFC 4180 CSV reader that keeps the physical line number of each row, so loaders can
 * report "file: row N, column C" (csv-parse would do, but line tracking is simpler this way).
 */
import { DataError } from "./data_error.ts";
import { rethrowIfDenied } from "../util/fs.ts";

export interface CsvRow {
  /** 1-based line number where the row starts (the header is line 1). */
  line: number;
  cells: string[];
}

export interface CsvTable {
  header: string[];
  rows: CsvRow[];
}

/** Parses CSV text: quoted fields with "" escapes and embedded newlines, CRLF, BOM. */
export function parseCsv(text: string, file: string): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const all: CsvRow[] = [];
  let line = 1, rowLine = 1;
  let cells: string[] = [], cell = "", inQuotes = false, quotedCell = false;
  const endRow = () => {
    cells.push(cell);
    // Skip blank lines (a single empty unquoted cell).
    if (!(cells.length === 1 && cells[0] === "" && !quotedCell)) all.push({ line: rowLine, cells });
    cells = [];
    cell = "";
    quotedCell = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === "\n") line++;
        cell += ch;
      }
      continue;
    }
    if (ch === '"' && cell === "") {
      inQuotes = true;
      quotedCell = true;
    } else if (ch === ",") {
      cells.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRow();
      line++;
      rowLine = line;
    } else cell += ch;
  }
  if (inQuotes) throw new DataError(`${file}: row ${rowLine}: unterminated quoted field`);
  if (cell !== "" || cells.length > 0) endRow();
  if (all.length === 0) throw new DataError(`${file}: empty CSV (expected a header row)`);
  const [head, ...rows] = all;
  return { header: head.cells.map((h) => h.trim()), rows };
}

/** Reads a CSV file; a missing file gives a clear message. */
export async function readCsv(path: string): Promise<CsvTable> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    rethrowIfDenied(e);
    throw new DataError(`${path}: cannot read CSV (${(e as Error).message})`);
  }
  return parseCsv(text, path);
}

/** Index of the first header matching one of the names (case-insensitive), or -1. */
export function findColumn(header: string[], ...names: string[]): number {
  const lower = header.map((h) => h.toLowerCase());
  for (const n of names) {
    const i = lower.indexOf(n.toLowerCase());
    if (i >= 0) return i;
  }
  return -1;
}
