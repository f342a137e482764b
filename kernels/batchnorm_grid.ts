/**
 * Batch norm laid out for hardware GPUs (the "grid" path of kernels/batchnorm.ts,
 * the default where `!gpu.isSoftware`): statistics as partial sums over a grid of
 * chunks, then the elementwise work over the same chunks. Same results as the
 * per-channel path up to f32 rounding (different summation order), same
 * contract (f16/f32 storage for x, y, dy, dx; everything else f32; x may be a
 * strided channel prefix, read at ix: batchnorm.ts).
 *
 * Geometry. A channel c of sub-batch g is nb = N/G planes of L items (vec4 when
 * H·W % 4 == 0, so L = H·W/4; else scalars, L = H·W), plane n at item offset
 * (n·C + c)·L. Flattened, (g, c) owns R = nb·L items j = (n − g·nb)·L + q.
 *
 * Chunks (bnGridPlan). Every pass but eval runs a grid of workgroups of
 * WG = 256 lanes, dispatch [chunks, C, G]; workgroup (k, c, g) works on items
 * [k·K, min((k+1)·K, R)) of (g, c), lane l taking j = k·K + l, + 256, … (one
 * division per lane for its first (n, q), then (n, q) advance by 256 = a·L + b).
 *   chunks₀ = max(1, min(256, ⌈4096 / (G·C)⌉, ⌊R / (256·4)⌋))
 *   K = 256·⌈R / (256·chunks₀)⌉,  chunks = ⌈R / K⌉
 * i.e. aim at 4096 workgroups per pass, but give each lane at least 4 items and
 * (g, c) at most 256 chunks. ResNet-18, batch 64, 224 px (chunks × K per (g, c),
 * workgroups per statistics pass): stem [64,64,112²] 61 × 3,328 vec4 (3,904,
 * 13 vec4 a lane); layer1 [64,64,56²] 49 × 1,024 (3,136; split BN G=2: 20 ×
 * 1,280, 2,560); layer2 [64,128,28²] 10 × 1,280 (1,280); layer3 [64,256,14²]
 * 3 × 1,280 (768); layer4 [64,512,7²] 3 × 1,280 scalars (1,536). The partial of
 * a chunk is the lanes' sums folded by a fixed 256-lane tree.
 *
 * Dispatches (scratch from the pool, disposed after recording):
 * - train, 3: (1) Σx per chunk → part[0, g, c, k]; (2) Σ(x − μ)² per chunk →
 *   part[1, g, c, k], every workgroup first re-deriving μ of its (g, c) from the
 *   ≤ 256 partials of (1) (one load a lane, then the tree: cheaper than a
 *   dispatch), its chunk-0 workgroups writing mean [G,C] and (g = 0) runMean;
 *   (3) apply over chunks: every workgroup derives μ and the variance the same
 *   way (the same sums, so the same bits in every workgroup), invstd,
 *   k1 = γ·inv, k0 = β − μ·k1, then y = x·k1 + k0 (+ReLU); its chunk-0 workgroups
 *   write invstd [G,C] and (g = 0) runVar (the G sub-batch updates averaged,
 *   momentum, unbiased variance M/(M−1), as PyTorch). Two-pass centered variance:
 *   no cancellation when |mean| ≫ std.
 * - eval, 1: y = x·k1 + k0 from the running statistics, grid-stride over all
 *   N·C·L items, min(⌈items/256⌉, 8192) workgroups; each item finds its channel
 *   with two divisions, by constants on hardware (compiled per plane size there:
 *   `perShape`).
 * - backward, 3 in two stages: (1) per chunk (Σd, Σd·(x − μ)) (d = dy masked by
 *   y > 0 when ReLU was fused); then (2) apply over chunks, every workgroup
 *   deriving r = (Σd, Σd·x̂) of its (g, c) and k1 = γ·inv, k2 = −k1·inv·r.y/M,
 *   k0 = −k1·r.x/M − μ·k2, dx = d·k1 + x·k2 + k0; beside it (3) dγ = Σ_g Σd·x̂,
 *   dβ = Σ_g Σd, one workgroup a channel, which shares no written buffer with (2),
 *   so no barrier separates them.
 * Until session 14 a finalize dispatch per channel sat between the sums and the
 * applies (train 4 dispatches in 4 stages, backward 3 in 3) and the applies were
 * grid-stride with three divisions an item; the outputs are bit for bit the same.
 *
 * Deterministic: every sum has a fixed order (lane-serial, then the tree, then
 * partials strided over lanes and the tree), no atomics.
 * Workgroup arrays are 256 floats (512 in backward): fine on hardware GPUs;
 * under DENO_WEBGPU_BACKEND=gl on Mesa they would compile slowly (KERNELS.md),
 * but software adapters take the per-channel path unless forced.
 */
import { type Gpu, type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { forGeometry, gridStrideMain, storagePrelude, treeSumDeclared } from "./wgsl.ts";

/** Lanes per workgroup in every grid-path kernel. */
export const BN_GRID_WG = 256;
/** Workgroups a statistics pass aims at (several waves on a 132-SM card). */
const TARGET_GROUPS = 4096;
/** Items (vec4 or scalars) each lane reduces at least, when R allows. */
const MIN_LANE_ITEMS = 4;
/** Chunks per (g, c) at most: pass (2) re-sums them in every workgroup. */
const MAX_CHUNKS = 256;
/** Workgroups of the grid-stride (apply, eval) kernels at most. */
const APPLY_GROUPS = 8192;

/** How one BN call is split: items per plane L (vec4 or not), per (g, c) R, chunk K, chunks. */
export interface BnGridPlan {
  vec: boolean;
  L: number;
  R: number;
  K: number;
  chunks: number;
}

/** The chunking (header); `chunkItems` forces K (tests: many uneven chunks on small shapes). */
export function bnGridPlan(
  N: number,
  C: number,
  HW: number,
  G: number,
  chunkItems?: number,
): BnGridPlan {
  const vec = HW % 4 === 0;
  const L = vec ? HW / 4 : HW;
  const R = (N / G) * L;
  let K: number;
  if (chunkItems) K = chunkItems;
  else {
    const want = Math.ceil(TARGET_GROUPS / (G * C));
    const chunks0 = Math.max(
      1,
      Math.min(MAX_CHUNKS, want, Math.floor(R / (BN_GRID_WG * MIN_LANE_ITEMS))),
    );
    K = BN_GRID_WG * Math.ceil(R / (BN_GRID_WG * chunks0));
  }
  return { vec, L, R, K, chunks: Math.ceil(R / K) };
}

const WG = BN_GRID_WG;

/**
 * The uniform block; `strided` adds XC, the channel planes between two images of x (x a
 * ChannelPrefix of a wider store, read at ix; every other operand contiguous, at i).
 */
const header = (strided: boolean) => `
struct P {
  C: u32, L: u32, G: u32, nb: u32, R: u32, K: u32, chunks: u32, a: u32,
  b: u32, total: u32, momentum: f32, eps: f32, fm: f32,${strided ? " XC: u32," : ""}
}
@group(0) @binding(0) var<uniform> p: P;`;
/** The kernel that reads no x (dγ and dβ) takes the plain block. */
const HEADER = header(false);

function bnGridParams(
  N: number,
  C: number,
  HW: number,
  G: number,
  plan: BnGridPlan,
  momentum = 0,
  eps = 0,
  XC = C,
): Uint32Array {
  const { L, R, K, chunks } = plan;
  return params([
    C,
    L,
    G,
    N / G,
    R,
    K,
    chunks,
    Math.floor(WG / L),
    WG % L,
    N * C * L,
    { f32: momentum },
    { f32: eps },
    { f32: (N / G) * HW },
    ...(XC !== C ? [XC] : []),
  ]);
}

/** Compute type T, storage type ST, fold of a T into f32 (fixed order), zero. */
function types(vec: boolean) {
  return vec
    ? {
      T: "vec4f",
      ST: "vec4<S>",
      hsum: (v: string) => `dot(${v}, vec4f(1.0))`,
      zero: "vec4f(0.0)",
    }
    : { T: "f32", ST: "S", hsum: (v: string) => v, zero: "0.0" };
}

/**
 * `fn partials(base, lid) -> R`: Σ of part[base .. base + chunks) in a fixed order (lane l
 * sums k = l, l + 256, … serially, then the tree). Used by pass (2), the applies and dγ/dβ alike,
 * so every workgroup derives the same statistics.
 */
function partialsFn(ty: "f32" | "vec2f"): string {
  return `${treeSumDeclared(WG, ty)}
fn partials(base: u32, lid: u32) -> ${ty} {
  var s = ${ty}(0.0);
  for (var k = lid; k < p.chunks; k += ${WG}u) { s += part[base + k]; }
  return total(s, lid);
}`;
}

/**
 * The chunk loop of workgroup (k, c, g): runs body for each of this lane's items i
 * (global item index) of chunk k of (g, c).
 */
function chunkLoop(body: string, strided: boolean): string {
  return `
  var j = k * p.K + lid;
  let j1 = min(k * p.K + p.K, p.R);
  var n = g * p.nb + j / p.L;
  var q = j % p.L;
  loop {
    if (j >= j1) { break; }
    let i = (n * p.C + c) * p.L + q;${strided ? "\n    let ix = (n * p.XC + c) * p.L + q;" : ""}
    ${body}
    j += ${WG}u;
    q += p.b;
    n += p.a;
    if (q >= p.L) { q -= p.L; n += 1u; }
  }`;
}

const CHUNK_ENTRY = `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = wid.x;
  let c = wid.y;
  let g = wid.z;
  let gc = g * p.C + c;`;

/**
 * Train statistics pass over chunks: "sum" writes Σx to part[0, g, c, k]; "sq" writes
 * Σ(x − μ)² to part[1, g, c, k], μ from the "sum" partials, and its chunk-0 workgroups write
 * the statistics the sums complete: mean[g, c], and (g = 0) the running mean of channel c.
 */
const trainPartialKernel = kernelFamily((
  kind: "sum" | "sq",
  vec: boolean,
  dtype: DType,
  strided: boolean,
): Kernel => {
  const xi = strided ? "ix" : "i";
  const { T, ST, hsum, zero } = types(vec);
  const sq = kind === "sq";
  return {
    name: `bn-grid:${kind}:${vec}:${dtype}${strided ? ":xs" : ""}`,
    code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> x: array<${ST}>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;${
      sq
        ? `
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runMean: array<f32>;`
        : ""
    }
${partialsFn("f32")}
${CHUNK_ENTRY}
  ${sq ? "let mu = partials(gc * p.chunks, lid) / p.fm;" : ""}
  var s = ${zero};
  ${chunkLoop(sq ? `let d = ${T}(x[${xi}]) - mu; s += d * d;` : `s += ${T}(x[${xi}]);`, strided)}
  let t = total(${hsum("s")}, lid);
  if (lid == 0u) { part[${sq ? "p.G * p.C * p.chunks + " : ""}gc * p.chunks + k] = t; }${
      sq
        ? `
  if (k == 0u) {
    if (lid == 0u) { mean[gc] = mu; }
    if (g == 0u) {
      var meanAcc = 0.0;
      for (var h = 0u; h < p.G; h++) { meanAcc += partials((h * p.C + c) * p.chunks, lid) / p.fm; }
      if (lid == 0u) {
        runMean[c] = (1.0 - p.momentum) * runMean[c] + p.momentum / f32(p.G) * meanAcc;
      }
    }
  }`
        : ""
    }
}`,
  };
});

const reluOf = (z: string, zero: string, relu: boolean) =>
  relu ? `select(${z}, ${zero}, ${z} < ${zero})` : z;

/**
 * Train apply over chunks: workgroup (k, c, g) derives its channel's statistics from the
 * partials as the "sq" pass derives μ (the same sums in the same order, so the same bits), then
 * y = x·k1 + k0 (+ReLU) over its chunk, k1 = γ·inv, k0 = β − μ·k1. Its chunk-0 workgroups write
 * invstd[g, c] and (g = 0) the running variance of channel c (unbiased, M/(M−1), as PyTorch).
 */
const trainApplyKernel = kernelFamily(
  (vec: boolean, relu: boolean, dtype: DType, strided: boolean): Kernel => {
    const xi = strided ? "ix" : "i";
    const { T, ST, zero } = types(vec);
    return {
      name: `bn-grid:apply:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
      code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> x: array<${ST}>;
@group(0) @binding(2) var<storage, read> part: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> runVar: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<${ST}>;
${partialsFn("f32")}
${CHUNK_ENTRY}
  let mu = partials(gc * p.chunks, lid) / p.fm;
  let v = partials(p.G * p.C * p.chunks + gc * p.chunks, lid) / p.fm;
  let inv = 1.0 / sqrt(v + p.eps);
  let k1 = gamma[c] * inv;
  let k0 = beta[c] - mu * k1;
  ${
        chunkLoop(
          `let z = ${T}(x[${xi}]) * k1 + k0; y[i] = ${ST}(${reluOf("z", zero, relu)});`,
          strided,
        )
      }
  if (k == 0u) {
    if (lid == 0u) { invstd[gc] = inv; }
    if (g == 0u) {
      var varAcc = 0.0;
      for (var h = 0u; h < p.G; h++) {
        let vh = partials(p.G * p.C * p.chunks + (h * p.C + c) * p.chunks, lid) / p.fm;
        varAcc += vh * p.fm / (p.fm - 1.0);
      }
      if (lid == 0u) {
        runVar[c] = (1.0 - p.momentum) * runVar[c] + p.momentum / f32(p.G) * varAcc;
      }
    }
  }
}`,
    };
  },
);

/** Eval forward from the running statistics, one item per loop step. */
const evalKernel = kernelFamily(
  (vec: boolean, relu: boolean, dtype: DType, strided: boolean): Kernel => {
    const xi = strided ? "ix" : "i";
    const { T, ST, zero } = types(vec);
    return {
      name: `bn-grid:eval:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
      code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> x: array<${ST}>;
@group(0) @binding(2) var<storage, read> runMean: array<f32>;
@group(0) @binding(3) var<storage, read> runVar: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<${ST}>;
${
        gridStrideMain(
          WG,
          "p.total",
          `    ${
            strided
              ? `let pl = i / p.L;
    let n = pl / p.C;
    let c = pl - n * p.C;
    let ix = i + n * (p.XC - p.C) * p.L;`
              : "let c = (i / p.L) % p.C;"
          }
    let ga = gamma[c] / sqrt(runVar[c] + p.eps);
    let z = ${T}(x[${xi}]) * ga + (beta[c] - runMean[c] * ga);
    y[i] = ${ST}(${reluOf("z", zero, relu)});`,
        )
      }`,
    };
  },
);

/** d = dy, masked by y > 0 when ReLU was fused. */
function grad(T: string, zero: string, relu: boolean): string {
  return relu ? `select(${zero}, ${T}(dy[i]), ${T}(y[i]) > ${zero})` : `${T}(dy[i])`;
}

/** Backward pass over chunks: (Σd, Σd·(x − μ)) → part[g, c, k]. */
const backwardPartialKernel = kernelFamily(
  (vec: boolean, relu: boolean, dtype: DType, strided: boolean): Kernel => {
    const xi = strided ? "ix" : "i";
    const { T, ST, hsum, zero } = types(vec);
    const o = relu ? 1 : 0;
    return {
      name: `bn-grid:bwd-partial:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
      code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> dy: array<${ST}>;
@group(0) @binding(2) var<storage, read> x: array<${ST}>;
${relu ? `@group(0) @binding(3) var<storage, read> y: array<${ST}>;` : ""}
@group(0) @binding(${3 + o}) var<storage, read> mean: array<f32>;
@group(0) @binding(${4 + o}) var<storage, read_write> part: array<vec2f>;
${treeSumDeclared(WG, "vec2f")}
${CHUNK_ENTRY}
  let mu = mean[gc];
  var s1 = ${zero};
  var s2 = ${zero};
  ${chunkLoop(`let d = ${grad(T, zero, relu)}; s1 += d; s2 += d * (${T}(x[${xi}]) - mu);`, strided)}
  let t = total(vec2f(${hsum("s1")}, ${hsum("s2")}), lid);
  if (lid == 0u) { part[gc * p.chunks + k] = t; }
}`,
    };
  },
);

/**
 * dγ and dβ, one workgroup per channel: Σ over the sub-batches of the partials' (Σd·x̂, Σd).
 * It reads what the apply reads and writes what nothing else touches, so it needs no barrier
 * against the apply: the two run as one stage after the partials.
 */
const backwardDgbKernel = kernelFamily((): Kernel => ({
  name: "bn-grid:bwd-dgb",
  code: `${HEADER}
@group(0) @binding(1) var<storage, read> part: array<vec2f>;
@group(0) @binding(2) var<storage, read> invstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;
${partialsFn("vec2f")}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  var acc = vec2f(0.0);
  for (var g = 0u; g < p.G; g++) {
    let gc = g * p.C + c;
    acc += partials(gc * p.chunks, lid) * vec2f(1.0, invstd[gc]); // Σd, Σd·x̂
  }
  if (lid == 0u) {
    dgamma[c] = acc.y;
    dbeta[c] = acc.x;
  }
}`,
}));

/**
 * dx = d·k1 + x·k2 + k0 over chunks, workgroup (k, c, g) deriving its (g, c)'s coefficients from
 * the partials: k1 = γ·inv, k2 = −k1·inv·Σd·x̂/M, k0 = −k1·Σd/M − μ·k2.
 */
const backwardApplyKernel = kernelFamily(
  (vec: boolean, relu: boolean, dtype: DType, strided: boolean): Kernel => {
    const xi = strided ? "ix" : "i";
    const { T, ST, zero } = types(vec);
    const o = relu ? 1 : 0;
    return {
      name: `bn-grid:bwd-apply:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
      code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> dy: array<${ST}>;
@group(0) @binding(2) var<storage, read> x: array<${ST}>;
${relu ? `@group(0) @binding(3) var<storage, read> y: array<${ST}>;` : ""}
@group(0) @binding(${3 + o}) var<storage, read> part: array<vec2f>;
@group(0) @binding(${4 + o}) var<storage, read> gamma: array<f32>;
@group(0) @binding(${5 + o}) var<storage, read> mean: array<f32>;
@group(0) @binding(${6 + o}) var<storage, read> invstd: array<f32>;
@group(0) @binding(${7 + o}) var<storage, read_write> dx: array<${ST}>;
${partialsFn("vec2f")}
${CHUNK_ENTRY}
  let mu = mean[gc];
  let inv = invstd[gc];
  let r = partials(gc * p.chunks, lid) * vec2f(1.0, inv); // Σd, Σd·x̂
  let k1 = gamma[c] * inv;
  let k2 = -k1 * inv * r.y / p.fm;
  let k0 = -k1 * r.x / p.fm - mu * k2;
  ${
        chunkLoop(
          `let d = ${grad(T, zero, relu)}; dx[i] = ${ST}(d * k1 + ${T}(x[${xi}]) * k2 + k0);`,
          strided,
        )
      }
}`,
    };
  },
);

/** Workgroups of the eval kernel (grid-stride over all N·C·L items). */
const applyGroups = (N: number, C: number, L: number): number =>
  Math.min(Math.ceil((N * C * L) / WG), APPLY_GROUPS);

/** Shapes as batchnorm.ts has validated them. */
export interface BnGridDims {
  N: number;
  C: number;
  HW: number;
  G: number;
}

/**
 * The eval kernel compiled for its call's plane size on hardware (wgsl.ts forGeometry: every u32
 * field but the item count and the channel count a constant), so the divisions each item makes
 * to find its channel are by constants. Channels stay a uniform: DenseNet-121 has a batch norm of
 * each width from 64 to 1,024 channels, and baking them too took its step from 57 distinct
 * kernels to 201 (dry-run count). The chunked passes divide once a lane and stay uniform-driven.
 */
function perShape(gpu: Gpu, k: Kernel, pr: Uint32Array): Kernel {
  return forGeometry(gpu, k, pr, ["total", "C"]);
}

/** Train forward on the grid path (batchnorm.ts validates and allocates the outputs). */
export function bnGridTrain(
  d: BnGridDims,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  out: { y: Tensor; mean: Tensor; invstd: Tensor },
  o: { momentum: number; eps: number; relu: boolean; chunkItems?: number },
): void {
  const { N, C, HW, G } = d;
  const gpu = x.gpu;
  const plan = bnGridPlan(N, C, HW, G, o.chunkItems);
  const XC = x.imageChannels, xs = XC !== C;
  const pr = bnGridParams(N, C, HW, G, plan, o.momentum, o.eps, XC);
  const part = Tensor.empty(gpu, [2, G, C, plan.chunks]);
  const grid: [number, number, number] = [plan.chunks, C, G];
  gpu.dispatch(
    trainPartialKernel("sum", plan.vec, x.dtype, xs),
    [x.storage, part.buffer],
    pr,
    grid,
  );
  gpu.dispatch(
    trainPartialKernel("sq", plan.vec, x.dtype, xs),
    [x.storage, ...[part, out.mean, runMean].map((t) => t.buffer)],
    pr,
    grid,
  );
  gpu.dispatch(
    trainApplyKernel(plan.vec, o.relu, x.dtype, xs),
    [x.storage, ...[part, gamma, beta, out.invstd, runVar, out.y].map((t) => t.buffer)],
    pr,
    grid,
  );
  part.dispose();
}

/** Eval forward on the grid path. */
export function bnGridEval(
  d: BnGridDims,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  y: Tensor,
  o: { eps: number; relu: boolean },
): void {
  const { N, C, HW } = d;
  const plan = bnGridPlan(N, C, HW, 1);
  const XC = x.imageChannels;
  const pr = bnGridParams(N, C, HW, 1, plan, 0, o.eps, XC);
  x.gpu.dispatch(
    perShape(x.gpu, evalKernel(plan.vec, o.relu, x.dtype, XC !== C), pr),
    [x.storage, ...[runMean, runVar, gamma, beta, y].map((t) => t.buffer)],
    pr,
    [applyGroups(N, C, plan.L)],
  );
}

/** Backward on the grid path (y only when ReLU was fused). */
export function bnGridBackward(
  d: BnGridDims,
  dy: Tensor,
  x: Tensor,
  y: Tensor | null,
  gamma: Tensor,
  mean: Tensor,
  invstd: Tensor,
  out: { dx: Tensor; dgamma: Tensor; dbeta: Tensor },
  o: { chunkItems?: number },
): void {
  const { N, C, HW, G } = d;
  const gpu = x.gpu;
  const relu = y !== null;
  const plan = bnGridPlan(N, C, HW, G, o.chunkItems);
  const XC = x.imageChannels, xs = XC !== C;
  const pr = bnGridParams(N, C, HW, G, plan, 0, 0, XC);
  const part = Tensor.empty(gpu, [G, C, plan.chunks, 2]);
  const ys = relu ? [y!] : [];
  const grid: [number, number, number] = [plan.chunks, C, G];
  gpu.dispatch(
    backwardPartialKernel(plan.vec, relu, x.dtype, xs),
    [dy.buffer, x.storage, ...[...ys, mean, part].map((t) => t.buffer)],
    pr,
    grid,
  );
  gpu.dispatch(
    backwardApplyKernel(plan.vec, relu, x.dtype, xs),
    [dy.buffer, x.storage, ...[...ys, part, gamma, mean, invstd, out.dx].map((t) => t.buffer)],
    pr,
    grid,
  );
  gpu.dispatch(
    backwardDgbKernel(),
    [part, invstd, out.dgamma, out.dbeta].map((t) => t.buffer),
    pr,
    [C],
  );
  part.dispose();
}
