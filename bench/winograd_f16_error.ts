/**
 * What f16 would cost inside the Winograd convolutions, before any kernel is written for it:
 * the error of a 3×3 convolution computed by F(2×2, 3×3) and F(4×4, 3×3) with the transform
 * panels (V = Bᵀ d B, U = G g Gᵀ) stored as f16, with the GEMM's products M stored as f16 too,
 * and with the GEMM summing 16 products at a time in f16 (the chunked sums of
 * gemm/skeleton.ts `acc16`), against the direct convolution of the same f16 operands in f64.
 * Every output is stored as f16, as the f16 step stores it. The first row of each algorithm is
 * f16 storage as the step has it now (panels and sums f32; computed here in f64, whose
 * difference from f32 is far below f16's): its error is the output's rounding alone. Pure
 * TypeScript on the CPU; the default shape is ResNet's 64-channel 3×3 (one image, 16×16).
 *
 *   deno run bench/winograd_f16_error.ts [--channels 64] [--size 16] [--seed 1]
 *
 * Prints, per algorithm and rounding, the RMS and the largest error over the RMS of the output.
 */
import { parseArgs } from "node:util";
import { Rng } from "../util/rng.ts";
import { conv2dF64 } from "../kernels/cpu/conv2d.ts";

type Mat = number[][];

// Lavin & Gray's matrices: F(2×2) at points 0, ±1, ∞; F(4×4) at 0, ±1, ±2, ∞ (as
// kernels/conv/winograd.ts writes them out in WGSL).
export const F2 = {
  m: 2,
  BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
  G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
  AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
};
export const F4 = {
  m: 4,
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
};

export const h16 = (v: number) => new Float16Array([v])[0];
const exact = (v: number) => v;

/** L·X·Rᵀ for small dense matrices. */
function sandwich(L: Mat, X: Mat, R: Mat): Mat {
  const LX = L.map((row) => X[0].map((_, j) => row.reduce((s, l, k) => s + l * X[k][j], 0)));
  return LX.map((row) => R.map((r) => row.reduce((s, v, k) => s + v * r[k], 0)));
}

export interface Rounding {
  label: string;
  /** Applied to each panel value (V and U). */
  panel: (v: number) => number;
  /** Applied to each GEMM result M. */
  product: (v: number) => number;
  /** Sum over channels in f16 chunks of 16 (an f16 FMA chain, each step rounded), else exact. */
  chunk16: boolean;
}

export const ROUNDINGS: Rounding[] = [
  { label: "panels and sums unrounded (as f32 now)", panel: exact, product: exact, chunk16: false },
  { label: "f16 panels", panel: h16, product: exact, chunk16: false },
  { label: "f16 panels and products", panel: h16, product: h16, chunk16: false },
  { label: "f16 panels, 16-term f16 sums", panel: h16, product: exact, chunk16: true },
];

/**
 * y of one image by Winograd F(m×m, 3×3), stride 1, pad 1, with `r`'s roundings, stored as f16
 * (as the f16 step stores it).
 */
export function winograd(
  f: typeof F2,
  x: Float64Array,
  w: Float64Array,
  C: number,
  O: number,
  S: number,
  r: Rounding,
): Float64Array {
  const { m, BT, G, AT } = f, a = m + 2, P = S + 2;
  const U: Mat[][] = [];
  for (let o = 0; o < O; o++) {
    U.push([]);
    for (let c = 0; c < C; c++) {
      const g = [0, 1, 2].map((i) => [0, 1, 2].map((j) => w[((o * C + c) * 3 + i) * 3 + j]));
      U[o].push(sandwich(G, g, G).map((row) => row.map(r.panel)));
    }
  }
  const y = new Float64Array(O * S * S);
  for (let th = 0; th < S / m; th++) {
    for (let tw = 0; tw < S / m; tw++) {
      const V = Array.from({ length: C }, (_, c) => {
        const d = Array.from(
          { length: a },
          (_, i) => Array.from({ length: a }, (_, j) => x[(c * P + th * m + i) * P + tw * m + j]),
        );
        return sandwich(BT, d, BT).map((row) => row.map(r.panel));
      });
      for (let o = 0; o < O; o++) {
        const M: Mat = Array.from({ length: a }, () => new Array(a).fill(0));
        for (let i = 0; i < a; i++) {
          for (let j = 0; j < a; j++) {
            let sum = 0, part = 0;
            for (let c = 0; c < C; c++) {
              if (r.chunk16) {
                part = h16(part + U[o][c][i][j] * V[c][i][j]); // one FMA's rounding
                if (c % 16 === 15 || c === C - 1) [sum, part] = [sum + part, 0];
              } else sum += U[o][c][i][j] * V[c][i][j];
            }
            M[i][j] = r.product(sum);
          }
        }
        const Y = sandwich(AT, M, AT);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) y[(o * S + th * m + i) * S + tw * m + j] = h16(Y[i][j]);
        }
      }
    }
  }
  return y;
}

/**
 * The direct 3×3 convolution in f64 (the reference), of `x` as winograd() takes it: [C, S+2, S+2]
 * with its zero border, so kernels/cpu/conv2d.ts's conv2dF64 runs it unpadded.
 */
export const direct = (x: Float64Array, w: Float64Array, C: number, O: number, S: number) =>
  conv2dF64(x, [1, C, S + 2, S + 2], w, [O, C, 3, 3], null, { stride: 1, pad: 0 });

/** RMS and largest |a − ref| over the RMS of ref. */
export function relErr(a: ArrayLike<number>, ref: Float64Array): [number, number] {
  let e2 = 0, emax = 0, r2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(a[i] - ref[i]);
    e2 += e * e;
    emax = Math.max(emax, e);
    r2 += ref[i] * ref[i];
  }
  const rms = Math.sqrt(r2 / ref.length);
  return [Math.sqrt(e2 / ref.length) / rms, emax / rms];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      channels: { type: "string", default: "64" },
      size: { type: "string", default: "16" },
      seed: { type: "string", default: "1" },
    },
  });
  const C = Number(values.channels), O = C, S = Number(values.size), seed = Number(values.seed);
  if (!(C >= 1 && S >= 4 && S % 4 === 0)) {
    console.error("--channels must be ≥ 1 and --size a multiple of 4");
    Deno.exit(2);
  }
  const rng = new Rng(seed), P = S + 2;
  // a post-ReLU activation map (zero padding kept) and He-initialised weights, both as f16 values
  const x = new Float64Array(C * P * P);
  for (let c = 0; c < C; c++) {
    for (let u = 1; u <= S; u++) {
      for (let v = 1; v <= S; v++) x[(c * P + u) * P + v] = h16(Math.max(0, rng.normal()));
    }
  }
  const w = Float64Array.from(
    { length: O * C * 9 },
    () => h16(rng.normal() * Math.sqrt(2 / (9 * C))),
  );
  const ref = direct(x, w, C, O, S);
  const fmt = ([rms, max]: [number, number]) =>
    `rms ${rms.toExponential(2)}  max ${max.toExponential(2)}`;
  console.log(`3×3 conv, ${C}→${O} channels, ${S}×${S}, f16 operands; error / RMS(y):`);
  for (const [name, f] of [["F(2×2)", F2], ["F(4×4)", F4]] as const) {
    for (const r of ROUNDINGS) {
      const y = winograd(f, x, w, C, O, S, r);
      console.log(`  ${`${name} ${r.label}`.padEnd(48)} ${fmt(relErr(y, ref))}`);
    }
  }
}
