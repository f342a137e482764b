/** CPU references for kernels/pool.ts (PyTorch semantics: floor output size, -inf padding). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export interface MaxPoolOptions {
  k: number;
  stride: number;
  pad: number;
}
export interface AvgPoolOptions {
  k: number;
  stride: number;
}

/** Output shape of a 2-D pool; throws a clear error for bad shapes/options. */
export function poolShape(
  shape: readonly number[],
  k: number,
  stride: number,
  pad: number,
  what: string,
): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`${what}: x must be [N,C,H,W], got [${shape}]`);
  for (const [v, n] of [[k, "k"], [stride, "stride"]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`${what}: ${n}=${v} must be a positive integer`);
    }
  }
  if (!Number.isInteger(pad) || pad < 0 || pad > k / 2) {
    throw new Error(`${what}: pad=${pad} must be in [0, k/2]`);
  }
  const [N, C, H, W] = shape;
  const OH = Math.floor((H + 2 * pad - k) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - k) / stride) + 1;
  if (OH < 1 || OW < 1) {
    throw new Error(`${what}: input [${shape}] is smaller than the ${k}×${k} window`);
  }
  return [N, C, OH, OW];
}

/** Index (within the H×W plane) of the first maximum of window (oh, ow), or -1 if all NaN. */
function argmax(
  x: Float32Array,
  base: number,
  H: number,
  W: number,
  oh: number,
  ow: number,
  o: MaxPoolOptions,
): number {
  let best = -Infinity, arg = -1;
  for (let kh = 0; kh < o.k; kh++) {
    const ih = oh * o.stride - o.pad + kh;
    if (ih < 0 || ih >= H) continue;
    for (let kw = 0; kw < o.k; kw++) {
      const iw = ow * o.stride - o.pad + kw;
      if (iw < 0 || iw >= W) continue;
      const v = x[base + ih * W + iw];
      if (v > best || arg < 0) {
        best = v;
        arg = ih * W + iw;
      }
    }
  }
  return arg;
}

export function maxPool2dCpu(x: CpuTensor, o: MaxPoolOptions): CpuTensor {
  const [N, C, OH, OW] = poolShape(x.shape, o.k, o.stride, o.pad, "maxPool2d");
  const [H, W] = [x.shape[2], x.shape[3]];
  const y = cpuTensor([N, C, OH, OW]);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        y.data[(p * OH + oh) * OW + ow] =
          x.data[p * H * W + argmax(x.data, p * H * W, H, W, oh, ow, o)];
      }
    }
  }
  return y;
}

export function maxPool2dBackwardCpu(dy: CpuTensor, x: CpuTensor, o: MaxPoolOptions): CpuTensor {
  const [N, C, OH, OW] = poolShape(x.shape, o.k, o.stride, o.pad, "maxPool2dBackward");
  const [H, W] = [x.shape[2], x.shape[3]];
  const dx = cpuTensor(x.shape);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const a = argmax(x.data, p * H * W, H, W, oh, ow, o);
        dx.data[p * H * W + a] += dy.data[(p * OH + oh) * OW + ow];
      }
    }
  }
  return dx;
}

export function avgPool2dCpu(x: CpuTensor, o: AvgPoolOptions): CpuTensor {
  const [N, C, OH, OW] = poolShape(x.shape, o.k, o.stride, 0, "avgPool2d");
  const [H, W] = [x.shape[2], x.shape[3]];
  const y = cpuTensor([N, C, OH, OW]);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let s = 0;
        for (let kh = 0; kh < o.k; kh++) {
          for (let kw = 0; kw < o.k; kw++) {
            s += x.data[p * H * W + (oh * o.stride + kh) * W + ow * o.stride + kw];
          }
        }
        y.data[(p * OH + oh) * OW + ow] = s / (o.k * o.k);
      }
    }
  }
  return y;
}

export function avgPool2dBackwardCpu(
  dy: CpuTensor,
  xShape: readonly number[],
  o: AvgPoolOptions,
): CpuTensor {
  const [N, C, OH, OW] = poolShape(xShape, o.k, o.stride, 0, "avgPool2dBackward");
  const [H, W] = [xShape[2], xShape[3]];
  const dx = cpuTensor(xShape);
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = dy.data[(p * OH + oh) * OW + ow] / (o.k * o.k);
        for (let kh = 0; kh < o.k; kh++) {
          for (let kw = 0; kw < o.k; kw++) {
            dx.data[p * H * W + (oh * o.stride + kh) * W + ow * o.stride + kw] += g;
          }
        }
      }
    }
  }
  return dx;
}

export function globalAvgPoolCpu(x: CpuTensor): CpuTensor {
  if (x.shape.length !== 4) throw new Error(`globalAvgPool: x must be [N,C,H,W], got [${x.shape}]`);
  const [N, C, H, W] = x.shape;
  const y = cpuTensor([N, C]);
  for (let p = 0; p < N * C; p++) {
    let s = 0;
    for (let i = 0; i < H * W; i++) s += x.data[p * H * W + i];
    y.data[p] = s / (H * W);
  }
  return y;
}

export function globalAvgPoolBackwardCpu(dy: CpuTensor, xShape: readonly number[]): CpuTensor {
  if (xShape.length !== 4) throw new Error(`globalAvgPoolBackward: bad x shape [${xShape}]`);
  const HW = xShape[2] * xShape[3];
  return cpuTensor(
    xShape,
    Float32Array.from(
      { length: xShape[0] * xShape[1] * HW },
      (_, i) => dy.data[Math.floor(i / HW)] / HW,
    ),
  );
}
