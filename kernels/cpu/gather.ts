/** CPU reference for kernels/gather.ts. */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

export function gatherRowsCpu(x: CpuTensor, idx: CpuTensor): CpuTensor {
  const [srcRows, cols] = x.shape;
  const out = cpuTensor([idx.data.length, cols]);
  idx.data.forEach((r, i) => {
    if (!(r >= 0 && r < srcRows)) throw new Error(`gatherRows: index ${r} outside ${srcRows} rows`);
    out.data.set(x.data.subarray(r * cols, (r + 1) * cols), i * cols);
  });
  return out;
}
