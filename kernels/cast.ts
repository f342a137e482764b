/**
 * Storage casts between f32 and f16 (round to nearest even; out-of-range values become ±inf,
 * NaN stays NaN), and `sameDtype`, the check every mixed-precision kernel makes of its operands.
 *
 * Mapping: one element per loop item, grid-stride (wgsl.ts `gridStrideMain`), workgroup 64,
 * dispatch min(ceil(n / 64), 1024) workgroups (Gpu.gridCap's on hardware adapters).
 */
import { GpuError, type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { gridStrideMain } from "./wgsl.ts";

const WG = 64;
const MAX_GROUPS = 1024;

const castKernel = kernelFamily((from: DType, to: DType): Kernel => ({
  name: `cast:${from}:${to}`,
  code: `enable f16;
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${from}>;
@group(0) @binding(2) var<storage, read_write> y: array<${to}>;
${gridStrideMain(WG, "p.n", `    y[i] = ${to}(x[i]);`)}`,
}));

/** x converted to `dtype` (a copy when it already is). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.clone();
  const out = Tensor.empty(x.gpu, x.shape, dtype);
  x.gpu.dispatch(
    castKernel(x.dtype, dtype),
    [x.buffer, out.buffer],
    params([x.size]),
    [Math.max(1, Math.min(Math.ceil(x.size / WG), x.gpu.gridCap(MAX_GROUPS)))],
  );
  return out;
}

/** The one storage type of a kernel's activation operands; mixed ones are an error. */
export function sameDtype(op: string, ...ts: Tensor[]): DType {
  const d = ts[0].dtype;
  for (const t of ts) {
    if (t.dtype !== d) {
      throw new GpuError(
        `${op}: operands mix ${d} and ${t.dtype} storage (cast one of them: model/ops.ts cast)`,
      );
    }
  }
  return d;
}
