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
 * - "reg" (hardware GPUs): a workgroup computes a BM×BN tile from BK-deep
 *   shared-memory slabs, each thread a TM×TN register tile of vec4s (gemm/skeleton.ts).
 *   (Earlier sessions also had "tiled", a scalar shared-memory tile; on an H200 it never came
 *   within 5% of the fastest candidate for any of 293 shapes, and session 12 removed it.)
 * The shape is part of every pipeline key; tests force each variant.
 */
import type { Gpu } from "../device.ts";
import type { Candidate } from "../tuner.ts";

export type GemmVariant =
  | { kind: "fat"; tm: number; tn: number }
  | {
    kind: "reg";
    bm: number;
    bn: number;
    bk: number;
    tm: number;
    tn: number;
    /** Two shared-memory slabs: one barrier a step instead of two (gemm/skeleton.ts). */
    db?: boolean;
    /**
     * In-workgroup split-K (2 or 4): that many thread groups each take every ks-th slab and their
     * tiles are summed in shared memory at the end (gemm/skeleton.ts); more threads for a small
     * output without split-K's second pass.
     */
    ks?: number;
  };

export function variantKey(v: GemmVariant): string {
  switch (v.kind) {
    case "fat":
      return `fat${v.tm}x${v.tn}`;
    case "reg":
      return `reg${v.bm}x${v.bn}_t${v.tm}x${v.tn}_k${v.bk}${v.db ? "_db" : ""}${
        v.ks && v.ks > 1 ? `_ks${v.ks}` : ""
      }`;
  }
}

/**
 * A reg variant: BM×BN tile, BK-deep slabs, TM×TN outputs a thread (multiples of 4); `db`: two
 * shared-memory slabs (double buffering).
 */
export const reg = (
  bm: number,
  bn: number,
  bk: number,
  tm: number,
  tn: number,
  db = false,
  ks = 1,
): GemmVariant => ({
  kind: "reg",
  bm,
  bn,
  bk,
  tm,
  tn,
  ...(db ? { db } : {}),
  ...(ks > 1 ? { ks } : {}),
});

/**
 * The hardware-GPU tile shapes the tuner times (kernels/tuner.ts): large tiles
 * with 8×8 per thread for big GEMMs and smaller ones that still fill a GPU with
 * many SMs when the output is small.
 */
export const GPU_CANDIDATES: GemmVariant[] = [
  reg(128, 128, 8, 8, 8),
  reg(128, 128, 16, 8, 8),
  reg(128, 64, 8, 8, 4),
  reg(64, 128, 8, 4, 8),
  reg(64, 64, 8, 4, 4),
  reg(64, 64, 16, 8, 8),
  reg(32, 64, 16, 4, 4),
  reg(32, 32, 16, 4, 4),
  // double-buffered shared memory (32 KiB of slabs; session 8): on an H200 (session 12) the
  // fastest for 4 of 293 shapes (strided convs), within 5% of it for 11; its 64×64 sibling never
  // the fastest and within 5% for 4, so it went
  reg(128, 128, 16, 8, 8, true),
  // session 12, with vec4 fetches: 8×8 a thread in half-size tiles (128 threads: more workgroups
  // resident per SM, twice the tiles for mid-size outputs) and 32-deep slabs (half the barriers)
  reg(128, 64, 16, 8, 8),
  reg(64, 128, 16, 8, 8),
  reg(128, 128, 32, 8, 8),
  // session 12, for outputs too small to fill a GPU (matmul 1024³ at 42% of an H200's peak, its
  // split-K pass included): 4 groups of threads splitting K inside the workgroup (256 threads a
  // 64×64 tile, 8×8 each; 256 a 32×32 tile, 4×4 each). Not yet timed on a card.
  reg(64, 64, 16, 8, 8, false, 4),
  reg(32, 32, 16, 4, 4, false, 4),
];

/**
 * Tiles whose one slab holds a short inner dimension whole, offered (tileCandidates) where K ≤
 * SHORT_K: Winograd's bmms at 56² multiply 64×64 blocks over K = 64 channels (36 of them, 12,544
 * columns), where a 16-deep slab loop runs 4 rounds of fetch, barrier and 16 FMAs a thread; on an
 * H200 (session 12) every candidate took 0.19–0.21 ms there against ~0.06 for its bytes and FMAs.
 * One 64-deep slab issues all of a tile's loads at once. Not yet timed on a card.
 */
export const SHORT_K_CANDIDATES: GemmVariant[] = [reg(64, 64, 64, 4, 4), reg(32, 64, 64, 4, 4)];
/** Inner dimensions up to this get SHORT_K_CANDIDATES. */
export const SHORT_K = 256;

/**
 * The GPU candidates a test run forces: all of them, except under the OpenGL
 * backend (a software adapter that never runs them), where Mesa's GL compiler
 * takes 1–25 s per reg pipeline; there one small shape keeps the skeleton
 * covered on that backend. CI runs every kernel test on Vulkan as well.
 */
export function testedGpuCandidates(): GemmVariant[] {
  return onGl() ? [reg(64, 64, 8, 4, 4)] : [...GPU_CANDIDATES, ...SHORT_K_CANDIDATES];
}

type RegVariant = Extract<GemmVariant, { kind: "reg" }>;

/** Invocations a reg tile's workgroup runs: one a TM×TN register tile, times its K groups. */
export const regThreads = (v: RegVariant): number => (v.bm / v.tm) * (v.bn / v.tn) * (v.ks ?? 1);

/**
 * Workgroup memory a reg tile's slabs take, in bytes: BM×BK of A and BK×BN of B, f32, once per
 * buffer (db) or K group (ks). The acc16 experiment's f16 slabs take half.
 */
export const regSharedBytes = (v: RegVariant): number =>
  (v.db ? 2 : v.ks ?? 1) * (v.bm + v.bn) * v.bk * 4;

/**
 * Whether this adapter's device can run the tile: its invocations and workgroup memory within the
 * device's compute limits. WebGPU guarantees 256 invocations and 16 KiB; the 24–32 KiB tiles (two
 * slabs, 32-deep or one 64-deep slab, four K groups) need more, which lavapipe (32 KiB) and
 * desktop GPUs' drivers commonly give and some mobile GPUs do not (`deno task bench` prints the
 * adapter's). Fat tiles are 8 lanes, no memory.
 */
export function fitsAdapter(gpu: Gpu, v: GemmVariant): boolean {
  if (v.kind !== "reg") return true;
  const l = gpu.limits, t = regThreads(v);
  return t <= l.maxComputeInvocationsPerWorkgroup && t <= l.maxComputeWorkgroupSizeX &&
    regSharedBytes(v) <= l.maxComputeWorkgroupStorageSize;
}

/** Whether a reg variant's shape is valid (tile divisible, ≤ 256 threads). */
export function regValid(v: RegVariant): boolean {
  const ks = v.ks ?? 1;
  const threads = regThreads(v);
  // in-workgroup split-K: 2 or 4 groups, single-buffered, each slab store big enough for a tile
  const ksOk = ks === 1 ||
    ((ks === 2 || ks === 4) && !v.db && ks * v.bk >= v.bm && ks * v.bk >= v.bn);
  return v.tm % 4 === 0 && v.tn % 4 === 0 && v.bm % v.tm === 0 && v.bn % v.tn === 0 &&
    v.bk % 4 === 0 && threads >= 1 && threads <= 256 && ksOk;
}

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
  // the tuner's prior: the largest tile that still gives ~2 workgroups per SM of a large GPU
  // (each within WebGPU's guaranteed limits, 256 invocations and 16 KiB: fitsAdapter)
  const tiles = (bm: number, bn: number) => Math.ceil(m / bm) * Math.ceil(cols / bn) * batch;
  if (tiles(128, 128) >= 256) return GPU_CANDIDATES[0];
  if (tiles(64, 64) >= 256) return reg(64, 64, 8, 4, 4);
  return reg(32, 32, 16, 4, 4);
}

/** Rows and columns one workgroup of this variant covers. */
export function tileOf(v: GemmVariant): { bm: number; bn: number } {
  switch (v.kind) {
    case "fat":
      return { bm: v.tm, bn: 8 * v.tn };
    case "reg":
      return { bm: v.bm, bn: v.bn };
  }
}

/** A GEMM tile choice as the tuner hands it to an entry point (`window: false`: no windows). */
export interface TileChoice {
  variant?: GemmVariant;
  window?: false;
}

/**
 * The tuner's candidates for one GEMM-shaped call, the prior first. Hardware:
 * the prior tile, every GPU candidate, the short-K tiles where the inner
 * dimension `k` is at most SHORT_K. Software:
 * the cost model's choice ({}: windows or fat) and the same fat tile without windows.
 */
export function tileCandidates(
  gpu: Gpu,
  prior: GemmVariant,
  k = Infinity,
): Candidate<TileChoice>[] {
  if (gpu.isSoftware) {
    return [
      { label: "auto", choice: {} },
      { label: variantKey(prior), choice: { variant: prior, window: false } },
    ];
  }
  const out: Candidate<TileChoice>[] = [];
  const shortK = k <= SHORT_K ? SHORT_K_CANDIDATES : [];
  for (const v of [prior, ...GPU_CANDIDATES, ...shortK]) {
    if (!fitsAdapter(gpu, v)) continue;
    const label = variantKey(v);
    if (!out.some((c) => c.label === label)) out.push({ label, choice: { variant: v } });
  }
  return out;
}

/** Outputs of fewer invocations than this get split-K candidates (see splitKCandidates). */
const SPLIT_BELOW_THREADS = 256 * 256;

/** A GEMM choice with a split-K count (matmul only; see MatmulGpuOptions.splitK). */
export interface SplitChoice extends TileChoice {
  splitK?: number;
}

/**
 * Split-K candidates for a hardware GPU: the large tiles with the k range in 2, 4, … 32 slices
 * (each ≥ 256 deep, ≤ 2,048 workgroups in all), where the output alone (all batch entries) gives
 * fewer than SPLIT_BELOW_THREADS invocations, ~2 workgroups of 256 per SM of a large GPU, and K
 * is long enough to split (Winograd's grad-weight bmm at 56²: 16 entries of 64×64 outputs over
 * 50,176 tiles). Counted in invocations, not workgroups, since session 11: the 64×64 tile has 64
 * a workgroup, so matmul 1024³'s 256 such tiles (16,384 invocations) now get split candidates too;
 * on an H200 that shape ran at 23% of the FMA peak, split four ways on 128×128 tiles, then (session
 * 12, with these candidates) at 39%. Since session 12 the 128×64 tile (128 threads) splits too.
 */
export function splitKCandidates(
  gpu: Gpu,
  m: number,
  n: number,
  k: number,
  batch = 1,
): Candidate<SplitChoice>[] {
  if (gpu.isSoftware || k < 256) return [];
  const out: Candidate<SplitChoice>[] = [];
  // the two tiles and their invocations a workgroup ((bm / tm) · (bn / tn))
  for (
    const [v, threads] of [
      [reg(128, 128, 16, 8, 8), 256],
      [reg(128, 64, 16, 8, 8), 128],
      [reg(64, 64, 16, 8, 8), 64],
    ] as const
  ) {
    const { bm, bn } = tileOf(v);
    const tiles = Math.ceil(m / bm) * Math.ceil(n / bn) * batch;
    if (tiles * threads >= SPLIT_BELOW_THREADS || !fitsAdapter(gpu, v)) continue;
    // up to ~2,048 workgroups, each slice at least 256 deep
    for (let s = 2; s <= 32 && k / s >= 256 && tiles * s <= 2048; s *= 2) {
      out.push({ label: `${variantKey(v)}/split${s}`, choice: { variant: v, splitK: s } });
    }
  }
  return out;
}
