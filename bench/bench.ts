/**
 * `deno task bench [--only conv,matmul,moco] [--no-tf] [--reps-scale 0.5]
 *  [--variant '{"kind":"fat","tm":32,"tn":16}'] [--tune-cache PATH]`
 *
 * `--tune-cache`: the tuner's choices on a GPU, read first and saved as each shape is timed (the
 * task has no write permission: `deno run --allow-write=PATH …` or `-A`, as bench/gpu_check.sh).
 *
 * Runs the registered benchmarks on the default adapter and prints, per row,
 * our time and GFLOP/s, TF.js's WebGPU backend on the same adapter and the
 * speed ratio. To add a benchmark: export a BenchEntry (bench/harness.ts) from
 * its own file and append it to ENTRIES.
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import { type GemmVariant, regValid } from "../kernels/gemm/variants.ts";
import { type BenchEntry, printHeader, rowText } from "./harness.ts";
import { convBench, gpuShapesBench, matmulBench } from "./kernels_bench.ts";
import { loadTuneCache, mocoBench } from "./moco_step.ts";
import { researchBench } from "./research_step.ts";
import { dataBench } from "./data_pipeline.ts";
import { memoryBench } from "./memory.ts";
import { auditBench } from "./dispatch_audit.ts";
import { f16AccBench } from "./f16_accumulate.ts";
import { measurePeak } from "./peak.ts";
import { timingMethod, tunerOf } from "../kernels/tuner.ts";
import { describeRange, inRange, type NumSpec } from "../cli/flags.ts";

const ENTRIES: BenchEntry[] = [
  convBench,
  matmulBench,
  gpuShapesBench,
  mocoBench,
  researchBench,
  dataBench,
  memoryBench,
  auditBench,
  f16AccBench,
];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    "no-tf": { type: "boolean", default: false },
    "reps-scale": { type: "string", default: "1" },
    variant: { type: "string" },
    "tune-cache": { type: "string" },
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
const positive = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
if (
  variant && !(
    (variant.kind === "fat" && positive(variant.tm) && positive(variant.tn)) ||
    (variant.kind === "reg" && [variant.bm, variant.bn, variant.bk, variant.tm, variant.tn]
      .every(positive) &&
      regValid(variant))
  )
) {
  console.error(
    `--variant: a fat tile {"kind":"fat","tm":…,"tn":…} or a valid reg tile ` +
      `{"kind":"reg","bm":…,"bn":…,"bk":…,"tm":…,"tn":…} (gemm/variants.ts regValid), got ${values.variant}`,
  );
  Deno.exit(2);
}

const gpu = await getGpu();
console.log(`adapter: ${gpu.describe()} (${gpu.isSoftware ? "software" : "hardware"})`);
{
  // the compute limits the GEMM tiles are offered within (gemm/variants.ts fitsAdapter)
  const l = gpu.limits, MiB = 2 ** 20;
  console.log(
    `limits: workgroup memory ${l.maxComputeWorkgroupStorageSize / 1024} KiB, ` +
      `${l.maxComputeInvocationsPerWorkgroup} invocations a workgroup, ` +
      `binding ${Math.round(l.maxStorageBufferBindingSize / MiB)} MiB`,
  );
}
if (variant) console.log(`forced variant: ${JSON.stringify(variant)}`);
const tuner = tunerOf(gpu);
if (values["tune-cache"]) await loadTuneCache(gpu, values["tune-cache"]); // saved as timed
console.log(
  `tuner: ${tuner.mode}${values["tune-cache"] ? ` (cache ${values["tune-cache"]})` : ""}`,
);
console.log(`throughput timing: ${timingMethod(gpu)}`);
const t0 = performance.now();
const peak = await measurePeak(gpu, { f16: true });
console.log(
  `peak probe: ${peak.gflops.toFixed(1)} GFLOP/s fp32 FMA (${peak.fmaProbe}), ` +
    `${peak.gbps.toFixed(1)} GB/s copy (${peak.copyProbe}); every probe: ` +
    peak.probes.map(([name, rate]) => `${name} ${rate.toFixed(1)}`).join(", "),
);
if (peak.f16Gflops !== undefined) {
  // not a peak the rows are shares of (the steps' GEMMs accumulate in f32): what f16 arithmetic
  // could gain on this adapter
  console.log(
    `f16 FMA probe: ${peak.f16Gflops.toFixed(1)} GFLOP/s (${peak.f16Probe}), ` +
      `${(peak.f16Gflops / peak.gflops).toFixed(2)}x the fp32 rate`,
  );
}
printHeader();
// the GPU-scale rows take minutes each on a software adapter: there only when named; the f16
// accumulation experiment (bench/f16_accumulate.ts) only when named, anywhere
const selected = ENTRIES.filter((e) =>
  only
    ? only.includes(e.name)
    : e !== f16AccBench && (!gpu.isSoftware || (e !== gpuShapesBench && e !== researchBench))
);
for (const e of selected) {
  await e.run({
    gpu,
    peak,
    opts: { variant, noTf: values["no-tf"], repScale },
    report: (r) => console.log(rowText(r, peak)),
  });
}
console.log(
  `tuning: ${Object.keys(tuner.table).length} shapes timed in ${
    (tuner.tuningMs / 1000).toFixed(1)
  } s`,
);
for (const [key, rec] of Object.entries(tuner.table)) {
  const ms = Object.entries(rec.ms).sort((a, b) => a[1] - b[1]);
  console.log(
    `  ${key}: ${rec.label} (${
      ms.slice(0, 3).map(([l, t]) => `${l} ${t.toFixed(3)}`).join(", ")
    } ms)`,
  );
}
console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
