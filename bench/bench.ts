/**
 * `deno task bench [--only conv,matmul,moco] [--no-tf] [--reps-scale 0.5]
 *  [--variant '{"kind":"fat","tm":32,"tn":16}']`
 *
 * Runs the registered benchmarks on the default adapter and prints, per row,
 * our time and GFLOP/s, TF.js's WebGPU backend on the same adapter and the
 * speed ratio. To add a benchmark: export a BenchEntry (bench/harness.ts) from
 * its own file and append it to ENTRIES.
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import type { GemmVariant } from "../kernels/tuning.ts";
import { type BenchEntry, printHeader, printRow } from "./harness.ts";
import { convBench, matmulBench } from "./kernels_bench.ts";
import { mocoBench } from "./moco_step.ts";
import { describeRange, inRange, type NumSpec } from "../util/flags.ts";

const ENTRIES: BenchEntry[] = [convBench, matmulBench, mocoBench];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    "no-tf": { type: "boolean", default: false },
    "reps-scale": { type: "string", default: "1" },
    variant: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log("benchmarks:");
  for (const e of ENTRIES) console.log(`  ${e.name.padEnd(10)} ${e.description}`);
  Deno.exit(0);
}

const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
const unknown = only?.filter((n) => !ENTRIES.some((e) => e.name === n)) ?? [];
if (unknown.length) {
  console.error(`unknown benchmark(s) ${unknown.join(", ")}; known: ${ENTRIES.map((e) => e.name)}`);
  Deno.exit(2);
}
const REPS_SCALE: NumSpec = { min: 0, max: 100, above: true };
const repScale = Number(values["reps-scale"]);
if (!(values["reps-scale"].trim() !== "" && inRange(repScale, REPS_SCALE))) {
  console.error(`--reps-scale must be ${describeRange(REPS_SCALE)}, got "${values["reps-scale"]}"`);
  Deno.exit(2);
}
let variant: GemmVariant | undefined;
try {
  variant = values.variant ? JSON.parse(values.variant) as GemmVariant : undefined;
} catch (e) {
  console.error(
    `--variant must be JSON, e.g. '{"kind":"fat","tm":32,"tn":16}': ${(e as Error).message}`,
  );
  Deno.exit(2);
}

const gpu = await getGpu();
console.log(`adapter: ${gpu.describe()} (${gpu.isSoftware ? "software" : "hardware"})`);
if (variant) console.log(`forced variant: ${JSON.stringify(variant)}`);
printHeader();
const t0 = performance.now();
for (const e of ENTRIES) {
  if (only && !only.includes(e.name)) continue;
  await e.run({ gpu, opts: { variant, noTf: values["no-tf"], repScale }, report: printRow });
}
console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
