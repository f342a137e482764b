/**
 * The experiment report: one self-contained report.html (inline CSS, inline SVG plots, PNG
 * data URIs; no scripts, fonts or network) built with linkedom from a Results object plus
 * optional ROC/training panels, Grad-CAM examples and run metadata.
 */
import type { ColormapName } from "./colormap.ts";
import { type Child, type Doc, type El, h, newDocument } from "./dom.ts";
import { fmtAuc, fmtCi, fmtDiff, fmtP, INIT_COLOR, INIT_LABEL, PROTOCOL_LABEL } from "./format.ts";
import { computeHeadline } from "./headline.ts";
import {
  colorbarRaster,
  grayRaster,
  heatRaster,
  normalizeMinMax,
  overlayRaster,
  resizeBilinear,
} from "./heatmap.ts";
import { pngDataUri } from "./png.ts";
import type { Panel } from "./report_data.ts";
import {
  formatFraction,
  type Init,
  INITS,
  MEAN_TASK,
  type PairedDifference,
  type Protocol,
  PROTOCOLS,
  type Results,
  type SummaryRow,
} from "./results.ts";
import type { GradCamItem } from "./run_files.ts";
import { linePlot, type PlotSeries } from "./svg_plot.ts";

export interface ReportInput {
  results: Results;
  title?: string;
  /** Shown under the title, e.g. the run folder name. */
  runName?: string;
  /** ROC small multiples (see report_data.ts rocPanels). */
  roc?: Panel[];
  /** Training and pretraining curves (trainingPanels, pretrainPanels). */
  training?: Panel[];
  gradcam?: GradCamItem[];
  gradcamColormap?: ColormapName;
  /** run.json contents: shown as key facts plus the full JSON. */
  metadata?: Record<string, unknown> | null;
  /** Names of the companion files written next to the report. */
  files?: string[];
  /** ISO timestamp; defaults to now. */
  generatedAt?: string;
}

const CSS = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef0f3; color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 24px auto; padding: 36px 48px 56px; background: #fff;
  border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h1 { font-size: 28px; line-height: 1.25; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 21px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
p { margin: 8px 0; max-width: 78ch; }
.sub { color: var(--muted); margin: 0 0 20px; }
.headline { font-size: 17px; line-height: 1.5; padding: 14px 18px; border-left: 5px solid #8c959f;
  background: var(--soft); border-radius: 0 6px 6px 0; max-width: none; }
.headline.helped { border-color: #1a7f37; background: #edf7ef; }
.headline.hurt { border-color: #cf222e; background: #fcf0f1; }
.headline.mixed, .headline.no-clear-difference { border-color: #9a6700; background: #fff8e6; }
.howto { color: #3d444d; font-size: 14.5px; }
.howto li { margin: 3px 0; max-width: 90ch; }
table.results { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14px;
  margin: 8px 0 4px; }
table.results th, table.results td { padding: 6px 12px; border-bottom: 1px solid var(--line);
  text-align: right; vertical-align: top; white-space: nowrap; }
table.results thead th { background: var(--soft); text-align: center; font-weight: 600;
  border-bottom: 2px solid var(--line); }
table.results th.group { text-align: left; vertical-align: top; background: #fff; }
table.results td.frac { text-align: left; }
table.results td.sep { border-left: 2px solid var(--line); }
.ci { display: block; color: var(--muted); font-size: 12px; }
.draws { color: var(--muted); font-size: 12px; }
td.sig-pos { background: #edf7ef; }
td.sig-neg { background: #fcf0f1; }
td.sig-pos strong { color: #116329; }
td.sig-neg strong { color: #a40e26; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12.5px;
  padding-top: 6px; max-width: 100ch; }
.plots { display: flex; flex-wrap: wrap; gap: 14px 18px; align-items: flex-start; }
svg.plot { background: #fff; overflow: visible; }
svg.plot text { fill: #24292f; font-family: inherit; }
svg.plot .plot-title { font-size: 13px; font-weight: 600; }
svg.plot .tick { font-size: 11px; fill: #57606a; }
svg.plot .axis-label { font-size: 12px; fill: #3d444d; }
svg.plot .legend { font-size: 11.5px; }
svg.plot .legend-box { fill: #fff; fill-opacity: .85; stroke: #d0d7de; }
svg.plot .grid line { stroke: #eaeef2; }
svg.plot .frame { fill: none; stroke: #afb8c1; }
svg.plot .line { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg.plot .band { fill-opacity: .15; stroke: none; }
svg.plot .ref { stroke: #8c959f; stroke-dasharray: 4 3; }
svg.plot .errbar { stroke-width: 1.5; }
.cams { display: flex; flex-wrap: wrap; gap: 22px; }
figure.cam { margin: 0; }
figure.cam .imgs { display: flex; gap: 6px; }
figure.cam .imgs div { text-align: center; font-size: 12px; color: var(--muted); }
figure.cam img { display: block; width: 150px; height: auto; border-radius: 3px; }
figure.cam figcaption { font-size: 13px; margin-top: 4px; }
.legend-row { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; margin: 0 0 6px; }
.legend-row i { display: inline-block; width: 18px; height: 3px; margin: 0 6px 4px 0;
  vertical-align: middle; border-radius: 2px; }
.legend-row .note { color: var(--muted); }
.colorbar { display: flex; align-items: center; gap: 8px; font-size: 12.5px; color: var(--muted); }
.colorbar img { width: 220px; height: 12px; border-radius: 2px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; font-size: 14px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; overflow-wrap: anywhere; }
pre { background: var(--soft); padding: 12px 14px; border-radius: 6px; overflow: auto;
  font-size: 12.5px; line-height: 1.45; max-height: 520px; }
details summary { cursor: pointer; color: #0969da; margin: 8px 0; }
ul.warnings li { color: #9a6700; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
@media print { body { background: #fff; } main { box-shadow: none; margin: 0; } }
`;

const PLOT_W = 350, PLOT_H = 300; // three plots per row

const PROTOCOL_COLOR: Record<Protocol, string> = { linear: "#009E73", e2e: "#CC79A7" };

function tasksOf(r: Results): string[] {
  const ts = [...new Set(r.summary.map((s) => s.task))];
  return ts.sort((a, b) => Number(b === MEAN_TASK) - Number(a === MEAN_TASK) || a.localeCompare(b));
}

function taskTitle(task: string): string {
  return task === MEAN_TASK ? "Mean over tasks" : `Task: ${task}`;
}

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

const summaryKey = (
  s: Omit<SummaryRow, "n_draws" | "auc" | "ci" | "auc_sd" | "n_seeds" | "seed_sd">,
) => JSON.stringify([s.backbone, s.task, s.protocol, s.init, s.fraction]);

/** The paper-style table for one task: AUC [CI] per init, then each init − baseline. */
function resultsTable(doc: Doc, r: Results, task: string): El {
  const rows = r.summary.filter((s) => s.task === task);
  const byKey = new Map(rows.map((s) => [summaryKey(s), s]));
  const diffs = r.differences.filter((d) => d.task === task);
  const diffKey = (
    d: { backbone: string; protocol: string; fraction: number; init: string; baseline: string },
  ) => JSON.stringify([d.backbone, d.protocol, d.fraction, d.init, d.baseline]);
  const diffBy = new Map(diffs.map((d) => [diffKey(d), d]));
  const inits = INITS.filter((i) => rows.some((s) => s.init === i));
  const comps = r.settings.comparisons.filter(([a, b]) =>
    diffs.some((d) => d.init === a && d.baseline === b)
  );
  const backbones = uniq(rows.map((s) => s.backbone)).sort();
  const multiBackbone = backbones.length > 1;

  const head = h(
    doc,
    "tr",
    {},
    multiBackbone ? h(doc, "th", {}, "Backbone") : null,
    h(doc, "th", {}, "Protocol"),
    h(doc, "th", {}, "Labels"),
    ...inits.map((i) => h(doc, "th", {}, INIT_LABEL[i])),
    ...comps.map(([a, b], k) =>
      h(doc, "th", { class: k === 0 ? "sep" : null }, `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`)
    ),
  );
  const body = h(doc, "tbody");
  for (const backbone of backbones) {
    const bRows = rows.filter((s) => s.backbone === backbone);
    const protocols = PROTOCOLS.filter((p) => bRows.some((s) => s.protocol === p));
    const nBackboneRows = protocols.reduce(
      (n, p) => n + uniq(bRows.filter((s) => s.protocol === p).map((s) => s.fraction)).length,
      0,
    );
    let firstOfBackbone = true;
    for (const protocol of protocols) {
      const fractions = uniq(bRows.filter((s) => s.protocol === protocol).map((s) => s.fraction))
        .sort((a, b) => a - b);
      fractions.forEach((fraction, k) => {
        const tr = h(doc, "tr");
        if (multiBackbone && firstOfBackbone) {
          tr.appendChild(h(doc, "th", { class: "group", rowspan: nBackboneRows }, backbone));
          firstOfBackbone = false;
        }
        if (k === 0) {
          tr.appendChild(
            h(doc, "th", { class: "group", rowspan: fractions.length }, PROTOCOL_LABEL[protocol]),
          );
        }
        const draws = Math.max(
          0,
          ...inits.map((i) =>
            byKey.get(summaryKey({ backbone, task, protocol, init: i, fraction }))?.n_draws ?? 0
          ),
        );
        tr.appendChild(
          h(
            doc,
            "td",
            { class: "frac" },
            formatFraction(fraction),
            draws > 1 ? h(doc, "span", { class: "draws" }, ` · ${draws} draws`) : null,
          ),
        );
        for (const init of inits) {
          const s = byKey.get(summaryKey({ backbone, task, protocol, init, fraction }));
          tr.appendChild(
            s
              ? h(
                doc,
                "td",
                { title: s.n_draws > 1 ? `SD over draws ${s.auc_sd.toFixed(3)}` : null },
                fmtAuc(s.auc),
                h(doc, "span", { class: "ci" }, fmtCi(s.ci)),
              )
              : h(doc, "td", {}, "—"),
          );
        }
        comps.forEach(([a, b], c) => {
          const d = diffBy.get(diffKey({ backbone, protocol, fraction, init: a, baseline: b }));
          tr.appendChild(diffCell(doc, d, c === 0));
        });
        body.appendChild(tr);
      });
    }
  }
  const level = Math.round(r.settings.level * 100);
  const sizes = uniq(
    r.cells.filter((c) => task === MEAN_TASK || c.task === task).map((c) =>
      `${c.task === task ? "" : `${c.task}: `}${c.n_test} images, ${c.n_pos} positive` +
      (multiBackbone ? ` (${c.backbone})` : "")
    ),
  );
  return h(
    doc,
    "table",
    { class: "results" },
    h(
      doc,
      "caption",
      {},
      `Test set${sizes.length > 1 ? "s" : ""}: ${
        sizes.join("; ")
      }. Test AUC (mean over draws) with ${level}% bootstrap percentile CI ` +
        `(${r.settings.replicates} resamples of the test set). Differences are paired ` +
        `(same test images, same labeled subset per draw), averaged over draws; bold with a ` +
        `tint where the ${level}% CI excludes 0. p: DeLong's test (bootstrap when draws use ` +
        `different test sets).` + seedsNote(r),
    ),
    h(doc, "thead", {}, head),
    body,
  );
}

/** The caption's sentence on pretraining seeds (empty with one seed). */
function seedsNote(r: Results): string {
  const withSeeds = r.differences.filter((d) => d.seeds);
  if (withSeeds.length === 0) return "";
  const K = Math.max(...withSeeds.map((d) => d.seeds!.n_seeds));
  return ` Over ${K} pretraining seeds (each MoCo backbone paired with its own seed's baseline): ` +
    `a difference is the mean over seeds, its CI covers both the pretraining seed and the test ` +
    `images (Welch–Satterthwaite t from the spread between seeds and a paired bootstrap of the ` +
    `test set; p from the same t), "k/${K} seeds" counts the seeds whose difference is above 0, ` +
    `and the tooltip gives each seed's difference and the share of the variance from seeds.`;
}

function diffCell(doc: Doc, d: PairedDifference | undefined, first: boolean): El {
  const sep = first ? "sep" : "";
  if (!d) return h(doc, "td", { class: sep || null }, "—");
  const sig = d.ci[0] > 0 ? "sig-pos" : d.ci[1] < 0 ? "sig-neg" : "";
  const value: Child = sig ? h(doc, "strong", {}, fmtDiff(d.diff)) : fmtDiff(d.diff);
  const s = d.seeds;
  const tips = [
    s
      ? `per-seed differences: ${s.seed_diffs.map(fmtDiff).join(", ")}; ` +
        `${Math.round(100 * s.seed_share)}% of the variance from pretraining seeds ` +
        `(se ${s.se_seed.toFixed(3)} seeds, ${s.se_test.toFixed(3)} test images); ` +
        `test-images-only CI ${fmtCi(s.ci_test, fmtDiff)}`
      : null,
    d.n_draws > 1 ? `per-draw differences: ${d.draw_diffs.map(fmtDiff).join(", ")}` : null,
  ].filter(Boolean);
  return h(
    doc,
    "td",
    { class: [sep, sig].filter(Boolean).join(" ") || null, title: tips.join("; ") || null },
    value,
    h(
      doc,
      "span",
      { class: "ci" },
      `${fmtCi(d.ci, fmtDiff)} · ${fmtP(d.p)}` +
        (s ? ` · ${s.seeds_positive}/${s.n_seeds} seeds` : ""),
    ),
  );
}

function fractionTicks(fractions: number[]) {
  return uniq(fractions).sort((a, b) => a - b).map((f) => ({
    value: f,
    label: formatFraction(f),
  }));
}

/** AUC vs label fraction (log x), one line per init with its CI band; one plot per protocol. */
function aucFractionPlots(doc: Doc, r: Results, task: string, backbone: string): El[] {
  const rows = r.summary.filter((s) => s.task === task && s.backbone === backbone);
  const ticks = fractionTicks(rows.map((s) => s.fraction));
  const lo = Math.min(...rows.map((s) => s.ci[0])), hi = Math.max(...rows.map((s) => s.ci[1]));
  const pad = Math.max(0.01, 0.08 * (hi - lo));
  const yDomain: [number, number] = [Math.max(0, lo - pad), Math.min(1, hi + pad)];
  return PROTOCOLS.filter((p) => rows.some((s) => s.protocol === p)).map((protocol) => {
    const series: PlotSeries[] = INITS.flatMap((init: Init) => {
      const pts = rows.filter((s) => s.protocol === protocol && s.init === init);
      if (pts.length === 0) return [];
      return [{
        name: INIT_LABEL[init],
        color: INIT_COLOR[init],
        markers: true,
        points: pts.map((s) => ({
          x: s.fraction,
          y: s.auc,
          lo: s.ci[0],
          hi: s.ci[1],
          tip: `${INIT_LABEL[init]}, ${formatFraction(s.fraction)} of labels: AUC ${
            fmtAuc(s.auc)
          } ${fmtCi(s.ci)}${s.n_draws > 1 ? `, mean of ${s.n_draws} draws` : ""}`,
        })),
      }];
    });
    return linePlot(doc, {
      className: "plot plot-auc-fraction",
      title: `${PROTOCOL_LABEL[protocol]} · ${backbone}`,
      xLabel: "Label fraction (log scale)",
      yLabel: "Test AUC",
      xLog: true,
      xDomain: [ticks[0].value / 1.5, ticks[ticks.length - 1].value * 1.5],
      xTicks: ticks,
      yDomain,
      hLines: [0.5],
      width: PLOT_W,
      height: PLOT_H,
      series,
    });
  });
}

/** init − baseline vs label fraction, one line per (comparison, protocol), zero line. */
function diffFractionPlot(doc: Doc, r: Results, task: string, backbone: string): El | null {
  const diffs = r.differences.filter((d) => d.task === task && d.backbone === backbone);
  if (diffs.length === 0) return null;
  const series: PlotSeries[] = [];
  r.settings.comparisons.forEach(([a, b], c) => {
    for (const protocol of PROTOCOLS) {
      const pts = diffs.filter((d) => d.init === a && d.baseline === b && d.protocol === protocol);
      if (pts.length === 0) continue;
      series.push({
        name: `${protocol === "e2e" ? "E2E" : "Linear"}: ${INIT_LABEL[a]} − ${INIT_LABEL[b]}`,
        color: PROTOCOL_COLOR[protocol],
        dashed: c > 0,
        markers: true,
        points: pts.map((d) => ({
          x: d.fraction,
          y: d.diff,
          lo: d.ci[0],
          hi: d.ci[1],
          tip: `${PROTOCOL_LABEL[protocol]}, ${formatFraction(d.fraction)}: ${INIT_LABEL[a]} − ${
            INIT_LABEL[b]
          } = ${fmtDiff(d.diff)} ${fmtCi(d.ci, fmtDiff)}, ${fmtP(d.p)}`,
        })),
      });
    }
  });
  const ticks = fractionTicks(diffs.map((d) => d.fraction));
  return linePlot(doc, {
    className: "plot plot-diff-fraction",
    title: `Paired ΔAUC · ${backbone}`,
    xLabel: "Label fraction (log scale)",
    yLabel: "ΔAUC",
    xLog: true,
    xDomain: [ticks[0].value / 1.5, ticks[ticks.length - 1].value * 1.5],
    xTicks: ticks,
    hLines: [0],
    ySigned: true,
    width: PLOT_W,
    height: PLOT_H,
    series,
  });
}

/** Panels grouped under h3 headings; training panels share one legend per group. */
function panelGroups(
  doc: Doc,
  panels: Panel[],
  className: string,
  size: [number, number],
  roc: boolean,
): El[] {
  const out: El[] = [];
  for (const group of uniq(panels.map((p) => p.group))) {
    const mine = panels.filter((q) => q.group === group);
    out.push(h(doc, "h3", {}, group));
    if (!roc) {
      const entries = new Map<string, string>();
      for (const p of mine) {
        for (const se of p.series) if (se.legend !== false) entries.set(se.name, se.color);
      }
      if (entries.size > 0) {
        out.push(h(
          doc,
          "div",
          { class: "legend-row" },
          ...[...entries].map(([name, color]) =>
            h(doc, "span", {}, h(doc, "i", { style: `background:${color}` }), name)
          ),
          mine.some((p) => p.series.some((se) => (se.opacity ?? 1) < 1))
            ? h(doc, "span", { class: "note" }, "faint lines: further draws")
            : null,
        ));
      }
    }
    const div = h(doc, "div", { class: "plots" });
    for (const p of mine) {
      div.appendChild(linePlot(doc, {
        className,
        title: p.title,
        xLabel: p.xLabel,
        yLabel: p.yLabel,
        width: size[0],
        height: size[1],
        series: p.series.map((se) => ({
          ...se,
          width: roc ? 1.8 : 1.5,
          legend: roc ? se.legend : false,
        })),
        ...(roc
          ? {
            xDomain: [0, 1] as [number, number],
            yDomain: [0, 1] as [number, number],
            diagonal: true,
            legendPosition: "bottom-right" as const,
          }
          : {}),
      }));
    }
    out.push(div);
  }
  return out;
}

/** Why a report has no Grad-CAM examples: they come from end-to-end cells only. */
export function noGradcamReason(r: Results): string {
  return r.cells.some((c) => c.protocol === "e2e")
    ? "None in this run folder's gradcam/: the experiment writes them for the end-to-end cells " +
      "at the largest label fraction (first draw) when the test set has positives, unless run " +
      "with --gradcam 0."
    : "None: Grad-CAM examples come from end-to-end cells (a frozen linear probe has nothing to " +
      "explain beyond its backbone), and this run has linear-protocol cells only.";
}

function gradcamSection(doc: Doc, items: GradCamItem[], cmap: ColormapName): El[] {
  const bar = h(
    doc,
    "div",
    { class: "colorbar" },
    "low",
    h(doc, "img", { src: pngDataUri(colorbarRaster(cmap)), alt: `${cmap} colormap` }),
    `high Grad-CAM activation (${cmap}; each map min–max scaled)`,
  );
  const grid = h(doc, "div", { class: "cams" });
  for (const it of items) {
    const heat = normalizeMinMax(
      it.heatmapWidth === it.width && it.heatmapHeight === it.height
        ? it.heatmap
        : resizeBilinear(it.heatmap, it.heatmapWidth, it.heatmapHeight, it.width, it.height),
    );
    const img = (label: string, uri: string) =>
      h(doc, "div", {}, h(doc, "img", { src: uri, alt: `${it.title}: ${label}` }), label);
    const details = [
      it.label !== undefined ? `label ${it.label}` : null,
      it.score !== undefined ? `score ${it.score.toFixed(3)}` : null,
    ].filter(Boolean).join(" · ");
    grid.appendChild(h(
      doc,
      "figure",
      { class: "cam" },
      h(
        doc,
        "div",
        { class: "imgs" },
        img("image", pngDataUri(grayRaster(it.image, it.width, it.height))),
        img("Grad-CAM", pngDataUri(heatRaster(heat, it.width, it.height, cmap))),
        img("overlay", pngDataUri(overlayRaster(it.image, heat, it.width, it.height, { cmap }))),
      ),
      h(
        doc,
        "figcaption",
        {},
        h(doc, "strong", {}, it.title),
        details ? ` — ${details}` : null,
      ),
    ));
  }
  return [bar, grid];
}

function metadataSection(doc: Doc, r: Results, meta: Record<string, unknown> | null | undefined) {
  const out: El[] = [];
  const dl = h(doc, "dl", { class: "meta" });
  const add = (k: string, v: unknown) => {
    dl.appendChild(h(doc, "dt", {}, k));
    dl.appendChild(h(doc, "dd", {}, typeof v === "string" ? v : JSON.stringify(v)));
  };
  if (meta) {
    for (
      const k of [
        "name",
        "created",
        "versions",
        "adapter",
        "seeds",
        "seed",
        "device",
        "preset",
        "pretrain_seeds",
        "e2e_protocol",
      ]
    ) {
      if (meta[k] !== undefined) add(k, meta[k]);
    }
  }
  const st = r.settings;
  add(
    "evaluation",
    `${st.ci_method}, ${st.replicates} resamples, seed ${st.seed}, level ${st.level}`,
  );
  // Only the comparisons this run's cells allow (both inits present) are listed as made.
  const made = st.comparisons.filter(([a, b]) =>
    r.differences.some((d) => d.init === a && d.baseline === b)
  );
  const notMade = st.comparisons.filter((c) => !made.includes(c));
  add(
    "comparisons",
    (made.map(([a, b]) => `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`).join("; ") || "none") +
      (notMade.length
        ? ` (not made, no cells of ${
          uniq(notMade.flatMap((c) => c.filter((i) => !r.cells.some((x) => x.init === i))))
            .map((i) => INIT_LABEL[i]).join(" or ") || "matching draws"
        }: ${notMade.map(([a, b]) => `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`).join("; ")})`
        : ""),
  );
  add("cells", `${r.cells.length} (${uniq(r.cells.map((c) => c.task)).length} task(s))`);
  out.push(dl);
  if (meta) {
    out.push(h(
      doc,
      "details",
      { open: true },
      h(doc, "summary", {}, "Full run metadata (run.json)"),
      h(doc, "pre", {}, JSON.stringify(meta, null, 2)),
    ));
  } else {
    out.push(h(doc, "p", { class: "sub" }, "No run.json in this run folder."));
  }
  if (r.warnings.length > 0) {
    out.push(h(doc, "h3", {}, "Warnings"));
    out.push(h(doc, "ul", { class: "warnings" }, ...r.warnings.map((w) => h(doc, "li", {}, w))));
  }
  return out;
}

function howToRead(doc: Doc, r: Results): El {
  const level = Math.round(r.settings.level * 100);
  const li = (...c: Child[]) => h(doc, "li", {}, ...c);
  return h(
    doc,
    "div",
    { class: "howto" },
    h(doc, "h2", {}, "How to read this report"),
    h(
      doc,
      "ul",
      {},
      li(
        h(doc, "strong", {}, "Cells. "),
        "Each model starts from one initialization — random weights, ImageNet weights, or " +
          "MoCo-CXR (momentum-contrast pretraining on chest X-rays) — and is then trained " +
          "either as a linear probe (frozen backbone; an L2-regularised logistic regression on " +
          "its features, the penalty C chosen on the validation split: results.csv probe_C) " +
          "or end to end, using a fraction of the training labels. Small fractions are " +
          "repeated with several random label subsets (draws).",
      ),
      li(
        h(doc, "strong", {}, "AUC. "),
        `Area under the ROC curve on the held-out test set: 0.5 is chance, 1.0 is perfect. ` +
          `Brackets give the ${level}% bootstrap confidence interval, which reflects how much ` +
          `the AUC could move with a different test sample of the same size.`,
      ),
      li(
        h(doc, "strong", {}, "Differences. "),
        "ΔAUC compares two initializations on the same test images and the same labeled " +
          "subsets, so shared noise cancels. A bold, tinted ΔAUC has a CI that excludes 0 " +
          "(green: first init better; red: worse). With one pretraining seed the CIs cover " +
          "test-set sampling only; with several (--pretrain-seeds) they cover the pretraining " +
          "seed too. The spread between draws is in the tooltips and in differences.csv " +
          "(draw_sd); between seeds, in seed_diffs and seed_share.",
      ),
      li(
        h(doc, "strong", {}, "Plots. "),
        "AUC versus label fraction uses a log x axis, one line per initialization with a " +
          "shaded CI band; hover a point for its numbers. ROC curves show the first draw.",
      ),
    ),
  );
}

/** Builds the complete report.html text. */
export function buildReport(input: ReportInput): string {
  const r = input.results;
  const doc = newDocument();
  const title = input.title ?? "MoCo-CXR reproduction: evaluation report";
  doc.head.appendChild(h(doc, "meta", { name: "viewport", content: "width=device-width" }));
  doc.head.appendChild(h(doc, "title", {}, input.runName ? `${title} — ${input.runName}` : title));
  doc.head.appendChild(h(doc, "style", {}, CSS));
  const main = h(doc, "main");
  doc.body.appendChild(main);
  const add = (...els: (El | null)[]) => els.forEach((e) => e && main.appendChild(e));

  const tasks = tasksOf(r);
  const backbones = uniq(r.summary.map((s) => s.backbone)).sort();
  const generated = input.generatedAt ?? new Date().toISOString();
  add(h(doc, "h1", {}, title));
  add(h(
    doc,
    "p",
    { class: "sub" },
    [
      input.runName ? `Run ${input.runName}` : null,
      `${r.cells.length} evaluated models`,
      `backbone${backbones.length > 1 ? "s" : ""} ${backbones.join(", ")}`,
      `task${tasks.length > 1 ? "s" : ""} ${tasks.filter((t) => t !== MEAN_TASK).join(", ")}`,
      `generated ${generated.replace("T", " ").slice(0, 16)} UTC`,
    ].filter(Boolean).join(" · "),
  ));
  const hl = computeHeadline(r);
  add(h(doc, "p", { class: `headline ${hl.verdict.replaceAll(" ", "-")}` }, hl.text));
  add(howToRead(doc, r));

  add(h(doc, "h2", {}, "Results"));
  for (const task of tasks) {
    if (tasks.length > 1) add(h(doc, "h3", {}, taskTitle(task)));
    add(resultsTable(doc, r, task));
  }

  add(h(doc, "h2", {}, "AUC versus label fraction"));
  for (const task of tasks) {
    for (const backbone of backbones) {
      if (!r.summary.some((s) => s.task === task && s.backbone === backbone)) continue;
      if (tasks.length > 1 || backbones.length > 1) {
        add(h(doc, "h3", {}, `${taskTitle(task)} · ${backbone}`));
      }
      const div = h(doc, "div", { class: "plots" });
      for (const p of aucFractionPlots(doc, r, task, backbone)) div.appendChild(p);
      const d = diffFractionPlot(doc, r, task, backbone);
      if (d) div.appendChild(d);
      add(div);
    }
  }

  if (input.roc && input.roc.length > 0) {
    add(h(doc, "h2", {}, "ROC curves"));
    add(h(
      doc,
      "p",
      { class: "sub" },
      "One panel per label fraction; legend values are the AUCs of the plotted (first) draw.",
    ));
    add(...panelGroups(doc, input.roc, "plot plot-roc", [258, 280], true));
  }
  if (input.training && input.training.length > 0) {
    add(h(doc, "h2", {}, "Training curves"));
    add(...panelGroups(doc, input.training, "plot plot-training", [258, 220], false));
  }
  add(h(doc, "h2", {}, "Grad-CAM examples"));
  if (input.gradcam && input.gradcam.length > 0) {
    add(...gradcamSection(doc, input.gradcam, input.gradcamColormap ?? "jet"));
  } else add(h(doc, "p", { class: "sub" }, noGradcamReason(r)));
  add(h(doc, "h2", {}, "Run metadata"));
  add(...metadataSection(doc, r, input.metadata));
  add(h(
    doc,
    "footer",
    {},
    "Self-contained report (no scripts or network). ",
    input.files && input.files.length > 0 ? `Data files: ${input.files.join(", ")}.` : null,
  ));
  return doc.toString();
}
