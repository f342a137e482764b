/**
 * Tile-shape specializations of the GEMM-shaped kernels (conv forward,
 * grad-input, grad-weight, matmul) and the per-adapter choice among them.
 *
 * Two families of shapes, because CPU rasterizers and GPUs want opposite things:
 * - "fat" (software adapters: lavapipe/llvmpipe): a workgroup of 8 lanes, which
 *   llvmpipe runs as one 8-wide AVX2 vector; each lane owns a TM×TN register
 *   tile (TM rows shared by the workgroup and read uniformly = scalar
 *   broadcast; TN columns interleaved with stride 8 so the 8 lanes gather
 *   neighbouring addresses). No shared memory and no barriers.
 * - "tiled" (hardware GPUs): a WX×WY workgroup computes a (WY·RY)×(WX·RX) tile
 *   from BK-deep shared-memory slabs, each thread an RY×RX register tile.
 * The shape is part of every pipeline key; tests force each variant.
 */
import type { Gpu } from "../device.ts";

export type GemmVariant =
  | { kind: "fat"; tm: number; tn: number }
  | { kind: "tiled"; wx: number; wy: number; rx: number; ry: number; bk: number };

export function variantKey(v: GemmVariant): string {
  return v.kind === "fat"
    ? `fat${v.tm}x${v.tn}`
    : `tiled${v.wy * v.ry}x${v.wx * v.rx}_t${v.ry}x${v.rx}_k${v.bk}`;
}

/** Hardware-GPU default: 64×64 tile, 16×16 threads, 4×4 per thread, BK 16. */
export const TILED_64: GemmVariant = { kind: "tiled", wx: 16, wy: 16, rx: 4, ry: 4, bk: 16 };
/** Smaller tile for small problems on GPUs: 32×32, 8×8 threads, 4×4 per thread, BK 8. */
export const TILED_32: GemmVariant = { kind: "tiled", wx: 8, wy: 8, rx: 4, ry: 4, bk: 8 };

/**
 * Whether WebGPU runs on the OpenGL backend (DENO_WEBGPU_BACKEND=gl). There,
 * naga → GLSL → Mesa compiles the unrolled fat kernels ~13× slower than the
 * Vulkan path (a 32×32 conv kernel: 2 min vs 10 s), so tiles stay smaller.
 */
function onGl(): boolean {
  try {
    return Deno.env.get("DENO_WEBGPU_BACKEND")?.toLowerCase() === "gl";
  } catch {
    return false; // no --allow-env: assume the default (Vulkan) backend
  }
}

/**
 * The largest fat tile side (TM and TN) the default may pick. Hardware GPUs
 * never get a fat tile by default (their compilers also take a minute over the
 * 32×32 body), so tests use a small one there.
 */
export function maxFatTile(gpu: Gpu): number {
  if (!gpu.isSoftware) return 8;
  return onGl() ? 16 : 32;
}

/** The smallest power of two ≥ n, clamped to [lo, hi]. */
function pow2(n: number, lo: number, hi: number): number {
  let p = lo;
  while (p < n && p < hi) p *= 2;
  return p;
}

/**
 * Picks the tile shape for a GEMM with M rows (the uniform side) and `cols`
 * columns (`batch` such GEMMs in one dispatch). Software: TM up to 32 rows
 * (16 on GL; fewer when M is small), TN up to 32 (measured: kernels/KERNELS.md),
 * no wider than the columns need, and shrunk while there are too few
 * workgroups to keep both cores busy. GPUs: the 64×64 tile unless the output
 * is too small to fill the device, then 32×32.
 */
export function chooseVariant(gpu: Gpu, m: number, cols: number, batch = 1): GemmVariant {
  if (gpu.isSoftware) {
    const max = maxFatTile(gpu);
    const tm = pow2(m, 4, max);
    let tn = pow2(Math.ceil(cols / 8), 4, max);
    while (tn > 4 && Math.ceil(cols / (8 * tn)) * Math.ceil(m / tm) * batch < 8) tn /= 2;
    return { kind: "fat", tm, tn };
  }
  return Math.ceil(m / 64) * Math.ceil(cols / 64) * batch >= 64 ? TILED_64 : TILED_32;
}

/** Rows and columns one workgroup of this variant covers. */
export function tileOf(v: GemmVariant): { bm: number; bn: number } {
  return v.kind === "fat" ? { bm: v.tm, bn: 8 * v.tn } : { bm: v.wy * v.ry, bn: v.wx * v.rx };
}
