/** report.html from a synthetic run: structure, plot counts, self-containment, computed headline. */
import {
  auc,
  BELOW_CHANCE,
  buildReport,
  codeVersion,
  computeHeadline,
  computeResults,
  fmtCi,
  fmtCiP,
  fmtDiff,
  fmtP,
  gradCamItem,
  keyFacts,
  type MetricsRow,
  parseDocument,
  parseMetrics,
  pretrainPanels,
  probeChecks,
  rocPanels,
  trainingPanels,
} from "../eval/mod.ts";
import type { El } from "../eval/dom.ts";
import { seedStats, syntheticCells, syntheticGradCam, syntheticMetrics } from "./eval_fixtures.ts";
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
  r.differences.forEach((d, k) => {
    d.seeds = seedStats(k === 0 ? 2 : 3, 2);
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
  assert(/^[\d.]+% · seed 0, draw 0$/.test(panel.title), panel.title); // fits a narrow panel
});

Deno.test("report: AUC CIs say 'test images only'; the spread over models is shown", () => {
  const th = Array.from(doc.querySelectorAll("table.results thead th")).map((e) => e.textContent);
  assert(th.some((t) => /AUC \[95% CI, test images only\]/.test(t ?? "")), th.join(" | "));
  // 2 draws per fraction < 1: "sd … over 2 models" visible under the AUC.
  const aucs = results.cells.filter((c) =>
    c.init === "moco" && c.protocol === "linear" && c.fraction === 0.001
  ).map((c) => c.auc);
  const sd = Math.abs(aucs[0] - aucs[1]) / Math.SQRT2;
  assert(html.includes(`sd ${sd.toFixed(3)} over 2 models`), "no spread under the AUC");
  const legends = Array.from(doc.querySelectorAll("svg.plot-auc-fraction text.legend"))
    .map((e) => e.textContent);
  assert(legends.includes("band: 95% CI, test images only"), legends.join(" | "));
});

Deno.test("report: labelled-set sizes per fraction, probes with flat validation AUC or edge C", () => {
  const subsets = [
    { fraction: 0.001, draw: 0, images: 2, positives: 1 },
    { fraction: 0.001, draw: 1, images: 3, positives: 1 },
    { fraction: 0.01, draw: 0, images: 21, positives: 6 },
    { fraction: 0.01, draw: 1, images: 20, positives: 5 },
  ];
  const grid = [0.01, 0.1, 1, 10];
  const probeMetrics = new Map<string, MetricsRow[]>();
  const linear = cells.filter((c) => c.protocol === "linear");
  linear.forEach((c, i) => {
    // 0.1%: every probe flat; 1%: every other one chose an inner C with a varying AUC.
    const flat = c.fraction === 0.001;
    probeMetrics.set(
      c.metrics_file!,
      grid.map((C, k) => ({ step: k + 1, epoch: 0, C, val_auc: flat ? 0.6 : 0.6 + 0.01 * k })),
    );
    c.probe_C = c.fraction === 0.001 || i % 2 === 0 ? grid[0] : grid[1];
  });
  const probes = probeChecks(cells, probeMetrics);
  const at = (f: number) => probes.find((p) => p.fraction === f)!;
  const n1 = linear.filter((c) => c.fraction === 0.001).length;
  assertEquals([at(0.001).flat, at(0.001).edge, at(0.001).probes], [n1, n1, n1]);
  assertEquals(at(0.01).flat, 0);
  const page = buildReport({ ...input, metadata: { ...meta, subsets }, probes });
  assert(page.includes("2–3 labelled (1 positive)"), "no labelled sizes at 0.1%");
  assert(page.includes("20–21 labelled (5–6 positive)"), "no labelled sizes at 1%");
  assert(
    page.includes(
      `at 0.1%: the validation AUC was the same at every C in ${n1} of ${n1} probes; C at the ` +
        `grid's edge in ${n1} of ${n1}`,
    ),
  );
  linear.forEach((c) => delete c.probe_C);
});

/** Linear cells at 1% and 100% with Random init's scores flipped: below chance, its ROC curve in the lower right. */
const flippedRandomCells = () =>
  syntheticCells({ fractions: [0.01, 1], draws: 1, nTest: 200, protocols: ["linear"] })
    .map((c) => c.init === "random" ? { ...c, scores: Float32Array.from(c.scores, (s) => -s) } : c);

Deno.test("report and headline: AUCs below chance are flagged", () => {
  // Random init's scores flipped: its AUC CI lies below 0.5 at every fraction.
  const flipped = flippedRandomCells();
  const r = computeResults(flipped, { replicates: 100 });
  const below = r.summary.filter((s) => s.ci[1] < 0.5);
  assert(below.length > 0 && below.every((s) => s.init === "random"));
  const page = buildReport({ results: r });
  const warned = parseDocument(page).querySelectorAll("ul.below-chance li");
  assertEquals(warned.length, below.length);
  assert(warned[0].textContent!.includes(BELOW_CHANCE), "no below-chance warning in the report");
  assert(page.includes('class="ci chance"'), "no below-chance mark in the table");
});

Deno.test("pretrainPanels: the kNN monitor is plotted; the loss has a chance line at ln(K+1)", () => {
  const rows: MetricsRow[] = [
    ...syntheticMetrics(100, 1, false),
    { step: 50, epoch: 1, knn_auc: 0.7 },
    { step: 100, epoch: 2, knn_auc: 0.75 },
  ];
  const panels = pretrainPanels(new Map([["metrics/pretrain.jsonl", rows]]), { queueSize: 1024 });
  const knn = panels.find((p) => /kNN monitor/.test(p.title));
  assert(knn, panels.map((p) => p.title).join(", "));
  assertEquals(knn.series[0].points.map((p) => p.y), [0.7, 0.75]);
  const loss = panels.find((p) => p.title === "InfoNCE loss")!;
  assertEquals(loss.refLines?.[0].y, Math.log(1025));
  const page = parseDocument(buildReport({ ...input, training: panels }));
  const labels = Array.from(page.querySelectorAll("svg.plot-training text.ref-label"))
    .map((e) => e.textContent ?? "");
  assert(labels.some((t) => t.startsWith("chance")), labels.join(", "));
  // Parsing keeps knn_auc.
  assertEquals(parseMetrics('{"step":5,"epoch":1,"knn_auc":0.8}', "m")[0].knn_auc, 0.8);
});

/** Points every 0.5 px along a plot's drawn data lines (the polylines of its clipped group). */
function curveSamples(svg: El): [number, number][] {
  const out: [number, number][] = [];
  for (const line of Array.from(svg.querySelectorAll("g[clip-path] polyline"))) {
    const pts = (line.getAttribute("points") ?? "").trim().split(/\s+/)
      .map((p) => p.split(",").map(Number));
    for (let i = 1; i < pts.length; i++) {
      const [[ax, ay], [bx, by]] = [pts[i - 1], pts[i]];
      const n = Math.max(1, Math.ceil(2 * Math.hypot(bx - ax, by - ay)));
      for (let k = 0; k <= n; k++) out.push([ax + ((bx - ax) * k) / n, ay + ((by - ay) * k) / n]);
    }
  }
  return out;
}

Deno.test("report: no ROC legend covers a curve, also below-chance curves in the lower right", () => {
  // Random init's scores flipped: its ROC curve runs through the lower right, the corner the
  // legend box always took.
  const flipped = flippedRandomCells();
  const roc = rocPanels(flipped);
  const page = parseDocument(
    buildReport({ results: computeResults(flipped, { replicates: 20 }), roc }),
  );
  const svgs = Array.from(page.querySelectorAll("svg.plot-roc"));
  assertEquals(svgs.length, roc.length);
  for (const svg of svgs) {
    const samples = curveSamples(svg);
    assert(samples.length > 100, "no curves drawn");
    const rect = svg.querySelectorAll("rect.legend-box")[0];
    const items = Array.from(svg.querySelectorAll("text.legend"));
    assertEquals(items.length, 3, "one legend entry per init");
    if (!rect) {
      // No free spot inside: the legend is above the plot area.
      const top = Number(svg.querySelectorAll("rect.frame")[0].getAttribute("y"));
      assert(items.every((t) => Number(t.getAttribute("y")) < top), "legend inside the plot");
      continue;
    }
    const [x, y, w, h] = ["x", "y", "width", "height"].map((a) => Number(rect.getAttribute(a)));
    const inside = samples.filter(([px, py]) => px >= x && px <= x + w && py >= y && py <= y + h);
    assertEquals(inside.length, 0, `legend box ${[x, y, w, h]} covers ${inside.slice(0, 3)}`);
  }
});

Deno.test("trainingPanels: several pretraining seeds are named as seeds, not as draws", () => {
  const base = syntheticCells({ fractions: [0.01, 1], draws: 2, nTest: 60 });
  // Seeds listed 2, 1, 0: seed 0's draw 0 must still be the opaque line of each init.
  const seeded = [2, 1, 0].flatMap((k) =>
    base.map((c) => ({
      ...c,
      pretrain_seed: k,
      metrics_file: c.metrics_file!.replace(".jsonl", `_s${k}.jsonl`),
    }))
  );
  const rows = new Map<string, MetricsRow[]>(
    seeded.map((c, i) => [c.metrics_file, syntheticMetrics(100, 100 + i)]),
  );
  const byLoss = new Map(seeded.map((c) => [JSON.stringify(rows.get(c.metrics_file)![0].loss), c]));
  const panels = trainingPanels(seeded, rows);
  const loss = panels.filter((p) => p.yLabel === "Training loss");
  assertEquals(loss.length, 2 * 2);
  for (const p of loss) {
    for (const se of p.series) {
      const c = byLoss.get(JSON.stringify(se.points[0].y))!;
      const first = c.pretrain_seed === 0 && c.draw === 0;
      assertEquals(se.legend !== false, first, `${p.group} ${p.title}: ${se.name}`);
      assertEquals(se.opacity === 1, first, `${p.group} ${p.title}: ${se.name}`);
      if (!first) {
        assertEquals(
          se.name,
          `${se.name.split(",")[0]}, pretraining seed ${c.pretrain_seed}, draw ${c.draw}`,
        );
      }
    }
  }
  const page = parseDocument(buildReport({ ...input, training: panels }));
  const notes = Array.from(page.querySelectorAll(".legend-row .note")).map((e) => e.textContent);
  assertEquals(notes.length, 2 * 2); // (linear, e2e) × (loss, val AUC)
  for (const n of notes) {
    assertEquals(
      n,
      "opaque lines: pretraining seed 0, draw 0; faint lines: further draws and pretraining seeds",
    );
  }
  // One seed, two draws: the faint lines are further draws.
  const plain = Array.from(doc.querySelectorAll(".legend-row .note")).map((e) => e.textContent);
  assert(plain.length > 0 && plain.every((n) => n === "faint lines: further draws"), plain.join());
  // Several seeds, one draw each: further pretraining seeds only.
  const oneDraw = seeded.filter((c) => c.draw === 0);
  const seedNotes = trainingPanels(oneDraw, rows).map((p) => p.note);
  assert(
    seedNotes.every((n) =>
      n === "opaque lines: pretraining seed 0, draw 0; faint lines: further pretraining seeds"
    ),
    seedNotes.join(" | "),
  );
});

Deno.test("pretrainPanels: several pretraining seeds, one line each, named by seed in the legend", () => {
  const files = new Map<string, MetricsRow[]>([
    ["metrics/pretrain_s10.jsonl", syntheticMetrics(100, 3, false)],
    ["metrics/pretrain.jsonl", syntheticMetrics(100, 1, false)],
    ["metrics/pretrain_s2.jsonl", syntheticMetrics(100, 2, false)],
  ]);
  const panels = pretrainPanels(files, { queueSize: 1024 });
  assertEquals(panels.map((p) => p.title), ["InfoNCE loss", "Learning rate"]);
  const names = ["Pretraining seed 0", "Pretraining seed 2", "Pretraining seed 10"];
  for (const p of panels) {
    assertEquals(p.series.map((se) => se.name), names);
    assert(p.series.every((se) => se.legend !== false), p.title);
    assertEquals(new Set(p.series.map((se) => se.color)).size, 3, "one color per seed");
  }
  // seed 2's loss is seed 2's file's
  assertEquals(
    panels[0].series[1].points.map((q) => q.y),
    files.get("metrics/pretrain_s2.jsonl")!.map((r) => r.loss),
  );
  const page = parseDocument(buildReport({ ...input, training: panels }));
  // One group for all seeds, not one per file.
  const groups = Array.from(page.querySelectorAll("h3")).map((e) => e.textContent ?? "")
    .filter((t) => t.startsWith("MoCo pretraining"));
  assertEquals(groups, [
    "MoCo pretraining (metrics/pretrain.jsonl, metrics/pretrain_s2.jsonl, metrics/pretrain_s10.jsonl)",
  ]);
  const legend = Array.from(page.querySelectorAll(".legend-row span")).map((e) => e.textContent);
  assertEquals(legend, names);
});

Deno.test("metadata: data (synthetic or not), start, image size, pretraining, splits, command, code", () => {
  const run = {
    started: "2026-11-29T05:24:51.503Z",
    preset: "cpu-demo",
    pretrain_seeds: 3,
    data: "CheXpert-v1.0-small (chexpert, 2000 images)",
    config: {
      pretrain: {
        imageSize: 32,
        epochs: 2,
        batchSize: 32,
        seed: 5,
        moco: { backbone: "resnet18", queueSize: 1024, temperature: 0.2 },
      },
      dataset: {
        kind: "chexpert",
        records: 2000,
        root: "/tmp/x/runs/synthetic/chexpert-n2000-s128-seed0/CheXpert-v1.0-small",
      },
      splitsOverlap: { dropped: 77, moved: 53, patients: 31 },
    },
    splits: {
      train_pool: { images: 1240, positives: 310 },
      validation: { images: 200, positives: 51 },
      test: { images: 154, positives: 61 },
    },
    command: { task: "experiment", args: ["--preset", "cpu-demo"] },
    code_version: "main@0123456789abcdef0123456789abcdef01234567",
  };
  const facts = Object.fromEntries(keyFacts(run, { pretrainSteps: [114, 114, 114] }));
  assert(/SYNTHETIC/.test(facts.data), facts.data);
  assertEquals(facts.started, run.started);
  assertEquals(facts["image size"], "32 px");
  assert(/2 epoch\(s\), 114 steps, batch 32, resnet18, queue 1024/.test(facts["MoCo pretraining"]));
  assert(facts["pretraining seeds"].startsWith("5, 1005, 2005"), facts["pretraining seeds"]);
  assertEquals(facts.preset, "cpu-demo");
  assert(
    facts.splits.startsWith(
      "train pool 1240 (310 positive) · validation 200 (51 positive) · test 154 (61 positive); " +
        "patient-disjoint after leaving out 77 image(s) and moving 53",
    ),
    facts.splits,
  );
  assertEquals(facts.command, "deno task experiment --preset cpu-demo");
  assertEquals(facts["code version"], run.code_version);
  // Real data: no "synthetic"; an older run.json: "not recorded".
  const real = keyFacts({
    ...run,
    config: { ...run.config, dataset: { ...run.config.dataset, root: "/data/nih1000" } },
  });
  assert(!/SYNTHETIC/.test(Object.fromEntries(real).data));
  const old = Object.fromEntries(keyFacts({ created: "2025-01-01", config: {} }));
  assertEquals([old.started, old.command, old["code version"]], [
    "2025-01-01",
    "not recorded",
    "not recorded",
  ]);
  const page = buildReport({ ...input, metadata: run });
  assert(page.includes("<dt>splits</dt>") && page.includes("<dt>code version</dt>"));
});

Deno.test("codeVersion: the commit .git/HEAD points to, from files only; 'unknown' without", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await codeVersion(dir), "unknown");
    const sha = "0123456789abcdef0123456789abcdef01234567";
    await Deno.mkdir(`${dir}/.git/refs/heads`, { recursive: true });
    await Deno.writeTextFile(`${dir}/.git/HEAD`, "ref: refs/heads/main\n");
    await Deno.writeTextFile(`${dir}/.git/packed-refs`, `# pack\n${sha} refs/heads/main\n`);
    assertEquals(await codeVersion(dir), `main@${sha}`);
    const sha2 = sha.replace("0123", "abcd");
    await Deno.writeTextFile(`${dir}/.git/refs/heads/main`, `${sha2}\n`);
    assertEquals(await codeVersion(dir), `main@${sha2}`);
    await Deno.writeTextFile(`${dir}/.git/HEAD`, `${sha}\n`);
    assertEquals(await codeVersion(dir), sha);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
