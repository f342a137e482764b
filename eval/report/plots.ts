/** The AUC-versus-label-fraction plots and the ROC / training panels. */
import { type Doc, type El, h } from "../dom.ts";
import {
  fmtAuc,
  fmtCi,
  fmtCiP,
  fmtDiff,
  INIT_COLOR,
  INIT_LABEL,
  PROTOCOL_LABEL,
} from "../format.ts";
import type { Panel } from "../report_data.ts";
import { formatFraction, type Init, INITS, PROTOCOLS, type Results } from "../results.ts";
import { linePlot, type PlotSeries } from "../svg_plot.ts";
import { PLOT_H, PLOT_W, PROTOCOL_COLOR } from "./style.ts";
import { uniq } from "./common.ts";

function fractionTicks(fractions: number[]) {
  return uniq(fractions).sort((a, b) => a - b).map((f) => ({
    value: f,
    label: formatFraction(f),
  }));
}

/** AUC vs label fraction (log x), one line per init with its CI band; one plot per protocol. */
export function aucFractionPlots(doc: Doc, r: Results, task: string, backbone: string): El[] {
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
    // The bands are the test-image bootstrap only (the spread over draws and seeds is not in
    // them): a legend entry says so.
    series.push({
      name: `band: ${Math.round(r.settings.level * 100)}% CI, test images only`,
      color: "#afb8c1",
      width: 7,
      points: [],
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
export function diffFractionPlot(doc: Doc, r: Results, task: string, backbone: string): El | null {
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
          } = ${fmtDiff(d.diff)} ${fmtCi(d.ci, fmtDiff)}, ${fmtCiP(d, r.settings.replicates)}`,
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

/**
 * What a group's faint lines are: its panels' own notes (trainingPanels names draws and
 * pretraining seeds from the cells' keys), else a neutral "further runs" when some are faint.
 */
function faintNote(panels: Panel[]): string | null {
  const notes = uniq(panels.flatMap((p) => p.note ? [p.note] : []));
  if (notes.length > 0) return notes.join("; ");
  return panels.some((p) => p.series.some((se) => (se.opacity ?? 1) < 1))
    ? "faint lines: further runs"
    : null;
}

/** Panels grouped under h3 headings; training panels share one legend per group. */
export function panelGroups(
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
      const note = faintNote(mine);
      if (entries.size > 0) {
        out.push(h(
          doc,
          "div",
          { class: "legend-row" },
          ...[...entries].map(([name, color]) =>
            h(doc, "span", {}, h(doc, "i", { style: `background:${color}` }), name)
          ),
          note ? h(doc, "span", { class: "note" }, note) : null,
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
        refLines: p.refLines,
        ...(roc
          ? {
            xDomain: [0, 1] as [number, number],
            yDomain: [0, 1] as [number, number],
            diagonal: true,
            legendPosition: "inside" as const,
          }
          : {}),
      }));
    }
    out.push(div);
  }
  return out;
}
