/**
 * Small static line plots as inline SVG: linear or log x axis, optional shaded CI bands,
 * markers with hover tooltips, a legend row, and reference lines. No scripts, no fonts.
 */
import { type Doc, type El, s } from "./dom.ts";

export interface PlotPoint {
  x: number;
  y: number;
  /** Optional interval drawn as a shaded band (and in the tooltip). */
  lo?: number;
  hi?: number;
  /** Tooltip text; defaults to "name: x, y". */
  tip?: string;
}

export interface PlotSeries {
  name: string;
  color: string;
  points: PlotPoint[];
  dashed?: boolean;
  opacity?: number;
  markers?: boolean;
  /** Shows the series in the legend (default true). */
  legend?: boolean;
  width?: number;
}

export interface Tick {
  value: number;
  label: string;
}

export interface PlotSpec {
  /** CSS class of the <svg>, e.g. "plot plot-roc" (tests and checks count plots by class). */
  className: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  xLog?: boolean;
  xDomain?: [number, number];
  yDomain?: [number, number];
  xTicks?: Tick[];
  yTicks?: Tick[];
  width?: number;
  height?: number;
  /** Draws y = x (ROC chance line). */
  diagonal?: boolean;
  /** Horizontal reference lines, e.g. AUC 0.5. */
  hLines?: number[];
  /** Labelled horizontal reference lines (dashed, the label at the right end); kept in view. */
  refLines?: { y: number; label: string }[];
  /**
   * "top": rows above the plot (default). "inside": a boxed stack inside the plot area at the
   * first free spot (bottom-right, top-left, bottom-left, top-right, then the edges' middles)
   * where it covers no data (lines, markers, bands); above the plot when no spot is free.
   */
  legendPosition?: "top" | "inside";
  /** Prefixes positive y tick labels with "+" (for differences). */
  ySigned?: boolean;
}

/** The 1, 2, 2.5 or 5 × 10^k step `niceTicks` uses for ~`count` ticks over [lo, hi]. */
export function niceStep(lo: number, hi: number, count = 5): number {
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
}

/**
 * ~`count` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]; at least 2 whenever
 * hi > lo (a range narrower than one step gets the step's multiples just outside it, or a finer
 * step).
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  for (let c = count; c <= 8 * count; c *= 2) {
    const out = ticksOf(lo, hi, niceStep(lo, hi, c));
    if (out.length >= 2) return out;
  }
  const step = niceStep(lo, hi, count);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

function ticksOf(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    const v = k * step;
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

/**
 * Decimals needed to print multiples of `step` exactly (0.25 → 2, 0.1 → 1, 5 → 0): from the
 * tick step itself, never from the tick values (a lone tick 0.6 is not printed "1").
 */
export function decimalsFor(step: number): number {
  let d = 0;
  while (d < 6 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6) d++;
  return d;
}

/** The step between `ticks` (their smallest gap), or that of `niceStep` for one tick. */
function stepOf(ticks: number[], lo: number, hi: number, count: number): number {
  let step = Infinity;
  for (let i = 1; i < ticks.length; i++) step = Math.min(step, Math.abs(ticks[i] - ticks[i - 1]));
  return Number.isFinite(step) && step > 0 ? step : niceStep(lo, hi, count);
}

function extent(values: number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - 0.5 * (Math.abs(lo) || 1), hi + 0.5 * (Math.abs(hi) || 1)];
  return [lo, hi];
}

const fmt = (v: number, d = 2) => Number(v.toFixed(d)).toString();

/** The margins, domains, y ticks and coordinate maps of a plot whose legend is on top or not. */
interface Frame {
  W: number;
  H: number;
  M: { l: number; r: number; t: number; b: number };
  pw: number;
  ph: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  yt: Tick[];
  tx: (x: number) => number;
  ty: (y: number) => number;
  /** Top legend: each item's offset from the plot's left edge and its row. */
  slots: { x: number; row: number }[];
}

function frameOf(spec: PlotSpec, legendItems: PlotSeries[], legendTop: boolean): Frame {
  const W = spec.width ?? 460, H = spec.height ?? 300;
  // Top legend: items flow left to right and wrap (text width estimated at 6.3 px per char).
  const itemW = (se: PlotSeries) => 23 + se.name.length * 6.3 + 14;
  const slots: { x: number; row: number }[] = [];
  for (let i = 0, x = 0, row = 0; i < legendItems.length; i++) {
    const w = itemW(legendItems[i]);
    if (x > 0 && x + w > W - 54 - 14) [x, row] = [0, row + 1];
    slots.push({ x, row });
    x += w;
  }
  const legendRows = legendTop && slots.length > 0 ? slots[slots.length - 1].row + 1 : 0;
  const M = { l: 54, r: 14, t: 26 + legendRows * 16, b: 42 };
  const ph = H - M.t - M.b;

  const xs = spec.series.flatMap((se) => se.points.map((p) => p.x)).filter((x) =>
    !spec.xLog || x > 0
  );
  const ys = [
    ...spec.series.flatMap((se) => se.points.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y])),
    ...(spec.refLines ?? []).map((r) => r.y),
  ];
  let [x0, x1] = spec.xDomain ?? extent(xs);
  if (spec.xLog && !spec.xDomain) [x0, x1] = [x0 / 1.6, x1 * 1.6];
  let [y0, y1] = spec.yDomain ?? extent(ys);
  if (!spec.yDomain) {
    const pad = 0.06 * (y1 - y0);
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  const yt = spec.yTicks ?? (() => {
    const n = Math.max(3, Math.round(ph / 45));
    const v = niceTicks(y0, y1, n);
    const d = decimalsFor(stepOf(v, y0, y1, n));
    const sign = (x: number) => (spec.ySigned && x > 0 ? "+" : x < 0 ? "−" : "");
    return v.map((value) => ({ value, label: sign(value) + Math.abs(value).toFixed(d) }));
  })();
  // The y title sits left of the widest tick label (6.3 px a character, as the legend's estimate).
  M.l = Math.max(M.l, 24 + 6.3 * Math.max(0, ...yt.map((t) => t.label.length)));
  const pw = W - M.l - M.r;
  const tx = spec.xLog
    ? (x: number) =>
      M.l + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * pw
    : (x: number) => M.l + ((x - x0) / (x1 - x0)) * pw;
  const ty = (y: number) => M.t + (1 - (y - y0) / (y1 - y0)) * ph;
  return { W, H, M, pw, ph, x0, x1, y0, y1, yt, tx, ty, slots };
}

/** A series' points as drawn: finite y (and x > 0 on a log axis), by increasing x. */
function drawnPoints(spec: PlotSpec, se: PlotSeries): PlotPoint[] {
  return se.points.filter((p) => Number.isFinite(p.y) && (!spec.xLog || p.x > 0))
    .sort((a, b) => a.x - b.x);
}

/** An axis-aligned rectangle in SVG pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Whether the segment a–b touches `r` grown by `pad` on every side (Liang–Barsky clipping). */
function segmentHits(ax: number, ay: number, bx: number, by: number, r: Box, pad: number) {
  const [rx0, ry0, rx1, ry1] = [r.x - pad, r.y - pad, r.x + r.width + pad, r.y + r.height + pad];
  const dx = bx - ax, dy = by - ay;
  let t0 = 0, t1 = 1;
  for (const [p, q] of [[-dx, ax - rx0], [dx, rx1 - ax], [-dy, ay - ry0], [dy, ry1 - ay]]) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const t = q / p;
    if (p < 0) {
      if (t > t1) return false;
      t0 = Math.max(t0, t);
    } else {
      if (t < t0) return false;
      t1 = Math.min(t1, t);
    }
  }
  return t0 <= t1;
}

/** Whether (x, y) lies inside the polygon `poly` (even-odd rule). */
function insidePolygon(x: number, y: number, poly: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * How many drawn data marks — line segments, markers, error bars, CI band edges — touch `box`
 * (each mark grown by half its stroke plus 1 px). Reference lines (the ROC diagonal, hLines) do not
 * count: they are not data.
 */
function dataHits(spec: PlotSpec, f: Frame, box: Box): number {
  let hits = 0;
  const seg = (ax: number, ay: number, bx: number, by: number, pad: number) => {
    if (segmentHits(f.tx(ax), f.ty(ay), f.tx(bx), f.ty(by), box, pad)) hits++;
  };
  for (const se of spec.series) {
    const pts = drawnPoints(spec, se);
    const band = pts.filter((p) => p.lo !== undefined && p.hi !== undefined);
    if (band.length > 1) {
      const poly: [number, number][] = [
        ...band.map((p): [number, number] => [f.tx(p.x), f.ty(p.hi!)]),
        ...[...band].reverse().map((p): [number, number] => [f.tx(p.x), f.ty(p.lo!)]),
      ];
      for (let i = 0; i < poly.length; i++) {
        const [a, b] = [poly[i], poly[(i + 1) % poly.length]];
        if (segmentHits(a[0], a[1], b[0], b[1], box, 1)) hits++;
      }
      const corners: [number, number][] = [[box.x, box.y], [box.x + box.width, box.y + box.height]];
      if (corners.some(([x, y]) => insidePolygon(x, y, poly))) hits++;
    }
    const half = (se.width ?? 2) / 2 + 1;
    if (pts.length > 1) {
      for (let i = 1; i < pts.length; i++) {
        seg(pts[i - 1].x, pts[i - 1].y, pts[i].x, pts[i].y, half);
      }
    }
    if (se.markers || pts.length === 1) {
      for (const p of pts) {
        seg(p.x, p.y, p.x, p.y, 3.2 + 1);
        if (p.lo !== undefined && p.hi !== undefined && band.length <= 1) {
          seg(p.x, p.lo, p.x, p.hi, 2);
        }
      }
    }
  }
  return hits;
}

/**
 * Where an inside legend box of `width` × `height` goes: the first candidate, in the order
 * bottom-right, top-left, bottom-left, top-right, then the middles of the right, bottom, left and
 * top edges, whose box touches no drawn data; null when every candidate touches some (the legend
 * then goes above the plot) or the box does not fit in the plot area.
 */
function insideLegendBox(spec: PlotSpec, f: Frame, width: number, height: number): Box | null {
  const inset = { x: 4, y: 2 };
  if (width > f.pw - 2 * inset.x || height > f.ph - 2 * inset.y) return null;
  const left = f.M.l + inset.x, right = f.M.l + f.pw - inset.x - width;
  const top = f.M.t + inset.y, bottom = f.M.t + f.ph - inset.y - height;
  const midX = f.M.l + (f.pw - width) / 2, midY = f.M.t + (f.ph - height) / 2;
  const candidates: [number, number][] = [
    [right, bottom],
    [left, top],
    [left, bottom],
    [right, top],
    [right, midY],
    [midX, bottom],
    [left, midY],
    [midX, top],
  ];
  for (const [x, y] of candidates) {
    const box = { x, y, width, height };
    if (dataHits(spec, f, box) === 0) return box;
  }
  return null;
}

/** Renders a plot as an <svg> element of `doc`. */
export function linePlot(doc: Doc, spec: PlotSpec): El {
  const legendItems = spec.series.filter((se) => se.legend !== false);
  // Inside legend: a boxed stack, one 16 px row per item (text estimated at 6.4 px a character).
  const textW = Math.max(0, ...legendItems.map((se) => se.name.length)) * 6.4;
  let legendBox: Box | null = null;
  if (spec.legendPosition === "inside" && legendItems.length > 0) {
    legendBox = insideLegendBox(
      spec,
      frameOf(spec, legendItems, false),
      textW + 36,
      legendItems.length * 16 + 4,
    );
  }
  // A top legend unless asked for inside and a free spot was found there.
  const legendTop = legendBox === null;
  const f = frameOf(spec, legendItems, legendTop);
  const { W, H, M, pw, ph, x0, x1, y0, y1, yt, tx, ty, slots } = f;
  const P = (x: number, y: number) => `${tx(x).toFixed(1)},${ty(y).toFixed(1)}`;

  const svg = s(doc, "svg", {
    class: spec.className,
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: "img",
    "aria-label": spec.title,
  });
  svg.appendChild(s(doc, "title", {}, spec.title));
  svg.appendChild(s(doc, "text", { class: "plot-title", x: M.l, y: 16 }, spec.title));

  // Grid and axes.
  const grid = s(doc, "g", { class: "grid" });
  const xt = spec.xTicks ?? (() => {
    if (spec.xLog) {
      const out: Tick[] = [];
      for (let e = Math.ceil(Math.log10(x0)); e <= Math.floor(Math.log10(x1)); e++) {
        out.push({ value: Math.pow(10, e), label: fmt(Math.pow(10, e), Math.max(0, -e)) });
      }
      return out;
    }
    const n = Math.max(3, Math.round(pw / 80));
    const v = niceTicks(x0, x1, n);
    const d = decimalsFor(stepOf(v, x0, x1, n));
    return v.map((value) => ({ value, label: value.toFixed(d) }));
  })();
  for (const t of yt) {
    if (t.value < y0 || t.value > y1) continue;
    const y = ty(t.value).toFixed(1);
    grid.appendChild(s(doc, "line", { x1: M.l, x2: M.l + pw, y1: y, y2: y }));
    svg.appendChild(
      s(doc, "text", { class: "tick", x: M.l - 6, y, "text-anchor": "end", dy: "0.32em" }, t.label),
    );
  }
  for (const t of xt) {
    if (t.value < x0 || t.value > x1) continue;
    const x = tx(t.value).toFixed(1);
    grid.appendChild(s(doc, "line", { x1: x, x2: x, y1: M.t, y2: M.t + ph }));
    svg.appendChild(
      s(doc, "text", { class: "tick", x, y: M.t + ph + 15, "text-anchor": "middle" }, t.label),
    );
  }
  svg.appendChild(grid);
  svg.appendChild(s(doc, "rect", { class: "frame", x: M.l, y: M.t, width: pw, height: ph }));
  svg.appendChild(
    s(
      doc,
      "text",
      { class: "axis-label", x: M.l + pw / 2, y: H - 6, "text-anchor": "middle" },
      spec.xLabel,
    ),
  );
  svg.appendChild(
    s(doc, "text", {
      class: "axis-label",
      transform: `translate(13 ${M.t + ph / 2}) rotate(-90)`,
      "text-anchor": "middle",
    }, spec.yLabel),
  );
  if (spec.diagonal) {
    svg.appendChild(s(doc, "line", { class: "ref", x1: tx(0), y1: ty(0), x2: tx(1), y2: ty(1) }));
  }
  for (const yv of spec.hLines ?? []) {
    if (yv < y0 || yv > y1) continue;
    svg.appendChild(
      s(doc, "line", { class: "ref", x1: M.l, x2: M.l + pw, y1: ty(yv), y2: ty(yv) }),
    );
  }

  for (const r of spec.refLines ?? []) {
    if (r.y < y0 || r.y > y1) continue;
    svg.appendChild(
      s(doc, "line", { class: "ref", x1: M.l, x2: M.l + pw, y1: ty(r.y), y2: ty(r.y) }),
    );
    svg.appendChild(s(doc, "text", {
      class: "ref-label",
      x: M.l + pw - 4,
      y: (ty(r.y) - 4).toFixed(1),
      "text-anchor": "end",
    }, r.label));
  }

  // Data, clipped to the plot area.
  const clipId = `clip-${nextId(doc)}`;
  svg.appendChild(
    s(
      doc,
      "defs",
      {},
      s(doc, "clipPath", { id: clipId }, s(doc, "rect", { x: M.l, y: M.t, width: pw, height: ph })),
    ),
  );
  const data = s(doc, "g", { "clip-path": `url(#${clipId})` });
  for (const se of spec.series) {
    const pts = drawnPoints(spec, se);
    const band = pts.filter((p) => p.lo !== undefined && p.hi !== undefined);
    if (band.length > 1) {
      const poly = [...band.map((p) => P(p.x, p.hi!)), ...band.reverse().map((p) => P(p.x, p.lo!))];
      data.appendChild(
        s(doc, "polygon", { class: "band", points: poly.join(" "), fill: se.color }),
      );
    }
    if (pts.length > 1) {
      data.appendChild(s(doc, "polyline", {
        class: "line",
        points: pts.map((p) => P(p.x, p.y)).join(" "),
        stroke: se.color,
        "stroke-width": se.width ?? 2,
        "stroke-dasharray": se.dashed ? "5 3" : null,
        opacity: se.opacity ?? null,
      }));
    }
    if (se.markers || pts.length === 1) {
      for (const p of pts) {
        const tip = p.tip ?? `${se.name}: ${fmt(p.x, 4)}, ${fmt(p.y, 3)}`;
        if (p.lo !== undefined && p.hi !== undefined && band.length <= 1) {
          data.appendChild(s(doc, "line", {
            class: "errbar",
            x1: tx(p.x),
            x2: tx(p.x),
            y1: ty(p.lo),
            y2: ty(p.hi),
            stroke: se.color,
          }));
        }
        data.appendChild(
          s(doc, "circle", {
            cx: tx(p.x).toFixed(1),
            cy: ty(p.y).toFixed(1),
            r: 3.2,
            fill: se.color,
          }, s(doc, "title", {}, tip)),
        );
      }
    }
  }
  svg.appendChild(data);

  // Legend: rows above the plot area, or a boxed stack at the free spot found inside it.
  if (legendBox) {
    svg.appendChild(s(doc, "rect", {
      class: "legend-box",
      x: legendBox.x,
      y: legendBox.y,
      width: legendBox.width,
      height: legendBox.height,
    }));
  }
  legendItems.forEach((se, i) => {
    const [lx, ly] = legendBox
      ? [legendBox.x + 6, legendBox.y + 14 + i * 16]
      : [M.l + slots[i].x, 32 + slots[i].row * 16];
    svg.appendChild(s(doc, "line", {
      class: "line",
      x1: lx,
      x2: lx + 18,
      y1: ly - 4,
      y2: ly - 4,
      stroke: se.color,
      "stroke-width": se.width ?? 2,
      "stroke-dasharray": se.dashed ? "5 3" : null,
    }));
    svg.appendChild(s(doc, "text", { class: "legend", x: lx + 23, y: ly }, se.name));
  });
  return svg;
}

const idCounters = new WeakMap<Doc, number>();

/** Ids unique within one document (several plots each need their own clipPath). */
function nextId(doc: Doc): number {
  const n = (idCounters.get(doc) ?? 0) + 1;
  idCounters.set(doc, n);
  return n;
}
