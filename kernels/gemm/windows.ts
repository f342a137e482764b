/**
 * Windowed GEMM (software adapters): C[z] = A[z]·B[z] (+ bias per column) with
 * both operands read through 64 KiB uniform-buffer windows, not storage
 * bindings, from the panels a plan lays out (gemm/window_plan.ts: layout, cost
 * model, forced plans). Why windows: on lavapipe/llvmpipe a storage-buffer load
 * is a per-lane scalar loop and a uniform load one load or gather
 * (kernels/KERNELS.md, session 5, has the measurements).
 * `PANEL_POS_WGSL` gives producers the position of an element in a panel;
 * `pack` copies a plain (optionally transposed) matrix into panels.
 *
 * Kernel: one dispatch per (j, z, rb, cb), grid [C / (8·tn), R / tm, 1];
 * workgroups of 8 lanes (the fat kernels' shape, gemm/skeleton.ts), each lane
 * a tm × tn tile: rows uniform (A read as vec4 broadcasts), lane l owns columns
 * 4(l + 8h) + e (h < tn/4, e < 4: one vec4 gather per h). Chunk j = 0 writes C
 * (+ bias), later chunks add to it in order: deterministic, no atomics.
 * Pack: grid-stride over panel floats (4 a group when the panel side allows),
 * workgroup 64, ≤ 1024 workgroups. It reads its source in the source's storage
 * type (f32 or f16, widened: gemm/storage.ts); panels and C are always f32.
 */
import { type Gpu, GpuError, grid1d, type Kernel, kernelFamily, params } from "../device.ts";
import { type DType, Tensor } from "../tensor.ts";
import { unroll } from "../wgsl.ts";
import { storageWgsl } from "./storage.ts";
import { panelFields, panelFloats, type WindowPlan } from "./window_plan.ts";

/**
 * WGSL `panelPos(z, x, k)`: the float index of element (x, k) of batch entry z
 * in a panel buffer (x the row of A or the column of B), given uniform fields
 * `pX, pkc, pXB, pZ` (from `panelFields`) in the producer's `p`.
 */
export const PANEL_POS_WGSL = `fn panelPos(z: u32, x: u32, k: u32) -> u32 {
  return (((k / p.pkc) * p.pZ + z) * p.pXB + x / p.pX) * p.pkc * p.pX + (k % p.pkc) * p.pX + x % p.pX;
}`;

const gemmKernel = kernelFamily(
  (r: number, c: number, kc: number, tm: number, tn: number): Kernel => {
    const h = tn / 4;
    const put = (first: boolean) =>
      unroll(h, (hh) =>
        unroll(4, (e) => {
          const jj = hh * 4 + e;
          return `    { let n = col + ${32 * hh + e}u;
      if (n < p.N) {
        let b = ${first ? "select(0.0, bias[n], p.hasBias != 0u)" : "0.0"};
${
            unroll(tm, (i) =>
              `        if (m0 + ${i}u < p.M) { let o = rowBase + ${i}u * p.N + n; c[o] = ${
                first ? "b" : "c[o]"
              } + acc[${i * tn + jj}]; }`)
          }
      } }`;
        }));
    return {
      name: `wgemm:${r}x${c}x${kc}:${tm}x${tn}`,
      code: `struct P { M: u32, N: u32, z: u32, row0: u32, col0: u32, first: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<uniform> aw: array<vec4f, ${r * kc / 4}>;
@group(0) @binding(2) var<uniform> bw: array<vec4f, ${kc * c / 4}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let a4 = wg.y * ${tm / 4}u;
  let b4 = wg.x * ${8 * h}u + lid.x;
  var acc: array<f32, ${tm * tn}>;
  // a constant trip count: with a uniform one LLVM runtime-unrolls the loop
  // around the unrolled body (5 s to compile instead of 0.5 s)
  for (var kk = 0u; kk < ${kc}u; kk++) {
${unroll(tm / 4, (q) => `    let av${q} = aw[kk * ${r / 4}u + a4 + ${q}u];`)}
${unroll(h, (hh) => `    let bv${hh} = bw[kk * ${c / 4}u + b4 + ${8 * hh}u];`)}
${
        unroll(tm, (i) =>
          unroll(tn, (jj) =>
            `    acc[${i * tn + jj}] = fma(av${i >> 2}[${i & 3}], bv${jj >> 2}[${jj & 3}], acc[${
              i * tn + jj
            }]);`))
      }
  }
  let m0 = p.row0 + wg.y * ${tm}u;
  let col = p.col0 + b4 * 4u;
  let rowBase = (p.z * p.M + m0) * p.N;
  if (p.first != 0u) {
${put(true)}
  } else {
${put(false)}
  }
}`,
    };
  },
);

/**
 * C[z][m][n] = Σ_k A[z][m][k]·B[z][k][n] (+ bias[n]) from panels laid out by
 * plan `p` (tm, tn > 0). Returns a new tensor of `shape` (z·m·n elements).
 */
export function windowGemm(
  a: Tensor,
  b: Tensor,
  p: WindowPlan,
  bias: Tensor | null = null,
  shape: number[] = [p.z, p.m, p.n],
): Tensor {
  if (p.tm <= 0 || p.tm % 4 !== 0 || p.tn % 4 !== 0 || p.r % p.tm || p.c % (8 * p.tn)) {
    throw new GpuError(`windowGemm: bad plan ${JSON.stringify(p)}`);
  }
  if (a.size < panelFloats(p, "a") || b.size < panelFloats(p, "b")) {
    throw new GpuError(`windowGemm: panels [${a.shape}] / [${b.shape}] are smaller than the plan`);
  }
  const gpu = a.gpu;
  const kern = gemmKernel(p.r, p.c, p.kc, p.tm, p.tn);
  const out = Tensor.empty(gpu, shape);
  const aBytes = p.r * p.kc * 4, bBytes = p.c * p.kc * 4;
  for (let j = 0; j < p.j; j++) {
    for (let z = 0; z < p.z; z++) {
      const zb = p.zb === 1 ? 0 : z;
      for (let rb = 0; rb < p.rb; rb++) {
        const aWin = {
          buffer: a.buffer,
          offset: ((j * p.z + z) * p.rb + rb) * aBytes,
          size: aBytes,
        };
        for (let cb = 0; cb < p.cb; cb++) {
          const bOff = ((j * p.zb + zb) * p.cb + cb) * bBytes;
          gpu.dispatch(
            kern,
            [
              aWin,
              { buffer: b.buffer, offset: bOff, size: bBytes },
              (bias ?? a).buffer,
              out.buffer,
            ],
            params([p.m, p.n, z, rb * p.r, cb * p.c, j === 0 ? 1 : 0, bias ? 1 : 0]),
            [p.c / (8 * p.tn), p.r / p.tm, 1],
          );
        }
      }
    }
  }
  return out;
}

const WG = 64, MAX_GROUPS = 1024;

/**
 * Pack kernel: panel float `it` ← source element (x, k) of batch entry z at
 * z·zs + (x / xs)·s1 + (x % xs)·s2 + k·s3 (zero outside the matrix); 4 panel
 * floats a group when pX % 4 == 0. The source has storage type d.
 */
const packKernel = kernelFamily((L: 1 | 4, d: DType): Kernel => {
  const T = L === 4 ? "vec4f" : "f32";
  const s = storageWgsl(d);
  const vals = unroll(L, (e) =>
    `    let xe${e} = xb * p.pX + xi + ${e}u;
    let ok${e} = xe${e} < p.dimX && k < p.K;
    let at${e} = p.zs * z + (xe${e} / p.xs) * p.s1 + (xe${e} % p.xs) * p.s2 + k * p.s3;
    let v${e} = select(0.0, ${s.ld(`src[select(0u, at${e}, ok${e})]`)}, ok${e});`);
  return {
    name: `wgemm:pack:${L}${d === "f16" ? ":f16" : ""}`,
    code: `${s.prelude}struct P {
  items: u32, pX: u32, pkc: u32, pXB: u32, pZ: u32, dimX: u32, K: u32,
  zs: u32, xs: u32, s1: u32, s2: u32, s3: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<${s.t}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = nw.x * nw.y * ${WG}u;
  var g = gid.x + gid.y * nw.x * ${WG}u;
  loop {
    if (g >= p.items / ${L}u) { break; }
    let it = g * ${L}u;
    let xi = it % p.pX; let t = it / p.pX;
    let kk = t % p.pkc; let t2 = t / p.pkc;
    let xb = t2 % p.pXB; let t3 = t2 / p.pXB;
    let z = t3 % p.pZ; let k = (t3 / p.pZ) * p.pkc + kk;
${vals}
    dst[g] = ${L === 4 ? "vec4f(v0, v1, v2, v3)" : "v0"};
    g += total;
  }
}`,
  };
});

/**
 * Where element (x, k) of batch entry z of a packed operand lives in its source:
 * z·zs + ⌊x / xs⌋·s1 + (x mod xs)·s2 + k·s3 (xs splits a row index that spans
 * several source matrices, as col2im's n·OH·OW + pixel).
 */
export interface PackSource {
  zs: number;
  xs: number;
  s1: number;
  s2: number;
  s3: number;
}

/**
 * The source layout of a plain operand: side "a" A[z][m][k] (`xMajor`: rows
 * contiguous, i.e. not transposed) or A[z][k][m]; side "b" B[z][k][n] (`xMajor`
 * false) or B[z][n][k] (true).
 */
export function plainSource(p: WindowPlan, side: "a" | "b", xMajor: boolean): PackSource {
  const dimX = side === "a" ? p.m : p.n;
  return xMajor
    ? { zs: dimX * p.k, xs: dimX, s1: 0, s2: p.k, s3: 1 }
    : { zs: dimX * p.k, xs: dimX, s1: 0, s2: 1, s3: dimX };
}

/**
 * Packs an operand (f32 or f16) into a plan's panels (zero outside the matrix); returns the
 * panel tensor (f32).
 */
export function pack(src: Tensor, p: WindowPlan, side: "a" | "b", from: PackSource): Tensor {
  const gpu: Gpu = src.gpu;
  const floats = panelFloats(p, side);
  const out = Tensor.empty(gpu, [floats]);
  const dimX = side === "a" ? p.m : p.n;
  const L = (side === "a" ? p.r : p.c) % 4 === 0 ? 4 : 1;
  const [gx, gy] = grid1d(floats / L, WG);
  gpu.dispatch(
    packKernel(L, src.dtype),
    [src.buffer, out.buffer],
    params([
      floats,
      ...panelFields(p, side),
      dimX,
      p.k,
      from.zs,
      from.xs,
      from.s1,
      from.s2,
      from.s3,
    ]),
    [Math.min(gx * gy, MAX_GROUPS)],
  );
  return out;
}
