/** AUC (exact, with ties), ROC points, input checks and the normal-distribution helpers. */
import {
  auc,
  checkPredictions,
  erfc,
  EvalInputError,
  midranks,
  normalCdf,
  normalQuantile,
  rocCurve,
  thinRoc,
  twoSidedP,
} from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";

/** Definition: mean over (pos, neg) pairs of 1[s+ > s-] + 0.5·1[s+ = s-]. */
function bruteAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let sum = 0, pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      sum += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      pairs++;
    }
  }
  return sum / pairs;
}

Deno.test("auc: hand-computed values with ties", () => {
  // Pairs (pos 0.5 vs negs 0.1, 0.5) = 1 + 0.5; (pos 0.9 vs both) = 2 → 3.5 / 4.
  assertEquals(auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]), 0.875);
  assertEquals(auc([0, 1, 0, 1], [3, 3, 3, 3]), 0.5); // all tied
  assertEquals(auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]), 0); // perfectly reversed
  assertEquals(auc(new Float32Array([0, 1]), new Float32Array([-1, 1])), 1);
  // 2 pos {2, 3}, 3 neg {1, 2, 3}: pos 2 → 1 + 0.5; pos 3 → 2 + 0.5 → 4 / 6.
  assertEquals(auc([1, 1, 0, 0, 0], [2, 3, 1, 2, 3]), 4 / 6);
});

Deno.test("auc: equals the pairwise definition on random data with many ties", () => {
  const rng = new Rng(11);
  for (let t = 0; t < 20; t++) {
    const n = 5 + rng.int(200);
    const labels = Array.from({ length: n }, () => (rng.uniform() < 0.3 ? 1 : 0));
    labels[0] = 1;
    labels[1] = 0;
    const scores = labels.map((y) => Math.round((y * 0.8 + rng.normal()) * 2) / 2);
    assertClose([auc(labels, scores)], [bruteAuc(labels, scores)], { atol: 1e-12, rtol: 0 });
  }
});

Deno.test("midranks: ties get their average rank", () => {
  assertEquals(Array.from(midranks([10, 20, 20, 5, 20])), [2, 4, 4, 1, 4]);
});

Deno.test("auc: clear errors for unusable input", () => {
  assertThrows(
    () => auc([1, 1, 1], [0.1, 0.2, 0.3], "cell A"),
    (e: Error) =>
      e instanceof EvalInputError &&
      /cell A: AUC is undefined.*only positives.*both classes/.test(e.message),
  );
  assertThrows(() => auc([0, 0], [0.1, 0.2]), /only negatives/);
  assertThrows(() => auc([], []), /no examples/);
  assertThrows(() => auc([0, 1, 1], [0.1, 0.2]), /3 labels but 2 scores/);
  assertThrows(() => auc([0, 1], [0.1, NaN]), /score\[1\] is NaN/);
  assertThrows(() => auc([0, 2], [0.1, 0.2]), /label\[1\] = 2; labels must be 0 or 1/);
  assertEquals(checkPredictions([0, 1, 1], [1, 2, 3]), { nPos: 2, nNeg: 1 });
});

Deno.test("rocCurve: points per distinct threshold; trapezoid area equals AUC", () => {
  const labels = [0, 0, 1, 1, 0, 1];
  const scores = [0.1, 0.4, 0.4, 0.8, 0.2, 0.9];
  const r = rocCurve(labels, scores);
  assertEquals(r.thresholds, [Infinity, 0.9, 0.8, 0.4, 0.2, 0.1]);
  assertEquals(r.tpr, [0, 1 / 3, 2 / 3, 1, 1, 1]);
  assertEquals(r.fpr, [0, 0, 0, 1 / 3, 2 / 3, 1]);
  const rng = new Rng(3);
  const y = Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const s = y.map((v) => Math.round((v + rng.normal()) * 4));
  const c = rocCurve(y, s);
  let area = 0;
  for (let k = 1; k < c.fpr.length; k++) {
    area += (c.fpr[k] - c.fpr[k - 1]) * (c.tpr[k] + c.tpr[k - 1]) / 2;
  }
  assertClose([area], [auc(y, s)], { atol: 1e-12, rtol: 0 });
  const thin = thinRoc(c, 0.05);
  assert(thin.fpr.length < c.fpr.length, "thinning drops points");
  assertEquals([thin.fpr[0], thin.tpr[0]], [0, 0]);
  assertEquals([thin.fpr.at(-1), thin.tpr.at(-1)], [1, 1]);
});

Deno.test("normal: known values of erfc, the CDF, p-values and quantiles", () => {
  assertClose([erfc(0), erfc(1), erfc(2), erfc(4), erfc(-1)], [
    1,
    0.15729920705028513, // erfc(1)
    0.004677734981047266, // erfc(2)
    1.541725790028002e-8, // erfc(4)
    1.8427007929497148,
  ], { atol: 0, rtol: 1e-12 });
  assertClose([normalCdf(1.959963984540054), normalCdf(0), normalCdf(-3)], [
    0.975,
    0.5,
    0.0013498980316300946,
  ], { atol: 0, rtol: 1e-12 });
  assertClose([twoSidedP(1.959963984540054), twoSidedP(-2.5758293035489004)], [0.05, 0.01], {
    atol: 0,
    rtol: 1e-11,
  });
  assertClose([normalQuantile(0.975), normalQuantile(0.5), normalQuantile(1e-10)], [
    1.959963984540054,
    0,
    -6.361340902404056,
  ], { atol: 1e-12, rtol: 1e-12 });
  assertThrows(() => normalQuantile(1.5), /must be in \[0, 1\]/);
});
