/**
 * CPU references for kernels/matmul.ts. The `*F64` cores accumulate in float64
 * (for finite-difference checks); the `*Cpu` wrappers return f32 CpuTensors.
 */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

type Num = ArrayLike<number>;

/** Validates 2-D operands and returns [M, K, N] of op(A)[M,K]·op(B)[K,N]. */
export function matmulDims(
  aShape: readonly number[],
  bShape: readonly number[],
  o: MatmulOptions = {},
): [number, number, number] {
  if (aShape.length !== 2 || bShape.length !== 2) {
    throw new Error(`matmul: operands must be 2-D, got [${aShape}] and [${bShape}]`);
  }
  const [m, k] = o.transA ? [aShape[1], aShape[0]] : [aShape[0], aShape[1]];
  const [kb, n] = o.transB ? [bShape[1], bShape[0]] : [bShape[0], bShape[1]];
  if (k !== kb) {
    throw new Error(
      `matmul: inner dimensions differ: op(A) is ${m}x${k}, op(B) is ${kb}x${n} ` +
        `(transA=${!!o.transA}, transB=${!!o.transB})`,
    );
  }
  return [m, k, n];
}

export function matmulF64(
  a: Num,
  aShape: readonly number[],
  b: Num,
  bShape: readonly number[],
  o: MatmulOptions = {},
): Float64Array {
  const [M, K, N] = matmulDims(aShape, bShape, o);
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += (o.transA ? a[k * M + m] : a[m * K + k]) * (o.transB ? b[n * K + k] : b[k * N + n]);
      }
      c[m * N + n] = s;
    }
  }
  return c;
}

export function matmulCpu(a: CpuTensor, b: CpuTensor, o: MatmulOptions = {}): CpuTensor {
  const [M, , N] = matmulDims(a.shape, b.shape, o);
  return cpuTensor([M, N], matmulF64(a.data, a.shape, b.data, b.shape, o));
}

function linearCheck(x: readonly number[], w: readonly number[], bias: CpuTensor | null): void {
  if (x.length !== 2 || w.length !== 2 || x[1] !== w[1]) {
    throw new Error(`linear: need x [N,I] and w [O,I], got [${x}] and [${w}]`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== w[0])) {
    throw new Error(`linear: bias must be [${w[0]}], got [${bias.shape}]`);
  }
}

/** y = x·wᵀ + b with x [N,I], w [O,I] (torch.nn.Linear layout). */
export function linearCpu(x: CpuTensor, w: CpuTensor, bias: CpuTensor | null): CpuTensor {
  linearCheck(x.shape, w.shape, bias);
  const y = matmulF64(x.data, x.shape, w.data, w.shape, { transB: true });
  const [N, O] = [x.shape[0], w.shape[0]];
  if (bias) {
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) y[n * O + o] += bias.data[o];
    }
  }
  return cpuTensor([N, O], y);
}

/** Gradients of linear: dx = dy·w, dw = dyᵀ·x, db = Σₙ dy. */
export function linearBackwardCpu(
  dy: CpuTensor,
  x: CpuTensor,
  w: CpuTensor,
  hasBias: boolean,
): { dx: CpuTensor; dw: CpuTensor; db: CpuTensor | null } {
  linearCheck(x.shape, w.shape, null);
  const [N, O] = [x.shape[0], w.shape[0]];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== O) {
    throw new Error(`linearBackward: dy must be [${N},${O}], got [${dy.shape}]`);
  }
  const dx = matmulCpu(dy, w);
  const dw = matmulCpu(dy, x, { transA: true });
  let db: CpuTensor | null = null;
  if (hasBias) {
    const s = new Float64Array(O);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) s[o] += dy.data[n * O + o];
    db = cpuTensor([O], s);
  }
  return { dx, dw, db };
}
