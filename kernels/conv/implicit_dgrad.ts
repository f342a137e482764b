/**
 * Conv2d grad-input as an implicit GEMM:
 *   M = C (input channels, rows: the weights, uniform), NC = N·H·W (input
 *   pixels, columns), K = O·KH·KW.
 * dX[c, (n,ih,iw)] = Σ W[o, c, kh, kw] · dY[n, o, oh, ow] over the (kh, kw)
 * with ih + pad − kh = oh·s (and the same for w), 0 ≤ oh < OH, 0 ≤ ow < OW.
 * fat: per-phase decomposition for stride s: workgroup z = rh·s + rw handles
 * the pixels with (ih + pad) ≡ rh, (iw + pad) ≡ rw (mod s); for them only
 * kh ≡ rh, kw ≡ rw contribute, so the kh/kw loops step by s uniformly and
 * oh = qh − (kh − rh)/s needs no per-lane division. Columns of a phase are
 * (n, qh, qw) with ih = rh − pad + s·qh. Grid [ceil(N·ceil(H/s)·ceil(W/s) /
 * (8·TN)), ceil(C/TM), s²]; workgroups past a phase's pixel count return.
 * reg (GPUs): plain gather with the divisibility test per element, compiled per kernel
 * size, stride and padding (`taps`: WGSL constants, so stride 1's test vanishes); grid
 * [ceil(N·H·W/BN), ceil(C/BM), 1].
 * Bindings: 1 dy, 2 w, 3 dx, all of storage type d (gemm/storage.ts).
 */
import { type Kernel, kernelFamily } from "../device.ts";
import {
  CONV_PARAMS,
  type ConvTaps,
  fatKernel,
  regKernel,
  tapConsts,
  tapsName,
} from "../gemm/skeleton.ts";
import { type GemmVariant, variantKey } from "../gemm/variants.ts";
import { unroll } from "../wgsl.ts";
import type { DType } from "../tensor.ts";
import { storageWgsl } from "../gemm/storage.ts";

export const convDgradKernel = kernelFamily(
  (v: GemmVariant, d: DType, taps: ConvTaps | null): Kernel => {
    const name = `conv_dgrad:${variantKey(v)}${d === "f16" ? ":f16" : ""}${tapsName(taps)}`;
    const { prelude, t, ld, st } = storageWgsl(d);
    const HEADER = `${prelude}${CONV_PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<${t}>;
@group(0) @binding(2) var<storage, read> w: array<${t}>;
@group(0) @binding(3) var<storage, read_write> dx: array<${t}>;`;
    if (v.kind === "fat") {
      return {
        name,
        code: fatKernel({
          header: HEADER,
          prologue: `let s = p.stride; let is = i32(s); let pad = i32(p.pad);
  let rh = wg.z / s; let rw = wg.z % s;
  let q0h = select(0, (pad - i32(rh) + is - 1) / is, pad > i32(rh));
  let q0w = select(0, (pad - i32(rw) + is - 1) / is, pad > i32(rw));
  let Hq = u32(max((i32(p.H) + pad - i32(rh) + is - 1) / is - q0h, 0));
  let Wq = u32(max((i32(p.W) + pad - i32(rw) + is - 1) / is - q0w, 0));
  let M = p.C; let QQ = Hq * Wq; let NC = p.N * QQ;
  let OHW = p.OH * p.OW; let KK = p.KH * p.KW; let iOW = i32(p.OW);`,
          col: (j) =>
            `let n${j} = cl${j} / QQ; let r${j} = cl${j} % QQ;
  let qh${j} = q0h + i32(r${j} / Wq); let qw${j} = q0w + i32(r${j} % Wq);
  let off${j} = i32(n${j} * p.O * OHW) + qh${j} * iOW + qw${j};`,
          row: (i) => `let wr${i} = mr${i} * KK;`,
          // Only live taps (see liveTaps), first one of this phase: kh ≡ rh (mod s).
          loopOpen: `let khs = p.tapsH & 0xffffu; let khe = p.tapsH >> 16u;
  let kws = p.tapsW & 0xffffu; let kwe = p.tapsW >> 16u;
  let kh0 = select(rh, rh + ((khs - rh + s - 1u) / s) * s, khs > rh);
  let kw0 = select(rw, rw + ((kws - rw + s - 1u) / s) * s, kws > rw);
  for (var o = 0u; o < p.O; o++) {
   let ob = o * p.C * KK; let oo = i32(o * OHW);
   for (var kh = kh0; kh < khe; kh += s) {
    let dh = i32((kh - rh) / s);
${unroll(v.tn, (j) => `    let hok${j} = u32(qh${j} - dh) < p.OH;`)}
    for (var kw = kw0; kw < kwe; kw += s) {
    let dw = i32((kw - rw) / s);
    let wk = ob + kh * p.KW + kw;
    let koff = oo - dh * iOW - dw;`,
          a: (i) => `let a${i} = ${ld(`w[wr${i} + wk]`)};`,
          b: (j) =>
            `let ok${j} = hok${j} && u32(qw${j} - dw) < p.OW; ` +
            `let b${j} = select(0.0, ${ld(`dy[u32(select(0, off${j} + koff, ok${j}))]`)}, ok${j});`,
          loopClose: `} } }`,
          store: () => ({
            setup: `let sn = n / QQ; let sr = n % QQ;
      let ih = u32(i32(rh) - pad + is * (q0h + i32(sr / Wq)));
      let iw = u32(i32(rw) - pad + is * (q0w + i32(sr % Wq)));`,
            put: `dx[((sn * M + m) * p.H + ih) * p.W + iw] = ${st("v")};`,
          }),
        }, v),
      };
    }
    return {
      name,
      code: regKernel({
        header: `${HEADER}
${tapConsts(taps)}
fn loadA(m: u32, k: u32) -> f32 {
  return ${ld("w[((k / KK) * p.C + m) * KK + k % KK]")};
}
fn loadB(k: u32, n: u32) -> f32 {
  let HW = p.H * p.W;
  let nb = n / HW; let r = n % HW;
  let o = k / KK; let kr = k % KK;
  let th = i32(r / p.W + PAD) - i32(kr / KW);
  let tw = i32(r % p.W + PAD) - i32(kr % KW);
  if (th < 0 || tw < 0) { return 0.0; }
  let oh = u32(th) / STRIDE; let ow = u32(tw) / STRIDE;
  if (u32(th) % STRIDE != 0u || u32(tw) % STRIDE != 0u || oh >= p.OH || ow >= p.OW) {
    return 0.0;
  }
  return ${ld("dy[((nb * p.O + o) * p.OH + oh) * p.OW + ow]")};
}
fn store(m: u32, n: u32, v: f32) {
  let HW = p.H * p.W;
  dx[((n / HW) * p.C + m) * HW + n % HW] = ${st("v")};
}`,
        prologue: `let M = p.C; let NC = p.N * p.H * p.W; let k0 = 0u; let k1 = p.O * KK;`,
        aFast: "k",
        bFast: "n",
      }, v),
    };
  },
);
