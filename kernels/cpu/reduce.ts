/** CPU references for kernels/reduce.ts (accumulation in f64). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export function reduceSumCpu(x: CpuTensor): CpuTensor {
  let s = 0;
  for (const v of x.data) s += v;
  return cpuTensor([1], [s]);
}
