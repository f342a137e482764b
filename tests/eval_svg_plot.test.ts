/** svg_plot.ts: tick values and their labels. */
import { linePlot, newDocument } from "../eval/mod.ts";
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
