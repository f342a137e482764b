/**
 * Turns raw predictions and metrics files into the plot panels the report draws: ROC curves
 * (pretraining seed 0's first draw of each init, per backbone/protocol/task/fraction) and
 * training curves.
 */
import { auc, rocCurve, thinRoc } from "./auc.ts";
import { INIT_COLOR, INIT_LABEL, PROTOCOL_LABEL } from "./format.ts";
import { type CellPredictions, formatFraction, INITS, PROTOCOLS } from "./results.ts";
import type { MetricsRow } from "./run_files.ts";

export interface CurveSeries {
  name: string;
  color: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
  opacity?: number;
  /** Shown in the legend (default true). */
  legend?: boolean;
}

/** One small plot; panels with the same `group` are drawn side by side under one heading. */
export interface Panel {
  group: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: CurveSeries[];
  /** Dashed horizontal reference lines with a label, e.g. the InfoNCE loss at chance. */
  refLines?: { y: number; label: string }[];
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(t);
  }
  return m;
}

/**
 * ROC panels: one per (backbone, protocol, task, fraction), one curve per init: its first draw of
 * the lowest pretraining seed (seed 0 when present), whatever order the cells come in.
 */
export function rocPanels(cells: CellPredictions[], step = 1 / 300): Panel[] {
  const panels: Panel[] = [];
  const sorted = [...cells].sort((a, b) =>
    a.backbone.localeCompare(b.backbone) ||
    PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) ||
    a.task.localeCompare(b.task) || a.fraction - b.fraction
  );
  for (
    const list of groupBy(sorted, (c) => `${c.backbone}|${c.protocol}|${c.task}|${c.fraction}`)
      .values()
  ) {
    const c0 = list[0];
    const series: CurveSeries[] = [];
    const shown: CellPredictions[] = [];
    for (const init of INITS) {
      const mine = list.filter((c) => c.init === init).sort((a, b) =>
        (a.pretrain_seed ?? 0) - (b.pretrain_seed ?? 0) || a.draw - b.draw
      );
      if (mine.length === 0) continue;
      const c = mine[0];
      shown.push(c);
      const r = thinRoc(rocCurve(c.labels, c.scores), step);
      series.push({
        name: `${INIT_LABEL[init]} ${auc(c.labels, c.scores).toFixed(3)}`,
        color: INIT_COLOR[init],
        points: r.fpr.map((x, k) => ({ x, y: r.tpr[k] })),
      });
    }
    panels.push({
      group: `${c0.backbone} · ${PROTOCOL_LABEL[c0.protocol]} · ${c0.task}`,
      // short enough for a narrow panel: "0.1% of labels", or "0.1% · seed 0, draw 0"
      title: `${formatFraction(c0.fraction)}${which(list, shown) || " of labels"}`,
      xLabel: "False positive rate",
      yLabel: "True positive rate",
      series,
    });
  }
  return panels;
}

/** " · draw 0", " · seed 0, draw 0" when the panel shows one of several; "" otherwise. */
function which(list: CellPredictions[], shown: CellPredictions[]): string {
  const seeds = list.some((c) => (c.pretrain_seed ?? 0) !== (shown[0].pretrain_seed ?? 0));
  const draws = list.some((c) => c.draw !== shown[0].draw);
  const same = shown.every((c) =>
    c.draw === shown[0].draw && (c.pretrain_seed ?? 0) === (shown[0].pretrain_seed ?? 0)
  );
  if (!seeds && !draws) return "";
  if (!same) return " · first draw of each";
  const parts = [
    seeds ? `seed ${shown[0].pretrain_seed ?? 0}` : null,
    draws || seeds ? `draw ${shown[0].draw}` : null,
  ].filter(Boolean);
  return ` · ${parts.join(", ")}`;
}

/** A linear probe's metrics are its penalty path: plotted against log10 C instead of the step. */
function isPenaltyPath(rows: MetricsRow[]): boolean {
  return rows.length > 0 && rows.every((r) => typeof r.C === "number" && r.C > 0);
}

function metricSeries(rows: MetricsRow[], field: keyof MetricsRow): { x: number; y: number }[] {
  const path = isPenaltyPath(rows);
  return rows
    .filter((r) => typeof r[field] === "number" && Number.isFinite(r[field]))
    .map((r) => ({ x: path ? Math.log10(r.C!) : r.step, y: r[field] as number }));
}

/**
 * Fine-tuning curves: per (backbone, protocol) one panel per label fraction with the training
 * loss of every cell (one color per init; the first draw opaque, later draws faint), and the
 * same for validation AUC when the metrics have it. `metrics` maps a cell's metrics_file to rows.
 */
export function trainingPanels(
  cells: CellPredictions[],
  metrics: Map<string, MetricsRow[]>,
): Panel[] {
  const withMetrics = cells.filter((c) => c.metrics_file && metrics.has(c.metrics_file));
  // Several tasks of one multi-label model share a metrics file: plot it once.
  const unique = [...groupBy(withMetrics, (c) => c.metrics_file!).values()].map((l) => l[0]);
  const panels: Panel[] = [];
  const byGroup = groupBy(
    unique.sort((a, b) =>
      a.backbone.localeCompare(b.backbone) ||
      PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol)
    ),
    (c) => `${c.backbone}|${c.protocol}`,
  );
  for (const list of byGroup.values()) {
    for (
      const [field, label] of [["loss", "Training loss"], ["val_auc", "Validation AUC"]] as const
    ) {
      const groupPanels: Panel[] = [];
      const fractions = [...new Set(list.map((c) => c.fraction))].sort((a, b) => a - b);
      for (const f of fractions) {
        const series: CurveSeries[] = [];
        for (const init of INITS) {
          const mine = list.filter((c) => c.fraction === f && c.init === init).sort((a, b) =>
            a.draw - b.draw
          );
          mine.forEach((c, k) => {
            const points = metricSeries(metrics.get(c.metrics_file!)!, field);
            if (points.length === 0) return;
            series.push({
              name: INIT_LABEL[init],
              color: INIT_COLOR[init],
              points,
              opacity: k === 0 ? 1 : 0.35,
              legend: k === 0,
            });
          });
        }
        if (series.length > 0) {
          groupPanels.push({
            group: `${list[0].backbone} · ${PROTOCOL_LABEL[list[0].protocol]} · ${label}`,
            title: `${formatFraction(f)} of labels`,
            xLabel: list.every((c) => isPenaltyPath(metrics.get(c.metrics_file!)!))
              ? "log10 C (inverse L2 penalty)"
              : "Step",
            yLabel: label,
            series,
          });
        }
      }
      panels.push(...groupPanels);
    }
  }
  return panels;
}

/** How the linear probes of one (backbone, label fraction) chose their penalty C. */
export interface ProbeCheck {
  backbone: string;
  fraction: number;
  /** Probes with a penalty path in their metrics. */
  probes: number;
  /** Probes whose validation AUC was the same at every C (the choice of C was arbitrary). */
  flat: number;
  /** Probes whose chosen C (probe_C) is the smallest or largest C of the path. */
  edge: number;
}

/**
 * Per (backbone, fraction): how many linear probes had a validation AUC flat across all C, and
 * how many chose a C at the grid's edge. `metrics` maps a cell's metrics_file to its rows.
 */
export function probeChecks(
  cells: CellPredictions[],
  metrics: Map<string, MetricsRow[]>,
): ProbeCheck[] {
  const probes = [
    ...groupBy(
      cells.filter((c) =>
        c.protocol === "linear" && c.metrics_file &&
        isPenaltyPath(metrics.get(c.metrics_file) ?? [])
      ),
      (c) => c.metrics_file!,
    ).values(),
  ].map((l) => l[0]);
  const out: ProbeCheck[] = [];
  const sorted = probes.sort((a, b) =>
    a.backbone.localeCompare(b.backbone) || a.fraction - b.fraction
  );
  for (const list of groupBy(sorted, (c) => `${c.backbone}|${c.fraction}`).values()) {
    let flat = 0, edge = 0;
    for (const c of list) {
      const rows = metrics.get(c.metrics_file!)!;
      const aucs = rows.map((r) => r.val_auc).filter((v): v is number => typeof v === "number");
      if (aucs.length > 1 && Math.max(...aucs) - Math.min(...aucs) < 1e-9) flat++;
      const Cs = rows.map((r) => r.C!);
      const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(a, b);
      if (
        c.probe_C !== undefined &&
        (near(c.probe_C, Math.min(...Cs)) || near(c.probe_C, Math.max(...Cs)))
      ) edge++;
    }
    out.push({
      backbone: list[0].backbone,
      fraction: list[0].fraction,
      probes: list.length,
      flat,
      edge,
    });
  }
  return out;
}

/**
 * MoCo pretraining curves per metrics file: the InfoNCE loss (with a dashed "chance" line at
 * ln(K + 1), K = `queueSize` negatives, when given), pretext-task accuracy, learning rate and the
 * kNN monitor's validation AUC, each when logged.
 */
export function pretrainPanels(
  files: Map<string, MetricsRow[]>,
  opts: { queueSize?: number } = {},
): Panel[] {
  const panels: Panel[] = [];
  const K = opts.queueSize;
  for (const [path, rows] of files) {
    for (
      const [field, label, axis] of [
        ["loss", "InfoNCE loss", "Loss"],
        ["acc", "Pretext-task accuracy", "Accuracy"],
        ["lr", "Learning rate", "Learning rate"],
        ["knn_auc", "kNN monitor AUC (validation)", "AUC"],
        ["val_auc", "Validation AUC", "AUC"],
      ] as const
    ) {
      const points = metricSeries(rows, field);
      if (points.length === 0) continue;
      panels.push({
        group: `MoCo pretraining (${path})`,
        title: label,
        xLabel: "Step",
        yLabel: axis,
        series: [{ name: label, color: INIT_COLOR.moco, points, legend: false }],
        ...(field === "loss" && K && K > 0
          ? { refLines: [{ y: Math.log(K + 1), label: `chance, ln(${K}+1)` }] }
          : {}),
      });
    }
  }
  return panels;
}
