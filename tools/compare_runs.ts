/**
 * Developer tool: two run folders of the same grid (same splits, subsets and backbones, e.g. the
 * same experiment before and after a change of protocol), compared cell by cell. Per (init,
 * protocol, fraction): mean test AUC of each over draws, and the paired difference B − A on the
 * same test images and subsets (eval/paired.ts: bootstrap CI over test images, DeLong p; draw_sd
 * is the spread over draws), and the CI that also counts which label subsets were drawn
 * (eval/seeds.ts with each draw as a "seed": se² = the draws' part, net of the test-image noise
 * their spread holds, plus se_test²; Welch–Satterthwaite t).
 * The first CI alone is too narrow for a claim about the protocol: at 1% labels, 20 draws of
 * sd 0.05 move the mean by ±0.025 (session 7). Prints a Markdown table.
 *
 *   deno run --allow-read tools/compare_runs.ts RUN_A RUN_B [--replicates 1000]
 */
import { parseArgs } from "node:util";
import { readRunPredictions } from "../eval/run_files.ts";
import { pairedDifference } from "../eval/paired.ts";
import { seedDifference } from "../eval/seeds.ts";
import { auc } from "../eval/auc.ts";
import { formatFraction, INITS } from "../eval/results.ts";
import type { CellPredictions } from "../eval/results.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { replicates: { type: "string" } },
});
if (positionals.length !== 2) {
  console.error("usage: tools/compare_runs.ts RUN_A RUN_B [--replicates N]");
  Deno.exit(2);
}
const [a, b] = await Promise.all(positionals.map(readRunPredictions));
const key = (c: CellPredictions) =>
  JSON.stringify([c.backbone, c.task, c.protocol, c.init, c.fraction, c.draw]);
const inB = new Map(b.map((c) => [key(c), c]));
const groups = new Map<string, [CellPredictions, CellPredictions][]>();
for (const c of a) {
  const other = inB.get(key(c));
  if (!other) continue;
  const g = JSON.stringify([c.backbone, c.task, c.protocol, c.init, c.fraction]);
  if (!groups.has(g)) groups.set(g, []);
  groups.get(g)!.push([c, other]);
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const f3 = (x: number) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(3);
console.log(`A = ${positionals[0]}, B = ${positionals[1]}\n`);
console.log(
  "| protocol | init | labels | draws | A | B | B − A [95% CI, test images] | p | sd over draws " +
    "| 95% CI, draws and test images |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
const order = [...groups.entries()].sort(([x], [y]) => {
  const [, , px, ix, fx] = JSON.parse(x), [, , py, iy, fy] = JSON.parse(y);
  return px.localeCompare(py) || INITS.indexOf(ix) - INITS.indexOf(iy) || fx - fy;
});
for (const [g, pairs] of order) {
  const [, , protocol, init, fraction] = JSON.parse(g);
  for (const [x, y] of pairs) {
    if (
      x.labels.length !== y.labels.length ||
      Array.from(x.labels).some((l, i) => l !== y.labels[i])
    ) {
      throw new Error(`${g} draw ${x.draw}: the two runs have different test sets`);
    }
  }
  const drawPairs = pairs.map(([x, y]) => ({
    labels: x.labels,
    scoresA: y.scores,
    scoresB: x.scores,
    draw: x.draw,
  }));
  const replicates = Number(values.replicates ?? 1000);
  const d = pairedDifference(drawPairs, { replicates, seed: 0 });
  const both = drawPairs.length > 1
    ? seedDifference(drawPairs.map((p, k) => ({ seed: k, pairs: [p] })), { replicates, seed: 0 })
    : null;
  const aucA = mean(pairs.map(([x]) => auc(x.labels, x.scores)));
  const aucB = mean(pairs.map(([, y]) => auc(y.labels, y.scores)));
  console.log(
    `| ${protocol} | ${init} | ${formatFraction(fraction)} | ${pairs.length} | ${
      aucA.toFixed(3)
    } | ${aucB.toFixed(3)} | ${f3(d.diff)} [${f3(d.ci[0])}, ${f3(d.ci[1])}] | ${
      d.p.toPrecision(2)
    } | ${d.draw_sd.toFixed(3)} | ${both ? `[${f3(both.ci[0])}, ${f3(both.ci[1])}]` : ""} |`,
  );
}
