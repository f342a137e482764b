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
  /**
   * What the faint (opacity < 1) lines are, printed beside the group's legend, e.g. "opaque
   * lines: pretraining seed 0, draw 0; faint lines: further draws and pretraining seeds".
   */
  note?: string;
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

const seedOf = (c: CellPredictions) => c.pretrain_seed ?? 0;

/**
 * The legend note of a group of fine-tuning panels: which model each init's opaque line is and
 * what the faint ones are, from the cells' keys (a series is one fine-tuned model: its init,
 * pretraining seed and label draw). `slots` holds, per (fraction, init), the plotted cells in
 * drawing order (the first is the opaque one). Undefined when no panel has a faint line.
 */
function faintNote(slots: CellPredictions[][], seeds: boolean): string | undefined {
  const faint = slots.flatMap((l) => l.slice(1).map((c) => [l[0], c] as const));
  if (faint.length === 0) return undefined;
  const otherSeeds = faint.some(([first, c]) => seedOf(c) !== seedOf(first));
  const otherDraws = faint.some(([first, c]) => c.draw !== first.draw);
  const faintText = otherSeeds && otherDraws
    ? "further draws and pretraining seeds"
    : otherSeeds
    ? "further pretraining seeds"
    : "further draws";
  if (!seeds) return `faint lines: ${faintText}`;
  const first = slots.map((l) => l[0]);
  const same = first.every((c) => seedOf(c) === seedOf(first[0]) && c.draw === first[0].draw);
  const opaque = same
    ? `pretraining seed ${seedOf(first[0])}, draw ${first[0].draw}`
    : "each init's first draw of its lowest pretraining seed";
  return `opaque lines: ${opaque}; faint lines: ${faintText}`;
}

/**
 * Fine-tuning curves: per (backbone, protocol) one panel per label fraction with the training
 * loss of every cell, i.e. of every fine-tuned model (one color per init; each init's first
 * draw of its lowest pretraining seed opaque, its further draws and pretraining seeds faint, as
 * the group's `note` says), and the same for validation AUC when the metrics have it. `metrics`
 * maps a cell's metrics_file to rows.
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
    // Several pretraining seeds in the run (cells carry pretrain_seed): the note names them.
    const seeds = new Set(list.map(seedOf)).size > 1;
    for (
      const [field, label] of [["loss", "Training loss"], ["val_auc", "Validation AUC"]] as const
    ) {
      const groupPanels: Panel[] = [];
      const slots: CellPredictions[][] = [];
      const fractions = [...new Set(list.map((c) => c.fraction))].sort((a, b) => a - b);
      for (const f of fractions) {
        const series: CurveSeries[] = [];
        for (const init of INITS) {
          const mine = list.filter((c) => c.fraction === f && c.init === init).sort((a, b) =>
            seedOf(a) - seedOf(b) || a.draw - b.draw
          );
          const drawn: CellPredictions[] = [];
          for (const c of mine) {
            const points = metricSeries(metrics.get(c.metrics_file!)!, field);
            if (points.length === 0) continue;
            const k = drawn.push(c) - 1;
            series.push({
              // The legend shows the opaque line's name; the others say which model they are.
              name: k === 0 ? INIT_LABEL[init] : `${INIT_LABEL[init]}, ${modelOf(c, seeds)}`,
              color: INIT_COLOR[init],
              points,
              opacity: k === 0 ? 1 : 0.35,
              legend: k === 0,
            });
          }
          if (drawn.length > 0) slots.push(drawn);
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
      const note = faintNote(slots, seeds);
      panels.push(...groupPanels.map((p) => note ? { ...p, note } : p));
    }
  }
  return panels;
}

/** "pretraining seed 1, draw 0" (or "draw 0" in a run of one pretraining seed). */
function modelOf(c: CellPredictions, seeds: boolean): string {
  return seeds ? `pretraining seed ${seedOf(c)}, draw ${c.draw}` : `draw ${c.draw}`;
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
 * The pretraining seed of a MoCo pretraining metrics file as the experiment names them:
 * metrics/pretrain.jsonl is seed 0, metrics/pretrain_s<k>.jsonl seed k; undefined otherwise.
 */
export function pretrainSeedOf(path: string): number | undefined {
  const m = /(?:^|\/)pretrain(?:_s(\d+))?\.jsonl$/.exec(path);
  return m ? Number(m[1] ?? 0) : undefined;
}

/** One color per pretraining seed (Okabe–Ito; seed 0 keeps MoCo-CXR's), cycling after eight. */
const SEED_COLORS = [
  INIT_COLOR.moco,
  "#0072B2",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#999999",
];

/**
 * MoCo pretraining curves: the InfoNCE loss (with a dashed "chance" line at ln(K + 1), K =
 * `queueSize` negatives, when given), pretext-task accuracy, learning rate and the kNN monitor's
 * validation AUC, each when logged. One metrics file: one panel per metric under a heading that
 * names the file. Several (one per pretraining seed): one line per file in each metric's panel,
 * named "Pretraining seed k" in the legend (the file name when it is not the experiment's).
 */
export function pretrainPanels(
  files: Map<string, MetricsRow[]>,
  opts: { queueSize?: number } = {},
): Panel[] {
  const panels: Panel[] = [];
  const K = opts.queueSize;
  // By seed (pretrain_s10 after pretrain_s2), files of other names last.
  const runs = [...files].map(([path, rows]) => ({ path, rows, seed: pretrainSeedOf(path) }))
    .sort((a, b) =>
      (a.seed ?? Infinity) - (b.seed ?? Infinity) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    );
  const several = runs.length > 1;
  const groups = several ? [runs] : runs.map((r) => [r]);
  for (const group of groups) {
    for (
      const [field, label, axis] of [
        ["loss", "InfoNCE loss", "Loss"],
        ["acc", "Pretext-task accuracy", "Accuracy"],
        ["lr", "Learning rate", "Learning rate"],
        ["knn_auc", "kNN monitor AUC (validation)", "AUC"],
        ["val_auc", "Validation AUC", "AUC"],
      ] as const
    ) {
      const series: CurveSeries[] = [];
      group.forEach((r, i) => {
        const points = metricSeries(r.rows, field);
        if (points.length === 0) return;
        series.push({
          name: several ? (r.seed === undefined ? r.path : `Pretraining seed ${r.seed}`) : label,
          color: several ? SEED_COLORS[i % SEED_COLORS.length] : INIT_COLOR.moco,
          points,
          legend: several,
        });
      });
      if (series.length === 0) continue;
      panels.push({
        group: `MoCo pretraining (${group.map((r) => r.path).join(", ")})`,
        title: label,
        xLabel: "Step",
        yLabel: axis,
        series,
        ...(field === "loss" && K && K > 0
          ? { refLines: [{ y: Math.log(K + 1), label: `chance, ln(${K}+1)` }] }
          : {}),
      });
    }
  }
  return panels;
}
