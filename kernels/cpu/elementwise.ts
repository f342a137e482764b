/** CPU references for kernels/elementwise.ts (f32 rounding as the GPU does it). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

const map = (t: CpuTensor, f: (v: number, i: number) => number) =>
  cpuTensor(t.shape, t.data.map(f));

export const reluCpu = (x: CpuTensor) => map(x, (v) => Math.max(v, 0));
export const reluBackwardCpu = (dy: CpuTensor, y: CpuTensor) =>
  map(dy, (g, i) => (y.data[i] > 0 ? g : 0));
export const addCpu = (a: CpuTensor, b: CpuTensor) => map(a, (v, i) => v + b.data[i]);
export const axpbyCpu = (a: number, x: CpuTensor, b: number, y: CpuTensor) =>
  map(x, (v, i) => Math.fround(a * v) + Math.fround(b * y.data[i]));
export const scaleCpu = (x: CpuTensor, a: number) => map(x, (v) => a * v);
export function sigmoidCpu(x: CpuTensor): CpuTensor {
  return cpuTensor(
    x.shape,
    x.data.map((v) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)))),
  );
}
/** x · s[0] (f32 rounding, as the GPU). */
export const scaleByCpu = (x: CpuTensor, s: CpuTensor) => map(x, (v) => Math.fround(v * s.data[0]));
