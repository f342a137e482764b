/**
 * Planning of the windowed GEMM (gemm/windows.ts): the panel layout of a plan,
 * the cost model that decides per GEMM between uniform windows and the fat
 * storage kernel (constants measured on this project's 2-core VM with
 * lavapipe, kernels/KERNELS.md session 5), and forced plans for tests.
 *
 * A uniform binding holds at most 16,384 floats, so the operands are laid out
 * in panels that fit one window each (zero outside the matrix):
 *   A panel (j, z, rb) = A[z][rb·R … +R)[j·kc … +kc) stored k-major: [kk][r]
 *   B panel (j, z, cb) = B[z][j·kc … +kc)[cb·C … +C) stored [kk][c]
 * the panel of index ((j·Z + z)·RB + rb) at float offset index·R·kc (B likewise,
 * with z = 0 for a B shared by the batch). With kc = K, R = M, C = N the
 * layout is plain Aᵀ / B ([z][k][m], [z][k][n]): callers that do not window
 * use the same producers (see `plainPlan`).
 */
import { type Gpu, GpuError } from "../device.ts";
import { chooseVariant, type GemmVariant, maxFatTile } from "./variants.ts";

/** Floats in one uniform window (64 KiB, WebGPU's guaranteed maxUniformBufferBindingSize). */
export const WINDOW_FLOATS = 16384;

/**
 * How a caller may steer the windowed path: a chunk and lane tile to force
 * it with, or false to keep the storage-operand kernels; absent: the cost model.
 */
export type WindowChoice = { kc: number; tm: number; tn: number } | false;

export interface WindowPlan {
  /** Batch of A and C; batch of B (1 when B is shared). */
  z: number;
  zb: number;
  m: number;
  n: number;
  k: number;
  /** Rows per A panel, columns per B panel, k per chunk. */
  r: number;
  c: number;
  kc: number;
  /** Row blocks, column blocks, k chunks. */
  rb: number;
  cb: number;
  j: number;
  /** Lane tile: tm rows × tn columns (tn a multiple of 4). */
  tm: number;
  tn: number;
}

/**
 * Cost model (ns), measured on this project's 2-core VM with lavapipe
 * (KERNELS.md, session 5): an 8-lane storage load or store, a uniform load
 * component, an 8-wide FMA with ≤ 256 / more accumulators a lane (spills), a
 * dispatch (bind group, params, lavapipe's per-dispatch sync).
 */
const COST = { ssbo: 68, ubo: 6, fma: 1.1, fmaSpill: 1.3, dispatch: 50_000, threads: 2 };
const fmaCost = (acc: number) => acc > 256 ? COST.fmaSpill : COST.fma;

/** Estimated ns of the storage-operand fat kernel (tm × tn a lane) on the same GEMM. */
export function directCost(
  z: number,
  m: number,
  n: number,
  k: number,
  tm: number,
  tn: number,
): number {
  const wgs = Math.ceil(m / tm) * Math.ceil(n / (8 * tn)) * z;
  const perWg = k * ((tm + tn) * COST.ssbo + tm * tn * fmaCost(tm * tn)) + tm * tn * COST.ssbo;
  return Math.ceil(wgs / COST.threads) * perWg + COST.dispatch;
}

/** Estimated ns of a windowed plan (without producing its panels). */
export function windowCost(p: WindowPlan): number {
  const wgs = (p.r / p.tm) * (p.c / (8 * p.tn));
  const acc = p.tm * p.tn;
  const perWg = p.kc * ((p.tm + p.tn) * COST.ubo + acc * fmaCost(acc)) +
    acc * COST.ssbo * (2 * p.j - 1) / p.j;
  return p.j * p.z * p.rb * p.cb * (Math.ceil(wgs / COST.threads) * perWg + COST.dispatch);
}

/** Estimated ns of packing `floats` panel floats from a plain matrix (a load and a store each). */
export function packCost(floats: number): number {
  return floats / 8 * 2 * COST.ssbo / COST.threads;
}

const roundUp = (x: number, q: number) => Math.ceil(x / q) * q;

/** A plan with the given chunk and lane tile, or null where one row/column tile does not fit. */
export function makePlan(
  z: number,
  zb: number,
  m: number,
  n: number,
  k: number,
  kc: number,
  tm: number,
  tn: number,
): WindowPlan | null {
  const r = Math.min(roundUp(m, tm), Math.floor(WINDOW_FLOATS / kc / tm) * tm);
  const c = Math.min(roundUp(n, 8 * tn), Math.floor(WINDOW_FLOATS / kc / (8 * tn)) * 8 * tn);
  if (r < tm || c < 8 * tn) return null;
  return {
    z,
    zb,
    m,
    n,
    k,
    r,
    c,
    kc,
    rb: Math.ceil(m / r),
    cb: Math.ceil(n / c),
    j: Math.ceil(k / kc),
    tm,
    tn,
  };
}

/**
 * The cheapest windowed plan by the cost model. Lane tiles up to `maxAcc`
 * accumulators (the compile time of the unrolled body grows with it); kc a
 * multiple of 16 so that every panel starts on a 256-byte boundary.
 */
export function planWindows(
  z: number,
  zb: number,
  m: number,
  n: number,
  k: number,
  maxAcc = 256,
): WindowPlan {
  let best: WindowPlan | null = null, bestCost = Infinity;
  const kMax = roundUp(k, 16);
  const chunks = [16, 32, 64, 128, 256, 512, 1024].filter((kc) => kc < kMax);
  if (kMax <= 1024) chunks.push(kMax); // all of K in one chunk
  for (const kc of chunks) {
    for (const tm of [4, 8, 16, 32]) {
      for (const tn of [4, 8, 16]) {
        if (tm * tn > maxAcc) continue;
        const p = makePlan(z, zb, m, n, k, kc, tm, tn);
        const cost = p ? windowCost(p) : Infinity;
        if (cost < bestCost) [best, bestCost] = [p, cost];
      }
    }
  }
  if (!best) throw new GpuError(`planWindows: no plan for ${m}×${n}×${k}`);
  return best;
}

/** The plan for a forced choice (a clear error where its tile does not fit a window). */
export function forcedPlan(
  z: number,
  zb: number,
  m: number,
  n: number,
  k: number,
  w: { kc: number; tm: number; tn: number },
): WindowPlan {
  const p = w.kc % 16 === 0 && w.tm % 4 === 0 && w.tn % 4 === 0
    ? makePlan(z, zb, m, n, k, w.kc, w.tm, w.tn)
    : null;
  if (!p) {
    throw new GpuError(
      `window ${JSON.stringify(w)}: kc must be a multiple of 16, tm and tn of 4, and a ` +
        `${w.tm}-row × ${8 * w.tn}-column tile must fit a ${WINDOW_FLOATS}-float window`,
    );
  }
  return p;
}

/** The GEMM overrides a caller passes down (tests force each). */
export interface GemmChoice {
  variant?: GemmVariant;
  window?: WindowChoice;
}

/**
 * Windows or the fat storage kernel for one GEMM: forced by `o.window`, off
 * with `o.window === false`, a forced `o.variant` or a hardware adapter, else
 * the cheaper by the cost model (`pack`: the operands must be packed first).
 * `direct` is the shape the fat kernel would run instead, where it differs
 * (col2im: a bmm of z = N images with m = OH·OW rows each). Returns the plan
 * (null: fat kernel) and the estimated ns of the choice (0 where not estimated).
 */
export function chooseWindows(
  gpu: Gpu,
  g: { z: number; zb: number; m: number; n: number; k: number },
  o: GemmChoice,
  pack: boolean,
  direct: { z: number; m: number } = g,
): { plan: WindowPlan | null; cost: number } {
  const { z, zb, m, n, k } = g;
  if (o.window) {
    const plan = forcedPlan(z, zb, m, n, k, o.window);
    return { plan, cost: windowCost(plan) };
  }
  if (o.window === false || o.variant || !gpu.isSoftware) return { plan: null, cost: 0 };
  const v = chooseVariant(gpu, direct.m, n, direct.z);
  if (v.kind !== "fat") return { plan: null, cost: 0 };
  const plan = planWindows(z, zb, m, n, k, maxFatTile(gpu) ** 2 / 4);
  const cost = windowCost(plan) +
    (pack ? packCost(panelFloats(plan, "a") + panelFloats(plan, "b")) : 0);
  const fat = directCost(direct.z, direct.m, n, k, v.tm, v.tn);
  return cost < fat ? { plan, cost } : { plan: null, cost: fat };
}

/** The unwindowed layout: one panel per batch entry, plain [z][k][m] and [z][k][n]. */
export function plainPlan(z: number, zb: number, m: number, n: number, k: number): WindowPlan {
  return { z, zb, m, n, k, r: m, c: n, kc: k, rb: 1, cb: 1, j: 1, tm: 0, tn: 0 };
}

/** Floats of the A (side "a") or B panels of a plan. */
export function panelFloats(p: WindowPlan, side: "a" | "b"): number {
  return side === "a" ? p.j * p.z * p.rb * p.r * p.kc : p.j * p.zb * p.cb * p.c * p.kc;
}

/** Whether the panels extend past the matrix (then producers need a zeroed buffer). */
export function padded(p: WindowPlan): boolean {
  return p.rb * p.r !== p.m || p.cb * p.c !== p.n || p.j * p.kc !== p.k;
}

/** Uniform fields a producer passes for `panelPosWgsl`: [X, kc, XB, Z] of one side. */
export function panelFields(p: WindowPlan, side: "a" | "b"): number[] {
  return side === "a" ? [p.r, p.kc, p.rb, p.z] : [p.c, p.kc, p.cb, p.zb];
}
