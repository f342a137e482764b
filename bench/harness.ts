/**
 * Benchmark harness: a registry entry type, a best-of-N timer and the table
 * printer. Each benchmark file exports BenchEntry values; bench/bench.ts lists
 * them and runs the ones `--only` selects.
 */
import type { Gpu } from "../kernels/device.ts";
import type { GemmVariant } from "../kernels/gemm/variants.ts";
import { perCallMs, submitMs } from "../kernels/tuner.ts";

/** The adapter's measured peaks (bench/peak.ts), and the probe kernels that reached them. */
export interface Peak {
  gflops: number;
  gbps: number;
  /** Which FMA and copy probe variants gave the two figures (the fastest of each). */
  fmaProbe: string;
  copyProbe: string;
  /** The f16 FMA rate and its probe, where measured (measurePeak's `f16`). */
  f16Gflops?: number;
  f16Probe?: string;
  /** Every probe's rate: [name, GFLOP/s or GB/s]. */
  probes: Array<[string, number]>;
}

export interface BenchOptions {
  /** Force a tile variant on our GEMM-shaped kernels (tuning experiments). */
  variant?: GemmVariant;
  /** Skip the TF.js reference rows. */
  noTf: boolean;
  /** Scale factor on repetition counts (>= 1 repetition always). */
  repScale: number;
}

export interface Timing {
  /** Best wall time of one call, synchronised, in milliseconds. */
  ms: number;
  reps: number;
  /**
   * Throughput on a hardware adapter: ms per call of the first batch, timed before the card was
   * kept busy (timeThroughput), for comparison with `ms`.
   */
  cold?: number;
}

export interface Row {
  name: string;
  flops: number;
  /** Latency: one call, submitted and waited for. */
  ours: Timing;
  /** Throughput: ms per call of many calls in one submit. */
  thr?: Timing;
  ref?: Timing;
}

export interface BenchContext {
  gpu: Gpu;
  opts: BenchOptions;
  /** The adapter's measured FMA rate and bandwidth (bench/peak.ts). */
  peak: Peak;
  report(row: Row): void;
}

export interface BenchEntry {
  /** Short id for `--only` (e.g. "conv", "matmul", "moco"). */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

/**
 * Best-of-`reps` time of `fn` after one warm-up call (which compiles the
 * pipelines); `sync` waits for the device. Best-of rather than mean: on a
 * shared CPU the minimum is the least disturbed estimate.
 */
export async function timeBest(
  fn: () => void,
  sync: () => Promise<void>,
  reps: number,
): Promise<Timing> {
  fn();
  await sync();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await sync();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, reps };
}

/**
 * How a throughput measurement keeps a hardware card's clock up: GPU time of one settling batch
 * before the timed ones, and of each timed batch at least. A card lowers its clock while it idles
 * (an H200 in session 11: 345 MHz idle, ~200 ms of steady work to reach 1,980 MHz), and a short
 * kernel's 40 calls after a latency test's submit-and-wait rounds are a few ms of work. Training
 * keeps the card busy, so rows are timed at the clock it reaches there. `calls` caps both.
 */
export const SETTLE = { settleMs: 300, batchMs: 25, maxCalls: 4096 };

/** Calls for `ms` of GPU time at `perCall` ms a call, within [least, SETTLE.maxCalls]. */
export const callsFor = (ms: number, perCall: number, least: number): number =>
  Math.max(least, Math.min(SETTLE.maxCalls, Math.ceil(ms / Math.max(perCall, 1e-4))));

/**
 * Throughput: best of `batches` of kernels/tuner.ts's perCallMs (GPU timestamps where the device
 * has them, else the submit difference, whose submit cost cancels), after one call that compiles.
 * With `settle` (the default on a hardware adapter) a first batch of `calls` estimates the rate
 * (reported as `cold`), one batch of ~SETTLE.settleMs of work settles the clock, and each timed
 * batch runs ~SETTLE.batchMs, `calls` at least. Without it, `batches` batches of `calls`: software
 * adapters, which have no clock to settle, and a loop of timings back to back whose first one
 * settled (each costs ~0.3 s more on a card otherwise; bench/f16_accumulate.ts times ~200).
 */
export async function timeThroughput(
  gpu: Gpu,
  fn: () => void,
  calls: number,
  o: { batches?: number; settle?: boolean } = {},
): Promise<Timing> {
  const batches = o.batches ?? 3;
  await submitMs(fn, () => gpu.sync(), 1);
  let n = calls, cold: number | undefined;
  if (o.settle ?? !gpu.isSoftware) {
    cold = await perCallMs(gpu, fn, calls);
    await perCallMs(gpu, fn, callsFor(SETTLE.settleMs, cold, calls));
    n = callsFor(SETTLE.batchMs, cold, calls);
  }
  let best = Infinity;
  for (let b = 0; b < batches; b++) best = Math.min(best, await perCallMs(gpu, fn, n));
  return { ms: best, reps: (n + 2) * batches, ...(cold === undefined ? {} : { cold }) };
}

const gf = (flops: number, t: Timing) => flops / (t.ms * 1e6);

export function printHeader(): void {
  console.log(
    `${"benchmark".padEnd(44)} ${"ours ms".padStart(9)} ${"GFLOP/s".padStart(8)} ` +
      `${"thr ms".padStart(8)} ${"GFLOP/s".padStart(9)} ${"%peak".padStart(6)} ` +
      `${"TF.js ms".padStart(9)} ${"GFLOP/s".padStart(8)} ${"ours/TF".padStart(8)}`,
  );
}

/** A table row: latency, throughput (where measured) with its share of the FMA peak, TF.js. */
export function rowText(r: Row, peak: Peak): string {
  const ours = `${r.ours.ms.toFixed(2).padStart(9)} ${gf(r.flops, r.ours).toFixed(2).padStart(8)}`;
  const best = r.thr && r.thr.ms < r.ours.ms ? r.thr : r.ours;
  const thr = r.thr
    ? `${r.thr.ms.toFixed(3).padStart(8)} ${gf(r.flops, r.thr).toFixed(1).padStart(9)}`
    : `${"-".padStart(8)} ${"-".padStart(9)}`;
  const share = `${(100 * gf(r.flops, best) / peak.gflops).toFixed(1).padStart(5)}%`;
  const ref = r.ref
    ? `${r.ref.ms.toFixed(1).padStart(9)} ${gf(r.flops, r.ref).toFixed(2).padStart(8)} ${
      (r.ref.ms / r.ours.ms).toFixed(2).padStart(7)
    }x`
    : `${"-".padStart(9)} ${"-".padStart(8)} ${"-".padStart(8)}`;
  // a hardware row's first batch, before the clock settled (timeThroughput)
  const cold = r.thr?.cold !== undefined ? `  cold ${r.thr.cold.toFixed(3)}` : "";
  return `${r.name.padEnd(44)} ${ours} ${thr} ${share} ${ref}${cold}`;
}
