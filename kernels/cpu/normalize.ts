/** CPU references for kernels/normalize.ts (accumulation in f64). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";
import { check2d, checkSame } from "./loss.ts";

export const L2_EPS = 1e-12; // F.normalize's default eps

export function l2NormalizeCpu(x: CpuTensor): { y: CpuTensor; norm: CpuTensor } {
  const [N, D] = check2d(x, "l2Normalize", "x");
  const y = cpuTensor([N, D]), norm = cpuTensor([N]);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x.data[n * D + d] ** 2;
    const nr = Math.sqrt(ss);
    norm.data[n] = nr;
    for (let d = 0; d < D; d++) y.data[n * D + d] = x.data[n * D + d] / Math.max(nr, L2_EPS);
  }
  return { y, norm };
}

/** dx = (dy − y·(y·dy)) / ‖x‖, or dy / eps where the norm was clamped. */
export function l2NormalizeBackwardCpu(dy: CpuTensor, y: CpuTensor, norm: CpuTensor): CpuTensor {
  const [N, D] = check2d(y, "l2NormalizeBackward", "y");
  checkSame(y, dy, "l2NormalizeBackward", "dy");
  if (norm.data.length !== N) {
    throw new Error(`l2NormalizeBackward: norm has ${norm.data.length} values for ${N} rows`);
  }
  const dx = cpuTensor([N, D]);
  for (let n = 0; n < N; n++) {
    const nr = norm.data[n];
    let dot = 0;
    for (let d = 0; d < D; d++) dot += y.data[n * D + d] * dy.data[n * D + d];
    for (let d = 0; d < D; d++) {
      const i = n * D + d;
      dx.data[i] = nr > L2_EPS ? (dy.data[i] - y.data[i] * dot) / nr : dy.data[i] / L2_EPS;
    }
  }
  return dx;
}
