/**
 * The two GEMM skeletons shared by the conv and matmul kernels, fat for software adapters and
 * reg for GPUs. A kernel family supplies the operand loaders and the output store; the skeleton
 * supplies the tiling. C[M, NC] = Σ_k A[m, k] · B[k, n], every output element
 * written exactly once, no atomics.
 *
 * fat (software adapters). Workgroup (8,1,1); workgroup (x, y, z) covers rows
 * [y·TM, y·TM+TM) and columns [x·8·TN, x·8·TN+8·TN); lane l owns columns
 * x·8·TN + l + 8·j (j < TN), so at each j the 8 lanes touch 8 neighbouring
 * columns. A's TM values per k are uniform across the workgroup (llvmpipe
 * loads them once as scalars); B's TN values are per-lane gathers. All loops
 * over i < TM and j < TN are unrolled in the generated WGSL, so the
 * accumulator array is only ever indexed by constants. Out-of-range rows and
 * columns are clamped for loads and masked at the store.
 * Dispatch: [ceil(NC / (8·TN)), ceil(M / TM), z] (z: split-K slices or phases).
 *
 * reg (hardware GPUs, the tuner's candidates: gemm/tuner.ts). One workgroup of
 * T = (BM/TM)·(BN/TN) threads computes a BM×BN tile; thread (tx, ty) =
 * (t mod BN/TN, t div BN/TN) owns TM×TN outputs: rows g·(BM·4/TM) + 4·ty + i
 * (g < TM/4, i < 4) and columns h·(BN·4/TN) + 4·tx + e (h < TN/4, e < 4), held
 * as vec4 accumulators. Per BK-deep step both operand slabs are staged in
 * shared memory as vec4s, As[k][m/4] and Bs[k][n/4], so a thread reads
 * TM/4 + TN/4 vec4s per k (broadcast or consecutive across a warp: no bank
 * conflicts) for TM·TN FMAs; the BK steps of a slab are written out (no
 * loop). Global loads are register-prefetched: the next slab is fetched while
 * the current one is multiplied (two barriers a step, one shared buffer).
 * Each thread fetches vec4 slots of 4 rows (A) or 4 columns (B) at one k; slot order follows the operand's contiguous index
 * (`aFast`, `bFast`), so a warp's loads cover whole 32-byte sectors. With
 * `db` the slabs are double-buffered: slab s is multiplied from one half of
 * shared memory while slab s + 1 is stored into the other, one barrier a step.
 * With `ks` (2 or 4: in-workgroup split-K) the workgroup is ks groups of T
 * threads; group g fetches and multiplies slabs g, g + ks, … into slab memory
 * of its own (all groups run the same number of rounds, a slab past the k range
 * reading as zeros), and at the end the groups' tiles are summed through shared
 * memory in a fixed order, (g0 + g2) + (g1 + g3), before group 0 stores.
 * Where an operand's contiguous extent allows (`loadA4`/`loadB4`) a slot is one
 * vec4 load (see `fetchOne`).
 * Dispatch: [ceil(NC / BN), ceil(M / BM), z].
 */
import { type GemmVariant, regValid, variantKey } from "./variants.ts";
import { unroll } from "../wgsl.ts";

/** Pieces of a fat kernel; generated code sees `wg`, `lid`, `M`, `NC`, `m0`, `c0`. */
export interface FatSpec {
  /** Struct, uniform and storage bindings, helper functions. */
  header: string;
  /** Statements defining `M` and `NC` (u32) and anything uniform; may `return` uniformly. */
  prologue: string;
  /** Per-column setup for column j: may use `cl{j}` (the clamped column index). */
  col: (j: number) => string;
  /** Per-row setup for row i: may use `mr{i}` (the clamped row index). */
  row: (i: number) => string;
  /** Opens the k loop(s). */
  loopOpen: string;
  /** Statements defining `a{i}` (uniform) for the current k. */
  a: (i: number) => string;
  /** Statements defining `b{j}` for the current k. */
  b: (j: number) => string;
  /** Closes the k loop(s) (and advances counters). */
  loopClose: string;
  /** Store of `v` at row `m` and column `n` (both in range); `j` names the column slot. */
  store: (j: number) => { setup: string; put: string };
}

export function fatKernel(
  spec: FatSpec,
  v: Extract<GemmVariant, { kind: "fat" }>,
): string {
  const { tm, tn } = v;
  const fma = unroll(
    tm,
    (i) => unroll(tn, (j) => `    acc[${i * tn + j}] = fma(a${i}, b${j}, acc[${i * tn + j}]);`),
  );
  const stores = unroll(tn, (j) => {
    const s = spec.store(j);
    return `  {
    let n = c0 + ${8 * j}u;
    if (n < NC) {
      ${s.setup}
${
      unroll(tm, (i) =>
        `      if (m0 + ${i}u < M) { let m = m0 + ${i}u; let v = acc[${i * tn + j}]; ${s.put} }`)
    }
    }
  }`;
  });
  return `${spec.header}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  ${spec.prologue}
  let m0 = wg.y * ${tm}u;
  let c0 = wg.x * ${8 * tn}u + lid.x;
  if (m0 >= M || wg.x * ${8 * tn}u >= NC) { return; }
${unroll(tn, (j) => `  let cl${j} = min(c0 + ${8 * j}u, NC - 1u);\n  ${spec.col(j)}`)}
${unroll(tm, (i) => `  let mr${i} = min(m0 + ${i}u, M - 1u);\n  ${spec.row(i)}`)}
  var acc: array<f32, ${tm * tn}>;
  ${spec.loopOpen}
${unroll(tm, (i) => `    ${spec.a(i)}`)}
${unroll(tn, (j) => `    ${spec.b(j)}`)}
${fma}
  ${spec.loopClose}
${stores}
}`;
}

/** Pieces of a reg kernel: WGSL functions over global indices. */
export interface RegSpec {
  /** Struct, bindings and the functions `loadA(m, k) -> f32`, `loadB(k, n) -> f32`
   * (called only in range) and `store(m, n, v)`. */
  header: string;
  /** Statements defining `M`, `NC`, `k0`, `k1` (u32; k in [k0, k1)); may `return` uniformly. */
  prologue: string;
  /** Which index of A (B) is contiguous in memory, for the reg kernel's load order (default k, n). */
  aFast?: "m" | "k";
  bFast?: "n" | "k";
  /**
   * The header also defines `loadA4(m, k) -> vec4f`: A at (m, k) and the next 3 elements along
   * aFast, all in range whenever (m, k) is (the caller's promise: that extent, the k range's ends
   * and the operand's offset are multiples of 4). The reg kernel then fetches A as vec4 loads.
   */
  loadA4?: boolean;
  /** The same for B: `loadB4(k, n) -> vec4f` along bFast. */
  loadB4?: boolean;
  /**
   * Experimental, for bench/f16_accumulate.ts only (training keeps f32 sums): the slabs held in
   * shared memory as f16 and each slab's BK products summed in f16 (packed vec4<f16> FMAs), the
   * slab sums added into the f32 accumulators: what f16 arithmetic would buy on an adapter where
   * it runs faster than f32. Needs `enable f16;` in the header and operands exact in f16 (f16
   * storage); not with in-workgroup split-K.
   */
  acc16?: boolean;
}

/** The register-blocked, vec4, prefetching GPU skeleton (see the file header). */
export function regKernel(spec: RegSpec, v: Extract<GemmVariant, { kind: "reg" }>): string {
  if (!regValid(v)) {
    throw new Error(`GEMM tile ${variantKey(v)}: not a valid reg tile (gemm/variants.ts regValid)`);
  }
  const { bm, bn, bk, tm, tn } = v;
  const h16 = !!spec.acc16;
  if (h16 && (v.ks ?? 1) > 1) throw new Error(`GEMM tile ${variantKey(v)}: acc16 without ks`);
  // ks > 1: ks groups of T0 threads each take every ks-th slab into slab memory of their own and
  // sum their tiles in shared memory at the end (in-workgroup split-K)
  const ks = v.ks ?? 1;
  const tx = bn / tn, ty = bm / tm, T0 = tx * ty, threads = T0 * ks;
  const lid = ks > 1 ? "tl" : "t"; // a thread's index within its group
  const am4 = bm / 4, bn4 = bn / 4; // vec4 slots per k row of each slab
  const aSlots = bk * am4, bSlots = bk * bn4;
  const aPer = Math.ceil(aSlots / T0), bPer = Math.ceil(bSlots / T0);
  const rg = tm / 4, cg = tn / 4; // vec4 row groups and column groups of a thread
  // One operand's fetch and stash, written once for both: A's tile index is m (rows, origin m0,
  // extent M) and its loaders take (m, k); B's is n (columns, n0, NC) and take (k, n).
  interface Side {
    reg: string; // prefetch registers
    smem: string; // shared-memory slab
    load: string; // scalar loader
    load4: string; // vec4 loader along the operand's contiguous index
    vec: boolean; // the spec defines load4
    kFast: boolean; // the contiguous index is k
    w4: number; // vec4 slots per k row of the slab
    per: number; // slots a thread
    slots: number;
    o: string;
    lim: string;
    args: (i: string, k: string) => string;
  }
  const sides: [Side, Side] = [
    {
      reg: "ra",
      smem: "As",
      load: "loadA",
      load4: "loadA4",
      vec: !!spec.loadA4,
      kFast: (spec.aFast ?? "k") === "k",
      w4: am4,
      per: aPer,
      slots: aSlots,
      o: "m0",
      lim: "M",
      args: (i, k) => `${i}, ${k}`,
    },
    {
      reg: "rb",
      smem: "Bs",
      load: "loadB",
      load4: "loadB4",
      vec: !!spec.loadB4,
      kFast: (spec.bFast ?? "n") === "k",
      w4: bn4,
      per: bPer,
      slots: bSlots,
      o: "n0",
      lim: "NC",
      args: (i, k) => `${k}, ${i}`,
    },
  ];
  // slot s → (k, vec4 index), numbered in the operand's contiguous order
  const slotOf = (x: Side, s: string) =>
    x.kFast
      ? `let sk = ${s} % ${bk}u; let s4 = ${s} / ${bk}u;`
      : `let sk = ${s} / ${x.w4}u; let s4 = ${s} % ${x.w4}u;`;
  // vec4 fetches along k ("across": A with aFast k, B with bFast k): a slot is one row (column)
  // and 4 consecutive k, one load, stored to shared memory as 4 components of 4 k rows; along the
  // slab's vec4 a slot keeps its (k, vec4) place and loads once
  const q4 = bk / 4;
  const across = (x: Side) => x.vec && x.kFast;
  const acrossSlot = (s: string) => `let si = ${s} / ${q4}u; let sq = ${s} % ${q4}u;`;
  const guard = (x: Side, s: string) => x.per * T0 === x.slots ? "" : `if (${s} < ${x.slots}u) `;
  const fetchOne = (x: Side, kt0: string, s: string, j: number) => {
    if (across(x)) {
      return `${acrossSlot(s)}
    let i = ${x.o} + si; let k = ${kt0} + 4u * sq;
    ${x.reg}[${j}] = select(vec4f(0.0), ${x.load4}(${
        x.args(`min(i, ${x.lim} - 1u)`, "min(k, k1 - 4u)")
      }), i < ${x.lim} && k < k1);`;
    }
    const head = `${slotOf(x, s)}
    let k = ${kt0} + sk; let kc = min(k, k1 - 1u); let i = ${x.o} + 4u * s4; let okk = k < k1;`;
    if (x.vec) {
      return `${head}
    ${x.reg}[${j}] = select(vec4f(0.0), ${x.load4}(${
        x.args(`min(i, ${x.lim} - 4u)`, "kc")
      }), okk && i < ${x.lim});`;
    }
    return `${head}
    ${x.reg}[${j}] = vec4f(${
      [0, 1, 2, 3].map((e) =>
        `select(0.0, ${x.load}(${
          x.args(`min(i + ${e}u, ${x.lim} - 1u)`, "kc")
        }), okk && i + ${e}u < ${x.lim})`
      ).join(", ")
    });`;
  };
  // loads of slab kt0 into the prefetch registers; out-of-range elements read as 0
  const fetch = (kt0: string) =>
    sides.map((x) => `
${
      unroll(x.per, (j) => {
        const s = `(${lid} + ${j * T0}u)`;
        return `  ${guard(x, s)}{
    ${fetchOne(x, kt0, s, j)}
  }`;
      })
    }`).join("");
  // the prefetched slab into shared memory at slab offset `ao` (A) / `bo` (B): "" or "ao + "
  const stash = (ao: string, bo: string) =>
    sides.map((x, side) => {
      const o = side === 0 ? ao : bo;
      return `
${
        unroll(x.per, (j) => {
          const s = `(${lid} + ${j * T0}u)`;
          const body = across(x)
            ? `${acrossSlot(s)} let r = 4u * sq * ${x.w4}u + si / 4u; let c = si % 4u; ${
              [0, 1, 2, 3].map((e) =>
                `${x.smem}[${o}r${e ? ` + ${e * x.w4}u` : ""}][c] = ${
                  h16 ? `f16(${x.reg}[${j}][${e}])` : `${x.reg}[${j}][${e}]`
                };`
              ).join(" ")
            }`
            : `${slotOf(x, s)} ${x.smem}[${o}sk * ${x.w4}u + s4] = ${
              h16 ? `vec4<f16>(${x.reg}[${j}])` : `${x.reg}[${j}]`
            };`;
          return `  ${guard(x, s)}{ ${body} }`;
        })
      }`;
    }).join("");
  // with acc16 the step accumulates into f16 slab sums `ah`, flushed into acc after each slab
  const slot = (g: number, i: number, h: number) => (g * 4 + i) * cg + h;
  const acc = (g: number, i: number, h: number) => `${h16 ? "ah" : "acc"}[${slot(g, i, h)}]`;
  const widen = h16 ? "vec4<f16>" : "vec4f";
  // one k of the slab (kk constant): every WGSL loop gets a 64-bit iteration counter from naga's
  // SPIR-V backend (wgpu PR #7080), so the BK steps are written out, not looped
  const step = (ao: string, bo: string, kk: number) =>
    `    {
${unroll(rg, (g) => `      let av${g} = As[${ao}${kk * am4 + g * ty}u + ty];`)}
${unroll(cg, (h) => `      let bv${h} = Bs[${bo}${kk * bn4 + h * tx}u + tx];`)}
${
      unroll(rg, (g) =>
        unroll(4, (i) =>
          unroll(
            cg,
            (h) => `      ${acc(g, i, h)} = fma(${widen}(av${g}[${i}]), bv${h}, ${acc(g, i, h)});`,
          )))
    }
    }`;
  const PV = tm * cg; // vec4 accumulators a thread
  const flush = h16
    ? `
${unroll(PV, (q) => `    acc[${q}] += vec4f(ah[${q}]); ah[${q}] = vec4<f16>();`)}`
    : "";
  const inner = (ao: string, bo: string) => `
${unroll(bk, (kk) => step(ao, bo, kk))}${flush}`;
  const stores = unroll(
    rg,
    (g) =>
      unroll(4, (i) =>
        `  { let m = m0 + ${g * ty * 4}u + 4u * ty + ${i}u;
    if (m < M) {
${
          unroll(cg, (h) =>
            unroll(4, (e) =>
              `      { let n = n0 + ${
                h * tx * 4
              }u + 4u * tx + ${e}u; if (n < NC) { store(m, n, acc[${slot(g, i, h)}][${e}]); } }`))
        }
    }
  }`),
  );
  // in-workgroup split-K's sum (ks 2 or 4), in shared memory reused from the slabs (regValid:
  // ks·BK ≥ BM and BN, so As and Bs each hold one group's tile): for 4, groups 2 and 3 hand their
  // tiles to 0 and 1, then 1 to 0, so the sum is (g0 + g2) + (g1 + g3) in every workgroup
  // accumulator q of thread tl at q·T0 + tl: a warp's stores and loads are consecutive vec4s
  const put = (buf: string) => unroll(PV, (q) => `    ${buf}[${q * T0}u + tl] = acc[${q}];`);
  const add = (buf: string) => unroll(PV, (q) => `    acc[${q}] += ${buf}[${q * T0}u + tl];`);
  const reduce = () =>
    ks === 2
      ? `
  if (gk == 1u) {
${put("As")}
  }
  workgroupBarrier();
  if (gk == 0u) {
${add("As")}
  }`
      : `
  if (gk == 2u) {
${put("As")}
  }
  if (gk == 3u) {
${put("Bs")}
  }
  workgroupBarrier();
  if (gk == 0u) {
${add("As")}
  }
  if (gk == 1u) {
${add("Bs")}
  }
  workgroupBarrier();
  if (gk == 1u) {
${put("As")}
  }
  workgroupBarrier();
  if (gk == 0u) {
${add("As")}
  }`;
  // single buffer: stash, barrier, prefetch the next slab, multiply, barrier (two a step);
  // double (v.db): multiply slab `cur` while stashing the next into the other, one barrier a step
  const loop = v.db
    ? `
  var cur = 0u;
  if (kt < k1) {${fetch("kt")}${stash("", "")}
  }
  workgroupBarrier();
  for (; kt < k1; kt += ${bk}u) {
    let more = kt + ${bk}u < k1;
    if (more) {${fetch(`(kt + ${bk}u)`)}
    }
    let ao = cur * ${aSlots}u; let bo = cur * ${bSlots}u;${inner("ao + ", "bo + ")}
    if (more) {
      let na = ${aSlots}u - ao; let nb = ${bSlots}u - bo;${stash("na + ", "nb + ")}
    }
    workgroupBarrier();
    cur = 1u - cur;
  }`
    : ks > 1
    ? `
  let ao = gk * ${aSlots}u; let bo = gk * ${bSlots}u;
  let nIter = (k1 - k0 + ${ks * bk - 1}u) / ${ks * bk}u;
  kt = k0 + gk * ${bk}u;${fetch("kt")}
  for (var it = 0u; it < nIter; it++) {${stash("ao + ", "bo + ")}
    workgroupBarrier();
    if (it + 1u < nIter) {${fetch(`(kt + ${ks * bk}u)`)}
    }
${inner("ao + ", "bo + ")}
    workgroupBarrier();
    kt += ${ks * bk}u;
  }${reduce()}`
    : `
  if (kt < k1) {${fetch("kt")}
  }
  for (; kt < k1; kt += ${bk}u) {${stash("", "")}
    workgroupBarrier();
    if (kt + ${bk}u < k1) {${fetch(`(kt + ${bk}u)`)}
    }
${inner("", "")}
    workgroupBarrier();
  }`;
  const slabs = v.db ? 2 : ks;
  const sv = h16 ? "vec4<f16>" : "vec4f";
  return `${spec.header}
var<workgroup> As: array<${sv}, ${slabs * aSlots}>;
var<workgroup> Bs: array<${sv}, ${slabs * bSlots}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  ${spec.prologue}
  let m0 = wg.y * ${bm}u;
  let n0 = wg.x * ${bn}u;
${
    ks > 1
      ? `  let gk = t / ${T0}u; let tl = t % ${T0}u;
`
      : ""
  }  let tx = ${lid} % ${tx}u;
  let ty = ${lid} / ${tx}u;
  var acc: array<vec4f, ${tm * cg}>;${h16 ? `\n  var ah: array<vec4<f16>, ${tm * cg}>;` : ""}
  var ra: array<vec4f, ${aPer}>;
  var rb: array<vec4f, ${bPer}>;
  var kt = k0;${loop}
${
    ks > 1
      ? `  if (gk == 0u) {
${stores}
  }`
      : stores
  }
}`;
}

/** Uniform block shared by the three conv families (field order = convParams). */
export const CONV_PARAMS = `struct P {
  N: u32, C: u32, H: u32, W: u32, O: u32, OH: u32, OW: u32, KH: u32,
  KW: u32, stride: u32, pad: u32, hasBias: u32, chunk: u32, tapsH: u32, tapsW: u32, _c: u32,
}
@group(0) @binding(0) var<uniform> p: P;`;

/**
 * What a GPU conv kernel (the reg skeleton) is compiled for: kernel size, stride and
 * padding become WGSL constants (`tapConsts`), so the loaders' index divisions by KH·KW, KW and
 * the stride are by constants (a multiply-high and a shift, or nothing for stride 1) instead of a
 * runtime division's ~10 instructions per element. A ResNet has four such geometries, so this
 * multiplies the pipelines by at most four; the fat (software) kernels keep reading p.
 */
export interface ConvTaps {
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

/** Module-scope WGSL constants KH, KW, KK (= KH·KW), STRIDE and PAD for `t` (GPU tiles only). */
export function tapConsts(t: ConvTaps | null): string {
  if (!t) throw new Error("tapConsts: a reg conv kernel is generated for its taps");
  return `const KH = ${t.kh}u; const KW = ${t.kw}u; const KK = ${t.kh * t.kw}u;
const STRIDE = ${t.stride}u; const PAD = ${t.pad}u;`;
}

/**
 * WGSL `fn xPatch(pix, tap) -> f32`: x at output pixel `pix` (n·OH·OW + oh·OW + ow) and tap `tap`
 * (c·KK + kh·KW + kw), 0 in the padding; the GPU tiles' im2col loader, shared by the forward (B =
 * patches × pixels) and grad-weight (B = pixels × patches). Needs tapConsts and a binding `x`
 * read through `ld` (gemm/storage.ts).
 */
export function xPatchWgsl(ld: (e: string) => string): string {
  return `fn xPatch(pix: u32, tap: u32) -> f32 {
  let OHW = p.OH * p.OW;
  let nb = pix / OHW; let r = pix % OHW;
  let c = tap / KK; let kr = tap % KK;
  let ih = i32((r / p.OW) * STRIDE + kr / KW) - i32(PAD);
  let iw = i32((r % p.OW) * STRIDE + kr % KW) - i32(PAD);
  if (u32(ih) >= p.H || u32(iw) >= p.W) { return 0.0; }
  return ${ld("x[((nb * p.C + c) * p.H + u32(ih)) * p.W + u32(iw)]")};
}`;
}

/**
 * The taps a conv kernel of variant v is generated for (a kernel family argument, compared as
 * JSON): the geometry's for the GPU tiles, null for the fat kernels, which read them from p, so
 * one fat kernel serves every geometry and is generated once.
 */
export function tapsOf(g: ConvGeom, v: GemmVariant): ConvTaps | null {
  return v.kind === "fat" ? null : { kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad };
}

/** Kernel-name suffix of a ConvTaps (`:3x3s1p1`; none for a fat kernel's null). */
export function tapsName(t: ConvTaps | null): string {
  return t ? `:${t.kh}x${t.kw}s${t.stride}p${t.pad}` : "";
}

export interface ConvGeom {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

/**
 * Kernel taps [lo, hi) that touch the input for some output position: on tiny maps (layer4 at
 * 32 px is 1×1) most taps of a padded 3×3 conv only ever read padding.
 */
export function liveTaps(size: number, out: number, k: number, stride: number, pad: number) {
  const live = (t: number) => {
    for (let o = 0; o < out; o++) {
      const i = o * stride - pad + t;
      if (i >= 0 && i < size) return true;
    }
    return false;
  };
  let lo = 0, hi = k;
  while (lo < hi && !live(lo)) lo++;
  while (hi > lo && !live(hi - 1)) hi--;
  return [lo, hi];
}

/** Live tap rows [h0, h1) and columns [w0, w1) of a conv (see liveTaps). */
export function liveTapBox(g: ConvGeom): { h0: number; h1: number; w0: number; w1: number } {
  const [h0, h1] = liveTaps(g.h, g.oh, g.kh, g.stride, g.pad);
  const [w0, w1] = liveTaps(g.w, g.ow, g.kw, g.stride, g.pad);
  return { h0, h1, w0, w1 };
}

/** The P struct's fields; `tapsH`/`tapsW` pack the live tap rows/columns as lo | hi << 16. */
export function convParamFields(g: ConvGeom, hasBias = 0, chunk = 0): number[] {
  const { h0, h1, w0, w1 } = liveTapBox(g);
  return [
    ...[g.n, g.c, g.h, g.w, g.o, g.oh, g.ow, g.kh, g.kw, g.stride, g.pad, hasBias, chunk],
    h0 | (h1 << 16),
    w0 | (w1 << 16),
  ];
}
