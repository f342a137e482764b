/** report.html from a synthetic run: structure, plot counts, self-containment, computed headline. */
import {
  auc,
  buildReport,
  computeHeadline,
  computeResults,
  fmtCi,
  fmtCiP,
  fmtDiff,
  fmtP,
  gradCamItem,
  type MetricsRow,
  parseDocument,
  pretrainPanels,
  rocPanels,
  trainingPanels,
} from "../eval/mod.ts";
import { syntheticCells, syntheticGradCam, syntheticMetrics } from "./eval_fixtures.ts";
import { assert, assertEquals } from "./helpers.ts";

const cells = syntheticCells({ fractions: [0.001, 0.01, 0.1, 1], draws: 2, nTest: 150 });
const results = computeResults(cells, { replicates: 100 });
const metrics = new Map<string, MetricsRow[]>(
  cells.map((c, i) => [c.metrics_file!, syntheticMetrics(100, i)]),
);
const meta = {
  name: "unit <test> & co",
  versions: { deno: "2.9.6" },
  seeds: { data: 1 },
  config: { lr: 0.01 },
};
const input = {
  results,
  runName: "synthetic",
  roc: rocPanels(cells),
  training: [
    ...pretrainPanels(new Map([["metrics/pretrain.jsonl", syntheticMetrics(500, 1, false)]])),
    ...trainingPanels(cells, metrics),
  ],
  gradcam: [
    gradCamItem(syntheticGradCam("left lung", 2), "a"),
    gradCamItem(syntheticGradCam("right lung", 5), "b"),
  ],
  metadata: meta,
  generatedAt: "2025-01-02T03:04:05Z",
};
const html = buildReport(input);
const doc = parseDocument(html);
const count = (sel: string) => doc.querySelectorAll(sel).length;

Deno.test("report: the results table has one row per (protocol, fraction) and bold significant diffs", () => {
  assertEquals(count("table.results"), 1);
  assertEquals(count("table.results tbody tr"), 2 * 4);
  assertEquals(count("table.results thead th"), 2 + 3 + 2); // protocol, labels, 3 inits, 2 comparisons
  const significant = results.differences.filter((d) => d.ci[0] > 0 || d.ci[1] < 0).length;
  assertEquals(count("td.sig-pos strong") + count("td.sig-neg strong"), significant);
  assert(significant > 0, "synthetic data should give some significant differences");
  const first = results.summary.find((s) =>
    s.init === "moco" && s.protocol === "linear" && s.fraction === 0.001
  )!;
  assert(
    html.includes(
      `${first.auc.toFixed(3)}<span class="ci">[${first.ci[0].toFixed(3)}, ${
        first.ci[1].toFixed(3)
      }]`,
    ),
  );
});

Deno.test("report: one AUC-vs-fraction plot per protocol, ΔAUC plot, ROC and training plots", () => {
  assertEquals(count("svg.plot-auc-fraction"), 2);
  assertEquals(count("svg.plot-diff-fraction"), 1);
  assertEquals(count("svg.plot-roc"), input.roc.length);
  assertEquals(input.roc.length, 2 * 4);
  assertEquals(count("svg.plot-training"), input.training.length);
  // pretraining: loss + lr; fine-tuning: 2 protocols × (loss, val AUC) × 4 fractions.
  assertEquals(input.training.length, 2 + 2 * 2 * 4);
  assertEquals(count("svg"), 2 + 1 + 8 + 18);
  // CI bands: one polygon per init in each AUC-vs-fraction plot.
  assertEquals(
    doc.querySelectorAll("svg.plot-auc-fraction")[0].querySelectorAll("polygon.band").length,
    3,
  );
});

Deno.test("report: self-contained — no scripts, stylesheets or external URLs", () => {
  assertEquals(count("script") + count("link") + count("iframe"), 0);
  for (const el of Array.from(doc.querySelectorAll("[src], [href]"))) {
    const url = el.getAttribute("src") ?? el.getAttribute("href") ?? "";
    assert(!/http/i.test(url), `external URL ${url}`);
    assert(url.startsWith("data:image/png;base64,"), `non-inline source ${url.slice(0, 30)}`);
  }
  assertEquals(count("figure.cam img"), 2 * 3);
  assert(
    !/url\((?!#)/.test(html.replace(/clip-path="url\(#clip-\d+\)"/g, "")),
    "CSS url() other than clip refs",
  );
  assert(html.startsWith("<!DOCTYPE html>"));
});

Deno.test("report: headline, metadata and escaping", () => {
  const p = doc.querySelectorAll("p.headline")[0];
  assertEquals(p.textContent, computeHeadline(results).text);
  assert(p.getAttribute("class")!.includes(computeHeadline(results).verdict.replaceAll(" ", "-")));
  const pre = doc.querySelectorAll("details pre")[0];
  assertEquals(JSON.parse(pre.textContent!), meta);
  assert(html.includes("unit &lt;test&gt; &amp; co"), "metadata text is escaped");
  assert(html.includes("generated 2025-01-02 03:04 UTC"));
});

Deno.test("report: minimal input (no ROC, curves, Grad-CAM or metadata) still renders", () => {
  const small = syntheticCells({
    fractions: [0.01],
    draws: 1,
    nTest: 60,
    inits: ["imagenet"],
    protocols: ["e2e"],
  });
  const d = parseDocument(buildReport({ results: computeResults(small, { replicates: 20 }) }));
  assertEquals(d.querySelectorAll("table.results").length, 1);
  assertEquals(d.querySelectorAll("svg").length, 1);
  assert(/no MoCo-initialized cells/.test(d.querySelectorAll("p.headline")[0].textContent!));
});

Deno.test("report of a linear-only run without ImageNet: comparisons made, why no Grad-CAM", () => {
  const lin = syntheticCells({
    fractions: [0.01, 1],
    draws: 1,
    nTest: 60,
    inits: ["random", "moco"],
    protocols: ["linear"],
  });
  const page = buildReport({ results: computeResults(lin, { replicates: 20 }) });
  const d = parseDocument(page);
  const dts = Array.from(d.querySelectorAll("dl.meta dt"));
  const dds = Array.from(d.querySelectorAll("dl.meta dd"));
  const comparisons = dds[dts.findIndex((dt) => dt.textContent === "comparisons")].textContent!;
  assert(comparisons.startsWith("MoCo-CXR − Random init"), comparisons);
  assert(
    /not made, no cells of ImageNet: MoCo-CXR − ImageNet\)$/.test(comparisons),
    comparisons,
  );
  assert(
    /<h2>Grad-CAM examples<\/h2><p class="sub">None: [^<]*linear-protocol cells only/.test(page),
    "the report says why there are no Grad-CAM examples",
  );
});

Deno.test("report: the p next to a ΔAUC comes from the test that sets its bold", () => {
  // Every difference cell: bold ⇔ the CI excludes 0, and the p shown is that CI's (bootstrap).
  const cellsShown = Array.from(doc.querySelectorAll("table.results td span.ci")).filter((s) =>
    s.textContent!.includes(" · p")
  );
  assertEquals(cellsShown.length, results.differences.length);
  for (const td of Array.from(doc.querySelectorAll("table.results td"))) {
    const span = Array.from(td.querySelectorAll("span.ci"))[0];
    if (!span || !span.textContent!.includes(" · p")) continue;
    const t = span.textContent!;
    const [lo, hi] = t.slice(1, t.indexOf("]")).split(", ").map((x) =>
      Number(x.replace("−", "-").replace("±", ""))
    );
    assertEquals(td.querySelectorAll("strong").length > 0, lo > 0 || hi < 0, t);
  }
  for (const d of results.differences) {
    const text = `${fmtCi(d.ci, fmtDiff)} · ${fmtCiP(d, results.settings.replicates)}`;
    assert(cellsShown.some((s) => s.textContent === text), `no cell shows ${text}`);
  }
  // A DeLong p that disagrees with the bootstrap CI is not what the table shows.
  const r = structuredClone(results);
  const d = r.differences[0];
  Object.assign(d, { ci: [-0.01, 0.05], p: 0.001, p_delong: 0.001, p_bootstrap: 0.4 });
  const e = r.differences[1];
  Object.assign(e, { ci: [0.02, 0.08], p: 0.03, p_delong: 0.03, p_bootstrap: 0 });
  const page = parseDocument(buildReport({ results: r }));
  const spans = Array.from(page.querySelectorAll("table.results td span.ci")).map((s) =>
    s.textContent!
  );
  assert(spans.includes(`${fmtCi(d.ci, fmtDiff)} · p = 0.40`), spans.join(" | "));
  // A bootstrap p of 0 is below its resolution 2/B, not "< 0.001" (B = 100 here).
  assert(spans.includes(`${fmtCi(e.ci, fmtDiff)} · p < 0.02`), spans.join(" | "));
  const legend = page.querySelectorAll("table.results caption")[0].textContent!;
  assert(
    /p: the test behind that CI, the one the bold comes from: the paired bootstrap/.test(legend),
    legend,
  );
});

Deno.test("fmtP: a bootstrap p of 0 prints its resolution 2/B", () => {
  assertEquals(fmtP(0, { replicates: 1000 }), "p < 0.002");
  assertEquals(fmtP(0, { replicates: 300 }), "p < 0.007"); // 2/300 rounded up
  assertEquals(fmtP(0, { replicates: 10_000 }), "p < 0.0002");
  assertEquals(fmtP(0.004, { replicates: 1000 }), "p = 0.004");
  assertEquals(fmtP(0.0004), "p < 0.001"); // DeLong: a normal p, no resolution limit
});

Deno.test("report: several pretraining seeds, each comparison with its own count", () => {
  const r = structuredClone(results);
  const seeds = (n: number, pos: number) => ({
    n_seeds: n,
    seeds_positive: pos,
    seed_share: 0.5,
    seed_diffs: Array(n).fill(0.03),
    seed_sd: 0,
    se: 0.01,
    se_seed: 0.007,
    se_test: 0.007,
    df: 4,
    test_var: 1e-4,
    test_cov: 5e-5,
    ci_test: [0.01, 0.05] as [number, number],
    ci_hier: [0.01, 0.05] as [number, number],
  });
  r.differences.forEach((d, k) => {
    d.seeds = seeds(k === 0 ? 2 : 3, 2);
    d.p_method = "seed-t";
  });
  const page = parseDocument(buildReport({ results: r }));
  const legend = page.querySelectorAll("table.results caption")[0].textContent!;
  assert(/Over 2–3 pretraining seeds/.test(legend), legend);
  const spans = Array.from(page.querySelectorAll("table.results td span.ci")).map((s) =>
    s.textContent!
  );
  assert(spans.some((s) => s.endsWith("· 2/2 seeds")), spans.join(" | "));
  // seed-t: the p shown is the t test's, the one behind the CI.
  const d = r.differences[0];
  assert(spans.includes(`${fmtCi(d.ci, fmtDiff)} · ${fmtP(d.p)} · 2/2 seeds`), spans.join(" | "));
});

Deno.test("rocPanels: each init's curve is seed 0's first draw, whatever the cell order", () => {
  const base = syntheticCells({
    fractions: [0.01],
    draws: 2,
    nTest: 60,
    inits: ["moco"],
    protocols: ["linear"],
  });
  const seeded = [2, 1, 0].flatMap((k) =>
    base.map((c) => ({
      ...c,
      pretrain_seed: k,
      scores: Float32Array.from(c.scores, (s, i) => s + k * Math.sin(i)),
    }))
  );
  const [panel] = rocPanels(seeded);
  const c = seeded.find((x) => x.pretrain_seed === 0 && x.draw === 0)!;
  assertEquals(panel.series[0].name, `MoCo-CXR ${auc(c.labels, c.scores).toFixed(3)}`);
  assert(panel.title.endsWith("(seed 0, draw 0)"), panel.title);
});
