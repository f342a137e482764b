/**
 * Peak probe: the adapter's fp32 FMA rate and copy bandwidth, measured, since
 * WebGPU reports neither. Every other benchmark row prints its share of these.
 *
 * Each figure is the fastest of a few probe kernels, because what a probe
 * measures is partly its own overhead: on the H200 (session 6) the one
 * FMA kernel of the time read 41.1 TFLOP/s while cuBLAS's SGEMM ran at 51.4,
 * and the one copy kernel 778 GB/s of a ~4.8 TB/s card.
 *
 * FMA: each invocation runs rounds of `chains` independent vec4 FMA chains
 * (enough instruction-level parallelism to hide the FMA latency), `unrollBy`
 * rounds per loop iteration (so the loop's counter, compare and branch, and
 * any bound check the shader compiler adds, are spread over more FMAs),
 * workgroups of 256, and writes one value so the work cannot be dropped.
 * FLOPs = invocations · rounds · chains · 4 · 2. The same probes in f16 arithmetic (`f16`,
 * which bench/bench.ts asks where the adapter has shader-f16) tell what f16 math could gain.
 * Copy: a grid-stride loop of vec4 loads and stores, with grids giving each
 * invocation 1, 4 or 16 vec4s; bytes moved = 2 · size.
 * Both timed per call over many calls in one submit (bench/harness.ts
 * timeThroughput: GPU timestamps where the device has them), best of three.
 */
import type { Gpu, Kernel } from "../kernels/device.ts";
import { params } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
import { gridStrideMain, unroll } from "../kernels/wgsl.ts";
import { type Peak, timeThroughput } from "./harness.ts";

/**
 * An FMA probe: `chains` vec4 chains, `unrollBy` rounds of them per loop iteration, in f32 or
 * (where the adapter has shader-f16) f16 arithmetic: what f16 math could gain over f32 on this
 * adapter, if its compiler packs f16 pairs (two FMAs an instruction on NVIDIA since Pascal).
 */
export function fmaKernel(chains: number, unrollBy: number, dtype: "f32" | "f16" = "f32"): Kernel {
  const round = unroll(chains, (c) => `    a${c} = fma(a${c}, m, d);`);
  const V = dtype === "f16" ? "vec4<f16>" : "vec4f";
  // f16 steps near 1 are 2^-10: m stays below 1 there too, so no chain folds into an add
  const m = dtype === "f16" ? "0.998, 0.997, 0.996, 0.995" : "0.9999, 0.9998, 0.9997, 0.9996";
  return {
    name: `peak_fma:${dtype === "f16" ? "f16:" : ""}${chains}x${unrollBy}`,
    code: `${
      dtype === "f16" ? "enable f16;\n" : ""
    }struct P { iters: u32, seed: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = p.seed + f32(gid.x) * 1e-7;
${unroll(chains, (c) => `  var a${c} = ${V}(vec4f(s + ${c}.0, s, s, s));`)}
  let m = ${V}(${m});
  let d = ${V}(1e-4, 2e-4, 3e-4, 4e-4);
  for (var i = 0u; i < p.iters; i++) {
${Array.from({ length: unrollBy }, () => round).join("\n")}
  }
  let r = vec4f(${unroll(chains, (c) => `a${c}`).replaceAll("\n", " + ")});
  if (r.x == 1234.5) { out[gid.x] = r.y + r.z + r.w; }
}`,
  };
}

/**
 * The copy probe: invocation i of G copies vec4s i, i + G·256, … (a grid-stride loop), so each
 * of a warp's loads and stores is one contiguous line; the grid sets how many vec4s an invocation
 * copies.
 */
const COPY: Kernel = {
  name: "peak_copy",
  code: `struct P { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;
${gridStrideMain(256, "p.n", "    dst[i] = src[i];")}`,
};

/** FMA probes: 8 chains a round as in session 6, then its loop unrolled ×4 and ×8. */
export const FMA_PROBES: Array<[number, number]> = [[8, 1], [8, 4], [8, 8]];
/** Copy probes: vec4s an invocation (the grid is floats / 4 / per / 256 workgroups, ≤ 65,535). */
export const COPY_PROBES = [1, 4, 16];

/** The fastest of several probes: its rate and its label. */
export function fastest(rates: Array<[string, number]>): [string, number] {
  return rates.reduce((a, b) => (b[1] > a[1] ? b : a));
}

/**
 * Measures the adapter's FMA rate (GFLOP/s) and copy bandwidth (GB/s); with `f16` and an adapter
 * with shader-f16, also its f16 FMA rate (not a peak any row is a share of: the steps' GEMMs
 * accumulate in f32).
 */
export async function measurePeak(gpu: Gpu, o: { f16?: boolean } = {}): Promise<Peak> {
  const soft = gpu.isSoftware;
  const groups = soft ? 64 : 8192, iters = soft ? 1024 : 4096;
  const out = Tensor.empty(gpu, [groups * 256]);
  const fmaRates = async (dtype: "f32" | "f16") => {
    const rates: Array<[string, number]> = [];
    for (const [chains, by] of FMA_PROBES) {
      // the same FMAs a call whatever the unroll: iters / by loop iterations of `by` rounds
      const k = fmaKernel(chains, by, dtype);
      // the first probe settles a card's clock (bench/harness.ts); the rest follow back to back
      const { ms } = await timeThroughput(
        gpu,
        () => gpu.dispatch(k, [out.buffer], params([iters / by, { f32: 0.5 }]), [groups]),
        soft ? 2 : 20,
        { settle: !soft && dtype === "f32" && rates.length === 0 },
      );
      rates.push([k.name, (groups * 256 * iters * chains * 4 * 2) / (ms * 1e6)]);
    }
    return rates;
  };
  const fma = await fmaRates("f32");
  const fma16 = o.f16 && gpu.hasF16 ? await fmaRates("f16") : [];
  out.dispose();

  const floats = soft ? 1 << 22 : 1 << 26; // 16 MiB / 256 MiB
  const src = Tensor.empty(gpu, [floats]), dst = Tensor.empty(gpu, [floats]);
  const copy: Array<[string, number]> = [];
  for (const per of COPY_PROBES) {
    const items = floats / 4, groups = Math.min(Math.ceil(items / per / 256), 65535);
    const { ms } = await timeThroughput(
      gpu,
      () => gpu.dispatch(COPY, [src.buffer, dst.buffer], params([items]), [groups]),
      soft ? 2 : 20,
      { settle: false },
    );
    copy.push([`${COPY.name}:${per}`, (2 * floats * 4) / (ms * 1e6)]);
  }
  src.dispose();
  dst.dispose();
  const [fmaProbe, gflops] = fastest(fma), [copyProbe, gbps] = fastest(copy);
  const f16 = fma16.length ? fastest(fma16) : null;
  return {
    gflops,
    gbps,
    fmaProbe,
    copyProbe,
    ...(f16 ? { f16Gflops: f16[1], f16Probe: f16[0] } : {}),
    probes: [...fma, ...fma16, ...copy],
  };
}
