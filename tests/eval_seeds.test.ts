/** Differences over pretraining seeds: the Student t, the two-level CI's coverage, its parts. */
import {
  auc,
  type CellPredictions,
  computeHeadline,
  computeResults,
  pairedDifference,
  readPredictionsFile,
  resultsToCsv,
  writePredictionsFile,
} from "../eval/mod.ts";
import { seedDifference, type SeedPairs, studentTCdf, studentTQuantile } from "../eval/seeds.ts";
import { normalCdf } from "../eval/normal.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";

Deno.test("student t: quantiles and CDF agree with tables", () => {
  // R: qt(0.975, c(1, 2, 3, 10, 30)), qt(0.95, 4.5)
  const q = [1, 2, 3, 10, 30].map((df) => studentTQuantile(0.975, df));
  assertClose(q, [12.706205, 4.302653, 3.182446, 2.228139, 2.042272], { atol: 2e-6, rtol: 0 });
  assertClose([studentTQuantile(0.95, 4)], [2.131847], { atol: 2e-6, rtol: 0 });
  const half = studentTQuantile(0.95, 4.5); // between its whole-df neighbours
  assert(half > studentTQuantile(0.95, 5) && half < studentTQuantile(0.95, 4), `${half}`);
  assertClose([studentTQuantile(0.025, 2)], [-4.302653], { atol: 2e-6, rtol: 0 });
  assertClose([studentTCdf(2, 5)], [0.9490303], { atol: 1e-6, rtol: 0 });
  assertClose([studentTCdf(-1, 1)], [0.25], { atol: 1e-9, rtol: 0 });
  assertClose([studentTQuantile(0.975, Infinity)], [1.959964], { atol: 1e-6, rtol: 0 });
  assertThrows(() => studentTQuantile(1, 3), /p must be in/);
});

/**
 * A run with known seed and test-set variance. Seed k's model A scores s = y·(a + e_k) + z + u,
 * e_k ~ N(0, tauA²) its pretraining-seed effect, z a per-image effect fixed across seeds, u ~ N(0, v)
 * the seed's own noise; B likewise with b, tauB and per-image effect rho·z + √(1 − rho²)·w
 * (rho = 1: both models see the same hard images, the pairing a shared test set gives). A model with separation m has population AUC
 * Φ(m / √(2 + 2v)), and E_e Φ((a + e)/σ) = Φ(a / √(σ² + tau²)), so the expected difference over
 * seeds and test sets is known exactly.
 */
function simulate(
  rng: Rng,
  p: {
    K: number;
    nPos: number;
    nNeg: number;
    a: number;
    b: number;
    tauA: number;
    tauB: number;
    v: number;
    rho: number;
  },
): SeedPairs[] {
  const labels = [...Array(p.nPos).fill(1), ...Array(p.nNeg).fill(0)];
  const z = labels.map(() => rng.normal());
  const c = Math.sqrt(1 - p.rho ** 2);
  const zB = z.map((x) => p.rho * x + c * rng.normal());
  const sv = Math.sqrt(p.v);
  return Array.from({ length: p.K }, (_, k) => {
    const mA = p.a + p.tauA * rng.normal(), mB = p.b + p.tauB * rng.normal();
    return {
      seed: k,
      pairs: [{
        labels,
        scoresA: labels.map((y, i) => y * mA + z[i] + sv * rng.normal()),
        scoresB: labels.map((y, i) => y * mB + zB[i] + sv * rng.normal()),
        draw: 0,
      }],
    };
  });
}

function truth(p: { a: number; b: number; tauA: number; tauB: number; v: number }): number {
  const s2 = 2 + 2 * p.v;
  return normalCdf(p.a / Math.sqrt(s2 + p.tauA ** 2)) -
    normalCdf(p.b / Math.sqrt(s2 + p.tauB ** 2));
}

function coverage(p: Parameters<typeof simulate>[1], sims: number, seed: number) {
  const rng = new Rng(seed);
  const t = truth(p);
  let ci = 0, hier = 0, test = 0, share = 0;
  for (let s = 0; s < sims; s++) {
    const r = seedDifference(simulate(rng, p), { rng, replicates: 300 });
    if (r.ci[0] <= t && t <= r.ci[1]) ci++;
    if (r.ci_hier[0] <= t && t <= r.ci_hier[1]) hier++;
    if (r.ci_test[0] <= t && t <= r.ci_test[1]) test++;
    share += r.seed_share;
  }
  return { ci: ci / sims, hier: hier / sims, test: test / sims, share: share / sims };
}

Deno.test("seed difference: the CI covers the expected difference ~95% when seeds dominate", () => {
  // Seed effects of ~0.1 AUC against a paired test-set se of ~0.02, three seeds. Welch–
  // Satterthwaite is slightly liberal with 2 df (0.927 over 1,000 such runs with Rng seed 99;
  // 0.945 with 5 seeds, Rng seed 98; 0.916 on these 500).
  const c = coverage(
    { K: 3, nPos: 50, nNeg: 100, a: 1.2, b: 0.8, tauA: 0.5, tauB: 0.35, v: 0.3, rho: 1 },
    500,
    11,
  );
  assert(c.ci >= 0.89 && c.ci <= 0.99, `two-level t CI coverage ${c.ci}`);
  assert(c.share > 0.7, `seed share ${c.share}`);
  // Resampling test images alone, or seeds by a plain percentile bootstrap, is far too narrow.
  assert(c.test < 0.6, `test-only CI coverage ${c.test}`);
  assert(c.hier < 0.88, `two-level percentile CI coverage ${c.hier}`);
});

Deno.test("seed difference: the CI covers ~95% when the test set dominates", () => {
  const c = coverage(
    { K: 3, nPos: 40, nNeg: 80, a: 1.0, b: 0.7, tauA: 0.02, tauB: 0.02, v: 0.02, rho: 0 },
    300,
    12,
  );
  assert(c.ci >= 0.9 && c.ci <= 0.99, `two-level t CI coverage ${c.ci}`);
  assert(c.share < 0.3, `seed share ${c.share}`);
});

Deno.test("seed difference: with no seed effect the test images are not counted twice", () => {
  // Seeds differ only by their own noise on one shared test set: the spread between seeds is
  // test-image noise (V̄ − C̄), which se_test² already holds. Counting it again as a seed part gave
  // seed shares of 0.40-0.43 here and a CI that covered 0.99; net of it, 0.13-0.16 and ~0.97.
  for (
    const [p, seed] of [
      [{ K: 3, nPos: 50, nNeg: 100, a: 1, b: 0.8, tauA: 0, tauB: 0, v: 1, rho: 1 }, 21],
      [{ K: 5, nPos: 50, nNeg: 100, a: 1, b: 0.8, tauA: 0, tauB: 0, v: 0.3, rho: 1 }, 22],
    ] as const
  ) {
    const rng = new Rng(seed);
    let share = 0, zero = 0, hierIsTest = 0;
    const sims = 120;
    for (let s = 0; s < sims; s++) {
      const r = seedDifference(simulate(rng, p), { rng, replicates: 200 });
      share += r.seed_share;
      if (r.seed_share === 0) {
        zero++;
        // No seed part left: the two-level bootstrap is the test-image one, and so is the t CI.
        if (r.ci_hier[0] === r.ci_test[0] && r.ci_hier[1] === r.ci_test[1]) hierIsTest++;
        assertEquals([r.df, r.se], [Infinity, r.se_test]);
      }
    }
    assert(share / sims < 0.25, `K=${p.K}: mean seed share ${share / sims}`);
    assert(zero > sims / 4, `K=${p.K}: seed part 0 in ${zero} of ${sims}`);
    assertEquals(hierIsTest, zero, `K=${p.K}: ci_hier = ci_test where the seed part is 0`);
  }
});

Deno.test("seed difference: per-seed differences, parts of the variance, one seed", () => {
  const rng = new Rng(4);
  const p = { K: 4, nPos: 30, nNeg: 60, a: 1.2, b: 0.8, tauA: 0.4, tauB: 0.3, v: 0.5, rho: 1 };
  const seeds = simulate(rng, p);
  // A second draw for seed 1: averaged within the seed first.
  const extra = simulate(rng, p)[0].pairs[0];
  seeds[1].pairs.push({ ...extra, draw: 1 });
  const r = seedDifference(seeds, { seed: 2, replicates: 400 });
  const d = seeds.map((s) =>
    s.pairs.reduce((t, x) => t + auc(x.labels, x.scoresA) - auc(x.labels, x.scoresB), 0) /
    s.pairs.length
  );
  assertClose(r.seed_diffs, d, { atol: 1e-12, rtol: 0 });
  assertClose([r.diff], [d.reduce((a, b) => a + b) / 4], { atol: 1e-12, rtol: 0 });
  const m = r.diff, sd = Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / 3);
  assertClose([r.seed_sd], [sd], { atol: 1e-12, rtol: 0 });
  // The seed part is the spread between seeds net of the test-image noise it holds, V̄ − C̄.
  const within = r.test_var - r.test_cov;
  assert(within > 0 && r.test_var > 0, `V̄ ${r.test_var}, C̄ ${r.test_cov}`);
  assertClose([r.se_seed ** 2], [Math.max(0, sd ** 2 - within) / 4], { atol: 1e-15, rtol: 1e-9 });
  assertClose([r.se_test ** 2], [r.test_var / 4 + (3 * r.test_cov) / 4], {
    atol: 1e-15,
    rtol: 1e-9,
  });
  assertClose([r.se], [Math.hypot(r.se_seed, r.se_test)], { atol: 1e-12, rtol: 0 });
  // Here the seeds dominate: se² = sd²(d_k)/K + C̄, df from the mean square's K − 1 df.
  assert(r.se_seed > 0, `se_seed ${r.se_seed}`);
  assertClose([r.se ** 2], [sd ** 2 / 4 + r.test_cov], { atol: 1e-15, rtol: 1e-9 });
  assertClose([r.df], [Math.max(3, (3 * r.se ** 4) / (sd ** 2 / 4) ** 2)], {
    atol: 0,
    rtol: 1e-9,
  });
  assertEquals(r.seeds_positive, d.filter((x) => x > 0).length);
  const half = studentTQuantile(0.975, r.df) * r.se;
  assertClose(r.ci, [r.diff - half, r.diff + half], { atol: 1e-12, rtol: 0 });
  assert(r.df >= 3 && r.df < 1e6, `df ${r.df}`);

  // One seed: no seed part; the CI is the test-image bootstrap, as pairedDifference's.
  const one = seedDifference([seeds[0]], { seed: 2, replicates: 2000 });
  const old = pairedDifference(seeds[0].pairs, { seed: 2, replicates: 2000 });
  assertEquals([one.n_seeds, one.se_seed, one.df, one.test_cov], [1, 0, Infinity, 0]);
  assertEquals(one.ci, one.ci_test);
  assertClose([one.diff], [old.diff], { atol: 1e-12, rtol: 0 });
  assertClose(one.ci, old.ci, { atol: 0.01, rtol: 0 });
  assertThrows(() => seedDifference([]), /no seeds/);
});

Deno.test("computeResults: cells of several pretraining seeds pair within a seed", async () => {
  const rng = new Rng(9);
  const p = { K: 3, nPos: 40, nNeg: 80, a: 1.3, b: 0.7, tauA: 0.3, tauB: 0.2, v: 0.3, rho: 1 };
  const sim = simulate(rng, p);
  const cells: CellPredictions[] = sim.flatMap((s) =>
    s.pairs.flatMap((d) =>
      [
        { init: "moco" as const, scores: d.scoresA },
        { init: "random" as const, scores: d.scoresB },
      ].map((m) => ({
        ...m,
        protocol: "linear" as const,
        fraction: 0.01,
        draw: 0,
        backbone: "resnet18",
        task: "Effusion",
        labels: d.labels,
        pretrain_seed: s.seed,
      }))
    )
  );
  const r = computeResults(cells, { replicates: 300 });
  assertEquals(r.cells.length, 6);
  const d = r.differences.find((x) => x.init === "moco" && x.baseline === "random")!;
  assertEquals([d.p_method, d.seeds!.n_seeds], ["seed-t", 3]);
  const perSeed = sim.map((s) =>
    auc(s.pairs[0].labels, s.pairs[0].scoresA) - auc(s.pairs[0].labels, s.pairs[0].scoresB)
  );
  assertClose(d.seeds!.seed_diffs, perSeed, { atol: 1e-12, rtol: 0 });
  assertClose([d.diff], [perSeed.reduce((a, b) => a + b) / 3], { atol: 1e-12, rtol: 0 });
  // The seed-aware CI is wider than the test-only one, which the run kept alongside.
  assert(d.ci[1] - d.ci[0] > d.seeds!.ci_test[1] - d.seeds!.ci_test[0]);
  const s = r.summary.find((x) => x.init === "moco")!;
  assertEquals(s.n_seeds, 3);
  assert(s.seed_sd > 0);
  assert(computeHeadline(r).text.includes("Over 3 pretraining seeds"), computeHeadline(r).text);
  assert(resultsToCsv(r).differences.includes(",seed-t,"));
  const csv = resultsToCsv(r).differences.split("\n");
  assert(csv[0].endsWith(",ci_hier_lo,ci_hier_hi,test_var,test_cov"), csv[0]);

  // A seed without its baseline is reported, not paired with another seed's.
  const r2 = computeResults(
    cells.filter((c) => !(c.init === "random" && c.pretrain_seed === 2)),
    { replicates: 100 },
  );
  assertEquals(r2.differences[0].seeds!.n_seeds, 2);
  assert(r2.warnings.some((w) => w.includes("seed 2")), r2.warnings.join("; "));

  // Predictions files: seed k > 0 in the name and the file; seed 0 keeps the old name.
  const dir = await Deno.makeTempDir();
  try {
    const p0 = await writePredictionsFile(dir, { ...cells[0], pretrain_seed: 0 });
    const p2 = await writePredictionsFile(dir, cells[4]);
    assert(!p0.includes("_s0") && p2.endsWith("_s2.json"), `${p0} ${p2}`);
    assertEquals((await readPredictionsFile(p2)).pretrain_seed, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
