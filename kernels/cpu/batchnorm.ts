/**
 * CPU references for kernels/batchnorm.ts. Statistics are accumulated in f64
 * with the same two-pass formula as the GPU (mean, then centered sum of squares).
 */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export interface BnTrainOptions {
  momentum?: number;
  eps?: number;
  relu?: boolean;
  groups?: number;
}

/** [N, C, HW] view of an [N,C,H,W] or [N,C] shape; throws a clear error otherwise. */
export function bnDims(
  shape: readonly number[],
  groups = 1,
  what = "batchNorm",
): { N: number; C: number; HW: number; G: number; M: number } {
  if (shape.length !== 4 && shape.length !== 2) {
    throw new Error(`${what}: x must be [N,C,H,W] or [N,C], got [${shape}]`);
  }
  const [N, C] = shape;
  const HW = shape.length === 4 ? shape[2] * shape[3] : 1;
  const G = groups;
  if (!Number.isInteger(G) || G < 1 || N % G !== 0) {
    throw new Error(`${what}: groups=${G} must divide the batch size ${N}`);
  }
  return { N, C, HW, G, M: (N / G) * HW };
}

function checkVec(t: { shape: readonly number[] }, C: number, name: string, what: string) {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== C) throw new Error(`${what}: ${name} has ${n} values for ${C} channels`);
}

export function batchNormTrainCpu(
  x: CpuTensor,
  gamma: CpuTensor,
  beta: CpuTensor,
  runMean: CpuTensor,
  runVar: CpuTensor,
  o: BnTrainOptions = {},
): { y: CpuTensor; mean: CpuTensor; invstd: CpuTensor } {
  const momentum = o.momentum ?? 0.1, eps = o.eps ?? 1e-5;
  const { N, C, HW, G, M } = bnDims(x.shape, o.groups, "batchNormTrain");
  if (M < 2) throw new Error(`batchNormTrain: expected more than 1 value per channel, got ${M}`);
  for (
    const [t, n] of [[gamma, "gamma"], [beta, "beta"], [runMean, "runMean"], [
      runVar,
      "runVar",
    ]] as const
  ) {
    checkVec(t, C, n, "batchNormTrain");
  }
  const nb = N / G;
  const mean = cpuTensor([G, C]), invstd = cpuTensor([G, C]);
  const y = cpuTensor(x.shape);
  const at = (n: number, c: number, s: number) => (n * C + c) * HW + s;
  for (let c = 0; c < C; c++) {
    let meanAcc = 0, varAcc = 0;
    for (let g = 0; g < G; g++) {
      let s = 0;
      for (let n = g * nb; n < (g + 1) * nb; n++) {
        for (let q = 0; q < HW; q++) s += x.data[at(n, c, q)];
      }
      const mu = s / M;
      let ss = 0;
      for (let n = g * nb; n < (g + 1) * nb; n++) {
        for (let q = 0; q < HW; q++) ss += (x.data[at(n, c, q)] - mu) ** 2;
      }
      const v = ss / M;
      const inv = 1 / Math.sqrt(v + eps);
      mean.data[g * C + c] = mu;
      invstd.data[g * C + c] = inv;
      meanAcc += mu;
      varAcc += (v * M) / (M - 1);
      for (let n = g * nb; n < (g + 1) * nb; n++) {
        for (let q = 0; q < HW; q++) {
          const i = at(n, c, q);
          const z = (x.data[i] - mu) * inv * gamma.data[c] + beta.data[c];
          y.data[i] = o.relu ? Math.max(z, 0) : z;
        }
      }
    }
    runMean.data[c] = (1 - momentum) * runMean.data[c] + (momentum * meanAcc) / G;
    runVar.data[c] = (1 - momentum) * runVar.data[c] + (momentum * varAcc) / G;
  }
  return { y, mean, invstd };
}

export function batchNormEvalCpu(
  x: CpuTensor,
  gamma: CpuTensor,
  beta: CpuTensor,
  runMean: CpuTensor,
  runVar: CpuTensor,
  o: { eps?: number; relu?: boolean } = {},
): CpuTensor {
  const eps = o.eps ?? 1e-5;
  const { C, HW } = bnDims(x.shape, 1, "batchNormEval");
  for (
    const [t, n] of [[gamma, "gamma"], [beta, "beta"], [runMean, "runMean"], [
      runVar,
      "runVar",
    ]] as const
  ) {
    checkVec(t, C, n, "batchNormEval");
  }
  const y = cpuTensor(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const c = Math.floor(i / HW) % C;
    const z = (x.data[i] - runMean.data[c]) / Math.sqrt(runVar.data[c] + eps) * gamma.data[c] +
      beta.data[c];
    y.data[i] = o.relu ? Math.max(z, 0) : z;
  }
  return y;
}

/**
 * dx = γ·invstd·(dy − mean_g(dy) − x̂·mean_g(dy·x̂)) per sub-batch g; dγ = Σ dy·x̂, dβ = Σ dy,
 * where dy is first masked by y > 0 when the ReLU was fused.
 */
export function batchNormBackwardCpu(
  dy: CpuTensor,
  x: CpuTensor,
  y: CpuTensor | null,
  gamma: CpuTensor,
  mean: CpuTensor,
  invstd: CpuTensor,
  o: { relu?: boolean; groups?: number } = {},
): { dx: CpuTensor; dgamma: CpuTensor; dbeta: CpuTensor } {
  const { N, C, HW, G, M } = bnDims(x.shape, o.groups, "batchNormBackward");
  if (o.relu && !y) throw new Error("batchNormBackward: relu=true needs the forward output y");
  checkVec(gamma, C, "gamma", "batchNormBackward");
  checkVec(mean, G * C, "mean", "batchNormBackward");
  checkVec(invstd, G * C, "invstd", "batchNormBackward");
  const nb = N / G;
  const dx = cpuTensor(x.shape), dgamma = cpuTensor([C]), dbeta = cpuTensor([C]);
  const g_ = (i: number) => (o.relu && !(y!.data[i] > 0) ? 0 : dy.data[i]);
  for (let c = 0; c < C; c++) {
    let dgAcc = 0, dbAcc = 0;
    for (let g = 0; g < G; g++) {
      const mu = mean.data[g * C + c], inv = invstd.data[g * C + c];
      let sdy = 0, sdyx = 0;
      for (let n = g * nb; n < (g + 1) * nb; n++) {
        for (let q = 0; q < HW; q++) {
          const i = (n * C + c) * HW + q;
          sdy += g_(i);
          sdyx += g_(i) * (x.data[i] - mu) * inv;
        }
      }
      dgAcc += sdyx;
      dbAcc += sdy;
      for (let n = g * nb; n < (g + 1) * nb; n++) {
        for (let q = 0; q < HW; q++) {
          const i = (n * C + c) * HW + q;
          const xh = (x.data[i] - mu) * inv;
          dx.data[i] = gamma.data[c] * inv * (g_(i) - sdy / M - (xh * sdyx) / M);
        }
      }
    }
    dgamma.data[c] = dgAcc;
    dbeta.data[c] = dbAcc;
  }
  return { dx, dgamma, dbeta };
}
