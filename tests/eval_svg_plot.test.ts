/** svg_plot.ts: tick values and their labels; where an inside legend goes. */
import { linePlot, newDocument, type PlotSeries } from "../eval/mod.ts";
import type { El } from "../eval/dom.ts";
import { decimalsFor, niceTicks } from "../eval/svg_plot.ts";
import { assert, assertEquals } from "./helpers.ts";

/** The y ticks of a plot as [label, value at the label's position]. */
function yTicks(lo: number, hi: number, height: number): [string, number][] {
  const doc = newDocument();
  const svg = linePlot(doc, {
    className: "plot",
    title: "t",
    xLabel: "x",
    yLabel: "y",
    height,
    width: 258,
    series: [{ name: "s", color: "#000", points: [{ x: 0, y: lo }, { x: 1, y: hi }] }],
  });
  const frame = svg.querySelectorAll("rect.frame")[0];
  const top = Number(frame.getAttribute("y")), ph = Number(frame.getAttribute("height"));
  const pad = 0.06 * (hi - lo), y0 = lo - pad, y1 = hi + pad; // linePlot's default y domain
  const ticks = Array.from(svg.querySelectorAll("text.tick")).filter((t) =>
    t.getAttribute("text-anchor") === "end"
  );
  return ticks.map((t) => [
    t.textContent ?? "",
    y0 + (1 - (Number(t.getAttribute("y")) - top) / ph) * (y1 - y0),
  ]);
}

Deno.test("linePlot: y tick labels equal their positions (0.426–0.732 once printed 0.6 as 1)", () => {
  for (const height of [160, 220, 300, 500]) {
    const ticks = yTicks(0.426, 0.732, height);
    assert(ticks.length >= 2, `height ${height}: ${JSON.stringify(ticks)}`);
    for (const [label, at] of ticks) {
      assert(Math.abs(Number(label) - at) < 2e-3, `height ${height}: "${label}" drawn at ${at}`);
    }
  }
});

Deno.test("niceTicks: at least 2 ticks for any range; decimals from the step", () => {
  for (const [lo, hi] of [[0.4076, 0.7504], [0.61, 0.69], [1.001, 1.002], [-3, 250]]) {
    for (const n of [3, 4, 5]) {
      const t = niceTicks(lo, hi, n);
      assert(t.length >= 2, `${lo}–${hi}, ${n}: ${t}`);
    }
  }
  assertEquals(decimalsFor(0.2), 1);
  assertEquals(decimalsFor(0.25), 2);
  assertEquals(decimalsFor(5), 0);
  assertEquals(decimalsFor(0.001), 3);
});

Deno.test("linePlot: the plot frame starts right of the widest y tick label (lr axes)", () => {
  const frameX = (lo: number, hi: number) => {
    const svg = linePlot(newDocument(), {
      className: "plot",
      title: "t",
      xLabel: "step",
      yLabel: "learning rate",
      series: [{ name: "s", color: "#000", points: [{ x: 0, y: lo }, { x: 1, y: hi }] }],
    });
    const labels = Array.from(svg.querySelectorAll("text.tick"))
      .filter((t) => t.getAttribute("text-anchor") === "end").map((t) => t.textContent ?? "");
    const x = Number(svg.querySelectorAll("rect.frame")[0].getAttribute("x"));
    return { x, widest: Math.max(...labels.map((l) => l.length)) };
  };
  const lr = frameX(0.00001, 0.0001); // labels such as "0.00010": 7 characters
  assert(lr.widest >= 7, `${lr.widest}`);
  // the rotated y title (centred at x = 13) clears labels 6.3 px a character wide, 6 px off the frame
  assert(lr.x - 6 - 6.3 * lr.widest >= 18, `frame at ${lr.x} for ${lr.widest}-character labels`);
  assertEquals(frameX(0.4, 0.8).x, 54); // short labels keep the usual margin
});

/** The legend box of a plot ([x0, y0, x1, y1] in SVG pixels), or null when it has none. */
function legendBoxOf(svg: El): [number, number, number, number] | null {
  const box = svg.querySelectorAll("rect.legend-box")[0];
  if (!box) return null;
  const [x, y, w, h] = ["x", "y", "width", "height"].map((a) => Number(box.getAttribute(a)));
  return [x, y, x + w, y + h];
}

/**
 * Points along every drawn data line of a plot (its polylines inside the clipped data group),
 * every 0.5 px: a legend box that holds none of them covers no curve.
 */
function curveSamples(svg: El): [number, number][] {
  const out: [number, number][] = [];
  for (const line of Array.from(svg.querySelectorAll("g[clip-path] polyline"))) {
    const pts = (line.getAttribute("points") ?? "").trim().split(/\s+/).map((p) =>
      p.split(",").map(Number) as [number, number]
    );
    out.push(pts[0]);
    for (let i = 1; i < pts.length; i++) {
      const [[ax, ay], [bx, by]] = [pts[i - 1], pts[i]];
      const n = Math.max(1, Math.ceil(2 * Math.hypot(bx - ax, by - ay)));
      for (let k = 1; k <= n; k++) out.push([ax + ((bx - ax) * k) / n, ay + ((by - ay) * k) / n]);
    }
  }
  return out;
}

/** The curve samples inside `box`. */
function covered(svg: El): [number, number][] {
  const box = legendBoxOf(svg);
  if (!box) return [];
  return curveSamples(svg).filter(([x, y]) =>
    x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3]
  );
}

/** An ROC-style plot as the report draws it (258 × 280, unit square, chance diagonal). */
function rocPlot(curves: [number, number][][]): El {
  const colors = ["#6b6b6b", "#0072B2", "#D55E00"];
  const series: PlotSeries[] = curves.map((c, i) => ({
    name: `Init ${i} ${(0.5 + i / 10).toFixed(3)}`,
    color: colors[i % 3],
    width: 1.8,
    points: c.map(([x, y]) => ({ x, y })),
  }));
  return linePlot(newDocument(), {
    className: "plot plot-roc",
    title: "ROC",
    xLabel: "False positive rate",
    yLabel: "True positive rate",
    width: 258,
    height: 280,
    xDomain: [0, 1],
    yDomain: [0, 1],
    diagonal: true,
    legendPosition: "inside",
    series,
  });
}

/** A smooth ROC-like curve through (0,0) and (1,1): y = x^a (a < 1 above chance, > 1 below). */
const power = (a: number): [number, number][] =>
  Array.from({ length: 41 }, (_, i) => [i / 40, (i / 40) ** a]);

Deno.test("linePlot: an inside legend stays in the bottom-right corner when no curve is there", () => {
  const svg = rocPlot([power(0.5), power(0.35), power(0.25)]);
  const box = legendBoxOf(svg);
  assert(box, "no legend box");
  const frame = svg.querySelectorAll("rect.frame")[0];
  const [fx, fy, fw, fh] = ["x", "y", "width", "height"].map((a) => Number(frame.getAttribute(a)));
  // the layout of before: 4 px from the frame's right edge, 2 px above its bottom
  assert(Math.abs(box[2] - (fx + fw - 4)) < 1e-6 && Math.abs(box[3] - (fy + fh - 2)) < 1e-6);
  assertEquals(covered(svg), []);
});

Deno.test("linePlot: an inside legend moves off curves hugging the bottom-right corner", () => {
  // Below-chance ROC curves run through the lower right, where the legend used to sit.
  const svg = rocPlot([power(2), power(3), power(5)]);
  const box = legendBoxOf(svg);
  assert(box, "the top-left corner is free: the legend should stay inside");
  const samples = covered(svg);
  assertEquals(
    samples.length,
    0,
    `legend box ${box} covers ${JSON.stringify(samples.slice(0, 3))}`,
  );
  // Its items lie in the box.
  for (const t of Array.from(svg.querySelectorAll("text.legend"))) {
    const [x, y] = ["x", "y"].map((a) => Number(t.getAttribute(a)));
    assert(x > box[0] && x < box[2] && y > box[1] && y <= box[3], `legend text at ${x},${y}`);
  }
});

Deno.test("linePlot: with no free spot inside, the legend goes above the plot", () => {
  // One curve above chance, one below, one zig-zag: every corner and edge middle is taken.
  const zigzag: [number, number][] = Array.from(
    { length: 21 },
    (_, i) => [i / 20, i % 2 === 0 ? 0.02 : 0.98],
  );
  const svg = rocPlot([power(0.3), power(3.3), zigzag]);
  assertEquals(legendBoxOf(svg), null);
  const frameTop = Number(svg.querySelectorAll("rect.frame")[0].getAttribute("y"));
  const items = Array.from(svg.querySelectorAll("text.legend"));
  assertEquals(items.length, 3);
  for (const t of items) assert(Number(t.getAttribute("y")) < frameTop, "legend text in the plot");
  // The same input draws the same SVG.
  assertEquals(
    rocPlot([power(0.3), power(3.3), zigzag]).toString(),
    svg.toString(),
  );
});
