/** computeResults on synthetic predictions, CSV/JSON output, the headline, and run-folder files. */
import { parse } from "csv-parse/sync";
import {
  auc,
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
  writePredictionsFile,
  writeResults,
} from "../eval/mod.ts";
import { syntheticCells } from "./eval_fixtures.ts";
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
  assertEquals([d.n_draws, d.p_method], [3, "delong"]);
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
  assertEquals(dMean.p_method, "bootstrap"); // tasks have different labels: no DeLong
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
      p_method: "delong",
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
  assertThrows(() => parseMetrics("{oops", "m.jsonl"), /m.jsonl:1: not valid JSON/);
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
