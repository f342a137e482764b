/**
 * Batch normalization over (N, H, W) per channel: training forward (batch
 * statistics, running-stat update), eval forward, backward; optional fused
 * ReLU; `groups` = split BN (G consecutive sub-batches with own statistics).
 *
 * Kernels and mapping:
 * - stats: one workgroup of WG lanes per channel c (dispatch [C]). For each
 *   sub-batch g the lanes stride over its M = (N/G)·H·W elements; a fixed-order
 *   shared-memory tree gives the sum → mean, then a second pass over the data
 *   gives the centered sum of squares → variance (two-pass: no cancellation
 *   when |mean| ≫ std, unlike E[x²]−E[x]²). Lane 0 writes mean/invstd [G,C] and
 *   updates runMean/runVar with the average of the G sub-batch updates
 *   (momentum, UNBIASED variance M/(M−1), as PyTorch).
 * - apply (train and eval): grid-stride elementwise, workgroup 64, dispatch
 *   min(ceil(n/64), 4096); eval computes 1/√(runVar+eps) inline.
 * - backward sums: one workgroup per channel; per sub-batch a vec2 tree gives
 *   Σdy and Σdy·x̂ (dy masked by y>0 when ReLU was fused); writes them to a
 *   [2,G,C] scratch plus dγ, dβ. backward dx: grid-stride elementwise.
 * Deterministic: every sum has a fixed order (lane strides, then the tree).
 *
 * Lane loops: when H·W ≥ WG the lanes stride over each image's plane (no
 * integer div/mod per element); otherwise over the flat sub-batch index.
 *
 * Measured on lavapipe (2 shared, busy cores; bench: train fwd + backward):
 *   x=[32,64,56,56]: WG=64 1.47 s, WG=256 2.86 s;  x=[64,1024,2,2]: WG=64 165 ms,
 *   WG=256 402 ms. WG=64 kept (lavapipe pays for barriers and idle lanes).
 *   The nested plane loop vs the flat div/mod loop: 1.39 s vs 1.47 s (noise level).
 * Not tried: Welford/Chan single pass (saves one read of x per channel at the
 * cost of a division per element); two-stage partial sums for GPUs with many
 * SMs (C workgroups underfill an H100 at C=64).
 */
import { type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { bnDims, type BnTrainOptions } from "./cpu/batchnorm.ts";

const WG = 64;
const EW = 64;
const MAX_GROUPS = 4096;

const HEADER = `
struct P { N: u32, C: u32, HW: u32, G: u32, momentum: f32, eps: f32, n: u32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;`;

/** WGSL: element index of (sub-batch g, j-th element of it, channel c). */
const INDEX = `
fn at(g: u32, j: u32, c: u32) -> u32 {
  let nb = p.N / p.G;
  let n = g * nb + j / p.HW;
  return (n * p.C + c) * p.HW + j % p.HW;
}`;

const statsKernel: Kernel = {
  key: `bn:stats:${WG}`,
  code: `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> runMean: array<f32>;
@group(0) @binding(5) var<storage, read_write> runVar: array<f32>;
var<workgroup> sh: array<f32, ${WG}>;
${INDEX}
fn total(v: f32, lid: u32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sh[lid] += sh[lid + s]; }
    workgroupBarrier();
  }
  let r = sh[0];
  workgroupBarrier();
  return r;
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let m = (p.N / p.G) * p.HW;
  let fm = f32(m);
  var meanAcc = 0.0;
  var varAcc = 0.0;
  for (var g = 0u; g < p.G; g++) {
    var s = 0.0;
    if (p.HW >= ${WG}u) {
      for (var n = g * (p.N / p.G); n < (g + 1u) * (p.N / p.G); n++) {
        let row = (n * p.C + c) * p.HW;
        for (var q = lid; q < p.HW; q += ${WG}u) { let i = row + q; s += x[i]; }
      }
    } else {
      for (var j = lid; j < m; j += ${WG}u) { let i = at(g, j, c); s += x[i]; }
    }
    let mu = total(s, lid) / fm;
    var ss = 0.0;
    if (p.HW >= ${WG}u) {
      for (var n = g * (p.N / p.G); n < (g + 1u) * (p.N / p.G); n++) {
        let row = (n * p.C + c) * p.HW;
        for (var q = lid; q < p.HW; q += ${WG}u) { let i = row + q; let d = x[i] - mu; ss += d * d; }
      }
    } else {
      for (var j = lid; j < m; j += ${WG}u) { let i = at(g, j, c); let d = x[i] - mu; ss += d * d; }
    }
    let v = total(ss, lid) / fm;
    if (lid == 0u) {
      mean[g * p.C + c] = mu;
      invstd[g * p.C + c] = 1.0 / sqrt(v + p.eps);
    }
    meanAcc += mu;
    varAcc += v * fm / (fm - 1.0);
  }
  if (lid == 0u) {
    let k = p.momentum / f32(p.G);
    runMean[c] = (1.0 - p.momentum) * runMean[c] + k * meanAcc;
    runVar[c] = (1.0 - p.momentum) * runVar[c] + k * varAcc;
  }
}`,
};

function applyKernel(mode: "train" | "eval", relu: boolean): Kernel {
  // train: s1 = mean[G,C], s2 = invstd[G,C]; eval: s1 = runMean[C], s2 = runVar[C].
  const stat = mode === "train"
    ? `let k = (n / (p.N / p.G)) * p.C + c; let mu = s1[k]; let inv = s2[k];`
    : `let mu = s1[c]; let inv = 1.0 / sqrt(s2[c] + p.eps);`;
  return {
    key: `bn:apply:${mode}:${relu}`,
    code: `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s1: array<f32>;
@group(0) @binding(3) var<storage, read> s2: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${EW})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  for (var i = gid.x; i < p.n; i += nw.x * ${EW}u) {
    let c = (i / p.HW) % p.C;
    let n = i / (p.HW * p.C);
    ${stat}
    let z = (x[i] - mu) * inv * gamma[c] + beta[c];
    y[i] = ${relu ? "select(z, 0.0, z < 0.0)" : "z"}; // keeps NaN, as torch does
  }
}`,
  };
}

function backwardKernels(relu: boolean): { sums: Kernel; dx: Kernel } {
  const yBind = relu ? `@group(0) @binding(3) var<storage, read> y: array<f32>;` : "";
  const o = relu ? 1 : 0; // binding shift when y is present
  const grad = relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]";
  const common = `${HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${yBind}
@group(0) @binding(${3 + o}) var<storage, read> mean: array<f32>;
@group(0) @binding(${4 + o}) var<storage, read> invstd: array<f32>;`;
  return {
    sums: {
      key: `bn:bwsums:${WG}:${relu}`,
      code: `${common}
@group(0) @binding(${5 + o}) var<storage, read_write> sums: array<f32>;
@group(0) @binding(${6 + o}) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(${7 + o}) var<storage, read_write> dbeta: array<f32>;
var<workgroup> sh: array<vec2f, ${WG}>;
${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let m = (p.N / p.G) * p.HW;
  var acc = vec2f(0.0);
  for (var g = 0u; g < p.G; g++) {
    let mu = mean[g * p.C + c];
    let inv = invstd[g * p.C + c];
    var s = vec2f(0.0);
    if (p.HW >= ${WG}u) {
      for (var n = g * (p.N / p.G); n < (g + 1u) * (p.N / p.G); n++) {
        let row = (n * p.C + c) * p.HW;
        for (var q = lid; q < p.HW; q += ${WG}u) { let i = row + q; let d = ${grad}; s += vec2f(d, d * (x[i] - mu) * inv); }
      }
    } else {
      for (var j = lid; j < m; j += ${WG}u) { let i = at(g, j, c); let d = ${grad}; s += vec2f(d, d * (x[i] - mu) * inv); }
    }
    sh[lid] = s;
    workgroupBarrier();
    for (var t = ${WG / 2}u; t > 0u; t >>= 1u) {
      if (lid < t) { sh[lid] += sh[lid + t]; }
      workgroupBarrier();
    }
    let r = sh[0];
    workgroupBarrier();
    if (lid == 0u) {
      sums[g * p.C + c] = r.x;
      sums[(p.G + g) * p.C + c] = r.y;
    }
    acc += r;
  }
  if (lid == 0u) {
    dbeta[c] = acc.x;
    dgamma[c] = acc.y;
  }
}`,
    },
    dx: {
      key: `bn:bwdx:${relu}`,
      code: `${common}
@group(0) @binding(${5 + o}) var<storage, read> gamma: array<f32>;
@group(0) @binding(${6 + o}) var<storage, read> sums: array<f32>;
@group(0) @binding(${7 + o}) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(${EW})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let fm = f32((p.N / p.G) * p.HW);
  for (var i = gid.x; i < p.n; i += nw.x * ${EW}u) {
    let c = (i / p.HW) % p.C;
    let g = (i / (p.HW * p.C)) / (p.N / p.G);
    let k = g * p.C + c;
    let inv = invstd[k];
    let xh = (x[i] - mean[k]) * inv;
    let d = ${grad};
    dx[i] = gamma[c] * inv * (d - sums[k] / fm - xh * sums[(p.G + g) * p.C + c] / fm);
  }
}`,
    },
  };
}

const BW = { true: backwardKernels(true), false: backwardKernels(false) };

const ewGroups = (n: number): [number] => [Math.min(Math.ceil(n / EW), MAX_GROUPS)];

function checkC(ts: Array<[Tensor, string]>, C: number, what: string): void {
  for (const [t, name] of ts) {
    if (t.size !== C) throw new Error(`${what}: ${name} has ${t.size} values for ${C} channels`);
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
  const y = Tensor.empty(gpu, x.shape);
  const pr = params([N, C, HW, G, { f32: o.momentum ?? 0.1 }, { f32: o.eps ?? 1e-5 }, x.size]);
  gpu.dispatch(
    statsKernel,
    [x.buffer, mean.buffer, invstd.buffer, runMean.buffer, runVar.buffer],
    pr,
    [C],
  );
  gpu.dispatch(
    applyKernel("train", !!o.relu),
    [x.buffer, mean.buffer, invstd.buffer, gamma.buffer, beta.buffer, y.buffer],
    pr,
    ewGroups(x.size),
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
  const y = Tensor.empty(x.gpu, x.shape);
  x.gpu.dispatch(
    applyKernel("eval", !!o.relu),
    [x.buffer, runMean.buffer, runVar.buffer, gamma.buffer, beta.buffer, y.buffer],
    params([N, C, HW, 1, { f32: 0 }, { f32: o.eps ?? 1e-5 }, x.size]),
    ewGroups(x.size),
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
  const gpu = x.gpu;
  const sums = Tensor.empty(gpu, [2, G, C]);
  const dx = Tensor.empty(gpu, x.shape), dgamma = Tensor.empty(gpu, [C]);
  const dbeta = Tensor.empty(gpu, [C]);
  const k = BW[`${relu}`];
  const ins = [dy.buffer, x.buffer, ...(relu ? [y!.buffer] : []), mean.buffer, invstd.buffer];
  const pr = params([N, C, HW, G, { f32: 0 }, { f32: 0 }, x.size]);
  gpu.dispatch(k.sums, [...ins, sums.buffer, dgamma.buffer, dbeta.buffer], pr, [C]);
  gpu.dispatch(k.dx, [...ins, gamma.buffer, sums.buffer, dx.buffer], pr, ewGroups(x.size));
  sums.dispose();
  return { dx, dgamma, dbeta };
}
