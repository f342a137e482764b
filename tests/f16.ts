/** Helpers for the f16-storage tests: rounding to halves and the tolerance of one half rounding. */
import { assertClose } from "./helpers.ts";
import { gpu } from "./gpu.ts";

/** Whether the test adapter has shader-f16 (lavapipe does; the GL fallback does not). */
export const hasF16 = gpu.hasF16;

/** The values rounded to the nearest half (ties to even), as f32. */
export function half(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(new Float16Array(Float32Array.from(a)));
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
