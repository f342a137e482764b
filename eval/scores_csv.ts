/** Reads a prediction CSV with columns id,label,score (any order, extra columns ignored). */
import { parse } from "csv-parse/sync";
import { EvalInputError } from "./auc.ts";

export interface ScoresTable {
  ids: string[];
  labels: Float64Array;
  scores: Float64Array;
}

/** Parses CSV text; errors name `what`, the line and the column. */
export function parseScoresCsv(text: string, what: string): ScoresTable {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parse(text, { columns: true, info: true, skip_empty_lines: true, trim: true });
  } catch (e) {
    throw new EvalInputError(`${what}: not valid CSV (${(e as Error).message})`);
  }
  if (records.length === 0) {
    throw new EvalInputError(`${what}: no rows (want a header id,label,score and data)`);
  }
  for (const col of ["id", "label", "score"]) {
    if (!(col in records[0].record)) {
      throw new EvalInputError(
        `${what}: no "${col}" column (header has ${
          Object.keys(records[0].record).join(", ")
        }; want id,label,score)`,
      );
    }
  }
  const ids: string[] = [];
  const labels = new Float64Array(records.length), scores = new Float64Array(records.length);
  const seen = new Set<string>();
  records.forEach(({ record, info }, i) => {
    const where = `${what}:${info.lines}`;
    const id = record.id;
    if (seen.has(id)) throw new EvalInputError(`${where}: id "${id}" appears twice`);
    seen.add(id);
    const y = Number(record.label), s = Number(record.score);
    if (record.label === "" || !(y === 0 || y === 1)) {
      throw new EvalInputError(
        `${where}: column "label" is "${record.label}"; labels must be 0 or 1`,
      );
    }
    if (record.score === "" || Number.isNaN(s)) {
      throw new EvalInputError(`${where}: column "score" is "${record.score}", not a number`);
    }
    ids.push(id);
    labels[i] = y;
    scores[i] = s;
  });
  return { ids, labels, scores };
}

/** Reads a scores CSV file. */
export async function readScoresCsv(path: string): Promise<ScoresTable> {
  return parseScoresCsv(await Deno.readTextFile(path), path);
}

/**
 * Puts `b` in `a`'s id order for a paired comparison; both files must hold the same ids with the
 * same labels.
 */
export function alignScores(
  a: ScoresTable,
  b: ScoresTable,
  whatA: string,
  whatB: string,
): ScoresTable {
  const index = new Map(b.ids.map((id, i) => [id, i]));
  if (b.ids.length !== a.ids.length) {
    throw new EvalInputError(
      `${whatA} has ${a.ids.length} rows but ${whatB} has ${b.ids.length}; a paired comparison needs the same test set`,
    );
  }
  const labels = new Float64Array(a.ids.length), scores = new Float64Array(a.ids.length);
  a.ids.forEach((id, i) => {
    const j = index.get(id);
    if (j === undefined) throw new EvalInputError(`id "${id}" is in ${whatA} but not in ${whatB}`);
    if (b.labels[j] !== a.labels[i]) {
      throw new EvalInputError(
        `id "${id}": label ${a.labels[i]} in ${whatA} but ${b.labels[j]} in ${whatB}`,
      );
    }
    labels[i] = b.labels[j];
    scores[i] = b.scores[j];
  });
  return { ids: a.ids, labels, scores };
}
