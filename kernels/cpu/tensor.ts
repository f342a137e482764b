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
  /** "f16": every value is an exact half (made by castCpu); absent means f32. */
  dtype?: "f16";
}

/** x stored as `dtype`: values rounded to the nearest half (ties to even) for f16. */
export function castCpu(x: CpuTensor, dtype: "f32" | "f16"): CpuTensor {
  const data = dtype === "f16" ? Float32Array.from(new Float16Array(x.data)) : x.data.slice();
  return dtype === "f16" ? { shape: [...x.shape], data, dtype } : { shape: [...x.shape], data };
}

export function cpuTensor(shape: readonly number[], data?: ArrayLike<number>): CpuTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = data ? Float32Array.from(data) : new Float32Array(n);
  if (d.length !== n) throw new Error(`cpuTensor: ${d.length} values for shape [${shape}]`);
  return { shape: [...shape], data: d };
}
