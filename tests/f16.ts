/** Helpers for the f16-storage tests: rounding to halves and the tolerance of one half rounding. */
import { assertClose } from "./helpers.ts";
import { gpu } from "./gpu.ts";

/** Whether the test adapter has shader-f16 (lavapipe does; the GL fallback does not). */
export const hasF16 = gpu.hasF16;

/** The values rounded to the nearest half (ties to even), as f32. */
export function half(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(new Float16Array(Float32Array.from(a)));
}

/** The smallest normal half, 2^-14: below it (and above 0) halves are subnormal. */
const HALF_MIN_NORMAL = 2 ** -14;

/**
 * GPU halves equal to `want` (NaN equal to NaN, -0 distinct from 0), except that on a hardware
 * adapter a subnormal half may read as the signed zero: WGSL lets an implementation flush
 * subnormals, and NVIDIA's f32 → f16 conversion does (H200, session 11). A wrong rounding mode, a
 * lost sign or a wrong overflow still fails; a mismatch names its first five indices.
 */
export function assertHalves(got: Float32Array, want: Float32Array, label: string): void {
  const flushOk = !gpu.isSoftware;
  const bad: string[] = [];
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    if (Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w))) continue;
    const flushed = w !== 0 && Math.abs(w) < HALF_MIN_NORMAL && Object.is(g, w < 0 ? -0 : 0);
    if (flushOk && flushed) continue;
    if (n++ < 5) bad.push(`[${i}] got ${g}, want ${w}`);
  }
  if (n) throw new Error(`${label}: ${n} of ${want.length} halves differ: ${bad.join("; ")}`);
}

/**
 * An f16 kernel's output against the f32 reference on the same (half) inputs: the kernel
 * accumulates in f32 and rounds once, so it is within half an f16 ulp of the reference
 * (2^-11 relative) plus the f32 reference's own rounding; `atol` covers f16's subnormal range
 * and cancellation in long sums.
 */
export function assertHalfClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  o: { atol?: number; label?: string } = {},
): void {
  assertClose(actual, expected, { rtol: 1e-3, atol: o.atol ?? 1e-4, label: o.label });
}
