/**
 * One image listed twice: a CSV row repeated (dropped, with one warning line for all of them) or
 * the same path with other labels, patient or split (refused, naming the file, both rows and the
 * path), so a label never depends on which row happens to win.
 */
import { DataError } from "./data_error.ts";

/** What a row says of its image, compared between two rows of the same path. */
export interface RowFacts {
  /** The file the row is in. */
  file: string;
  /** 1-based line number. */
  row: number;
  /** The path as the file writes it. */
  rel: string;
  /** Per task: the label cell as written. */
  cells: string[];
  /** Per task: the label it means (1, 0, -1, null for blank), compared instead of the cells. */
  values: (number | null)[];
  /** The task names, for the message. */
  tasks: string[];
  /** Patient id as the row gives it ("" when it gives none). */
  patient: string;
  /** Split as the row gives it ("" when it gives none). */
  split: string;
}

/** Tracks the paths seen while a loader reads its rows. */
export class DuplicatePaths {
  private readonly seen = new Map<string, RowFacts>();
  private readonly dropped: [first: RowFacts, again: RowFacts][] = [];

  /**
   * True for a path not seen before; false for an exact repeat of an earlier row (drop it);
   * throws a DataError when the same path comes with other labels, patient or split.
   */
  add(path: string, facts: RowFacts): boolean {
    const first = this.seen.get(path);
    if (!first) {
      this.seen.set(path, facts);
      return true;
    }
    const where = first.file === facts.file
      ? `${facts.file}: rows ${first.row} and ${facts.row}`
      : `${first.file} row ${first.row} and ${facts.file} row ${facts.row}`;
    const labels = facts.tasks.flatMap((t, i) =>
      first.values[i] === facts.values[i]
        ? []
        : [`${t}: ${show(first.cells[i])} vs ${show(facts.cells[i])}`]
    );
    const differ = [
      ...(labels.length ? [`labels (${labels.join("; ")})`] : []),
      ...(first.patient !== facts.patient
        ? [`patients (${show(first.patient)} vs ${show(facts.patient)})`]
        : []),
      ...(first.split !== facts.split
        ? [`splits (${show(first.split)} vs ${show(facts.split)})`]
        : []),
    ];
    if (differ.length > 0) {
      throw new DataError(
        `${where} both list "${facts.rel}" with different ${differ.join(" and ")}: keep one row ` +
          `per image (its label would otherwise depend on which row wins)`,
      );
    }
    this.dropped.push([first, facts]);
    return false;
  }

  /** Exact repeats dropped so far. */
  get droppedCount(): number {
    return this.dropped.length;
  }

  /** One warning line for the dropped repeats, or null when there were none. */
  warning(): string | null {
    const n = this.dropped.length;
    if (n === 0) return null;
    const [a, b] = this.dropped[0];
    const where = a.file === b.file ? `${b.file}: row ${b.row}` : `${b.file} row ${b.row}`;
    return `${n} repeated row${n > 1 ? "s" : ""} dropped (the same image with the same labels ` +
      `as an earlier row); first: ${where} repeats row ${a.row}${
        a.file === b.file ? "" : ` of ${a.file}`
      }, "${b.rel}"`;
  }
}

function show(v: string): string {
  return v.trim() === "" ? "(blank)" : `"${v.trim()}"`;
}

/** Throws when two records share a path (a dataset must list each image once). */
export function refuseDuplicatePaths(paths: Iterable<string>, what: string): void {
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) {
      throw new DataError(
        `${what} lists ${p} more than once: each image must be listed once (its label would ` +
          `otherwise depend on which entry wins)`,
      );
    }
    seen.add(p);
  }
}
