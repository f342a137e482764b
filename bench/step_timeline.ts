/**
 * The GPU's own timeline of MoCo steps back to back: where the card is busy and where it waits.
 *
 * On an H200 (session 12) the ResNet-18 step's compute passes summed to 26.2 ms by their
 * timestamps, yet steps back to back averaged 44.6–47 ms. This timeline found where: the first three
 * steps took 122, 109 and 76 ms while the card's clock rose from idle, every later one 26.9, with
 * 0.1 ms idle between steps and 0.67 ms between passes inside one. It records `--steps` steps back
 * to back exactly as bench/step_overlap.ts's b2b does (a fresh upload each, one submit a step),
 * with every compute pass timestamped (Gpu.startTimer; Gpu.lastTimeline), and prints per step:
 *
 *   start    GPU ms from the first step's first pass to this step's first pass
 *   span     first pass's beginning to last pass's end
 *   passes   the sum of its passes (the card computing)
 *   inside   span − passes: between its passes (copies, clears, barriers, pass boundaries)
 *   before   the card idle since the previous step's last pass (waiting for this step's submit)
 *   host     host ms to upload and record the step
 *
 * then the largest gaps between consecutive passes, named by the kernels around them, and the wall
 * time a step against the GPU's span a step, and the steady period (bench/timeline.ts).
 *
 *   deno run -A bench/step_timeline.ts [--size 224] [--batch 64] [--steps 12]
 *     [--precision f32|f16] [--tune-cache PATH]
 */
import { MOCO_FLOPS_PER_IMAGE } from "./moco_step.ts";
import { steadyPeriodMs } from "./timeline.ts";
import { stepRig } from "./step_rig.ts";

const rig = await stepRig(12);
const { gpu, B, S, N, steps, precision, upload, record, drop } = rig;
if (!gpu.hasTimestamps) {
  console.log(`adapter: ${gpu.describe()}: no timestamp-query, no timeline`);
  rig.dispose();
  Deno.exit(0);
}
console.log(
  `adapter: ${gpu.describe()}; ResNet-18 MoCo step, ${S} px, batch ${N}, ${precision}, SGD`,
);

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** One back-to-back run; `timed`: every pass timestamped. Returns wall ms a step and host ms. */
async function run(timed: boolean) {
  const hosts = Array.from({ length: steps }, () => rig.inputs());
  await gpu.sync();
  if (timed) gpu.startTimer(2048);
  const host: number[] = [];
  const t0 = performance.now();
  let last = NaN;
  for (let i = 0; i < steps; i++) {
    const h0 = performance.now();
    const u = upload(hosts[i]);
    if (timed) gpu.beginTimed();
    const loss = record(u);
    if (timed) gpu.endTimed();
    host.push(performance.now() - h0);
    if (i === steps - 1) last = (await B.read(loss))[0];
    B.dispose(loss);
    drop(u);
  }
  const wall = (performance.now() - t0) / steps;
  const stretches = timed ? await gpu.stopTimer() : [];
  if (!Number.isFinite(last)) throw new Error(`loss ${last}`);
  return { wall, host, stretches };
}

const plain = await run(false);
const timed = await run(true);
const tl = gpu.lastTimeline;
console.log(
  `back to back, ${steps} steps: ${f1(plain.wall)} ms a step untimed, ${
    f1(timed.wall)
  } ms timed (wall, the last loss read); ${tl.length} timed passes`,
);
console.log("step   start    span  passes  inside  before    host");
let prevEnd = 0;
const spans: number[] = [], sums: number[] = [];
for (let s = 0; s < steps; s++) {
  const ps = tl.filter((p) => p.stretch === s);
  if (ps.length === 0 || timed.stretches[s] === null) {
    console.log(`${String(s).padStart(4)}  (out of query pairs)`);
    continue;
  }
  const begin = ps[0].begin, end = ps[ps.length - 1].end;
  const sum = ps.reduce((a, p) => a + (p.end - p.begin), 0);
  spans.push(end - begin);
  sums.push(sum);
  console.log(
    [s, f1(begin), f2(end - begin), f2(sum), f2(end - begin - sum), f2(s ? begin - prevEnd : 0)]
      .map((x) => String(x).padStart(6)).join("  ") + `  ${f1(timed.host[s]).padStart(6)}`,
  );
  prevEnd = end;
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
const total = tl.length ? tl[tl.length - 1].end - tl[0].begin : 0;
console.log(
  `GPU: ${f2(total / steps)} ms a step first pass to last (wall ${f1(timed.wall)}); span ${
    f2(mean(spans))
  }, passes ${f2(mean(sums))} a step on average; the card computes ${
    f1(100 * mean(sums) * steps / Math.max(total, 1e-9))
  }% of its span`,
);
const steady = steadyPeriodMs(tl, Math.min(3, steps - 1));
console.log(
  `steady (median period a step from step ${Math.min(3, steps - 1)} on): ${f2(steady)} ms, ${
    f1(N / (steady / 1000))
  } img/s, ${f1(MOCO_FLOPS_PER_IMAGE(S) * N / 1e9 / steady)} TFLOP/s`,
);
// the largest gaps between consecutive passes, with the kernels around them
const gaps = tl.slice(1).map((p, i) => ({
  ms: p.begin - tl[i].end,
  at: `${tl[i].label} → ${p.label}`,
  step: p.stretch,
  first: tl[i].stretch !== p.stretch,
}));
const byKind = new Map<string, { n: number; ms: number }>();
for (const g of gaps) {
  const k = (g.first ? "[between steps] " : "") + g.at;
  const e = byKind.get(k) ?? { n: 0, ms: 0 };
  e.n++;
  e.ms += g.ms;
  byKind.set(k, e);
}
console.log(
  "gaps between consecutive passes (all steps), by the kernels around them, largest first:",
);
for (const [k, e] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
  console.log(`  ${f2(e.ms).padStart(8)} ms in ${String(e.n).padStart(3)}  ${k}`);
}
// the longest passes of one step, to see what one pass holds
const mid = Math.min(steps - 1, 4);
const midPasses = tl.filter((p) => p.stretch === mid).map((p) => ({ ...p, ms: p.end - p.begin }));
console.log(`step ${mid}'s ${midPasses.length} passes, longest first (first kernel, ms):`);
console.log(
  "  " + midPasses.sort((a, b) => b.ms - a.ms).slice(0, 12).map((p) => `${p.label} ${f2(p.ms)}`)
    .join("; "),
);
rig.dispose();
