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

/**
 * Reads a CSV file; a missing file gives a clear message, and so does anything but a regular file
 * (a folder; a named pipe, whose read would block forever).
 */
export async function readCsv(path: string): Promise<CsvTable> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      throw new DataError(
        `${path}: cannot read CSV (${
          info.isDirectory ? "a folder" : "a pipe, socket or device"
        }, not a file); pass a CSV file`,
      );
    }
    const bytes = await Deno.readFile(path);
    // NUL bytes: UTF-16 (as Excel's "Unicode text" saves) or not text at all
    const head = bytes.subarray(0, 1 << 16);
    if (
      (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff) ||
      head.includes(0)
    ) {
      throw new DataError(
        `${path}: not a UTF-8 text CSV (it holds NUL bytes: UTF-16 or binary); save it as a ` +
          `UTF-8 CSV`,
      );
    }
    text = new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof DataError) throw e;
    rethrowIfDenied(e);
    throw new DataError(`${path}: cannot read CSV (${(e as Error).message})`);
  }
  return parseCsv(text, path);
}

/**
 * A number written in decimal, as label cells are ("1", "0.0", "-1", "+1", "1e0"): Number alone
 * would also read "0x1", "0b1" or "Infinity".
 */
export const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Index of the first header matching one of the names (case-insensitive), or -1. */
export function findColumn(header: string[], ...names: string[]): number {
  const lower = header.map((h) => h.toLowerCase());
  for (const n of names) {
    const i = lower.indexOf(n.toLowerCase());
    if (i >= 0) return i;
  }
  return -1;
}

/** A header for a message: one line (control characters shown as ?), at most 200 characters. */
export function headerText(h: string[]): string {
  // deno-lint-ignore no-control-regex
  const s = h.join(",").replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return s.length > 200 ? `${s.slice(0, 200)}… (${h.length} columns)` : s;
}

/**
 * Refuses a header naming a column the loader reads (path, label, patient, split) twice, in any
 * case: which of the two would be read is not the user's to guess.
 */
export function refuseRepeatedColumns(file: string, h: string[], used: number[]): void {
  const lower = h.map((x) => x.toLowerCase());
  for (const c of used) {
    if (c < 0) continue;
    const other = lower.findIndex((x, i) => i !== c && x === lower[c]);
    if (other >= 0) {
      const [a, b] = [c, other].sort((x, y) => x - y);
      throw new DataError(
        `${file}: column "${h[c]}" appears twice in the header (columns ${a + 1} and ${
          b + 1
        }); rename or drop one, so that it is clear which one is read`,
      );
    }
  }
}
