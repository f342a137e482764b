/** computeResults on synthetic predictions, CSV/JSON output, the headline, and run-folder files. */
import { parse } from "csv-parse/sync";
import {
  auc,
  BELOW_CHANCE,
  belowChance,
  belowChanceWarning,
  type CellPredictions,
  computeHeadline,
  computeResults,
  EvalInputError,
  MEAN_TASK,
  parseMetrics,
  parseScoresCsv,
  readPredictionsFile,
  readResults,
  readRunPredictions,
  type Results,
  resultsToCsv,
  verdictOf,
  writePredictionsFile,
  writeResults,
} from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";
import { seedStats, syntheticCells } from "./eval_fixtures.ts";
import { assert, assertClose, assertEquals, assertRejects, assertThrows } from "./helpers.ts";

const FAST = { replicates: 100, seed: 3 };

Deno.test("computeResults: per-cell AUCs, means over draws and paired differences", () => {
  const cells = syntheticCells({ fractions: [0.01, 1], draws: 3, nTest: 200 });
  const r = computeResults(cells, FAST);
  // 3 inits × 2 protocols × (3 draws at 1% + 1 at 100%).
  assertEquals(r.cells.length, 24);
  assertEquals(r.summary.length, 12);
  // moco−imagenet and moco−random at 2 protocols × 2 fractions.
  assertEquals(r.differences.length, 8);
  assertEquals(r.warnings, []);
  for (const c of r.cells) {
    const src = cells.find((x) =>
      x.init === c.init && x.protocol === c.protocol && x.fraction === c.fraction &&
      x.draw === c.draw
    )!;
    assertClose([c.auc], [auc(src.labels, src.scores)], { atol: 1e-12, rtol: 0 });
    assert(c.ci[0] <= c.auc && c.auc <= c.ci[1], `${c.init} ${c.fraction} ${c.draw}`);
    assertEquals(c.n_test, 200);
    assert(c.se_delong! > 0);
  }
  const s = r.summary.find((x) =>
    x.init === "moco" && x.protocol === "linear" && x.fraction === 0.01
  )!;
  const draws = r.cells.filter((x) =>
    x.init === "moco" && x.protocol === "linear" && x.fraction === 0.01
  );
  assertEquals(s.n_draws, 3);
  assertClose([s.auc], [draws.reduce((t, c) => t + c.auc, 0) / 3], { atol: 1e-12, rtol: 0 });
  const d = r.differences.find((x) =>
    x.init === "moco" && x.baseline === "imagenet" && x.protocol === "linear" && x.fraction === 0.01
  )!;
  const base = r.cells.filter((x) =>
    x.init === "imagenet" && x.protocol === "linear" && x.fraction === 0.01
  );
  const perDraw = draws.map((c, k) => c.auc - base[k].auc);
  assertClose(d.draw_diffs, perDraw, { atol: 1e-12, rtol: 0 });
  assertClose([d.diff], [perDraw.reduce((a, b) => a + b) / 3], { atol: 1e-12, rtol: 0 });
  // p is the bootstrap's (the test behind the CI shown); DeLong's beside it (one test set).
  assertEquals([d.n_draws, d.p_method, d.p], [3, "bootstrap", d.p_bootstrap]);
  assert(d.p_delong !== null && d.p_delong !== d.p, `p_delong ${d.p_delong}`);
  // The synthetic MoCo is built to be better at 1% labels.
  assert(d.diff > 0 && d.ci[0] < d.diff && d.diff < d.ci[1], `moco − imagenet ${d.diff} ${d.ci}`);
});

Deno.test("computeResults: results do not depend on the order of the cells", () => {
  const cells = syntheticCells({ fractions: [0.1], draws: 2, nTest: 120, protocols: ["linear"] });
  const a = computeResults(cells, FAST), b = computeResults([...cells].reverse(), FAST);
  assertEquals(a, b);
});

Deno.test("computeResults: several tasks add 'mean' rows", () => {
  const cells = syntheticCells({
    fractions: [0.01],
    draws: 2,
    nTest: 150,
    tasks: ["effusion", "edema"],
    protocols: ["linear"],
    inits: ["imagenet", "moco"],
  });
  const r = computeResults(cells, FAST);
  const means = r.summary.filter((s) => s.task === MEAN_TASK);
  assertEquals(means.length, 2);
  const moco = means.find((s) => s.init === "moco")!;
  const parts = r.summary.filter((s) => s.init === "moco" && s.task !== MEAN_TASK);
  assertClose([moco.auc], [(parts[0].auc + parts[1].auc) / 2], { atol: 1e-12, rtol: 0 });
  const dMean = r.differences.find((d) => d.task === MEAN_TASK)!;
  const dParts = r.differences.filter((d) => d.task !== MEAN_TASK);
  assertClose([dMean.diff], [(dParts[0].diff + dParts[1].diff) / 2], { atol: 1e-12, rtol: 0 });
  assertEquals(dMean.p_delong, null); // tasks have different labels: no DeLong
  assertEquals(r.differences.length, 3);
});

Deno.test("computeResults: bad cells are rejected with the cell named", () => {
  const cells = syntheticCells({ fractions: [0.1], draws: 1, nTest: 50, protocols: ["linear"] });
  assertThrows(() => computeResults([]), /no cells to evaluate/);
  assertThrows(
    () => computeResults([cells[0], cells[0]]),
    /resnet18\/random\/linear\/f=0.1\/draw0\/effusion: the same cell appears twice/,
  );
  assertThrows(
    () => computeResults([{ ...cells[0], fraction: 2 }]),
    /fraction 2 must be a number in \(0, 1\]/,
  );
  assertThrows(
    () => computeResults([{ ...cells[0], init: "supervised" as "moco" }]),
    /init "supervised"/,
  );
  assertThrows(() => computeResults([{ ...cells[0], task: MEAN_TASK }]), /reserved/);
  const shuffled = { ...cells[2], labels: Float32Array.from(cells[2].labels).reverse() };
  assertThrows(
    () => computeResults([cells[1], shuffled]),
    (e: Error) =>
      e instanceof EvalInputError && /different test labels.*same test set/.test(e.message),
  );
  const single = { ...cells[0], labels: new Float32Array(50).fill(1) };
  assertThrows(() => computeResults([single]), /AUC is undefined/);
});

Deno.test("computeResults: unmatched draws become warnings", () => {
  const cells = syntheticCells({
    fractions: [0.1],
    draws: 2,
    nTest: 80,
    protocols: ["linear"],
    inits: ["imagenet", "moco"],
  });
  const withoutOneBaseline = cells.filter((c) => !(c.init === "imagenet" && c.draw === 1));
  const r = computeResults(withoutOneBaseline, FAST);
  assertEquals(r.differences[0].n_draws, 1);
  assert(r.warnings.some((w) => /no imagenet match for draw 1/.test(w)), r.warnings.join("\n"));
});

Deno.test("results CSV/JSON: written atomically and readable back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = computeResults(syntheticCells({ fractions: [0.01, 1], draws: 2, nTest: 100 }), FAST);
    const paths = await writeResults(dir, r);
    assertEquals(paths.map((p) => p.slice(dir.length + 1)), [
      "results.json",
      "results.csv",
      "summary.csv",
      "differences.csv",
    ]);
    assertEquals([...Deno.readDirSync(dir)].length, 4); // no temp files left behind
    assertEquals(await readResults(`${dir}/results.json`), JSON.parse(JSON.stringify(r)));
    const rows = parse(await Deno.readTextFile(`${dir}/results.csv`), { columns: true }) as Record<
      string,
      string
    >[];
    assertEquals(rows.length, r.cells.length);
    assertEquals(Number(rows[3].auc), r.cells[3].auc);
    assertEquals([Number(rows[3].ci_lo), Number(rows[3].ci_hi)], r.cells[3].ci);
    const diffs = parse(resultsToCsv(r).differences, { columns: true }) as Record<string, string>[];
    assertEquals(diffs.length, r.differences.length);
    assertEquals(diffs[0].draw_diffs.split(";").map(Number), r.differences[0].draw_diffs);
    // p is the p of the test shown beside the CI (the bootstrap's), named by p_method; DeLong's
    // stays in its own column.
    diffs.forEach((row, k) => {
      const d = r.differences[k];
      assertEquals([Number(row.p), row.p_method], [d.p_bootstrap, "bootstrap"]);
      assertEquals(Number(row.p_bootstrap), d.p_bootstrap);
      assertEquals(Number(row.p_delong), d.p_delong);
    });
    assert(diffs.some((row) => row.p !== row.p_delong), "DeLong's p differs somewhere");
    await Deno.writeTextFile(`${dir}/bad.json`, '{"schema": "other"}');
    await assertRejects(() => readResults(`${dir}/bad.json`), /not a results file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function fakeResults(diffs: { fraction: number; diff: number; ci: [number, number] }[]): Results {
  return {
    schema: "moco-cxr/results@1",
    settings: {
      replicates: 10,
      seed: 0,
      level: 0.95,
      ci_method: "bootstrap-percentile",
      comparisons: [["moco", "imagenet"]],
    },
    cells: [],
    summary: [],
    warnings: [],
    differences: diffs.map((d) => ({
      init: "moco",
      baseline: "imagenet",
      protocol: "linear",
      backbone: "resnet18",
      task: "effusion",
      p: 0.5,
      p_method: "bootstrap",
      p_bootstrap: 0.5,
      p_delong: 0.5,
      ci_delong: d.ci,
      n_draws: 1,
      draw_diffs: [d.diff],
      draw_sd: 0,
      redrawn: 0,
      ...d,
    })),
  };
}

Deno.test("headline: verdict computed from the low-fraction differences", () => {
  const helped = computeHeadline(fakeResults([
    { fraction: 0.001, diff: 0.05, ci: [0.02, 0.08] },
    { fraction: 0.01, diff: 0.01, ci: [-0.01, 0.03] },
    { fraction: 1, diff: -0.05, ci: [-0.08, -0.02] }, // high fraction: not part of the verdict
  ]));
  assertEquals(helped.verdict, "helped");
  assertEquals(helped.comparisons.length, 2);
  assert(/positive in 2 of 2.*above 0 in 1 and below 0 in 0/.test(helped.text), helped.text);
  assertEquals(
    computeHeadline(fakeResults([{ fraction: 0.01, diff: -0.03, ci: [-0.05, -0.01] }])).verdict,
    "hurt",
  );
  assertEquals(
    computeHeadline(fakeResults([{ fraction: 0.005, diff: 0.01, ci: [-0.01, 0.03] }])).verdict,
    "no clear difference",
  );
  assertEquals(
    computeHeadline(fakeResults([
      { fraction: 0.001, diff: 0.03, ci: [0.01, 0.05] },
      { fraction: 0.01, diff: -0.03, ci: [-0.05, -0.01] },
    ])).verdict,
    "mixed",
  );
  const onlyHigh = computeHeadline(fakeResults([{ fraction: 0.1, diff: 0.04, ci: [0.01, 0.07] }]));
  assertEquals(onlyHigh.verdict, "helped");
  assert(/smallest label fraction in this run \(10%/.test(onlyHigh.text), onlyHigh.text);
  assertEquals(computeHeadline(fakeResults([])).verdict, "not tested");
});

Deno.test("headline wording: the baseline's name once, the fractions the run has", () => {
  // A run of 100% only against random init: no "low label fractions", no "init initialization".
  const r = fakeResults([{ fraction: 1, diff: 0.04, ci: [0.01, 0.07] }]);
  r.differences.forEach((d) => (d.baseline = "random"));
  const only = computeHeadline(r);
  assert(
    only.text.startsWith("MoCo pretraining helped at the label fraction run (100%)."),
    only.text,
  );
  assert(/MoCo-CXR − Random init gave ΔAUC \+0\.040/.test(only.text), only.text);
  assert(!/low label fractions|init initialization/.test(only.text), only.text);
  // Two fractions above 1%: the verdict is the smallest's, and says so.
  const two = computeHeadline(fakeResults([
    { fraction: 0.1, diff: 0.01, ci: [-0.01, 0.03] },
    { fraction: 1, diff: 0.01, ci: [-0.01, 0.03] },
  ]));
  assert(/no clear difference at the smallest label fraction run \(10%\)/.test(two.text), two.text);
  // Low fractions present: as before.
  const low = computeHeadline(fakeResults([{ fraction: 0.01, diff: 0.04, ci: [0.01, 0.07] }]));
  assert(low.text.startsWith("MoCo pretraining helped at low label fractions."), low.text);
  assert(/MoCo-CXR − ImageNet gave/.test(low.text), low.text);
});

Deno.test("headline of MoCo cells without a baseline says how to get one", () => {
  const cells = syntheticCells({
    fractions: [0.1],
    draws: 1,
    nTest: 40,
    inits: ["moco"],
    protocols: ["linear"],
  });
  const h = computeHeadline(computeResults(cells, FAST));
  assertEquals(h.verdict, "not tested");
  assert(
    h.text.includes("run `deno task finetune --init random` with the same flags and --out"),
    h.text,
  );
  assert(
    h.text.includes("`deno task experiment --moco <run>/backbone.safetensors --pretrain-seeds 1`"),
    h.text,
  );
  // Baseline cells without MoCo ones: how to add MoCo cells instead.
  const base = syntheticCells({
    fractions: [0.1],
    draws: 1,
    nTest: 40,
    inits: ["random"],
    protocols: ["linear"],
  });
  const b = computeHeadline(computeResults(base, FAST));
  assert(b.text.includes("deno task finetune --init moco --weights"), b.text);
});

Deno.test("run files: predictions round trip and clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => readRunPredictions(`${dir}/nope`),
      /run folder ".*nope" does not exist/,
    );
    await assertRejects(
      () => readRunPredictions(dir),
      /has no predictions\/\*\.json: nothing to evaluate/,
    );
    const [cell] = syntheticCells({
      fractions: [0.01],
      draws: 1,
      nTest: 30,
      protocols: ["e2e"],
      inits: ["moco"],
    });
    const ids = Array.from(cell.labels, (_, i) => `img${i}.png`);
    const path = await writePredictionsFile(dir, { ...cell, ids });
    assertEquals(path, `${dir}/predictions/resnet18_moco_e2e_f0.01_d0_effusion.json`);
    const [back] = await readRunPredictions(dir);
    assertEquals(back.ids, ids); // kept: paired cells are matched by them
    assertEquals(Array.from(back.labels), Array.from(cell.labels));
    assertEquals(Array.from(back.scores), Array.from(cell.scores));
    assertEquals([back.scores_file, back.metrics_file], [
      "predictions/resnet18_moco_e2e_f0.01_d0_effusion.json",
      cell.metrics_file,
    ]);
    await Deno.writeTextFile(
      `${dir}/x.json`,
      JSON.stringify({ ...JSON.parse(await Deno.readTextFile(path)), scores: [null] }),
    );
    await assertRejects(
      () => readPredictionsFile(`${dir}/x.json`),
      /x.json: scores\[0\] is null, not a number \(NaN\/Infinity are written as null/,
    );
    await Deno.writeTextFile(
      `${dir}/z.json`,
      JSON.stringify({ ...JSON.parse(await Deno.readTextFile(path)), ids: ids.map(() => "a") }),
    );
    await assertRejects(
      () => readPredictionsFile(`${dir}/z.json`),
      /z.json: id "a" appears twice; ids name distinct images/,
    );
    await Deno.writeTextFile(`${dir}/y.json`, JSON.stringify({ init: "moco" }));
    await assertRejects(
      () => readPredictionsFile(`${dir}/y.json`),
      /y.json: missing field "protocol"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metrics and scores CSV parsing name the line and column", () => {
  const rows = parseMetrics(
    '{"step":0,"epoch":0,"loss":0.7}\n\n{"step":10,"epoch":1,"loss":null,"val_auc":0.8}\n',
    "m.jsonl",
  );
  assertEquals(rows, [{ step: 0, epoch: 0, loss: 0.7 }, {
    step: 10,
    epoch: 1,
    loss: null,
    val_auc: 0.8,
  }]);
  assertThrows(
    () => parseMetrics('{"step":0,"epoch":0}\n{"epoch":1}', "m.jsonl"),
    /m.jsonl:2: "step" must be a number/,
  );
  assertThrows(
    () => parseMetrics('{"step":0,"epoch":0,"lr":"x"}', "m.jsonl"),
    /m.jsonl:1: "lr" must be a number or null/,
  );
  assertThrows(() => parseMetrics("{oops\n", "m.jsonl"), /m.jsonl:1: not valid JSON/);
  assertThrows(
    () => parseMetrics('{"step":0,"epoch":0}\n{oops\n{"step":1,"epoch":0}', "m.jsonl"),
    /m.jsonl:2: not valid JSON/,
  );
  // a run killed while appending: its last line cut short, no newline after it
  assertEquals(parseMetrics('{"step":0,"epoch":0}\n{"step":1,"ep', "m.jsonl"), [{
    step: 0,
    epoch: 0,
  }]);
  const t = parseScoresCsv('score,id,label\n0.5,a,1\n0.25,"b,c",0\n', "s.csv");
  assertEquals([t.ids, Array.from(t.labels), Array.from(t.scores)], [["a", "b,c"], [1, 0], [
    0.5,
    0.25,
  ]]);
  assertThrows(
    () => parseScoresCsv("id,label,score\na,1,0.5\nb,yes,0.2\n", "s.csv"),
    /s.csv:3: column "label" is "yes"/,
  );
  assertThrows(
    () => parseScoresCsv("id,label,score\na,1,\n", "s.csv"),
    /s.csv:2: column "score" is ""/,
  );
  assertThrows(() => parseScoresCsv("id,y,score\na,1,0.5\n", "s.csv"), /no "label" column/);
  assertThrows(
    () => parseScoresCsv("id,label,score\na,1,0.5\na,0,0.1\n", "s.csv"),
    /s.csv:3: id "a" appears twice/,
  );
});

Deno.test("headline: one CI above 0 among several pointing the other way is not 'helped'", () => {
  // The reviewer's case: three negative differences with CIs across 0 and one small positive one
  // with its CI above 0 (mean −0.025) was "MoCo pretraining helped".
  const d = (fraction: number, protocol: "linear" | "e2e", diff: number, ci: [number, number]) => ({
    fraction,
    protocol,
    diff,
    ci,
  });
  const lone = computeHeadline(fakeResults([
    d(0.001, "linear", -0.04, [-0.09, 0.01]),
    d(0.01, "linear", -0.03, [-0.07, 0.01]),
    d(0.001, "e2e", -0.05, [-0.11, 0.01]),
    d(0.01, "e2e", 0.021, [0.001, 0.04]),
  ]));
  assertEquals(lone.verdict, "no clear difference");
  // One verdict per protocol: the lone CI above 0 is end to end's, whose mean is −0.015.
  assertEquals(lone.protocols.map((p) => p.verdict), [
    "no clear difference",
    "no clear difference",
  ]);
  assert(/End to end: .*mean ΔAUC −0\.015/.test(lone.text), lone.text);
  assert(/1 of 2 CIs above 0 is not enough for a verdict/.test(lone.text), lone.text);
  // Symmetric: one CI below 0 among positive differences is not "hurt".
  const mirrored = computeHeadline(fakeResults([
    d(0.001, "linear", 0.04, [-0.01, 0.09]),
    d(0.01, "linear", 0.03, [-0.01, 0.07]),
    d(0.001, "e2e", 0.05, [-0.01, 0.11]),
    d(0.01, "e2e", -0.021, [-0.04, -0.001]),
  ]));
  assertEquals(mirrored.verdict, "no clear difference");
  assert(/1 of 2 CIs below 0 is not enough/.test(mirrored.text), mirrored.text);
  // Half of them above 0, none below and a positive mean: helped; likewise hurt.
  assertEquals(
    computeHeadline(fakeResults([
      d(0.001, "linear", 0.03, [0.01, 0.05]),
      d(0.01, "linear", 0.01, [-0.01, 0.03]),
      d(0.001, "e2e", -0.005, [-0.02, 0.01]),
      d(0.01, "e2e", 0.02, [0.005, 0.035]),
    ])).verdict,
    "helped",
  );
  assertEquals(
    computeHeadline(fakeResults([
      d(0.001, "linear", -0.03, [-0.05, -0.01]),
      d(0.01, "linear", -0.01, [-0.03, 0.01]),
    ])).verdict,
    "hurt",
  );
  // Half above 0 but a negative mean: no verdict either.
  assertEquals(
    computeHeadline(fakeResults([
      d(0.001, "linear", 0.01, [0.001, 0.02]),
      d(0.01, "linear", -0.08, [-0.17, 0.01]),
    ])).verdict,
    "no clear difference",
  );
  assertEquals(verdictOf(3, 1, 1, 0.2), "mixed");
  assertEquals(verdictOf(0, 0, 0, 0), "not tested");
});

Deno.test("headline: 'sign held in every seed' counts each comparison's own seeds", () => {
  const r = fakeResults([
    { fraction: 0.01, diff: 0.03, ci: [0.01, 0.05] },
    { fraction: 0.001, diff: 0.03, ci: [0.01, 0.05] },
  ]);
  r.differences[0].seeds = seedStats(3, 3);
  r.differences[1].seeds = seedStats(2, 2); // one seed's run failed here: 2 of 2 agree
  const text = computeHeadline(r).text;
  assert(/MoCo was ahead in every seed in 2 of these 2 comparisons and behind in every/.test(text));
  assert(/Over 2–3 pretraining seeds/.test(text), text);
  // A comparison where every seed was negative is "behind", not "the sign held" with the others.
  const mixed = fakeResults([
    { fraction: 0.01, diff: 0.03, ci: [0.01, 0.05] },
    { fraction: 0.001, diff: -0.03, ci: [-0.05, 0.01] },
  ]);
  mixed.differences[0].seeds = seedStats(3, 3);
  mixed.differences[1].seeds = { ...seedStats(3, 0), seed_diffs: [-0.03, -0.02, -0.04] };
  const t2 = computeHeadline(mixed).text;
  assert(
    t2.includes(
      "MoCo was ahead in every seed in 1 of these 2 comparisons and behind in every " +
        "seed in 1.",
    ),
    t2,
  );
});

Deno.test("headline: one verdict per protocol; other fractions' CIs excluding 0 are named", () => {
  const d = (fraction: number, protocol: "linear" | "e2e", diff: number, ci: [number, number]) => ({
    fraction,
    protocol,
    diff,
    ci,
  });
  // Pooled, the linear probe's two CIs above 0 made all four "helped"; end to end did nothing.
  const h = computeHeadline(fakeResults([
    d(0.001, "linear", 0.126, [0.033, 0.219]),
    d(0.01, "linear", 0.097, [0.033, 0.162]),
    d(1, "linear", -0.033, [-0.06, -0.007]),
    d(0.001, "e2e", -0.01, [-0.05, 0.03]),
    d(0.01, "e2e", 0.005, [-0.03, 0.04]),
  ]));
  assertEquals(h.protocols.map((p) => [p.protocol, p.verdict]), [
    ["linear", "helped"],
    ["e2e", "no clear difference"],
  ]);
  assertEquals(h.verdict, "differs by protocol");
  assert(h.text.startsWith("Linear probe: MoCo pretraining helped at low label fractions ("));
  assert(/End to end: MoCo pretraining made no clear difference at low label/.test(h.text), h.text);
  assert(
    h.text.includes(
      "At 100% of the labels the linear probe was worse with MoCo-CXR than with ImageNet: " +
        "−0.033 [−0.060, −0.007].",
    ),
    h.text,
  );
  // Agreeing protocols: their common verdict colours the box.
  const both = computeHeadline(fakeResults([
    d(0.01, "linear", 0.05, [0.02, 0.08]),
    d(0.01, "e2e", 0.04, [0.01, 0.07]),
  ]));
  assertEquals(both.verdict, "helped");
});

Deno.test("headline: a comparison of two below-chance inits is qualified", () => {
  const r = fakeResults([{ fraction: 0.001, diff: 0.05, ci: [0.01, 0.09] }]);
  const row = (init: "moco" | "imagenet", auc: number, ci: [number, number]) => ({
    init,
    protocol: "linear" as const,
    fraction: 0.001,
    backbone: "resnet18",
    task: "effusion",
    n_draws: 1,
    auc,
    ci,
    auc_sd: 0,
    n_seeds: 1,
    seed_sd: 0,
  });
  r.summary = [row("imagenet", 0.4, [0.35, 0.45]), row("moco", 0.45, [0.41, 0.49])];
  const h = computeHeadline(r);
  assert(/both MoCo-CXR and ImageNet were below chance .* at 0\.1%/i.test(h.text), h.text);
  assertEquals(belowChance(r).length, 2);
  assert(belowChanceWarning(r.summary[0]).includes(BELOW_CHANCE));
  // One below chance only: no qualification.
  r.summary[1].ci = [0.45, 0.55];
  assert(!/below chance/.test(computeHeadline(r).text));
});

/** Two tasks on one image set; "t2" masks every 40th image. Ids as the experiment writes them. */
function maskedTasks(withIds: boolean): CellPredictions[] {
  const rng = new Rng(9);
  const n = 400;
  const y = Array.from({ length: n }, () => (rng.uniform() < 0.3 ? 1 : 0));
  const z = y.map(() => rng.normal());
  const sA = y.map((v, i) => 1.0 * v + z[i] + 0.5 * rng.normal());
  const sB = y.map((v, i) => 0.8 * v + z[i] + 0.5 * rng.normal());
  const all = [...Array(n).keys()], masked = all.filter((i) => i % 40 !== 0);
  return ([["t1", all], ["t2", masked]] as const).flatMap(([task, idx]) =>
    ([["moco", sA], ["imagenet", sB]] as const).map(([init, s]) => ({
      init,
      protocol: "linear" as const,
      fraction: 0.01,
      draw: 0,
      backbone: "r18",
      task,
      labels: idx.map((i) => y[i]),
      scores: idx.map((i) => s[i]),
      ...(withIds ? { ids: idx.map((i) => `img${i}.png`) } : {}),
    }))
  );
}

Deno.test("computeResults: tasks with different label masks are resampled by image id", () => {
  // The two tasks are nearly the same comparison, so the mean over tasks is about as uncertain
  // as one task. Resampled independently by size, its CI was ~1/√2 as wide (0.055 vs 0.072).
  const width = (d: { ci: [number, number] }) => d.ci[1] - d.ci[0];
  const r = computeResults(maskedTasks(true), { replicates: 1000 });
  const mean = r.differences.find((d) => d.task === MEAN_TASK)!;
  const t1 = r.differences.find((d) => d.task === "t1")!;
  assert(width(mean) > 0.9 * width(t1), `mean-task CI ${width(mean)} vs t1 ${width(t1)}`);
  assertEquals(r.warnings, []);
  // The single-task numbers do not depend on the ids.
  const plain = computeResults(maskedTasks(false), { replicates: 1000 });
  assertEquals(plain.differences.find((d) => d.task === "t1"), t1);
  assertEquals(plain.cells, r.cells);
});

Deno.test("computeResults: paired cells are matched by image id, and must hold the same images", () => {
  const cells = syntheticCells({
    fractions: [0.1],
    draws: 1,
    nTest: 80,
    protocols: ["linear"],
    inits: ["imagenet", "moco"],
  });
  const ids = Array.from(cells[0].labels, (_, i) => `img${i}`);
  const withIds = cells.map((c, k) => ({ ...c, ids, scores_file: `predictions/${k}.json` }));
  const base = computeResults(withIds, FAST);
  // The MoCo file lists the images in reverse: ImageNet's is aligned to it by id, which gives
  // what both files in that order give (and by position it was "different test labels").
  const rev = <T>(a: ArrayLike<T>) => Array.from(a).reverse();
  const reverse = (c: typeof withIds[0]) => ({
    ...c,
    labels: rev(c.labels),
    scores: rev(c.scores),
    ids: rev(c.ids),
  });
  const m = withIds[1];
  const r = computeResults([withIds[0], reverse(m)], FAST);
  assertEquals(r.differences, computeResults(withIds.map(reverse), FAST).differences);
  assertClose([r.differences[0].diff], [base.differences[0].diff], { atol: 1e-12, rtol: 0 });
  // Same labels, other images: an error naming both files (by position they were paired).
  const other = { ...m, ids: ids.map((id) => `x/${id}`) };
  assertThrows(
    () => computeResults([withIds[0], other], FAST),
    (e: Error) =>
      e instanceof EvalInputError && !e.message.includes("\n") &&
      /predictions\/1\.json and predictions\/0\.json list different test images/.test(e.message),
  );
  // Same images, a label that disagrees: named too.
  const flipped = { ...m, labels: Float32Array.from(m.labels, (y, i) => (i === 7 ? 1 - y : y)) };
  assertThrows(
    () =>
      computeResults([withIds[0], {
        ...flipped,
        ids: rev(ids),
        labels: rev(flipped.labels),
        scores: rev(m.scores),
      }], FAST),
    /predictions\/1\.json and predictions\/0\.json disagree on the label of image "img7"/,
  );
  // Ids on some files of a backbone only: paired by position, with a warning.
  const mixed = computeResults([withIds[0], cells[1]], FAST);
  assert(
    mixed.warnings.some((w) => /1 of 2 predictions files have no ids/.test(w)),
    mixed.warnings.join(),
  );
  assertThrows(
    () => computeResults(cells, { replicates: 1 }),
    RangeError,
    "replicates must be an integer >= 2",
  );
});
