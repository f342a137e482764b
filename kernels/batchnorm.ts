/**
 * Batch normalization over (N, H, W) per channel: training forward (batch
 * statistics, running-stat update), eval forward, backward; optional fused
 * ReLU; `groups` = split BN (G consecutive sub-batches with own statistics).
 *
 * Two layouts (`batchNormPath`; force one with `setBatchNormPath`):
 * - "channel" (this file): the default on software adapters (lavapipe,
 *   llvmpipe), where it was measured best. One dispatch per op, C workgroups
 *   of 8 lanes (described below).
 * - "grid" (batchnorm_grid.ts): the default on hardware GPUs, where C
 *   workgroups of 8 lanes (512 threads for C = 64) leave almost every SM idle
 *   and each lane streams ~100 KB through dependent loads. Partial sums over
 *   chunks of ~1–3K items per workgroup of 256 lanes (≥ 3,000 workgroups for
 *   ResNet-18's layer1 at batch 64), then an elementwise apply over the same
 *   chunks that derives its channel's coefficients from the partials itself:
 *   train 3 dispatches, eval 1, backward 3 (in two stages). Chunking formula,
 *   mapping and scratch there.
 * Both: same inputs, outputs and f16/f32 storage contract; fixed-order sums
 * (deterministic per path); they agree to f32 rounding, not bit for bit.
 *
 * "channel" mapping: ONE dispatch per op, one workgroup of BN_WG = 8 lanes per channel
 * (dispatch [C]); all per-channel scalars are loaded once per lane, outside
 * the element loops. A channel of sub-batch g is nb = N/G contiguous planes of
 * H·W floats; lanes stride over the flattened (image, plane position) range,
 * advancing (n, q) by 8 = a·L + b without a division per element. Planes are
 * read as vec4 when H·W % 4 == 0 (every ResNet plane: 32², 16², …, 2²).
 * - train: per g, pass 1 Σx → mean, pass 2 Σ(x−mean)² → variance (two-pass:
 *   no cancellation when |mean| ≫ std), pass 3 y = x·(γ·inv) + (β − mean·γ·inv)
 *   (+ReLU); lane 0 writes mean/invstd [G,C] and runMean/runVar (average of the
 *   G sub-batch updates, momentum, UNBIASED variance M/(M−1), as PyTorch).
 * - eval: one pass, y = x·k1 + k0 from the running statistics.
 * - backward: per g, pass 1 Σd and Σd·(x−mean) (d = dy masked by y > 0 when ReLU
 *   was fused), pass 2 dx = d·k1 + x·k2 + k0; dγ/dβ go to a [2,C] scratch and are
 *   copied out (with y the kernel already binds the 8-buffer maximum).
 * Reductions: fixed-order shared-memory tree (8 lanes: 3 levels) → deterministic.
 *
 * Why (lavapipe, Mesa 22.3): every storage-buffer access is a per-lane scalar
 * loop (extract address, bounds check, load, insert), so the cost is the number
 * of (lane, component) accesses; ALU work is nearly free. The old layout (a
 * per-channel stats kernel, then a grid-stride apply that re-read mean, invstd,
 * γ, β per element and did 2–4 integer divisions per element) cost ~8 accesses
 * per element forward and ~12 backward; now 4 and 6–7.
 *
 * Storage: x, y, dy, dx f32 or f16 (wgsl.ts `storagePrelude`; y and dx take
 * x's dtype); every load is widened to f32, statistics and all arithmetic are
 * f32, each output element is rounded once. γ, β, running mean/var, the saved
 * mean/invstd and dγ/dβ are always f32.
 *
 * x may be a channel prefix of a wider store (tensor.ts ChannelPrefix: a dense
 * block's layer input, read in place): both layouts then compile a variant
 * (`strided`, ":xs" in its name) whose uniform block adds XC, the store's channels,
 * and which reads x at ix = (n·XC + c)·L + q while y, dy and dx stay contiguous at
 * i = (n·C + c)·L + q. Same bits as on a contiguous copy of the prefix (tested).
 *
 * Workgroup of 8 lanes (BN_WG): measured against 16, 32 and 64 (kernels/KERNELS.md).
 * Not tried: Welford/Chan single statistics pass (would save one of the four
 * accesses per element forward). Two-stage partial sums for GPUs with many SMs:
 * the "grid" layout (batchnorm_grid.ts), not measured on a GPU yet.
 */
import { type Gpu, type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { bnDims, type BnTrainOptions } from "./cpu/batchnorm.ts";
import { sameDtype } from "./cast.ts";
import { storagePrelude, treeSumDeclared } from "./wgsl.ts";
import { bnGridBackward, bnGridEval, bnGridTrain } from "./batchnorm_grid.ts";

/**
 * Which layout runs batch norm: "channel" (one 8-lane workgroup per channel, this file),
 * "grid" (chunked partial sums and elementwise apply, batchnorm_grid.ts), or "auto" (default):
 * "channel" on software adapters (lavapipe, llvmpipe), where it was measured best, "grid" on
 * hardware GPUs.
 */
export type BnPath = "auto" | "channel" | "grid";

let forcedPath: BnPath = "auto";
let forcedChunk: number | undefined;

/**
 * Forces the batch-norm layout for later calls (tests run both on one adapter; "auto" restores
 * the default). `chunkItems` overrides the grid path's chunk length K (items of a (g, c) reduced
 * by one workgroup; batchnorm_grid.ts), so small test shapes get many, uneven chunks.
 */
export function setBatchNormPath(path: BnPath, o: { chunkItems?: number } = {}): void {
  if (o.chunkItems !== undefined && !(Number.isInteger(o.chunkItems) && o.chunkItems >= 1)) {
    throw new Error(`setBatchNormPath: chunkItems must be a positive integer, got ${o.chunkItems}`);
  }
  forcedPath = path;
  forcedChunk = o.chunkItems;
}

/** The layout batch norm runs with on this adapter now (see BnPath). */
export function batchNormPath(gpu: Gpu): "channel" | "grid" {
  if (forcedPath !== "auto") return forcedPath;
  return gpu.isSoftware ? "channel" : "grid";
}

/** Lanes per channel workgroup: one 8-wide AVX2 vector on lavapipe (measured, header). */
export const BN_WG = 8;

/**
 * The uniform block; `strided` adds XC, the channel planes between two images of x (x a
 * ChannelPrefix of a wider store, read at ix: the outputs stay contiguous, at i).
 */
const header = (strided: boolean) => `
struct P {
  C: u32, L: u32, G: u32, nb: u32, a: u32, b: u32, momentum: f32, eps: f32, fm: f32,${
  strided ? " XC: u32," : ""
}
}
@group(0) @binding(0) var<uniform> p: P;`;

/**
 * Element type T (compute): vec4f when H·W is a multiple of 4 (planes are
 * L = H·W/4 vec4 long), else f32 (L = H·W); ST is its storage type (S or
 * vec4<S>, S = f32 or f16); hsum folds a T into an f32 in fixed order.
 */
function common(
  vec: boolean,
): { T: string; ST: string; hsum: (v: string) => string; zero: string } {
  return vec
    ? { T: "vec4f", ST: "vec4<S>", hsum: (v) => `dot(${v}, vec4f(1.0))`, zero: "vec4f(0.0)" }
    : { T: "f32", ST: "S", hsum: (v) => v, zero: "0.0" };
}

/**
 * Runs body for every element i of images [n0, n1) of channel c: lane lid takes
 * j = lid, lid+WG, … of the flattened (image, plane position) range; (n, q)
 * advance by WG = a·L + b without a division per element.
 */
function lanes(body: string, strided: boolean): string {
  return `{
      var n = n0 + lidL.x;
      var q = lidL.y;
      loop {
        if (n >= n1) { break; }
        let i = (n * p.C + c) * p.L + q;${
    strided ? "\n        let ix = (n * p.XC + c) * p.L + q;" : ""
  }
        ${body}
        q += p.b;
        n += p.a;
        if (q >= p.L) { q -= p.L; n += 1u; }
      }
    }`;
}

const ENTRY = (wg: number) => `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  // This lane's first (image offset, plane position): lid = x·L + y.
  let lidL = vec2u(lid / p.L, lid % p.L);`;

/** Train forward: per sub-batch mean, centered variance, then y, all in one workgroup per channel. */
const trainKernel = kernelFamily((
  wg: number,
  vec: boolean,
  relu: boolean,
  dtype: DType,
  strided: boolean,
): Kernel => {
  const xi = strided ? "ix" : "i";
  const { T, ST, hsum, zero } = common(vec);
  return {
    name: `bn:train:${wg}:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
    code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> x: array<${ST}>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> runMean: array<f32>;
@group(0) @binding(7) var<storage, read_write> runVar: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<${ST}>;
${treeSumDeclared(wg, "vec2f")}
${ENTRY(wg)}
  var meanAcc = 0.0;
  var varAcc = 0.0;
  for (var g = 0u; g < p.G; g++) {
    let n0 = g * p.nb;
    let n1 = n0 + p.nb;
    var s = ${zero};
    ${lanes(`s += ${T}(x[${xi}]);`, strided)}
    let mu = total(vec2f(${hsum("s")}, 0.0), lid).x / p.fm;
    var ss = ${zero};
    ${lanes(`let d = ${T}(x[${xi}]) - mu; ss += d * d;`, strided)}
    let v = total(vec2f(${hsum("ss")}, 0.0), lid).x / p.fm;
    let inv = 1.0 / sqrt(v + p.eps);
    let ga = gamma[c] * inv;
    let be = beta[c] - mu * ga;
    ${
      lanes(
        `let z = ${T}(x[${xi}]) * ga + be; y[i] = ${ST}(${
          relu ? "select(z, " + zero + ", z < " + zero + ")" : "z"
        });`,
        strided,
      )
    }
    if (lid == 0u) {
      mean[g * p.C + c] = mu;
      invstd[g * p.C + c] = inv;
    }
    meanAcc += mu;
    varAcc += v * p.fm / (p.fm - 1.0);
  }
  if (lid == 0u) {
    let k = p.momentum / f32(p.G);
    runMean[c] = (1.0 - p.momentum) * runMean[c] + k * meanAcc;
    runVar[c] = (1.0 - p.momentum) * runVar[c] + k * varAcc;
  }
}`,
  };
});

/** Eval forward with the running statistics, one workgroup per channel. */
const evalKernel = kernelFamily((
  wg: number,
  vec: boolean,
  relu: boolean,
  dtype: DType,
  strided: boolean,
): Kernel => {
  const xi = strided ? "ix" : "i";
  const { T, ST, zero } = common(vec);
  return {
    name: `bn:eval:${wg}:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
    code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> x: array<${ST}>;
@group(0) @binding(2) var<storage, read> runMean: array<f32>;
@group(0) @binding(3) var<storage, read> runVar: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<${ST}>;
${ENTRY(wg)}
  let ga = gamma[c] / sqrt(runVar[c] + p.eps);
  let be = beta[c] - runMean[c] * ga;
  let n0 = 0u;
  let n1 = p.nb;
  ${
      lanes(
        `let z = ${T}(x[${xi}]) * ga + be; y[i] = ${ST}(${
          relu ? "select(z, " + zero + ", z < " + zero + ")" : "z"
        });`,
        strided,
      )
    }
}`,
  };
});

/**
 * Backward, one workgroup per channel: per sub-batch Σd and Σd·(x−μ) (d = dy,
 * masked by y > 0 when ReLU was fused), then dx = d·k1 + x·k2 + k0 in a
 * second pass. dγ, dβ go to a [2,C] scratch (dγ first): with y bound the
 * kernel already has 8 storage buffers.
 */
const backwardKernel = kernelFamily((
  wg: number,
  vec: boolean,
  relu: boolean,
  dtype: DType,
  strided: boolean,
): Kernel => {
  const xi = strided ? "ix" : "i";
  const { T, ST, hsum, zero } = common(vec);
  const o = relu ? 1 : 0;
  const d = relu ? `select(${zero}, ${T}(dy[i]), ${T}(y[i]) > ${zero})` : `${T}(dy[i])`;
  return {
    name: `bn:backward:${wg}:${vec}:${relu}:${dtype}${strided ? ":xs" : ""}`,
    code: `${storagePrelude(dtype)}${header(strided)}
@group(0) @binding(1) var<storage, read> dy: array<${ST}>;
@group(0) @binding(2) var<storage, read> x: array<${ST}>;
${relu ? `@group(0) @binding(3) var<storage, read> y: array<${ST}>;` : ""}
@group(0) @binding(${3 + o}) var<storage, read> gamma: array<f32>;
@group(0) @binding(${4 + o}) var<storage, read> mean: array<f32>;
@group(0) @binding(${5 + o}) var<storage, read> invstd: array<f32>;
@group(0) @binding(${6 + o}) var<storage, read_write> dx: array<${ST}>;
@group(0) @binding(${7 + o}) var<storage, read_write> dgb: array<f32>;
${treeSumDeclared(wg, "vec2f")}
${ENTRY(wg)}
  var acc = vec2f(0.0);
  for (var g = 0u; g < p.G; g++) {
    let n0 = g * p.nb;
    let n1 = n0 + p.nb;
    let mu = mean[g * p.C + c];
    let inv = invstd[g * p.C + c];
    var s1 = ${zero};
    var s2 = ${zero};
    ${lanes(`let d = ${d}; s1 += d; s2 += d * (${T}(x[${xi}]) - mu);`, strided)}
    let r = total(vec2f(${hsum("s1")}, ${hsum("s2")}), lid) * vec2f(1.0, inv); // Σd, Σd·x̂
    acc += r;
    let k1 = gamma[c] * inv;
    let k2 = -k1 * inv * r.y / p.fm;
    let k0 = -k1 * r.x / p.fm - mu * k2;
    ${lanes(`let d = ${d}; dx[i] = ${ST}(d * k1 + ${T}(x[${xi}]) * k2 + k0);`, strided)}
  }
  if (lid == 0u) {
    dgb[c] = acc.y;
    dgb[p.C + c] = acc.x;
  }
}`,
  };
});

/** Uniform block for a dispatch over images [0, N) in G groups of nb, plane length HW. */
function bnParams(
  N: number,
  C: number,
  HW: number,
  G: number,
  wg: number,
  momentum = 0,
  eps = 0,
  XC = C,
): { pr: Uint32Array; vec: boolean } {
  const vec = HW % 4 === 0;
  const L = vec ? HW / 4 : HW;
  const pr = params([
    C,
    L,
    G,
    N / G,
    Math.floor(wg / L),
    wg % L,
    { f32: momentum },
    { f32: eps },
    { f32: (N / G) * HW },
    ...(XC !== C ? [XC] : []),
  ]);
  return { pr, vec };
}

/** Per-channel parameters and statistics: C values each, always f32 (whatever x's storage). */
function checkC(ts: Array<[Tensor, string]>, C: number, what: string): void {
  for (const [t, name] of ts) {
    if (t.size !== C) throw new Error(`${what}: ${name} has ${t.size} values for ${C} channels`);
    if (t.dtype !== "f32") throw new Error(`${what}: ${name} must be f32, got ${t.dtype}`);
  }
}

/** Training-mode batch norm; updates runMean/runVar in place. mean/invstd are [G,C]. */
export function batchNormTrain(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  o: BnTrainOptions = {},
): { y: Tensor; mean: Tensor; invstd: Tensor } {
  const { N, C, HW, G, M } = bnDims(x.shape, o.groups, "batchNormTrain");
  if (M < 2) throw new Error(`batchNormTrain: expected more than 1 value per channel, got ${M}`);
  checkC(
    [[gamma, "gamma"], [beta, "beta"], [runMean, "runMean"], [runVar, "runVar"]],
    C,
    "batchNormTrain",
  );
  const gpu = x.gpu;
  const mean = Tensor.empty(gpu, [G, C]), invstd = Tensor.empty(gpu, [G, C]);
  const y = Tensor.empty(gpu, x.shape, x.dtype);
  const momentum = o.momentum ?? 0.1, eps = o.eps ?? 1e-5, relu = !!o.relu;
  if (batchNormPath(gpu) === "grid") {
    bnGridTrain({ N, C, HW, G }, x, gamma, beta, runMean, runVar, { y, mean, invstd }, {
      momentum,
      eps,
      relu,
      chunkItems: forcedChunk,
    });
    return { y, mean, invstd };
  }
  const XC = x.imageChannels;
  const { pr, vec } = bnParams(N, C, HW, G, BN_WG, momentum, eps, XC);
  gpu.dispatch(
    trainKernel(BN_WG, vec, relu, x.dtype, XC !== C),
    [x.storage, ...[gamma, beta, mean, invstd, runMean, runVar, y].map((t) => t.buffer)],
    pr,
    [C],
  );
  return { y, mean, invstd };
}

/** Eval-mode batch norm with the running statistics. */
export function batchNormEval(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  o: { eps?: number; relu?: boolean } = {},
): Tensor {
  const { N, C, HW } = bnDims(x.shape, 1, "batchNormEval");
  checkC(
    [[gamma, "gamma"], [beta, "beta"], [runMean, "runMean"], [runVar, "runVar"]],
    C,
    "batchNormEval",
  );
  const y = Tensor.empty(x.gpu, x.shape, x.dtype);
  const eps = o.eps ?? 1e-5, relu = !!o.relu;
  if (batchNormPath(x.gpu) === "grid") {
    bnGridEval({ N, C, HW, G: 1 }, x, gamma, beta, runMean, runVar, y, { eps, relu });
    return y;
  }
  const XC = x.imageChannels;
  const { pr, vec } = bnParams(N, C, HW, 1, BN_WG, 0, eps, XC);
  x.gpu.dispatch(
    evalKernel(BN_WG, vec, relu, x.dtype, XC !== C),
    [x.storage, ...[runMean, runVar, gamma, beta, y].map((t) => t.buffer)],
    pr,
    [C],
  );
  return y;
}

/** Backward of batchNormTrain (y is the forward output, needed when relu was fused). */
export function batchNormBackward(
  dy: Tensor,
  x: Tensor,
  y: Tensor | null,
  gamma: Tensor,
  mean: Tensor,
  invstd: Tensor,
  o: { relu?: boolean; groups?: number } = {},
): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const { N, C, HW, G } = bnDims(x.shape, o.groups, "batchNormBackward");
  const relu = !!o.relu;
  if (relu && !y) throw new Error("batchNormBackward: relu=true needs the forward output y");
  if (dy.size !== x.size || (relu && y!.size !== x.size)) {
    throw new Error(`batchNormBackward: dy/y must match x [${x.shape}], got [${dy.shape}]`);
  }
  checkC([[gamma, "gamma"]], C, "batchNormBackward");
  checkC([[mean, "mean"], [invstd, "invstd"]], G * C, "batchNormBackward");
  const dtype = sameDtype("batchNormBackward", dy, x, ...(relu ? [y!] : []));
  const gpu = x.gpu;
  if (batchNormPath(gpu) === "grid") {
    const out = {
      dx: Tensor.empty(gpu, x.shape, dtype),
      dgamma: Tensor.empty(gpu, [C]),
      dbeta: Tensor.empty(gpu, [C]),
    };
    bnGridBackward({ N, C, HW, G }, dy, x, relu ? y : null, gamma, mean, invstd, out, {
      chunkItems: forcedChunk,
    });
    return out;
  }
  const dgb = Tensor.empty(gpu, [2, C]);
  const dx = Tensor.empty(gpu, x.shape, dtype), dgamma = Tensor.empty(gpu, [C]);
  const dbeta = Tensor.empty(gpu, [C]);
  const XC = x.imageChannels;
  const { pr, vec } = bnParams(N, C, HW, G, BN_WG, 0, 0, XC);
  gpu.dispatch(
    backwardKernel(BN_WG, vec, relu, dtype, XC !== C),
    [
      dy.buffer,
      x.storage,
      ...[...(relu ? [y!] : []), gamma, mean, invstd, dx, dgb].map((t) => t.buffer),
    ],
    pr,
    [C],
  );
  gpu.copy(dgb.buffer, 0, dgamma.buffer, 0, C * 4);
  gpu.copy(dgb.buffer, C * 4, dbeta.buffer, 0, C * 4);
  dgb.dispose();
  return { dx, dgamma, dbeta };
}
