/**
 * CPU references for kernels/conv2d.ts: direct loops over NCHW tensors.
 *
 * The `*F64` cores take any numeric arrays and accumulate and return float64,
 * so the tests can check the gradients against central finite differences in
 * double precision; the `*Cpu` wrappers round the result to f32 like the GPU.
 */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export interface ConvOptions {
  stride: number;
  pad: number;
}

type Shape4 = readonly [number, number, number, number];
type Num = ArrayLike<number>;

/** Output spatial size of a convolution (floor mode, as PyTorch). */
export function convOutSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** Validates shapes and returns the output shape [N, O, OH, OW]. */
export function convShapes(
  xShape: readonly number[],
  wShape: readonly number[],
  o: ConvOptions,
  fn = "conv2d",
): Shape4 {
  if (xShape.length !== 4) throw new Error(`${fn}: x must be [N,C,H,W], got [${xShape}]`);
  if (wShape.length !== 4) throw new Error(`${fn}: w must be [O,C,KH,KW], got [${wShape}]`);
  const [n, c, h, w] = xShape, [oc, wc, kh, kw] = wShape;
  if (wc !== c) throw new Error(`${fn}: x has ${c} channels but w expects ${wc} ([${wShape}])`);
  if (!(Number.isInteger(o.stride) && o.stride >= 1)) {
    throw new Error(`${fn}: stride must be a positive integer, got ${o.stride}`);
  }
  if (!(Number.isInteger(o.pad) && o.pad >= 0)) {
    throw new Error(`${fn}: pad must be a non-negative integer, got ${o.pad}`);
  }
  const oh = convOutSize(h, kh, o.stride, o.pad), ow = convOutSize(w, kw, o.stride, o.pad);
  if (oh < 1 || ow < 1) {
    throw new Error(`${fn}: kernel ${kh}x${kw} (pad ${o.pad}) does not fit input ${h}x${w}`);
  }
  return [n, oc, oh, ow];
}

export function conv2dF64(
  x: Num,
  xShape: Shape4,
  w: Num,
  wShape: Shape4,
  bias: Num | null,
  o: ConvOptions,
): Float64Array {
  const [N, C, H, W] = xShape, [O, , KH, KW] = wShape;
  const [, , OH, OW] = convShapes(xShape, wShape, o);
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let s = bias ? bias[oc] : 0;
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * o.stride - o.pad + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * o.stride - o.pad + kw;
                if (iw < 0 || iw >= W) continue;
                s += x[((n * C + c) * H + ih) * W + iw] * w[((oc * C + c) * KH + kh) * KW + kw];
              }
            }
          }
          y[((n * O + oc) * OH + oh) * OW + ow] = s;
        }
      }
    }
  }
  return y;
}

/** dL/dx: scatters each dy through the kernel window (the transpose of conv2dF64). */
export function conv2dBackwardInputF64(
  dy: Num,
  w: Num,
  xShape: Shape4,
  wShape: Shape4,
  o: ConvOptions,
): Float64Array {
  const [N, C, H, W] = xShape, [O, , KH, KW] = wShape;
  const [, , OH, OW] = convShapes(xShape, wShape, o, "conv2dBackwardInput");
  const dx = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const g = dy[((n * O + oc) * OH + oh) * OW + ow];
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * o.stride - o.pad + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * o.stride - o.pad + kw;
                if (iw < 0 || iw >= W) continue;
                dx[((n * C + c) * H + ih) * W + iw] += g * w[((oc * C + c) * KH + kh) * KW + kw];
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/** dL/dw: correlates dy with the input windows. */
export function conv2dBackwardWeightF64(
  dy: Num,
  x: Num,
  xShape: Shape4,
  wShape: Shape4,
  o: ConvOptions,
): Float64Array {
  const [N, C, H, W] = xShape, [O, , KH, KW] = wShape;
  const [, , OH, OW] = convShapes(xShape, wShape, o, "conv2dBackwardWeight");
  const dw = new Float64Array(O * C * KH * KW);
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const g = dy[((n * O + oc) * OH + oh) * OW + ow];
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * o.stride - o.pad + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * o.stride - o.pad + kw;
                if (iw < 0 || iw >= W) continue;
                dw[((oc * C + c) * KH + kh) * KW + kw] += g * x[((n * C + c) * H + ih) * W + iw];
              }
            }
          }
        }
      }
    }
  }
  return dw;
}

/** dL/db: dy summed over batch and space, per output channel. */
export function conv2dBackwardBiasF64(dy: Num, dyShape: readonly number[]): Float64Array {
  const [N, O] = dyShape;
  const hw = dyShape.slice(2).reduce((a, b) => a * b, 1);
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      let s = 0;
      const base = (n * O + oc) * hw;
      for (let i = 0; i < hw; i++) s += dy[base + i];
      db[oc] += s;
    }
  }
  return db;
}

const shape4 = (s: readonly number[], what: string): Shape4 => {
  if (s.length !== 4) throw new Error(`${what} must be 4-D, got [${s}]`);
  return [s[0], s[1], s[2], s[3]];
};

export function conv2dCpu(
  x: CpuTensor,
  w: CpuTensor,
  bias: CpuTensor | null,
  o: ConvOptions,
): CpuTensor {
  const ys = convShapes(x.shape, w.shape, o);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== ys[1])) {
    throw new Error(`conv2d: bias must be [${ys[1]}], got [${bias.shape}]`);
  }
  const y = conv2dF64(
    x.data,
    shape4(x.shape, "x"),
    w.data,
    shape4(w.shape, "w"),
    bias?.data ?? null,
    o,
  );
  return cpuTensor(ys, y);
}

export function conv2dBackwardInputCpu(
  dy: CpuTensor,
  w: CpuTensor,
  xShape: readonly number[],
  o: ConvOptions,
): CpuTensor {
  const dx = conv2dBackwardInputF64(
    dy.data,
    w.data,
    shape4(xShape, "xShape"),
    shape4(w.shape, "w"),
    o,
  );
  return cpuTensor(xShape, dx);
}

export function conv2dBackwardWeightCpu(
  dy: CpuTensor,
  x: CpuTensor,
  wShape: readonly number[],
  o: ConvOptions,
): CpuTensor {
  const dw = conv2dBackwardWeightF64(
    dy.data,
    x.data,
    shape4(x.shape, "x"),
    shape4(wShape, "wShape"),
    o,
  );
  return cpuTensor(wShape, dw);
}

export function conv2dBackwardBiasCpu(dy: CpuTensor): CpuTensor {
  return cpuTensor([dy.shape[1]], conv2dBackwardBiasF64(dy.data, dy.shape));
}
