/**
 * Paired comparison of two initializations averaged over label-fraction draws (as MoCo-CXR
 * reported it): for each draw d, models A_d and B_d are fine-tuned on the same labeled subset
 * and scored on the same test set; the statistic is mean_d (AUC(A_d) − AUC(B_d)).
 *
 * CI: paired bootstrap percentile interval (every model scored on the same resampled images: by
 * id when the pairs carry ids, else by position). p: the same bootstrap's (the test behind the CI,
 * the one the report and the console show); DeLong's test of the same contrast is kept beside it
 * (p_delong, ci_delong) when all draws share one test set (identical labels, and identical ids
 * when given). Both treat the fine-tuned models as fixed, so they measure test-set sampling error
 * only; `draw_sd` shows how much the difference moves between draws.
 */
import { auc, EvalInputError } from "./auc.ts";
import { bootstrapContrast, type BootstrapOptions } from "./bootstrap.ts";
import { delongContrast } from "./delong.ts";

/**
 * One draw (or one task of a draw): labels of its test set and the scores of both models on it.
 * Pairs with the same `draw` id are averaged first (e.g. over tasks), then over draws; without
 * ids every pair is its own draw.
 */
export interface DrawPair {
  labels: ArrayLike<number>;
  scoresA: ArrayLike<number>;
  scoresB: ArrayLike<number>;
  draw?: number | string;
  what?: string;
  /** Image ids of the test set, index-aligned with labels (all pairs or none; see bootstrap.ts). */
  ids?: ArrayLike<string | number>;
}

export interface PairedDifferenceStats {
  /** Mean over draws of AUC_A − AUC_B. */
  diff: number;
  /** Bootstrap percentile CI of `diff`. */
  ci: [number, number];
  /** Two-sided p-value for diff = 0 of the test behind `ci` (method in `p_method`). */
  p: number;
  /**
   * The test of `p` and `ci`: the paired bootstrap, or over several pretraining seeds the
   * seed-level t (eval/seeds.ts). Results written before this rule say "delong" where the
   * bootstrap's CI was shown with DeLong's p.
   */
  p_method: "bootstrap" | "seed-t" | "delong";
  p_bootstrap: number;
  /** DeLong p and normal CI, or null when the draws do not share one test set. */
  p_delong: number | null;
  ci_delong: [number, number] | null;
  n_draws: number;
  /** AUC_A − AUC_B of each draw (averaged over its pairs), in order of first appearance. */
  draw_diffs: number[];
  /** Standard deviation of draw_diffs (0 for one draw). */
  draw_sd: number;
  /** Bootstrap resamples redrawn because a class was absent. */
  redrawn: number;
}

function sameArray<T>(a: ArrayLike<T>, b: ArrayLike<T>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Paired difference of AUCs (A − B), averaged over draws; see the file header. */
export function pairedDifference(
  draws: DrawPair[],
  opts: BootstrapOptions = {},
): PairedDifferenceStats {
  if (draws.length === 0) throw new EvalInputError("paired difference: no draws given");
  const ids = draws.map((d, k) => d.draw ?? `#${k}`);
  const perDraw = new Map<number | string, number>();
  for (const id of ids) perDraw.set(id, (perDraw.get(id) ?? 0) + 1);
  const D = perDraw.size;
  const weights = ids.map((id) => 1 / (D * perDraw.get(id)!));
  const terms = draws.flatMap((d, k) => {
    const what = d.what ?? `draw ${ids[k]}`;
    const img = d.ids === undefined ? {} : { ids: d.ids };
    return [
      { labels: d.labels, scores: d.scoresA, weight: weights[k], what: `${what} (A)`, ...img },
      { labels: d.labels, scores: d.scoresB, weight: -weights[k], what: `${what} (B)`, ...img },
    ];
  });
  const boot = bootstrapContrast(terms, { ...opts, nullValue: 0 });
  const drawDiffMap = new Map<number | string, number>();
  draws.forEach((d, k) => {
    const x = (auc(d.labels, d.scoresA) - auc(d.labels, d.scoresB)) * weights[k] * D;
    drawDiffMap.set(ids[k], (drawDiffMap.get(ids[k]) ?? 0) + x);
  });
  const drawDiffs = [...drawDiffMap.values()];
  const mean = drawDiffs.reduce((s, x) => s + x, 0) / D;
  const sd = D > 1 ? Math.sqrt(drawDiffs.reduce((s, x) => s + (x - mean) ** 2, 0) / (D - 1)) : 0;

  let pDelong: number | null = null, ciDelong: [number, number] | null = null;
  const shared = draws.every((d) =>
    sameArray(d.labels, draws[0].labels) &&
    (d.ids === undefined || draws[0].ids === undefined || sameArray(d.ids, draws[0].ids))
  );
  let nPos = 0;
  for (let i = 0; i < draws[0].labels.length; i++) nPos += draws[0].labels[i] === 1 ? 1 : 0;
  const nNeg = draws[0].labels.length - nPos;
  if (shared && nPos >= 2 && nNeg >= 2) {
    const t = delongContrast(
      draws[0].labels,
      [...draws.map((d) => d.scoresA), ...draws.map((d) => d.scoresB)],
      [...weights, ...weights.map((w) => -w)],
      { level: boot.level },
    );
    pDelong = t.p;
    ciDelong = t.ci;
  }
  return {
    diff: boot.estimate,
    ci: boot.ci,
    p: boot.p,
    p_method: "bootstrap",
    p_bootstrap: boot.p,
    p_delong: pDelong,
    ci_delong: ciDelong,
    n_draws: D,
    draw_diffs: drawDiffs,
    draw_sd: sd,
    redrawn: boot.redrawn,
  };
}
