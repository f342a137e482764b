/**
 * Exact ROC AUC (Mann–Whitney U with ties counted as 1/2, i.e. average ranks) and ROC curve
 * points, plus the input checks every other statistic in eval/ relies on.
 */

/** Binary labels (0/1) and real-valued scores for one test set, index-aligned. */
export interface BinaryPredictions {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
}

/** Thrown for unusable evaluation input; the message says what is wrong and what to do. */
export class EvalInputError extends Error {
  override name = "EvalInputError";
}

/** Counts of each class in a checked test set. */
export interface ClassCounts {
  nPos: number;
  nNeg: number;
}

/**
 * Checks that labels/scores are usable for an AUC: equal lengths, labels exactly 0 or 1, no NaN
 * scores, both classes present. `what` names the data in error messages (a file, a cell).
 */
export function checkPredictions(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  what = "predictions",
): ClassCounts {
  if (labels.length !== scores.length) {
    throw new EvalInputError(
      `${what}: ${labels.length} labels but ${scores.length} scores; ` +
        `labels and scores must be index-aligned arrays of the same length`,
    );
  }
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === 1) nPos++;
    else if (y !== 0) {
      throw new EvalInputError(`${what}: label[${i}] = ${y}; labels must be 0 or 1`);
    }
    if (Number.isNaN(scores[i])) {
      throw new EvalInputError(
        `${what}: score[${i}] is NaN; the model produced an invalid output ` +
          `(check for a diverged run or a division by zero before evaluating)`,
      );
    }
  }
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) {
    const only = labels.length === 0
      ? "no examples"
      : nPos === 0
      ? "only negatives"
      : "only positives";
    throw new EvalInputError(
      `${what}: AUC is undefined because the test set has ${only} ` +
        `(${nPos} positive, ${nNeg} negative of ${labels.length}); evaluate on a test split that ` +
        `contains both classes (e.g. a larger or label-stratified split)`,
    );
  }
  return { nPos, nNeg };
}

/** Indices 0..n-1 sorted by ascending value (stable). */
export function argsortAscending(values: ArrayLike<number>): Int32Array {
  const idx = new Int32Array(values.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => values[a] - values[b] || a - b);
}

/** 1-based ranks with ties given their average rank ("midranks"). */
export function midranks(values: ArrayLike<number>): Float64Array {
  const order = argsortAscending(values);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    const r = (start + 1 + end) / 2; // mean of ranks start+1..end
    for (let k = start; k < end; k++) ranks[order[k]] = r;
    start = end;
  }
  return ranks;
}

/** Exact AUC = P(score_pos > score_neg) + 0.5 P(equal). Throws EvalInputError on bad input. */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>, what?: string): number {
  const { nPos, nNeg } = checkPredictions(labels, scores, what);
  const ranks = midranks(scores);
  let rankSumPos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) rankSumPos += ranks[i];
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** ROC curve: one point per distinct threshold, from (0,0) to (1,1). */
export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** thresholds[k]: predict positive when score >= thresholds[k]; the first is +Infinity. */
  thresholds: number[];
}

/** ROC curve points (ties at one threshold move both rates at once: a diagonal segment). */
export function rocCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  what?: string,
): RocCurve {
  const { nPos, nNeg } = checkPredictions(labels, scores, what);
  const order = argsortAscending(scores).reverse();
  const fpr = [0], tpr = [0], thresholds = [Infinity];
  let tp = 0, fp = 0;
  for (let start = 0; start < order.length;) {
    const s = scores[order[start]];
    let end = start;
    while (end < order.length && scores[order[end]] === s) {
      if (labels[order[end]] === 1) tp++;
      else fp++;
      end++;
    }
    fpr.push(fp / nNeg);
    tpr.push(tp / nPos);
    thresholds.push(s);
    start = end;
  }
  return { fpr, tpr, thresholds };
}

/**
 * Drops ROC points so that consecutive kept points differ by at least `step` in fpr or tpr
 * (the end points are always kept): enough for a plot, small enough for an inline SVG.
 */
export function thinRoc(curve: RocCurve, step = 1 / 400): RocCurve {
  const n = curve.fpr.length;
  const out: RocCurve = { fpr: [], tpr: [], thresholds: [] };
  let lastF = -1, lastT = -1;
  for (let k = 0; k < n; k++) {
    const f = curve.fpr[k], t = curve.tpr[k];
    if (k === 0 || k === n - 1 || Math.abs(f - lastF) >= step || Math.abs(t - lastT) >= step) {
      out.fpr.push(f);
      out.tpr.push(t);
      out.thresholds.push(curve.thresholds[k]);
      lastF = f;
      lastT = t;
    }
  }
  return out;
}
