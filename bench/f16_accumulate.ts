/**
 * What f16 arithmetic would buy in the GEMMs (issue 14's f16 target), measured rather than argued:
 * the same GEMM three ways, each at its fastest GPU tile:
 *   f32       f32 operands, f32 sums (the f32 step);
 *   f16 st.   f16 operands, f32 sums (`--precision f16` today);
 *   f16 acc.  f16 operands, each slab's products summed in f16 and the slab sums in f32
 *             (gemm/skeleton.ts `acc16`: experimental, nothing in training uses it).
 * Shapes: matmul 1024³ and 2048³, and the Winograd F(4×4) forward bmms of a ResNet-18 step at batch
 * 64 (36 transform points × the layer's channels × its tiles, A read transposed as the step does).
 * Each row also gives f16 acc.'s error against f32 sums of the same f16 operands, as a share of
 * the terms' magnitude Σ|a||b| (its rounding bound is 16 · 2⁻¹¹ ≈ 0.8%).
 *
 *   deno task bench --only f16acc     (hardware adapters with shader-f16; named, on lavapipe it
 *                                      runs small shapes, where f16 math is emulated)
 *
 * The f16 FMA probe in `deno task bench`'s header is this bench's ceiling: where it reads ~1× the
 * f32 rate, f16 sums cannot pay; where ~2×, this shows how much of it the GEMMs keep.
 */
import type { Gpu } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
import { bmm } from "../kernels/gemm/matmul.ts";
import {
  type GemmVariant,
  GPU_CANDIDATES,
  SHORT_K,
  SHORT_K_CANDIDATES,
  variantKey,
} from "../kernels/gemm/variants.ts";
import { Rng } from "../util/rng.ts";
import type { BenchEntry } from "./harness.ts";
import { timeThroughput } from "./harness.ts";

/** A batched GEMM C[z] = op(A[z])·B[z]: batch, M, K, N and whether A is read transposed. */
export interface AccShape {
  label: string;
  batch: number;
  m: number;
  k: number;
  n: number;
  transA: boolean;
}

export const GPU_SHAPES: AccShape[] = [
  { label: "matmul 1024^3", batch: 1, m: 1024, k: 1024, n: 1024, transA: false },
  { label: "matmul 2048^3", batch: 1, m: 2048, k: 2048, n: 2048, transA: false },
  // ResNet-18 at 224 px, batch 64: F(4×4) tiles of the 56², 28², 14², 7² maps (14², 7², 4², 2²
  // tiles an image), 36 points; the forward's bmm is U[ξ](o, c) · V[ξ](c, q)
  ...[[64, 196], [128, 49], [256, 16], [512, 4]].map(([c, t]) => ({
    label: `Winograd bmm 36x${c}x${c}x${64 * t}`,
    batch: 36,
    m: c,
    k: c,
    n: 64 * t,
    transA: true,
  })),
];

/** Small shapes for software adapters (the same code paths; f16 math is emulated there). */
export const SMALL_SHAPES: AccShape[] = [
  { label: "matmul 128^3", batch: 1, m: 128, k: 128, n: 128, transA: false },
  { label: "bmm 4x32x32x256", batch: 4, m: 32, k: 32, n: 256, transA: true },
];

/** Rows of the first output matrix the error is measured on. */
const ROWS = 64;

export interface AccRow {
  shape: AccShape;
  /** ms per call at the fastest tile, and that tile, for f32, f16 storage and f16 sums. */
  f32: { ms: number; tile: string };
  f16: { ms: number; tile: string };
  acc16: { ms: number; tile: string };
  /** max |f16 sums − f32 sums| / Σ|a||b| over the first matrix's first 64 rows (f16 operands). */
  error: number;
}

/** The tiles f16 sums can run: GPU tiles without in-workgroup split-K, the one-slab ones too. */
export function accTiles(k: number): GemmVariant[] {
  return [
    ...GPU_CANDIDATES.filter((v) => v.kind !== "reg" || (v.ks ?? 1) === 1),
    ...(
      k <= SHORT_K ? SHORT_K_CANDIDATES : []
    ),
  ];
}

function rand(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform() * 2 - 1);
}

/** Times one shape three ways over `tiles` (fastest of each kept) and measures f16 sums' error. */
export async function accRow(
  gpu: Gpu,
  s: AccShape,
  tiles: GemmVariant[],
  calls: number,
): Promise<AccRow> {
  const aShape = [s.batch, ...(s.transA ? [s.k, s.m] : [s.m, s.k])], bShape = [s.batch, s.k, s.n];
  const a = rand(s.batch * s.m * s.k, 1), b = rand(s.batch * s.k * s.n, 2);
  const a32 = Tensor.from(gpu, a, aShape), b32 = Tensor.from(gpu, b, bShape);
  const a16 = Tensor.from(gpu, a, aShape, "f16"), b16 = Tensor.from(gpu, b, bShape, "f16");
  const best = async (x: Tensor, y: Tensor, accumulate: "f32" | "f16") => {
    let out = { ms: Infinity, tile: "-" };
    for (const [i, variant] of tiles.entries()) {
      const o = { variant, transA: s.transA, accumulate, outDtype: "f32" as const };
      // the first tile settles a card's clock; the rest follow it back to back
      const settle = i === 0 && !gpu.isSoftware;
      const t = await timeThroughput(gpu, () => bmm(x, y, o).dispose(), calls, { settle });
      if (t.ms < out.ms) out = { ms: t.ms, tile: variantKey(variant) };
    }
    return out;
  };
  const f32 = await best(a32, b32, "f32"), f16 = await best(a16, b16, "f32");
  const acc16 = await best(a16, b16, "f16");
  // the error of f16 sums against f32 sums of the same f16 operands, at acc16's fastest tile, on
  // the first ROWS rows of the batch's first matrix (a whole 2048² magnitude in JS takes minutes)
  const variant = tiles.find((v) => variantKey(v) === acc16.tile) ?? tiles[0];
  const o = { variant, transA: s.transA, outDtype: "f32" as const };
  const rows = Math.min(s.m, ROWS), bytes = 4 * rows * s.n;
  const c16 = bmm(a16, b16, { ...o, accumulate: "f16" }), c32 = bmm(a16, b16, o);
  const [got, want] = (await gpu.readMany([
    { buf: c16.buffer, bytes, byteOffset: 0 },
    { buf: c32.buffer, bytes, byteOffset: 0 },
  ])).map((x) => new Float32Array(x));
  c16.dispose();
  c32.dispose();
  // the operands as the GPU holds them: rounded to f16 the way Tensor.from rounds
  const ah = Float32Array.from(new Float16Array(a.subarray(0, s.m * s.k)), Math.abs);
  const bh = Float32Array.from(new Float16Array(b.subarray(0, s.k * s.n)), Math.abs);
  let error = 0;
  for (let i = 0; i < rows; i++) {
    const mag = new Float64Array(s.n);
    for (let k = 0; k < s.k; k++) {
      const av = s.transA ? ah[k * s.m + i] : ah[i * s.k + k];
      for (let j = 0; j < s.n; j++) mag[j] += av * bh[k * s.n + j];
    }
    for (let j = 0; j < s.n; j++) {
      const e = Math.abs(got[i * s.n + j] - want[i * s.n + j]) / (mag[j] + 1e-12);
      error = Math.max(error, e);
    }
  }
  for (const t of [a32, b32, a16, b16]) t.dispose();
  return { shape: s, f32, f16, acc16, error };
}

export const f16AccBench: BenchEntry = {
  name: "f16acc",
  description: "GEMMs in f32, f16 storage and f16 sums (experimental), fastest tile each",
  async run(ctx) {
    const gpu = ctx.gpu;
    if (!gpu.hasF16) {
      console.log("f16acc: this adapter has no shader-f16; skipped");
      return;
    }
    const shapes = gpu.isSoftware ? SMALL_SHAPES : GPU_SHAPES;
    console.log(
      `f16 sums against f32 sums, fastest tile each (ms a call, ${
        gpu.isSoftware ? 1 : 20
      } calls a timing, best of 3):`,
    );
    for (const s of shapes) {
      const r = await accRow(gpu, s, accTiles(s.k), gpu.isSoftware ? 1 : 20);
      const flops = 2 * s.batch * s.m * s.k * s.n;
      const pct = (ms: number) => `${(100 * flops / (ms * 1e6) / ctx.peak.gflops).toFixed(0)}%`;
      console.log(
        `  ${s.label.padEnd(30)} f32 ${r.f32.ms.toFixed(3)} (${pct(r.f32.ms)}, ${r.f32.tile})` +
          `  f16 st. ${r.f16.ms.toFixed(3)} (${r.f16.tile})` +
          `  f16 acc. ${r.acc16.ms.toFixed(3)} (${r.acc16.tile})` +
          `  acc./f32 ${(r.f32.ms / r.acc16.ms).toFixed(2)}x, acc./st. ${
            (r.f16.ms / r.acc16.ms).toFixed(2)
          }x, error ${(100 * r.error).toFixed(3)}% of Σ|ab|`,
      );
    }
  },
};
