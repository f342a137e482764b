/** Bootstrap CIs: determinism, coverage, agreement with DeLong, pairing, redraws, draw averaging. */
import {
  auc,
  bootstrapAuc,
  bootstrapContrast,
  delong,
  delongContrast,
  delongPaired,
  pairedBootstrap,
  pairedDifference,
  quantileSorted,
} from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";

function sample(rng: Rng, nPos: number, nNeg: number, sep: number) {
  const labels = [...Array(nPos).fill(1), ...Array(nNeg).fill(0)];
  return { labels, scores: labels.map((y) => sep * y + rng.normal()) };
}

Deno.test("bootstrap: same seed → same interval; different seed → different replicates", () => {
  const { labels, scores } = sample(new Rng(1), 30, 70, 1);
  const a = bootstrapAuc(labels, scores, { seed: 5, replicates: 200 });
  const b = bootstrapAuc(labels, scores, { seed: 5, replicates: 200 });
  const c = bootstrapAuc(labels, scores, { seed: 6, replicates: 200 });
  assertEquals(a.ci, b.ci);
  assert(a.ci[0] !== c.ci[0] || a.ci[1] !== c.ci[1]);
  assertEquals(a.estimate, auc(labels, scores));
  assertEquals(a.replicates.length, 200);
  assert(a.ci[0] < a.estimate && a.estimate < a.ci[1]);
});

Deno.test("bootstrap: percentile CI covers the true AUC about 95% of the time", () => {
  // 200 simulated binormal datasets (true AUC = Phi(1/sqrt 2)), 200 resamples each.
  const trueAuc = 0.7602499389065233;
  const rng = new Rng(77);
  let covered = 0;
  for (let k = 0; k < 200; k++) {
    const { labels, scores } = sample(rng, 40, 80, 1);
    const b = bootstrapAuc(labels, scores, { rng, replicates: 200 });
    if (b.ci[0] <= trueAuc && trueAuc <= b.ci[1]) covered++;
  }
  const rate = covered / 200;
  assert(rate >= 0.88 && rate <= 0.99, `coverage ${rate}`);
});

Deno.test("bootstrap: standard error agrees with DeLong's", () => {
  const { labels, scores } = sample(new Rng(3), 150, 350, 0.8);
  const b = bootstrapAuc(labels, scores, { seed: 1, replicates: 1000 });
  const d = delong(labels, scores);
  assertClose([b.se], [d.se], { atol: 0, rtol: 0.12, label: "bootstrap SE vs DeLong SE" });
  assertClose(b.ci, d.ci, { atol: 0.01, rtol: 0 });
});

Deno.test("pairedBootstrap: same resamples for both models", () => {
  const rng = new Rng(8);
  const { labels, scores } = sample(rng, 60, 140, 1);
  const other = scores.map((s) => s + 0.7 * rng.normal());
  const p = pairedBootstrap(labels, scores, other, { seed: 2, replicates: 1000 });
  assertClose([p.estimate], [auc(labels, scores) - auc(labels, other)], { atol: 1e-12, rtol: 0 });
  // Pairing shrinks the spread below that of independent resamples: var(A) + var(B).
  const sa = bootstrapAuc(labels, scores, { seed: 3 }).se,
    sb = bootstrapAuc(labels, other, { seed: 4 }).se;
  assert(p.se < Math.sqrt(sa * sa + sb * sb) * 0.9, `paired se ${p.se} vs ${Math.hypot(sa, sb)}`);
  const dl = delongPaired(labels, scores, other);
  assertClose([p.se], [dl.se], { atol: 0, rtol: 0.15, label: "paired SE vs DeLong" });
  // Identical models: every replicate difference is exactly 0, p = 1.
  const same = pairedBootstrap(labels, scores, scores, { replicates: 100 });
  assertEquals([same.estimate, same.ci[0], same.ci[1], same.p], [0, 0, 0, 1]);
});

Deno.test("bootstrap: resamples missing a class are redrawn and counted", () => {
  const labels = Array.from({ length: 40 }, (_, i) => (i === 0 ? 1 : 0)); // one positive
  const scores = labels.map((y, i) => y + i / 100);
  const b = bootstrapAuc(labels, scores, { seed: 1, replicates: 300 });
  // P(positive absent) = (39/40)^40 ≈ 0.36, so about 170 redraws are expected.
  assert(b.redrawn > 100 && b.redrawn < 260, `redrawn ${b.redrawn}`);
  assertEquals(b.replicates.length, 300);
  assert(b.replicates.every((r) => Number.isFinite(r)));
});

Deno.test("bootstrap: options and input are checked", () => {
  assertThrows(
    () => bootstrapAuc([1, 0], [1, 0], { replicates: 0 }),
    /replicates must be a positive integer/,
  );
  assertThrows(() => bootstrapAuc([1, 0], [1, 0], { level: 95 }), /level must be in \(0, 1\)/);
  assertThrows(() => bootstrapAuc([1, 1], [1, 0], { what: "cell X" }), /cell X: AUC is undefined/);
  assertThrows(() => bootstrapContrast([]), /no AUC terms/);
  assertEquals(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assertEquals(quantileSorted([1, 2, 3, 4], 0), 1);
});

Deno.test("pairedDifference: averaged over draws, DeLong p on a shared test set", () => {
  const rng = new Rng(21);
  const labels = Array.from({ length: 300 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const base = labels.map(() => rng.normal());
  const draws = [0, 1, 2].map((d) => ({
    labels,
    scoresA: labels.map((y, i) => (1 + 0.1 * d) * y + base[i] + 0.6 * rng.normal()),
    scoresB: labels.map((y, i) => 0.6 * y + base[i] + 0.6 * rng.normal()),
    draw: d,
  }));
  const r = pairedDifference(draws, { seed: 4, replicates: 500 });
  const perDraw = draws.map((d) => auc(labels, d.scoresA) - auc(labels, d.scoresB));
  assertClose(r.draw_diffs, perDraw, { atol: 1e-12, rtol: 0 });
  assertClose([r.diff], [perDraw.reduce((a, b) => a + b) / 3], { atol: 1e-12, rtol: 0 });
  // p is the bootstrap's, the test behind the CI shown; DeLong's is kept beside it.
  assertEquals([r.p_method, r.p], ["bootstrap", r.p_bootstrap]);
  const dl = delongContrast(
    labels,
    [...draws.map((d) => d.scoresA), ...draws.map((d) => d.scoresB)],
    [1 / 3, 1 / 3, 1 / 3, -1 / 3, -1 / 3, -1 / 3],
  );
  assertClose([r.p_delong!, r.ci_delong![0], r.ci_delong![1]], [dl.p, dl.ci[0], dl.ci[1]], {
    atol: 1e-12,
    rtol: 0,
  });
  assert(r.ci[0] < r.diff && r.diff < r.ci[1]);
  assert(r.draw_sd > 0);

  // Draws on different test sets: no DeLong, bootstrap p instead.
  const other = labels.map((_, i) => (i % 5 === 0 ? 1 : 0));
  const mixed = pairedDifference([draws[0], { ...draws[1], labels: other }], { replicates: 200 });
  assertEquals([mixed.p_method, mixed.p_delong, mixed.ci_delong], ["bootstrap", null, null]);
  assertEquals(mixed.p, mixed.p_bootstrap);

  // Several pairs with one draw id (e.g. tasks) are averaged within the draw first.
  const tasks = pairedDifference([
    { ...draws[0], draw: 0 },
    { ...draws[1], draw: 0 },
    { ...draws[2], draw: 1 },
  ], { replicates: 100 });
  assertEquals(tasks.n_draws, 2);
  assertClose(tasks.draw_diffs, [(perDraw[0] + perDraw[1]) / 2, perDraw[2]], {
    atol: 1e-12,
    rtol: 0,
  });
  assertClose([tasks.diff], [((perDraw[0] + perDraw[1]) / 2 + perDraw[2]) / 2], {
    atol: 1e-12,
    rtol: 0,
  });
});

Deno.test("bootstrap: a 50k-example test set is handled (O(n) per resample)", () => {
  const rng = new Rng(5);
  const { labels, scores } = sample(rng, 15_000, 35_000, 0.5);
  const other = scores.map((s) => s + 0.5 * rng.normal());
  const p = pairedBootstrap(labels, scores, other, { replicates: 20 });
  const d = delongPaired(labels, scores, other);
  assertClose([p.estimate], [d.estimate], { atol: 1e-12, rtol: 0 });
  assert(d.se > 0 && d.se < 0.01);
});

Deno.test("bootstrap: terms with ids are resampled by image, not by position or size", () => {
  const rng = new Rng(31);
  const { labels, scores } = sample(rng, 60, 140, 1);
  const other = scores.map((s) => s + 0.7 * rng.normal());
  const n = labels.length;
  const ids = labels.map((_, i) => `img${i}`);
  const opts = { seed: 4, replicates: 300 };
  // One test set, one order: ids change nothing (same resamples, bit for bit).
  const plain = pairedBootstrap(labels, scores, other, opts);
  const withIds = bootstrapContrast([
    { labels, scores, weight: 1, ids },
    { labels, scores: other, weight: -1, ids },
  ], opts);
  assertEquals(Array.from(withIds.replicates), Array.from(plain.replicates));
  assertEquals(
    bootstrapAuc(labels, scores, opts).ci,
    bootstrapContrast([{ labels, scores, weight: 1, ids }], opts).ci,
  );

  // Model B's rows in another order: paired by id, the same as in one order.
  const perm = [...Array(n).keys()].reverse();
  const shuffled = bootstrapContrast([
    { labels, scores, weight: 1, ids },
    {
      labels: perm.map((i) => labels[i]),
      scores: perm.map((i) => other[i]),
      weight: -1,
      ids: perm.map((i) => ids[i]),
    },
  ], opts);
  assertEquals(Array.from(shuffled.replicates), Array.from(plain.replicates));

  // A task that masks a few images is coupled to the full one through the shared images
  // (by size, they were resampled independently: the difference's se as if unpaired).
  const keep = [...Array(n).keys()].filter((i) => i % 25 !== 3);
  const masked = {
    labels: keep.map((i) => labels[i]),
    scores: keep.map((i) => scores[i]),
    ids: keep.map((i) => ids[i]),
  };
  const coupled = bootstrapContrast([
    { labels, scores, weight: 1, ids },
    { ...masked, weight: -1 },
  ], opts);
  const bySize = bootstrapContrast([
    { labels, scores, weight: 1 },
    { labels: masked.labels, scores: masked.scores, weight: -1 },
  ], opts);
  assert(coupled.se < 0.3 * bySize.se, `masked task: se ${coupled.se} vs by size ${bySize.se}`);

  // Two different image sets of the same size are independent, even with identical rows (by
  // position they moved together: every replicate difference 0).
  const twin = bootstrapContrast([
    { labels, scores, weight: 1, ids },
    { labels, scores, weight: -1, ids: ids.map((id) => `other/${id}`) },
  ], opts);
  const single = bootstrapAuc(labels, scores, opts).se;
  assertClose([twin.se], [Math.SQRT2 * single], { atol: 0, rtol: 0.2 });

  // Draws on the same labels but different images: no DeLong (it needs one test set).
  const draw = (ids: string[], d: number) => ({
    labels,
    scoresA: scores,
    scoresB: other,
    ids,
    draw: d,
  });
  const two = [draw(ids, 0), draw(ids.map((id) => `other/${id}`), 1)];
  assertEquals(pairedDifference(two, opts).p_delong, null);
  assert(pairedDifference([draw(ids, 0), draw(ids, 1)], opts).p_delong !== null);

  assertThrows(
    () =>
      bootstrapContrast([{ labels, scores, weight: 1, ids, what: "cell A" }, {
        labels,
        scores,
        weight: -1,
        what: "cell B",
      }]),
    /cell A has image ids but cell B has none/,
  );
  assertThrows(
    () =>
      bootstrapContrast([{
        labels,
        scores,
        weight: 1,
        ids: ids.map((id, i) => (i === 5 ? ids[4] : id)),
        what: "cell A",
      }]),
    /cell A: id "img4" appears twice/,
  );
});

Deno.test("bootstrapAuc: an explicit nullValue: undefined still tests AUC = 0.5", () => {
  const { labels, scores } = sample(new Rng(12), 20, 20, 0.3);
  const opts = { seed: 1, replicates: 300 };
  const def = bootstrapAuc(labels, scores, opts);
  assert(def.p > 0.05, `p ${def.p}`); // a weak model: AUC = 0.5 is not rejected
  assertEquals(bootstrapAuc(labels, scores, { ...opts, nullValue: undefined }).p, def.p);
  assertEquals(bootstrapAuc(labels, scores, { ...opts, nullValue: 0 }).p, 0);
});
