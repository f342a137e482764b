/**
 * Winograd F(m×m, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray 2015), m = 2 or 4:
 * each m×m output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of an α×α input patch d (α = m + 2),
 * and summed over input channels the elementwise products become α² independent
 * GEMMs, one per transform-domain point ξ. F(2×2) needs 16 multiplies per 4 outputs
 * instead of 36 (2.25× fewer FLOPs than the direct conv), F(4×4) 36 per 16 instead of
 * 144 (4×), with larger rounding error (its transforms' coefficients reach 8 and ⅙).
 *
 * Layouts (P = N·TH·TW tiles, TH = ⌈OH/m⌉, TW = ⌈OW/m⌉, tile q = (n·TH + th)·TW + tw):
 *   input  V[ξ](c, q)   = (Bᵀ d B)[ξ] of x[n, c, m·th−pad …+α, m·tw−pad …+α] (zero outside)
 *   weight U[ξ](o, c)   = (G g Gᵀ)[ξ] of w[o, c]
 *   GEMM   M[ξ][o][q]   = Σ_c U[ξ](o, c) · V[ξ](c, q)        (M = O, K = C, N = P)
 *   output y[n, o, 2th+i, 2tw+j] = (Aᵀ M[·][o][q] A)[i][j] + bias[o]
 * or, where that is cheaper (see orientation()), the transposed GEMM
 * M[ξ][q][o] = Vᵀ·U. grad-input is the same forward over dy with the flipped,
 * transposed kernel (from w[o, c, 2−kh, 2−kw]) and padding 2 − pad.
 * grad-weight is the transposed bilinear algorithm:
 * dg = Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G summed over tiles, i.e.
 * M[ξ][o][c] = Σ_q DY[ξ](o, q) · V[ξ](q, c) (K = P).
 * The transforms write V, U and DY straight into the GEMM's operand panels
 * (gemm/windows.ts: `panelPos`, items x-fastest so that 4 neighbouring items
 * are one vec4 store): on software adapters, where the cost model prefers
 * it, the α² GEMMs run through uniform windows; otherwise the panels are
 * plain [ξ][k][x] matrices and matmul.ts's `bmm` reads A transposed.
 *
 * Transforms: a grid-stride loop over groups of 4 items (1 where the inner
 * extent is not a multiple of 4); workgroup 64, dispatch
 * min(⌈groups/64⌉, cap) workgroups, cap 1,024 on software adapters (Gpu.gridCap's on hardware). On lavapipe these kernels are bound by
 * storage accesses (kernels/KERNELS.md, sessions 4 and 5). On hardware each is compiled for
 * its call's fields (wgsl.ts `forGeometry`: every field but the item count a constant), so
 * the ~14 index divisions an item (channel, tile, panel position) are by constants.
 * Storage: the transforms read x, w, dy and bias and write y and dw in the
 * user's storage type (f32 or f16: gemm/storage.ts, widened on load, rounded
 * once at the store); the panels and M, internal, are always f32.
 * Exactness: F(2×2)'s coefficients are 0, ±1, ±½, so its f32 error is that of
 * a few more additions than the direct sum (tests: the direct conv's tolerance).
 * F(4×4)'s (points 0, ±1, ±2, ∞) reach 5 and 8 and include ⅙, so intermediate values
 * are up to ~10³ times the direct sum's terms; its tests allow 10× the tolerance
 * (kernels/KERNELS.md, session 9, has the measured errors).
 */
import { type Gpu, GpuError, grid1d, type Kernel, params } from "../device.ts";
import { type DType, Tensor } from "../tensor.ts";
import { sameDtype } from "../cast.ts";
import { type StorageWgsl, storageWgsl } from "../gemm/storage.ts";
import { bmm } from "../gemm/matmul.ts";
import { chooseVariant, tileOf } from "../gemm/variants.ts";
import { PANEL_POS_WGSL, windowGemm } from "../gemm/windows.ts";
import { forGeometry } from "../wgsl.ts";
import {
  chooseWindows,
  type GemmChoice,
  padded,
  panelFields,
  panelFloats,
  plainPlan,
  type WindowPlan,
} from "../gemm/window_plan.ts";

const WG = 64, MAX_GROUPS = 1024;

// The 1-D transforms, on WGSL expressions.
type F1 = (v: string[]) => string[];
/** Bᵀ: input patch, 4 → 4. */
const BT: F1 = (
  [d0, d1, d2, d3],
) => [`${d0} - ${d2}`, `${d1} + ${d2}`, `${d2} - ${d1}`, `${d1} - ${d3}`];
/** G: kernel, 3 → 4. */
const G: F1 = ([g0, g1, g2]) => [
  g0,
  `0.5 * (${g0} + ${g1} + ${g2})`,
  `0.5 * (${g0} - ${g1} + ${g2})`,
  g2,
];
/** Aᵀ: products → output tile, 4 → 2. */
const AT: F1 = ([m0, m1, m2, m3]) => [`${m0} + ${m1} + ${m2}`, `${m1} - ${m2} - ${m3}`];
/** A: output-gradient tile, 2 → 4 (the transpose of Aᵀ). */
const A: F1 = ([e0, e1]) => [e0, `${e0} + ${e1}`, `${e0} - ${e1}`, `-${e1}`];
/** Gᵀ: products → kernel gradient, 4 → 3 (the transpose of G). */
const GT: F1 = ([m0, m1, m2, m3]) => [
  `${m0} + 0.5 * (${m1} + ${m2})`,
  `0.5 * (${m1} - ${m2})`,
  `0.5 * (${m1} + ${m2}) + ${m3}`,
];

// F(4×4, 3×3), points 0, ±1, ±2, ∞ (Lavin & Gray's matrices, factored; checked exactly in
// rationals and by the conv tests).
/** Bᵀ: input patch, 6 → 6. */
const BT4: F1 = ([d0, d1, d2, d3, d4, d5]) => [
  `4.0 * ${d0} - 5.0 * ${d2} + ${d4}`,
  `(${d3} + ${d4}) - 4.0 * (${d1} + ${d2})`,
  `(${d4} - ${d3}) + 4.0 * (${d1} - ${d2})`,
  `(${d4} - ${d2}) + 2.0 * (${d3} - ${d1})`,
  `(${d4} - ${d2}) - 2.0 * (${d3} - ${d1})`,
  `4.0 * ${d1} - 5.0 * ${d3} + ${d5}`,
];
/** G: kernel, 3 → 6. */
const G4: F1 = ([g0, g1, g2]) => [
  `0.25 * ${g0}`,
  `(-1.0 / 6.0) * (${g0} + ${g1} + ${g2})`,
  `(-1.0 / 6.0) * (${g0} - ${g1} + ${g2})`,
  `(1.0 / 24.0) * (${g0} + 2.0 * ${g1} + 4.0 * ${g2})`,
  `(1.0 / 24.0) * (${g0} - 2.0 * ${g1} + 4.0 * ${g2})`,
  g2,
];
/** Aᵀ: products → output tile, 6 → 4. */
const AT4: F1 = ([m0, m1, m2, m3, m4, m5]) => [
  `${m0} + ${m1} + ${m2} + ${m3} + ${m4}`,
  `(${m1} - ${m2}) + 2.0 * (${m3} - ${m4})`,
  `(${m1} + ${m2}) + 4.0 * (${m3} + ${m4})`,
  `(${m1} - ${m2}) + 8.0 * (${m3} - ${m4}) + ${m5}`,
];
/** A: output-gradient tile, 4 → 6 (the transpose of Aᵀ). */
const A4: F1 = ([e0, e1, e2, e3]) => [
  e0,
  `${e0} + ${e1} + ${e2} + ${e3}`,
  `${e0} - ${e1} + ${e2} - ${e3}`,
  `${e0} + 2.0 * ${e1} + 4.0 * ${e2} + 8.0 * ${e3}`,
  `${e0} - 2.0 * ${e1} + 4.0 * ${e2} - 8.0 * ${e3}`,
  e3,
];
/** Gᵀ: products → kernel gradient, 6 → 3 (the transpose of G). */
const GT4: F1 = ([m0, m1, m2, m3, m4, m5]) => [
  `0.25 * ${m0} - (1.0 / 6.0) * (${m1} + ${m2}) + (1.0 / 24.0) * (${m3} + ${m4})`,
  `(1.0 / 6.0) * (${m2} - ${m1}) + (1.0 / 12.0) * (${m3} - ${m4})`,
  `(1.0 / 6.0) * ((${m3} + ${m4}) - (${m1} + ${m2})) + ${m5}`,
];

/**
 * One Winograd algorithm F(m×m, 3×3): output tile m, input tile α = m + 2, α² GEMMs, the five
 * transforms, and the prefix of its kernels' names.
 */
interface Wino {
  m: number;
  a: number;
  BT: F1;
  G: F1;
  AT: F1;
  A: F1;
  GT: F1;
  name: string;
}
const F2: Wino = { m: 2, a: 4, BT, G, AT, A, GT, name: "winograd" };
const F4: Wino = { m: 4, a: 6, BT: BT4, G: G4, AT: AT4, A: A4, GT: GT4, name: "winograd4" };
/** The algorithm of output tile m (2 or 4). */
function winoOf(m: 2 | 4): Wino {
  return m === 4 ? F4 : F2;
}

/**
 * WGSL `let`s applying f along columns, then along rows, of a square input
 * given as variables `${src}${r}_${s}`; the results are `${dst}${r}_${s}`.
 */
function twoD(f: F1, n: number, src: string, dst: string): string {
  const idx = Array.from({ length: n }, (_, i) => i);
  const lines: string[] = [];
  const cols = idx.map((s) => f(idx.map((r) => `${src}${r}_${s}`)));
  const m = cols[0].length;
  for (let r = 0; r < m; r++) {
    for (let s = 0; s < n; s++) lines.push(`let ${dst}t${r}_${s} = ${cols[s][r]};`);
  }
  for (let r = 0; r < m; r++) {
    const row = f(idx.map((s) => `${dst}t${r}_${s}`));
    row.forEach((e, s) => lines.push(`let ${dst}${r}_${s} = ${e};`));
  }
  return lines.map((l) => `    ${l}`).join("\n");
}

const grid = (s: number) => Array.from({ length: s * s }, (_, i) => [Math.floor(i / s), i % s]);

/** WGSL: image n and output origin (oh, ow) of tile q of F(m×m) (needs p.TH, p.TW). */
const tileFn = (w: Wino) =>
  `fn tile(q: u32) -> vec3u {
  let t = q % (p.TH * p.TW);
  return vec3u(q / (p.TH * p.TW), (t / p.TW) * ${w.m}u, (t % p.TW) * ${w.m}u);
}`;

type Lanes = 1 | 4;
const T = (L: Lanes) => (L === 4 ? "vec4f" : "f32");
/** Component j of a value of type T(L). */
const comp = (L: Lanes, v: string, j: number) => (L === 4 ? `${v}[${j}]` : v);
const lanes = (L: Lanes) => Array.from({ length: L }, (_, j) => j);

/**
 * A transform kernel: a grid-stride loop over groups of L consecutive items
 * (group g = items g·L … g·L + L − 1); the temporary side is written as T(L)
 * at panelPos(ξ, ·) / L (V, U, DY) or read at ξ·(items / L) + g (M), so with
 * L = 4 one vec4 access serves 4 items (measured: storage accesses dominate
 * these kernels on lavapipe).
 * `body(L)` sees `g`, and `it{j}` for the items of the group. `bindings(L, s)`
 * spells the user's tensors in storage type s (gemm/storage.ts); one family
 * per storage type, built on first use.
 */
function transformKernel(
  name: string,
  fields: string,
  bindings: (L: Lanes, s: StorageWgsl, w: Wino) => string,
  body: (L: Lanes, s: StorageWgsl, w: Wino) => string,
): (w: Wino, d: DType) => Record<Lanes, Kernel> {
  const make = (L: Lanes, d: DType, w: Wino): Kernel => ({
    name: `${w.name}:${name}:${d === "f16" ? "f16:" : ""}${L}`,
    code: `${storageWgsl(d).prelude}struct P { items: u32, ${fields} }
@group(0) @binding(0) var<uniform> p: P;
${bindings(L, storageWgsl(d), w)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = nw.x * nw.y * ${WG}u;
  let groups = p.items / ${L}u;
  var g = gid.x + gid.y * nw.x * ${WG}u;
  loop {
    if (g >= groups) { break; }
${lanes(L).map((j) => `    let it${j} = g * ${L}u + ${j}u;`).join("\n")}
${body(L, storageWgsl(d), w)}
    g += total;
  }
}`,
  });
  const memo = new Map<string, Record<Lanes, Kernel>>();
  return (w, d) => {
    const key = `${w.name}:${d}`;
    let k = memo.get(key);
    if (!k) memo.set(key, k = { 1: make(1, d, w), 4: make(4, d, w) });
    return k;
  };
}

/** Fields of a transform that writes GEMM panels: the items' inner extent X, then `panelFields`. */
const PANEL_FIELDS = "X: u32, pX: u32, pkc: u32, pXB: u32, pZ: u32";

/**
 * Gathered inputs, vector stores into GEMM panels: per item j, `load(j)`
 * defines scalars `${src}${r}_${s}_${j}` (n×n); f (n → α) is applied in 2-D and point ξ
 * of the group is stored at panelPos(ξ, x, k) (items are x-fastest: x = it % X,
 * k = it / X, so with L = 4 the group's items are 4 neighbouring floats).
 */
function gatherBody(
  L: Lanes,
  a: number,
  n: number,
  src: string,
  load: (j: number) => string,
  f: F1,
  out: string,
) {
  const pts = grid(n).map(([r, s]) => {
    const v = lanes(L).map((j) => `${src}${r}_${s}_${j}`).join(", ");
    return `    let ${src}${r}_${s} = ${T(L)}(${v});`;
  });
  const stores = grid(a).map(([r, s]) =>
    `    ${out}[panelPos(${r * a + s}u, px, pk) / ${L}u] = t${r}_${s};`
  );
  return `${lanes(L).map(load).join("\n")}
${pts.join("\n")}
${twoD(f, n, src, "t")}
    let px = it0 % p.X; let pk = it0 / p.X;
${stores.join("\n")}`;
}

/**
 * Vector loads of the α² points from `m`, f in 2-D, then per item j `store(j)` (sees
 * `o${r}_${s}`).
 */
function scatterBody(L: Lanes, a: number, f: F1, store: (j: number) => string) {
  return `${
    grid(a).map(([r, s]) => `    let m${r}_${s} = m[${r * a + s}u * groups + g];`).join("\n")
  }
${twoD(f, a, "m", "o")}
${lanes(L).map(store).join("\n")}`;
}

/**
 * x[N,C,H,W] → V panels, item it = c·ic + q·iq: x = q, k = c (ic = P, iq = 1;
 * the forward's B, or A when transposed) or x = c, k = q (grad-weight's B).
 */
const INPUT = transformKernel(
  "input",
  `C: u32, H: u32, W: u32, TH: u32, TW: u32, pad: u32, P: u32, ic: u32, iq: u32, ${PANEL_FIELDS}`,
  (L, st, w) =>
    `@group(0) @binding(1) var<storage, read> x: array<${st.t}>;
@group(0) @binding(2) var<storage, read_write> v: array<${T(L)}>;
${tileFn(w)}
${PANEL_POS_WGSL}
fn ld(base: u32, h: i32, w: i32) -> f32 {
  let ok = u32(h) < p.H && u32(w) < p.W;
  return select(0.0, ${st.ld("x[select(0u, base + u32(h) * p.W + u32(w), ok)]")}, ok);
}`,
  (L, _, w) =>
    gatherBody(
      L,
      w.a,
      w.a,
      "d",
      (j) =>
        `    let c${j} = (it${j} / p.ic) % p.C; let q${j} = (it${j} / p.iq) % p.P;
    let t${j} = tile(q${j}); let n${j} = t${j}.x;
    let h${j} = i32(t${j}.y) - i32(p.pad); let w${j} = i32(t${j}.z) - i32(p.pad);
    let b${j} = (n${j} * p.C + c${j}) * p.H * p.W;
${
          grid(w.a).map(([r, s]) =>
            `    let d${r}_${s}_${j} = ld(b${j}, h${j} + ${r}, w${j} + ${s});`
          ).join("\n")
        }`,
      w.BT,
      "v",
    ),
);

/**
 * w[O,C,3,3] → U panels for a conv with Oc outputs and Ci inputs: x = a (the
 * output channel), k = b (the input channel): the forward's A, or its B when
 * transposed. With flip = 1 (grad-input) the conv's output channels are w's
 * inputs and the kernel is rotated by 180°: w[b, a, 2 − kh, 2 − kw].
 */
const WEIGHT = transformKernel(
  "weight",
  `Oc: u32, Ci: u32, flip: u32, ${PANEL_FIELDS}`,
  (L, st) =>
    `@group(0) @binding(1) var<storage, read> w: array<${st.t}>;
@group(0) @binding(2) var<storage, read_write> u: array<${T(L)}>;
${PANEL_POS_WGSL}`,
  (L, st, w) =>
    gatherBody(
      L,
      w.a,
      3,
      "g",
      (j) =>
        `    let a${j} = it${j} % p.Oc; let b${j} = it${j} / p.Oc;
    let s${j} = select(a${j} * p.Ci + b${j}, b${j} * p.Oc + a${j}, p.flip != 0u) * 9u;
${
          grid(3).map(([r, s]) =>
            `    let g${r}_${s}_${j} = ${
              st.ld(`w[s${j} + select(${r * 3 + s}u, ${8 - r * 3 - s}u, p.flip != 0u)]`)
            };`
          ).join("\n")
        }`,
      w.G,
      "u",
    ),
);

/** M[ξ][o][q] ("op") or M[ξ][q][o] (p.po = 1) → y[N,O,OH,OW] (+ bias). */
const OUTPUT = transformKernel(
  "output",
  "O: u32, OH: u32, OW: u32, TH: u32, TW: u32, P: u32, hasBias: u32, po: u32",
  (L, st, w) =>
    `@group(0) @binding(1) var<storage, read> m: array<${T(L)}>;
@group(0) @binding(2) var<storage, read> bias: array<${st.t}>;
@group(0) @binding(3) var<storage, read_write> y: array<${st.t}>;
${tileFn(w)}`,
  (L, st, w) =>
    scatterBody(L, w.a, w.AT, (j) => {
      const c = (v: string) => comp(L, v, j);
      const steps = Array.from({ length: w.m - 1 }, (_, i) => i + 1);
      // output (r, s) of the tile: y[base + r·OW + s] where oh + r < OH and ow + s < OW
      const put = ([r, s]: number[]) => {
        const off = [r ? (r === 1 ? "p.OW" : `${r}u * p.OW`) : "", s ? `${s}u` : ""];
        const ok = [r ? `h${r}` : "", s ? `w${s}` : ""].filter(Boolean).join(" && ");
        const store = `y[${["base", ...off.filter(Boolean)].join(" + ")}] = ${
          st.st(`${c(`o${r}_${s}`)} + b`)
        };`;
        return `    ${ok ? `if (${ok}) { ${store} }` : store}`;
      };
      return `    {
    let o = select(it${j} / p.P, it${j} % p.O, p.po != 0u);
    let q = select(it${j} % p.P, it${j} / p.O, p.po != 0u);
    let t = tile(q); let n = t.x; let oh = t.y; let ow = t.z;
    let b = select(0.0, ${st.ld("bias[o]")}, p.hasBias != 0u);
    let base = ((n * p.O + o) * p.OH + oh) * p.OW + ow;
    ${
        [
          ...steps.map((i) => `let h${i} = oh + ${i}u < p.OH;`),
          ...steps.map((i) => `let w${i} = ow + ${i}u < p.OW;`),
        ].join(" ")
      }
${grid(w.m).map(put).join("\n")}
    }`;
    }),
);

/** dy[N,O,OH,OW] → DY panels, x = o, k = q (A e Aᵀ of each m×m tile, zero past the edge). */
const DY = transformKernel(
  "dy",
  `O: u32, OH: u32, OW: u32, TH: u32, TW: u32, P: u32, ${PANEL_FIELDS}`,
  (L, st, w) =>
    `@group(0) @binding(1) var<storage, read> dy: array<${st.t}>;
@group(0) @binding(2) var<storage, read_write> e: array<${T(L)}>;
${tileFn(w)}
${PANEL_POS_WGSL}
fn ld(base: u32, h: u32, w: u32) -> f32 {
  let ok = h < p.OH && w < p.OW;
  return select(0.0, ${st.ld("dy[select(0u, base + h * p.OW + w, ok)]")}, ok);
}`,
  (L, _, w) =>
    gatherBody(
      L,
      w.a,
      w.m,
      "d",
      (j) =>
        `    let o${j} = it${j} % p.O; let q${j} = it${j} / p.O;
    let t${j} = tile(q${j}); let h${j} = t${j}.y; let w${j} = t${j}.z;
    let b${j} = (t${j}.x * p.O + o${j}) * p.OH * p.OW;
${
          grid(w.m).map(([r, s]) =>
            `    let d${r}_${s}_${j} = ld(b${j}, h${j} + ${r}u, w${j} + ${s}u);`
          ).join("\n")
        }`,
      w.A,
      "e",
    ),
);

/** M[α²][O][C] → dw[O,C,3,3] (Gᵀ M G). */
const WGRAD_OUT = transformKernel(
  "wgrad_out",
  "",
  (L, st) =>
    `@group(0) @binding(1) var<storage, read> m: array<${T(L)}>;
@group(0) @binding(2) var<storage, read_write> dw: array<${st.t}>;`,
  (L, st, w) =>
    scatterBody(
      L,
      w.a,
      w.GT,
      (j) =>
        grid(3).map(([r, s]) =>
          `    dw[it${j} * 9u + ${r * 3 + s}u] = ${st.st(comp(L, `o${r}_${s}`, j))};`
        )
          .join("\n"),
    ),
);

/**
 * Dispatches a transform of F(m×m); L = 4 when `vec` (default: the item count is a multiple of 4),
 * except F(4×4) on hardware GPUs: there four items an invocation would hold 144 loaded values and
 * leave a 7×7 stage with 32,768 invocations of ≥ 1 KiB each (bench/dispatch_audit.ts), so one.
 */
function run(
  wi: Wino,
  family: Record<Lanes, Kernel>,
  buffers: GPUBuffer[],
  fields: number[],
  gpu: Gpu,
  vec = fields[0] % 4 === 0,
): void {
  const items = fields[0], L: Lanes = vec && (wi.m === 2 || gpu.isSoftware) ? 4 : 1;
  const [gx, gy] = grid1d(items / L, WG);
  const k = forGeometry(gpu, family[L], fields, ["items"]);
  gpu.dispatch(k, buffers, params(fields), [Math.min(gx * gy, gpu.gridCap(MAX_GROUPS))]);
}

/**
 * GEMM panels of one side for a plan (zeroed where the plan pads the matrix)
 * and the transform fields that address them: X (the items' inner extent), panelFields.
 */
function panels(gpu: Gpu, plan: WindowPlan, side: "a" | "b", x: number) {
  const floats = panelFloats(plan, side);
  const t = Tensor.empty(gpu, [floats]);
  if (padded(plan)) gpu.clear(t.buffer, 0, floats * 4);
  return { t, fields: [x, ...panelFields(plan, side)], vec: x % 4 === 0 };
}

/**
 * The GEMM of the α² transform points: windowed (gemm/windows.ts) where the cost
 * model says it beats the storage-operand kernels (software adapters, no
 * forced variant), else plain panels through bmm (A read transposed).
 */
function gemmPlan(gpu: Gpu, z: number, m: number, n: number, k: number, o: GemmChoice) {
  const { plan, cost } = chooseWindows(gpu, { z, zb: z, m, n, k }, o, false);
  return { plan: plan ?? plainPlan(z, z, m, n, k), cost };
}

function gemm(a: Tensor, b: Tensor, plan: WindowPlan, o: GemmChoice): Tensor {
  if (plan.tm > 0) return windowGemm(a, b, plan);
  const { z, m, n, k } = plan;
  return bmm(a.view([z, k, m]), b.view([z, k, n]), { transA: true, variant: o.variant });
}

/** The m×m tile grid of a 3×3 stride-1 conv with output OH×OW. */
function tiles(n: number, oh: number, ow: number, m: number) {
  const th = Math.ceil(oh / m), tw = Math.ceil(ow / m);
  return { th, tw, p: n * th * tw };
}

/** Bytes of the largest temporary (V, DY or M) a Winograd F(m×m) conv of this size needs. */
export function winogradScratchBytes(
  n: number,
  c: number,
  o: number,
  oh: number,
  ow: number,
  m: 2 | 4 = 2,
): number {
  const { p } = tiles(n, oh, ow, m);
  const a = m + 2;
  return a * a * 4 * Math.max(c * p, o * p, o * c);
}

/**
 * The GEMM orientation of a forward: "op" = M[ξ][o][q] (rows the output
 * channels, columns the tiles), "po" = M[ξ][q][o] (rows the tiles). Windowed:
 * the cheaper by the cost model. Otherwise the fat kernels want many columns
 * per lane: on small maps (layer4: 2×2 tiles an image) the tiles are too few
 * to fill a 32-wide row of lanes, the channels are not.
 */
function orientation(gpu: Gpu, z: number, o: number, c: number, p: number, g: GemmChoice) {
  const op = gemmPlan(gpu, z, o, p, c, g), po = gemmPlan(gpu, z, p, o, c, g);
  if (op.plan.tm > 0 || po.plan.tm > 0) {
    return po.cost < op.cost ? { po: true, ...po } : { po: false, ...op };
  }
  // useful outputs per workgroup of the default tile for rows × cols
  const work = (rows: number, cols: number) => {
    const { bm, bn } = tileOf(chooseVariant(gpu, rows, cols, 16));
    return Math.min(bm, rows) * Math.min(bn, cols);
  };
  return work(p, o) > work(o, p) ? { po: true, ...po } : { po: false, ...op };
}

/**
 * y[N,O,OH,OW] = 3×3 stride-1 conv of x[N,C,H,W] with w (padding `pad`),
 * + bias, in x's storage type (w and bias must share it), by F(m×m, 3×3). With `flip`, w is read
 * as [C_out=w.shape[1], C_in=w.shape[0]] rotated by 180° (the grad-input kernel), so x then has
 * w.shape[0] channels.
 */
export function winogradConv(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  pad: number,
  flip: boolean,
  g: GemmChoice = {},
  tile: 2 | 4 = 2,
): Tensor {
  const gpu = x.gpu;
  const d = sameDtype(flip ? "conv2dBackwardInput" : "conv2d", x, w, ...(bias ? [bias] : []));
  const [n, c, h, wd] = x.shape;
  const [o, ci] = flip ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  if (ci !== c || w.shape[2] !== 3 || w.shape[3] !== 3) {
    throw new GpuError(`winogradConv: x [${x.shape}] and w [${w.shape}] (flip ${flip}) disagree`);
  }
  const oh = h + 2 * pad - 2, ow = wd + 2 * pad - 2;
  const wi = winoOf(tile);
  const { th, tw, p } = tiles(n, oh, ow, wi.m);
  // "op": M[ξ][o][q] = U·V; "po": M[ξ][q][o] = Vᵀ·U. Either way V has x = q, k = c
  // and U x = o, k = c; only which side of the GEMM they are changes.
  const { po, plan } = orientation(gpu, wi.a * wi.a, o, c, p, g);
  const v = panels(gpu, plan, po ? "a" : "b", p);
  run(
    wi,
    INPUT(wi, d),
    [x.buffer, v.t.buffer],
    [c * p, c, h, wd, th, tw, pad, p, p, 1, ...v.fields],
    gpu,
    v.vec,
  );
  const u = panels(gpu, plan, po ? "b" : "a", o);
  run(
    wi,
    WEIGHT(wi, d),
    [w.buffer, u.t.buffer],
    [o * c, o, c, flip ? 1 : 0, ...u.fields],
    gpu,
    u.vec,
  );
  const m = po ? gemm(v.t, u.t, plan, g) : gemm(u.t, v.t, plan, g);
  u.t.dispose();
  v.t.dispose();
  const y = Tensor.empty(gpu, [n, o, oh, ow], d);
  run(wi, OUTPUT(wi, d), [m.buffer, (bias ?? m).buffer, y.buffer], [
    o * p,
    o,
    oh,
    ow,
    th,
    tw,
    p,
    bias ? 1 : 0,
    po ? 1 : 0,
  ], gpu);
  m.dispose();
  return y;
}

/** dw[O,C,3,3] of a 3×3 stride-1 conv from dy[N,O,OH,OW] and x[N,C,H,W], by F(m×m, 3×3). */
export function winogradWeightGrad(
  dy: Tensor,
  x: Tensor,
  pad: number,
  g: GemmChoice = {},
  tile: 2 | 4 = 2,
): Tensor {
  const gpu = x.gpu;
  const d = sameDtype("conv2dBackwardWeight", dy, x);
  const [n, c, h, wd] = x.shape;
  const [, o, oh, ow] = dy.shape;
  const wi = winoOf(tile);
  const { th, tw, p } = tiles(n, oh, ow, wi.m);
  // M[ξ][o][c] = Σ_q DY[ξ][o][q] · V[ξ][q][c]: A = DY (x = o, k = q), B = V (x = c, k = q).
  const { plan } = gemmPlan(gpu, wi.a * wi.a, o, c, p, g);
  const v = panels(gpu, plan, "b", c);
  run(
    wi,
    INPUT(wi, d),
    [x.buffer, v.t.buffer],
    [c * p, c, h, wd, th, tw, pad, p, 1, c, ...v.fields],
    gpu,
    v.vec,
  );
  const e = panels(gpu, plan, "a", o);
  run(
    wi,
    DY(wi, d),
    [dy.buffer, e.t.buffer],
    [o * p, o, oh, ow, th, tw, p, ...e.fields],
    gpu,
    e.vec,
  );
  const m = gemm(e.t, v.t, plan, g);
  e.t.dispose();
  v.t.dispose();
  const dw = Tensor.empty(gpu, [o, c, 3, 3], d);
  run(wi, WGRAD_OUT(wi, d), [m.buffer, dw.buffer], [o * c], gpu);
  m.dispose();
  return dw;
}
