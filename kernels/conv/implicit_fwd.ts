/**
 * Conv2d forward as an implicit GEMM (no im2col buffer):
 *   M = O (output channels, rows: the weights, uniform across a workgroup),
 *   NC = N·OH·OW (output pixels, columns: ow fastest, so lanes read
 *   neighbouring x addresses), K = C·KH·KW (loop order c, kh, kw).
 * Y[o, (n,oh,ow)] = Σ W[o, (c,kh,kw)] · X[n, c, oh·s−pad+kh, ow·s−pad+kw] + b[o].
 * fat: per-column (n, ih0, iw0, base offset) decoded once per invocation,
 * the row-in-range test once per kh, padding by a clamped index + select.
 * reg (GPUs): compiled per kernel size, stride and padding (`taps`: WGSL constants).
 * Tiles and dispatch: see gemm/skeleton.ts; grid [ceil(NC/BN), ceil(O/BM), 1].
 * Bindings: 1 x, 2 w, 3 bias (w again when absent; p.hasBias = 0), 4 y, all of
 * storage type d (gemm/storage.ts: f16 loads widened, f32 sums, y rounded once).
 */
import { type Kernel, kernelFamily } from "../device.ts";
import {
  CONV_PARAMS,
  type ConvTaps,
  fatKernel,
  regKernel,
  tapConsts,
  tapsName,
  xPatchWgsl,
} from "../gemm/skeleton.ts";
import { type GemmVariant, variantKey } from "../gemm/variants.ts";
import { unroll } from "../wgsl.ts";
import type { DType } from "../tensor.ts";
import { storageWgsl } from "../gemm/storage.ts";

export const convFwdKernel = kernelFamily(
  (v: GemmVariant, d: DType, taps: ConvTaps | null): Kernel => {
    const name = `conv_fwd:${variantKey(v)}${d === "f16" ? ":f16" : ""}${tapsName(taps)}`;
    const { prelude, t, ld, st } = storageWgsl(d);
    const HEADER = `${prelude}${CONV_PARAMS}
@group(0) @binding(1) var<storage, read> x: array<${t}>;
@group(0) @binding(2) var<storage, read> w: array<${t}>;
@group(0) @binding(3) var<storage, read> bias: array<${t}>;
@group(0) @binding(4) var<storage, read_write> y: array<${t}>;`;
    const biasOf = `select(0.0, ${ld("bias[m]")}, p.hasBias != 0u)`;
    if (v.kind === "fat") {
      return {
        name,
        code: fatKernel({
          header: HEADER,
          prologue: `let M = p.O; let OHW = p.OH * p.OW; let NC = p.N * OHW; let HW = p.H * p.W;
  let CKK = p.C * p.KH * p.KW; let s = p.stride; let pad = i32(p.pad); let iW = i32(p.W);`,
          col: (j) =>
            `let n${j} = cl${j} / OHW; let r${j} = cl${j} % OHW;
  let ih${j} = i32((r${j} / p.OW) * s) - pad; let iw${j} = i32((r${j} % p.OW) * s) - pad;
  let off${j} = i32(n${j} * p.C * HW) + ih${j} * iW + iw${j};`,
          row: (i) => `let wr${i} = mr${i} * CKK;`,
          // Only the live taps (see liveTaps): skipped taps would add select(0, …) · w.
          loopOpen: `let khs = p.tapsH & 0xffffu; let khe = p.tapsH >> 16u;
  let kws = p.tapsW & 0xffffu; let kwe = p.tapsW >> 16u; let KK = p.KH * p.KW;
  for (var c = 0u; c < p.C; c++) {
   let cb = i32(c * HW);
   for (var kh = khs; kh < khe; kh++) {
    let ikh = i32(kh);
${unroll(v.tn, (j) => `    let hok${j} = u32(ih${j} + ikh) < p.H;`)}
    for (var kw = kws; kw < kwe; kw++) {
    let ikw = i32(kw);
    let koff = cb + ikh * iW + ikw;
    let k = c * KK + kh * p.KW + kw;`,
          a: (i) => `let a${i} = ${ld(`w[wr${i} + k]`)};`,
          b: (j) =>
            `let ok${j} = hok${j} && u32(iw${j} + ikw) < p.W; ` +
            `let b${j} = select(0.0, ${ld(`x[u32(select(0, off${j} + koff, ok${j}))]`)}, ok${j});`,
          loopClose: `} } }`,
          store: () => ({
            setup: `let sn = n / OHW; let sr = n % OHW;`,
            put: `y[(sn * M + m) * OHW + sr] = ${st(`v + ${biasOf}`)};`,
          }),
        }, v),
      };
    }
    return {
      name,
      code: regKernel({
        header: `${HEADER}
${tapConsts(taps)}
fn loadA(m: u32, k: u32) -> f32 { return ${ld("w[m * p.C * KK + k]")}; }
${xPatchWgsl(ld)}
fn loadB(k: u32, n: u32) -> f32 { return xPatch(n, k); }
fn store(m: u32, n: u32, v: f32) {
  let OHW = p.OH * p.OW;
  y[((n / OHW) * p.O + m) * OHW + n % OHW] = ${st(`v + ${biasOf}`)};
}`,
        prologue: `let M = p.O; let NC = p.N * p.OH * p.OW; let k0 = 0u; let k1 = p.C * KK;`,
        aFast: "k",
        bFast: "n",
      }, v),
    };
  },
);
