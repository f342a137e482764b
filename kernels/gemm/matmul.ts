/**
 * Matrix multiply and linear layers: C[M,N] = op(A)[M,K] · op(B)[K,N] (+ bias
 * per column), op = optional transpose, both read in place (no transposed copy).
 * GEMM mapping: rows M = rows of op(A) (uniform across a fat workgroup),
 * columns = N, K = the inner dimension. Tiles and dispatch formula: the
 * shared skeletons in gemm/skeleton.ts, grid [ceil(N/BN), ceil(M/BM), 1];
 * the shape is chosen per adapter by gemm/variants.ts (fat on software adapters,
 * shared-memory reg tiles on GPUs); `variant` forces one. The transposes are part
 * of the pipeline key, so the inner loop has no per-load branches.
 * On software adapters a GEMM goes through gemm/windows.ts instead (operands
 * packed into panels and read through 64 KiB uniform windows) where its cost
 * model says that is cheaper, packing included; `window` forces or forbids it.
 * bmm: the same kernels over a batch of matrices (workgroup z = batch index).
 * linear(x, w, b) = x·wᵀ + b (torch layout); linearBackward: dx = dy·w,
 * dw = dyᵀ·x, db = Σₙ dy (the conv bias-grad reduction with H·W = 1).
 * Storage: a, b and bias share one type, f32 or f16 (sameDtype); C has it too
 * unless `outDtype` says otherwise (col2im asks f32 columns of f16 operands).
 * Loads are widened, sums are f32, C is rounded once (gemm/storage.ts); the
 * windowed path's panels and split-K's slices are f32 scratch.
 * Bindings: 1 a, 2 b, 3 bias (b again when absent), 4 c.
 */
import { GpuError, type Kernel, kernelFamily, params } from "../device.ts";
import { type DType, Tensor } from "../tensor.ts";
import { cast, sameDtype } from "../cast.ts";
import { preludeOf, storageWgsl } from "./storage.ts";
import { matmulDims, type MatmulOptions } from "../cpu/matmul.ts";
import { fatKernel, regKernel } from "./skeleton.ts";
import {
  chooseVariant,
  type GemmVariant,
  type SplitChoice,
  splitKCandidates,
  tileCandidates,
  tileOf,
  variantKey,
} from "./variants.ts";
import { tunerOf } from "../tuner.ts";
import { fill } from "../elementwise.ts";
import { pack, plainSource, windowGemm } from "./windows.ts";
import { chooseWindows, type GemmChoice, type WindowChoice } from "./window_plan.ts";
import { channelSum, sumSlices } from "../reduce.ts";

export type { MatmulOptions } from "../cpu/matmul.ts";

export interface MatmulGpuOptions extends MatmulOptions {
  /** Force a tile shape (default: gemm/variants.ts's choice). */
  variant?: GemmVariant;
  /**
   * Through uniform windows (gemm/windows.ts): a forced chunk and lane tile, or
   * false for the storage-operand kernels (default: the cost model, software adapters).
   */
  window?: WindowChoice;
  /**
   * Split the k range into this many slices, summed in order afterwards
   * (matmul or bmm without bias, GPU tiles only): more workgroups for small outputs.
   */
  splitK?: number;
  /** C's storage type (default: the operands'). */
  outDtype?: DType;
  /** Never fetch operands as vec4s (tests: the scalar path; see vec4Operands). */
  scalarLoads?: boolean;
  /**
   * Experimental (bench/f16_accumulate.ts; nothing in training sets it): "f16" sums each slab's
   * products in f16 and the slab sums in f32 (gemm/skeleton.ts `acc16`). f16 operands, a GPU
   * tile without in-workgroup split-K, no split-K.
   */
  accumulate?: "f32" | "f16";
}

/**
 * bmm options: `sharedB` multiplies every A[z] by the same 2-D B; `sharedA` the same 2-D A by
 * every B[z] (GPU tiles, no uniform windows).
 */
export interface BmmOptions extends MatmulGpuOptions {
  sharedB?: boolean;
  sharedA?: boolean;
}

/**
 * Bindings: a, b and bias of storage type d, c of type od (gemm/storage.ts); a (b) as an array of
 * vec4s when `va` (`vb`): the reg kernel's vec4 fetches (see vec4Operands).
 */
const header = (d: DType, od: DType, va = false, vb = false) =>
  `${preludeOf(d, od)}struct P {
  M: u32, N: u32, K: u32, hasBias: u32, bBatch: u32, batch: u32, kChunk: u32, aBatch: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<${vecOf(storageWgsl(d).t, va)}>;
@group(0) @binding(2) var<storage, read> b: array<${vecOf(storageWgsl(d).t, vb)}>;
@group(0) @binding(3) var<storage, read> bias: array<${storageWgsl(d).t}>;
@group(0) @binding(4) var<storage, read_write> c: array<${storageWgsl(od).t}>;
var<private> zA: u32;
var<private> zB: u32;
var<private> zC: u32;`;

/**
 * Offsets by workgroup z = slice·batch + entry: the batch entry of bmm (0 for
 * matmul; B may be shared, bBatch 0) and, for split-K (kChunk ≠ 0), the k
 * slice; C[z] is then slice `slice`'s partial of entry `entry` ([slice][entry]).
 */
const BATCH = `let entry = select(wg.z, wg.z % p.batch, p.kChunk != 0u);
  let slice = select(0u, wg.z / p.batch, p.kChunk != 0u);
  zA = entry * p.M * p.K * p.aBatch; zB = entry * p.K * p.N * p.bBatch; zC = wg.z * p.M * p.N;`;
/** k range of the reg skeleton: all of K, or the slice's kChunk (split-K). */
const K_RANGE = `let k0 = slice * p.kChunk;
  let k1 = select(p.K, min(p.K, k0 + p.kChunk), p.kChunk != 0u);`;

const vecOf = (t: string, v: boolean) => v ? `vec4<${t}>` : t;

/**
 * Which operands the reg kernel may fetch as vec4s (one 16-byte load for 4 elements along the
 * operand's contiguous index): that extent (M for Aᵀ, K for A, N for B, K for Bᵀ) a multiple of 4,
 * so every group of 4 is in range whenever its first element is, and every matrix of a batch
 * starts on a vec4. Split-K chunks are whole slabs (multiples of 16).
 */
export function vec4Operands(
  ta: boolean,
  tb: boolean,
  M: number,
  K: number,
  N: number,
): { va: boolean; vb: boolean } {
  return { va: (ta ? M : K) % 4 === 0, vb: (tb ? K : N) % 4 === 0 };
}

const matmulKernel = kernelFamily((
  v: GemmVariant,
  ta: boolean,
  tb: boolean,
  d: DType,
  od: DType,
  vecA: boolean,
  vecB: boolean,
  acc16: boolean = false,
): Kernel => {
  // only the reg skeleton fetches vec4s
  const va = vecA && v.kind === "reg", vb = vecB && v.kind === "reg";
  const name = `matmul:${ta ? "T" : "N"}${tb ? "T" : "N"}:${variantKey(v)}${
    d === "f32" && od === "f32" ? "" : `:${d}>${od}`
  }${va || vb ? `:v4${va ? "a" : ""}${vb ? "b" : ""}` : ""}${acc16 ? ":acc16" : ""}`;
  const { ld } = storageWgsl(d), { st } = storageWgsl(od);
  const HEADER = header(d, od, va, vb);
  const biasOf = (n: string) => `select(0.0, ${ld(`bias[${n}]`)}, p.hasBias != 0u)`;
  if (v.kind === "fat") {
    return {
      name,
      code: fatKernel({
        header: HEADER,
        prologue: `let M = p.M; let NC = p.N; ${BATCH}`,
        col: (j) => `let bc${j} = zB + ${tb ? `cl${j} * p.K` : `cl${j}`};`,
        row: (i) => `let ar${i} = zA + ${ta ? `mr${i}` : `mr${i} * p.K`};`,
        loopOpen: `for (var k = 0u; k < p.K; k++) {
    let ka = ${ta ? "k * p.M" : "k"}; let kb = ${tb ? "k" : "k * p.N"};`,
        a: (i) => `let a${i} = ${ld(`a[ar${i} + ka]`)};`,
        b: (j) => `let b${j} = ${ld(`b[bc${j} + kb]`)};`,
        loopClose: `}`,
        // the bias is per column: read once per column slot, not per store
        store: () => ({
          setup: `let bv = ${biasOf("n")}; let cb = zC + n;`,
          put: `c[cb + m * p.N] = ${st("v + bv")};`,
        }),
      }, v),
    };
  }
  const ia = `zA + ${ta ? "k * p.M + m" : "m * p.K + k"}`;
  const ib = `zB + ${tb ? "n * p.K + k" : "k * p.N + n"}`;
  // a vec4 operand's scalar load picks a component; its vec4 load is one element
  const scalar = (arr: string, i: string, vec: boolean) =>
    vec ? `let i = ${i}; return ${ld(`${arr}[i / 4u][i % 4u]`)};` : `return ${ld(`${arr}[${i}]`)};`;
  return {
    name,
    code: regKernel({
      header: `${HEADER}
fn loadA(m: u32, k: u32) -> f32 { ${scalar("a", ia, va)} }
fn loadB(k: u32, n: u32) -> f32 { ${scalar("b", ib, vb)} }
${va ? `fn loadA4(m: u32, k: u32) -> vec4f { return vec4f(a[(${ia}) / 4u]); }` : ""}
${vb ? `fn loadB4(k: u32, n: u32) -> vec4f { return vec4f(b[(${ib}) / 4u]); }` : ""}
fn store(m: u32, n: u32, v: f32) { c[zC + m * p.N + n] = ${st(`v + ${biasOf("n")}`)}; }`,
      prologue: `let M = p.M; let NC = p.N; ${BATCH} ${K_RANGE}`,
      aFast: ta ? "m" : "k",
      bFast: tb ? "k" : "n",
      loadA4: va,
      loadB4: vb,
      acc16,
    }, v),
  };
});

/** A scratch operand like t (shape and storage type) of 0.5s, for timing. */
function halves(t: Tensor): Tensor {
  const s = fill(Tensor.empty(t.gpu, t.shape), 0.5);
  if (t.dtype === "f32") return s;
  const h = cast(s, t.dtype);
  s.dispose();
  return h;
}

function gemm(a: Tensor, b: Tensor, bias: Tensor | null, o: MatmulGpuOptions): Tensor {
  const [M, K, N] = matmulDims(a.shape, b.shape, o);
  return gemmBatched(a, b, bias, 1, M, K, N, [M, N], o);
}

/** Dispatches `batch` GEMMs of op(A)[M,K]·op(B)[K,N], operand z at offset z·(its size). */
function gemmBatched(
  a: Tensor,
  b: Tensor,
  bias: Tensor | null,
  batch: number,
  M: number,
  K: number,
  N: number,
  shape: number[],
  o: BmmOptions,
): Tensor {
  const ta = !!o.transA, tb = !!o.transB;
  const op = o.sharedA || o.sharedB || batch > 1 ? "bmm" : "matmul";
  const d = sameDtype(op, a, b, ...(bias ? [bias] : [])), od = o.outDtype ?? d;
  const tuned = o.accumulate !== "f16"; // the experimental f16 sums run the tile they are given
  if (
    tuned && o.variant === undefined && o.window === undefined && tunerOf(a.gpu).mode !== "off"
  ) {
    const kind = o.sharedA ? "bmmSharedA" : o.sharedB ? "bmmShared" : batch > 1 ? "bmm" : "matmul";
    const key = `${kind}:${ta ? "T" : "N"}${tb ? "T" : "N"}:${batch}x${M}x${K}x${N}${
      bias ? "+bias" : ""
    }${d === "f32" && od === "f32" ? "" : `:${d}>${od}`}`;
    const choice = tunerOf(a.gpu).settled<SplitChoice>(key) ?? tunerOf(a.gpu).choose({
      key,
      candidates: [
        ...tileCandidates(a.gpu, chooseVariant(a.gpu, M, N, batch), K),
        ...(bias ? [] : splitKCandidates(a.gpu, M, N, K, batch)),
      ],
      scratch: () => {
        const sa = halves(a), sb = halves(b), sbias = bias && halves(bias);
        return {
          run: (c) => gemmBatched(sa, sb, sbias, batch, M, K, N, shape, { ...o, ...c }).dispose(),
          dispose: () => [sa, sb, sbias].forEach((t) => t?.dispose()),
        };
      },
    });
    o = { ...o, ...choice };
  }
  const g = { z: batch, zb: o.sharedB ? 1 : batch, m: M, n: N, k: K };
  // the windows' panels hold a per-batch A: a shared A runs on the storage-operand kernels
  const { plan } = tuned && !o.sharedA ? chooseWindows(a.gpu, g, o, true) : { plan: null };
  if (plan) {
    // A is x-major (rows contiguous) unless transposed; B is x-major only when transposed
    const ap = pack(a, plan, "a", plainSource(plan, "a", !ta));
    const bp = pack(b, plan, "b", plainSource(plan, "b", tb));
    // windowGemm reads an f32 bias and writes f32 C: an f16 bias is widened first and an
    // f16 C rounded once at the end (the chunks accumulate into C)
    const b32 = bias && bias.dtype !== "f32" ? cast(bias, "f32") : bias;
    const c = windowGemm(ap, bp, plan, b32, shape);
    ap.dispose();
    bp.dispose();
    if (b32 !== bias) b32?.dispose();
    if (od === "f32") return c;
    const ch = cast(c, od);
    c.dispose();
    return ch;
  }
  const c = Tensor.empty(a.gpu, shape, od);
  const v = o.variant ?? chooseVariant(a.gpu, M, N, batch);
  const { va, vb } = o.scalarLoads ? { va: false, vb: false } : vec4Operands(ta, tb, M, K, N);
  const acc16 = o.accumulate === "f16";
  if (acc16 && (d !== "f16" || v.kind !== "reg" || (o.splitK ?? 1) > 1 || (v.ks ?? 1) > 1)) {
    throw new GpuError(`${op}: f16 accumulation needs f16 operands and a GPU tile, no split-K`);
  }
  const kern = matmulKernel(v, ta, tb, d, od, va, vb, acc16);
  const { bm, bn } = tileOf(v);
  const splits = o.splitK ?? 1;
  if (splits > 1) {
    // split-K: slice s of entry z sums k in [s·chunk, (s+1)·chunk) into part[s][z];
    // then the slices are added in order
    if (bias || v.kind === "fat") {
      throw new GpuError("matmul: splitK needs a GEMM without bias and a GPU tile");
    }
    const chunk = Math.ceil(K / splits / 16) * 16; // whole BK slabs for BK 8 and 16
    const used = Math.ceil(K / chunk);
    const part = Tensor.empty(a.gpu, [used, batch, M, N]); // f32 slices
    a.gpu.dispatch(
      matmulKernel(v, ta, tb, d, "f32", va, vb),
      [a.buffer, b.buffer, b.buffer, part.buffer],
      params([M, N, K, 0, o.sharedB ? 0 : 1, batch, chunk, o.sharedA ? 0 : 1]),
      [Math.ceil(N / bn), Math.ceil(M / bm), used * batch],
    );
    sumSlices(part, used, c);
    part.dispose();
    return c;
  }
  a.gpu.dispatch(
    kern,
    [a.buffer, b.buffer, (bias ?? b).buffer, c.buffer],
    params([M, N, K, bias ? 1 : 0, o.sharedB ? 0 : 1, batch, 0, o.sharedA ? 0 : 1]),
    [Math.ceil(N / bn), Math.ceil(M / bm), batch],
  );
  return c;
}

/**
 * Batched C[z] = op(A[z])·op(B[z]) for 3-D tensors [B, ·, ·] (the transposes
 * apply to each matrix), or op(A[z])·op(B) with `sharedB` and a 2-D B; the
 * batch index is the dispatch's z.
 */
export function bmm(a: Tensor, b: Tensor, o: BmmOptions = {}): Tensor {
  if (o.sharedA && o.sharedB) throw new GpuError("bmm: sharedA and sharedB together");
  const aRank = o.sharedA ? 2 : 3, bRank = o.sharedB ? 2 : 3;
  const batch = o.sharedA ? b.shape[0] : a.shape[0];
  if (
    a.shape.length !== aRank || b.shape.length !== bRank ||
    (!o.sharedA && !o.sharedB && a.shape[0] !== b.shape[0])
  ) {
    const want = (rank: number, shared: string) => rank === 2 ? `[·,·] (${shared})` : "[B,·,·]";
    throw new GpuError(
      `bmm: need a ${want(aRank, "sharedA")} and b ${want(bRank, "sharedB")}, ` +
        `got [${a.shape}] and [${b.shape}]`,
    );
  }
  const [M, K, N] = matmulDims(a.shape.slice(-2), b.shape.slice(-2), o);
  return gemmBatched(a, b, null, batch, M, K, N, [batch, M, N], o);
}

/** C = op(A)·op(B) for 2-D tensors. */
export function matmul(a: Tensor, b: Tensor, o: MatmulGpuOptions = {}): Tensor {
  return gemm(a, b, null, o);
}

function linearCheck(x: Tensor, w: Tensor, bias: Tensor | null): void {
  if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[1]) {
    throw new GpuError(`linear: need x [N,I] and w [O,I], got [${x.shape}] and [${w.shape}]`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== w.shape[0])) {
    throw new GpuError(`linear: bias must be [${w.shape[0]}], got [${bias.shape}]`);
  }
}

/** y[N,O] = x[N,I]·w[O,I]ᵀ + bias[O]. */
export function linear(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  o: GemmChoice = {},
): Tensor {
  linearCheck(x, w, bias);
  return gemm(x, w, bias, { transB: true, ...o });
}

/** Gradients of linear: dx = dy·w, dw = dyᵀ·x, db = Σₙ dy (null unless hasBias). */
export function linearBackward(
  dy: Tensor,
  x: Tensor,
  w: Tensor,
  hasBias: boolean,
  o: GemmChoice = {},
): { dx: Tensor; dw: Tensor; db: Tensor | null } {
  linearCheck(x, w, null);
  const [N, O] = [x.shape[0], w.shape[0]];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== O) {
    throw new GpuError(`linearBackward: dy must be [${N},${O}], got [${dy.shape}]`);
  }
  return {
    dx: gemm(dy, w, null, o),
    dw: gemm(dy, x, null, { transA: true, ...o }),
    db: hasBias ? channelSum(dy) : null,
  };
}
