/**
 * The CPU side of every kernel: a plain row-major f32 array with a shape.
 * Each GPU kernel function `foo(...)` in kernels/ has a reference `fooCpu(...)`
 * in kernels/cpu/ with the same argument order, options and result structure,
 * taking and returning CpuTensor where the GPU one takes Tensor; in-place
 * updates (running statistics, optimizer state) mutate `.data`.
 */
export interface CpuTensor {
  shape: number[];
  data: Float32Array;
}

export function cpuTensor(shape: readonly number[], data?: ArrayLike<number>): CpuTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = data ? Float32Array.from(data) : new Float32Array(n);
  if (d.length !== n) throw new Error(`cpuTensor: ${d.length} values for shape [${shape}]`);
  return { shape: [...shape], data: d };
}
