/**
 * Conv2d grad-weight as a split-K implicit GEMM, plus its deterministic
 * reduction (reduce.ts's sumSlices; the bias gradient is its channelSum).
 *   M = O (rows: dY, uniform across a workgroup), NC = C·KH·KW (columns:
 *   one (c, kh, kw) per lane slot), K = N·OH·OW (output pixels).
 * dW[o, (c,kh,kw)] = Σ_{n,oh,ow} dY[n, o, oh, ow] · X[n, c, oh·s−pad+kh, ow·s−pad+kw].
 * Split-K: workgroup z sums k in [z·chunk, min(K, (z+1)·chunk)) and writes
 * its own slice of part[splits, O, C·KH·KW] (every element, zeros included);
 * `sumSplits` then adds the slices in a fixed order. Nothing loops over the
 * whole batch per weight. fat: the (c, kh, kw) column decode is per
 * invocation; the (n, oh, ow) counters are uniform scalars; columns run over
 * the live taps only (C·LH·LW, see liveTaps), so on layer4's 1×1 map at 32 px
 * the GEMM is 9× narrower; the host zero-fills dead taps' weights first.
 * reg (GPUs): compiled per kernel size, stride and padding (`taps`: WGSL constants).
 * Grid [ceil(NC/BN), ceil(O/BM), splits]; reduction: one invocation per dW
 * element, workgroup 64, grid-stride, ≤ 4096 workgroups.
 * Bindings: 1 dy, 2 x (storage type d), 3 part (storage type pd: the f32 split-K
 * scratch, or dW itself, of dy's type, when there is one slice; gemm/storage.ts).
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
import type { DType } from "../tensor.ts";
import { preludeOf, storageWgsl } from "../gemm/storage.ts";

export const convWgradKernel = kernelFamily(
  (v: GemmVariant, d: DType, pd: DType, taps: ConvTaps | null): Kernel => {
    const name = `conv_wgrad:${variantKey(v)}${d === "f16" ? `:${d}>${pd}` : ""}${tapsName(taps)}`;
    const { t, ld } = storageWgsl(d), out = storageWgsl(pd);
    const HEADER = `${preludeOf(d, pd)}${CONV_PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<${t}>;
@group(0) @binding(2) var<storage, read> x: array<${t}>;
@group(0) @binding(3) var<storage, read_write> part: array<${out.t}>;`;
    if (v.kind === "fat") {
      return {
        name,
        code: fatKernel({
          header: HEADER,
          // Columns cover only the live taps (see liveTaps): LK = live rows × live columns
          // per channel; the host zero-fills the dead taps' weights when there are any.
          prologue: `let OHW = p.OH * p.OW; let K = p.N * OHW;
  let k0 = wg.z * p.chunk; let k1 = min(K, k0 + p.chunk);
  let khs = p.tapsH & 0xffffu; let kws = p.tapsW & 0xffffu;
  let LW = (p.tapsW >> 16u) - kws; let LK = ((p.tapsH >> 16u) - khs) * LW;
  let M = p.O; let KK = p.KH * p.KW; let NC = p.C * LK; let HW = p.H * p.W;
  let iW = i32(p.W); let s = p.stride; let pad = i32(p.pad);`,
          col: (j) =>
            `let ch${j} = cl${j} / LK; let r${j} = cl${j} % LK;
  let kh${j} = i32(khs + r${j} / LW); let kw${j} = i32(kws + r${j} % LW);
  let off${j} = i32(ch${j} * HW) + kh${j} * iW + kw${j};`,
          row: (i) => `let dr${i} = mr${i} * OHW;`,
          loopOpen: `var nb = k0 / OHW; let rr = k0 % OHW; var oh = rr / p.OW; var ow = rr % p.OW;
  for (var k = k0; k < k1; k++) {
    let ih0 = i32(oh * s) - pad; let iw0 = i32(ow * s) - pad;
    let koff = i32(nb * p.C * HW) + ih0 * iW + iw0;
    let db = nb * p.O * OHW + oh * p.OW + ow;`,
          a: (i) => `let a${i} = ${ld(`dy[db + dr${i}]`)};`,
          b: (j) =>
            `let ok${j} = u32(ih0 + kh${j}) < p.H && u32(iw0 + kw${j}) < p.W; ` +
            `let b${j} = select(0.0, ${ld(`x[u32(select(0, koff + off${j}, ok${j}))]`)}, ok${j});`,
          loopClose: `ow++;
    if (ow == p.OW) { ow = 0u; oh++; if (oh == p.OH) { oh = 0u; nb++; } }
  }`,
          store: () => ({
            setup: `let sr = n % LK;
      let full = (n / LK) * KK + (khs + sr / LW) * p.KW + kws + sr % LW;`,
            put: `part[(wg.z * M + m) * p.C * KK + full] = ${out.st("v")};`,
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
  let OHW = p.OH * p.OW;
  return ${ld("dy[((k / OHW) * p.O + m) * OHW + k % OHW]")};
}
${xPatchWgsl(ld)}
fn loadB(k: u32, n: u32) -> f32 { return xPatch(k, n); }
fn store(m: u32, n: u32, v: f32) {
  part[(wgz * p.O + m) * p.C * KK + n] = ${out.st("v")};
}
var<private> wgz: u32;`,
        prologue: `let M = p.O; let NC = p.C * KK; let K = p.N * p.OH * p.OW;
  wgz = wg.z;
  let k0 = wg.z * p.chunk; let k1 = min(K, k0 + p.chunk);`,
        aFast: "k",
        bFast: "k",
      }, v),
    };
  },
);
