/** CSS, plot sizes and colours of the report. */
import type { Protocol } from "../results.ts";

export const CSS = `
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
svg.plot .ref-label { font-size: 10.5px; fill: #57606a; }
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
p.note { color: var(--muted); font-size: 12.5px; max-width: 100ch; }
ul.below-chance { font-size: 13px; margin: 6px 0; }
table.results thead th .ci { white-space: normal; max-width: 17ch; margin: 0 auto; font-weight: 400; }
.ci.chance { color: #a40e26; font-weight: 600; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
@media print { body { background: #fff; } main { box-shadow: none; margin: 0; } }
`;

export const PLOT_W = 350, PLOT_H = 300; // three plots per row

export const PROTOCOL_COLOR: Record<Protocol, string> = { linear: "#009E73", e2e: "#CC79A7" };
