/** tasks/evaluate.ts end to end on temporary run folders and CSV files (no subprocess). */
import { main } from "../tasks/evaluate.ts";
import { readResults, writePredictionsFile } from "../eval/mod.ts";
import { syntheticCells, syntheticGradCam, syntheticMetrics } from "./eval_fixtures.ts";
import { assert, assertEquals } from "./helpers.ts";

async function run(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, { log: (m) => out.push(m), error: (m) => err.push(m) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("evaluate --run: writes results and a report from predictions/, metrics, gradcam, run.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cells = syntheticCells({ fractions: [0.01, 1], draws: 2, nTest: 120 });
    await Deno.mkdir(`${dir}/metrics`);
    await Deno.mkdir(`${dir}/gradcam`);
    for (const [i, c] of cells.entries()) {
      await writePredictionsFile(dir, c);
      if (i > 0) { // the first cell's metrics file is missing: a warning, not an error
        await Deno.writeTextFile(
          `${dir}/${c.metrics_file}`,
          syntheticMetrics(50, i).map((r) => JSON.stringify(r)).join("\n"),
        );
      }
    }
    await Deno.writeTextFile(
      `${dir}/metrics/pretrain.jsonl`,
      JSON.stringify({ step: 0, epoch: 0, loss: 8.1 }) + "\n" +
        JSON.stringify({ step: 5, epoch: 0, loss: 7.9 }),
    );
    await Deno.writeTextFile(
      `${dir}/gradcam/a.json`,
      JSON.stringify(syntheticGradCam("case A", 3)),
    );
    await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify({ name: "t", seeds: { data: 3 } }));

    const r = await run(["--run", dir, "--replicates", "50", "--seed", "9"]);
    assertEquals(r.code, 0, r.err);
    for (
      const f of ["results.json", "results.csv", "summary.csv", "differences.csv", "report.html"]
    ) {
      assert((await Deno.stat(`${dir}/${f}`)).size > 0, f);
    }
    const results = await readResults(`${dir}/results.json`);
    assertEquals(results.cells.length, cells.length);
    assertEquals(results.settings.replicates, 50);
    assert(
      results.warnings.some((w) => /metrics file .* does not exist/.test(w)),
      results.warnings.join(),
    );
    assert(
      /Test AUC \[95% CI\], task effusion/.test(r.out) && /at low label fractions/.test(r.out),
      r.out,
    );
    const html = await Deno.readTextFile(`${dir}/report.html`);
    assert(html.includes("case A") && html.includes("MoCo pretraining (metrics/pretrain.jsonl)"));
    // Same seed → same numbers on a rerun.
    await run(["--run", dir, "--replicates", "50", "--seed", "9"]);
    assertEquals((await readResults(`${dir}/results.json`)).cells, results.cells);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate --run: missing or empty run folders say what to do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let r = await run(["--run", `${dir}/absent`]);
    assertEquals(r.code, 1);
    assert(/does not exist; pass the folder an experiment wrote/.test(r.err), r.err);
    r = await run(["--run", dir]);
    assertEquals(r.code, 1);
    assert(
      /no predictions\/\*\.json: nothing to evaluate.*run or resume the experiment first/.test(
        r.err,
      ),
      r.err,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate --scores/--compare: AUCs with CIs and the paired difference", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [a, b] = syntheticCells({
      fractions: [0.01],
      draws: 1,
      nTest: 200,
      protocols: ["linear"],
      inits: ["imagenet", "moco"],
    });
    const csv = (c: typeof a, order: number[]) =>
      "id,label,score\n" + order.map((i) => `img${i},${c.labels[i]},${c.scores[i]}`).join("\n") +
      "\n";
    const idx = [...Array(200).keys()];
    await Deno.writeTextFile(`${dir}/a.csv`, csv(b, idx));
    await Deno.writeTextFile(`${dir}/b.csv`, csv(a, [...idx].reverse())); // other row order
    const r = await run([
      "--scores",
      `${dir}/a.csv`,
      "--compare",
      `${dir}/b.csv`,
      "--replicates",
      "200",
    ]);
    assertEquals(r.code, 0, r.err);
    assert(/a\.csv: AUC 0\.\d{3}, n = 200/.test(r.out), r.out);
    assert(/bootstrap 95% CI \[0\.\d{3}, 0\.\d{3}\]/.test(r.out), r.out);
    assert(/Paired difference .*ΔAUC [+−]0\.\d{3} on 200 shared ids/.test(r.out), r.out);
    assert(/DeLong {4}95% CI \[[+−]0\.\d{3}, [+−]0\.\d{3}\], z = -?\d/.test(r.out), r.out);

    await Deno.writeTextFile(`${dir}/c.csv`, "id,label,score\nimg0,1,0.5\n");
    const bad = await run(["--scores", `${dir}/a.csv`, "--compare", `${dir}/c.csv`]);
    assertEquals(bad.code, 1);
    assert(/paired comparison needs the same test set/.test(bad.err), bad.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate: --help and usage errors", async () => {
  const h = await run(["--help"]);
  assertEquals(h.code, 0);
  assert(h.out.includes("deno task evaluate --run runs/<dir>"));
  // Why --run and --scores/--compare give slightly different bootstrap CIs for one prediction set.
  assert(/two modes draw their own bootstrap resamples/.test(h.out), h.out);
  assert(/agree within Monte-Carlo error/.test(h.out), h.out);
  assertEquals((await run([])).code, 2);
  assertEquals((await run(["--run", "x", "--scores", "y"])).code, 2);
  assertEquals((await run(["--bogus"])).code, 2);
  const r = await run(["--scores", "s.csv", "--replicates", "0"]);
  assertEquals(r.code, 1);
  assert(/--replicates must be an integer from 2 to 1000000, got "0"/.test(r.err), r.err);
  // One resample has no spread (and the seed-level analysis needs two): refused as a flag error.
  const one = await run(["--scores", "s.csv", "--replicates", "1"]);
  assertEquals(one.code, 1);
  assertEquals(one.err, 'error: --replicates must be an integer from 2 to 1000000, got "1"');
});

Deno.test("evaluate --compare: fewer than 2 of a class skips DeLong, not the command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // One positive: DeLong's variance is undefined; the bootstrap redraws resamples without it.
    const rows = (f: (i: number) => number) =>
      "id,label,score\n" +
      Array.from({ length: 30 }, (_, i) => `img${i},${i === 0 ? 1 : 0},${f(i)}`).join("\n");
    await Deno.writeTextFile(`${dir}/a.csv`, rows((i) => (i === 0 ? 5 : i / 10)));
    await Deno.writeTextFile(`${dir}/b.csv`, rows((i) => (i === 0 ? 1.5 : i / 10)));
    const r = await run([
      "--scores",
      `${dir}/a.csv`,
      "--compare",
      `${dir}/b.csv`,
      "--replicates",
      "200",
    ]);
    assertEquals(r.code, 0, r.err);
    assert(/DeLong: not computed \(.*\); bootstrap only/.test(r.out), r.out);
    assert(/bootstrap 95% CI \[[+−±]0\.\d{3}, [+−±]0\.\d{3}\]/.test(r.out), r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate --compare: a bootstrap p of 0 prints as p < 2/B", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A perfect model against a poor one: every paired resample favours the first.
    const n = 200;
    const y = (i: number) => (i % 3 === 0 ? 1 : 0);
    const rows = (f: (i: number) => number) =>
      "id,label,score\n" +
      Array.from({ length: n }, (_, i) => `img${i},${y(i)},${f(i)}`).join("\n");
    await Deno.writeTextFile(`${dir}/a.csv`, rows((i) => y(i) + i / 1000));
    await Deno.writeTextFile(`${dir}/b.csv`, rows((i) => ((i * 7919) % 101) / 101));
    const r = await run([
      "--scores",
      `${dir}/a.csv`,
      "--compare",
      `${dir}/b.csv`,
      "--replicates",
      "200",
    ]);
    assertEquals(r.code, 0, r.err);
    assert(/bootstrap 95% CI .*, p < 0\.01 \(200 paired resamples\)/.test(r.out), r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
