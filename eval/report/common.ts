/** Small helpers the report sections share. */
import { MEAN_TASK, type Results, type SummaryRow } from "../results.ts";

export function tasksOf(r: Results): string[] {
  const ts = [...new Set(r.summary.map((s) => s.task))];
  return ts.sort((a, b) => Number(b === MEAN_TASK) - Number(a === MEAN_TASK) || a.localeCompare(b));
}

export function taskTitle(task: string): string {
  return task === MEAN_TASK ? "Mean over tasks" : `Task: ${task}`;
}

export function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

export const summaryKey = (
  s: Omit<SummaryRow, "n_draws" | "auc" | "ci" | "auc_sd" | "n_seeds" | "seed_sd">,
) => JSON.stringify([s.backbone, s.task, s.protocol, s.init, s.fraction]);
