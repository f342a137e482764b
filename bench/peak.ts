/**
 * Peak probe: the adapter's fp32 FMA rate and copy bandwidth, measured, since
 * WebGPU reports neither. Every other benchmark row prints its share of these.
 *
 * FMA: each invocation runs `iters` rounds of 8 independent vec4 FMA chains
 * (enough instruction-level parallelism to hide the FMA latency), workgroups
 * of 256, and writes one value so the work cannot be dropped. FLOPs =
 * invocations · iters · 8 · 4 · 2. Copy: a vec4 grid-stride copy; bytes moved =
 * 2 · size (read + write). Both are timed as the difference between a submit
 * of 1 + n dispatches and one of 1 (throughput, without the queue's latency),
 * best of three.
 */
import type { Gpu, Kernel } from "../kernels/device.ts";
import { params } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
import { gridStrideMain, unroll } from "../kernels/wgsl.ts";
import { perCallMs } from "../kernels/tuner.ts";

export interface Peak {
  gflops: number;
  gbps: number;
}

const CHAINS = 8;
const FMA: Kernel = {
  name: "peak_fma",
  code: `struct P { iters: u32, seed: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = p.seed + f32(gid.x) * 1e-7;
${unroll(CHAINS, (c) => `  var a${c} = vec4f(s + ${c}.0, s, s, s);`)}
  let m = vec4f(0.9999, 0.9998, 0.9997, 0.9996);
  let d = vec4f(1e-4, 2e-4, 3e-4, 4e-4);
  for (var i = 0u; i < p.iters; i++) {
${unroll(CHAINS, (c) => `    a${c} = fma(a${c}, m, d);`)}
  }
  let r = ${unroll(CHAINS, (c) => `a${c}`).replaceAll("\n", " + ")};
  if (r.x == 1234.5) { out[gid.x] = r.y + r.z + r.w; }
}`,
};

const COPY: Kernel = {
  name: "peak_copy",
  code: `struct P { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;
${gridStrideMain(256, "p.n", "    dst[i] = src[i];")}`,
};

/**
 * Best ms per dispatch of `record` over three measurements of kernels/tuner.ts `perCallMs` (GPU
 * timestamps where the device has them, else 1 + calls dispatches minus 1: the submit cancels).
 */
async function perCall(gpu: Gpu, record: () => void, calls: number): Promise<number> {
  record();
  await gpu.sync();
  let best = Infinity;
  for (let b = 0; b < 3; b++) best = Math.min(best, await perCallMs(gpu, record, calls));
  return best;
}

/** Measures the adapter's FMA rate (GFLOP/s) and copy bandwidth (GB/s). */
export async function measurePeak(gpu: Gpu): Promise<Peak> {
  const soft = gpu.isSoftware;
  const groups = soft ? 64 : 8192, iters = soft ? 1024 : 4096;
  const out = Tensor.empty(gpu, [groups * 256]);
  const fmaMs = await perCall(
    gpu,
    () => gpu.dispatch(FMA, [out.buffer], params([iters, { f32: 0.5 }]), [groups]),
    soft ? 2 : 20,
  );
  out.dispose();
  const gflops = (groups * 256 * iters * CHAINS * 4 * 2) / (fmaMs * 1e6);

  const floats = soft ? 1 << 22 : 1 << 26; // 16 MiB / 256 MiB
  const src = Tensor.empty(gpu, [floats]), dst = Tensor.empty(gpu, [floats]);
  const items = floats / 4;
  const copyGroups = Math.min(Math.ceil(items / 256), 65535);
  const copyMs = await perCall(
    gpu,
    () => gpu.dispatch(COPY, [src.buffer, dst.buffer], params([items]), [copyGroups]),
    soft ? 2 : 20,
  );
  src.dispose();
  dst.dispose();
  const gbps = (2 * floats * 4) / (copyMs * 1e6);
  return { gflops, gbps };
}
