/** Small assertion helpers shared by the tests (no JSR: @std/assert is not reachable). */
import { AssertionError } from "node:assert";
import { dirname } from "node:path";

export {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";

/** Asserts |a-e| <= atol + rtol*|e| elementwise; the message names the worst index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, label = "" }: { atol?: number; rtol?: number; label?: string } = {},
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${label} length ${actual.length} != ${expected.length}` });
  }
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
      if (Number.isNaN(excess)) break;
    }
  }
  if (worst >= 0) {
    throw new AssertionError({
      message: `${label} mismatch at [${worst}]: got ${actual[worst]}, want ${
        expected[worst]
      } (atol ${atol}, rtol ${rtol}, ${actual.length} elements)`,
    });
  }
}

/**
 * Asserts the same f32 bits elementwise, naming the first difference: where a failing
 * assertEquals on big arrays would spend minutes and gigabytes formatting its diff.
 */
export function assertBits(actual: Float32Array, expected: Float32Array, label = ""): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${label} length ${actual.length} != ${expected.length}` });
  }
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const i = a.findIndex((w, j) => w !== e[j]);
  if (i >= 0) {
    throw new AssertionError({
      message: `${label} differs at [${i}]: got ${actual[i]}, want ${expected[i]} ` +
        `(${actual.length} elements)`,
    });
  }
}

/** Asserts that an async function rejects with a message matching `pattern`. */
export async function assertRejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (!pattern.test(msg)) throw new AssertionError({ message: `error "${msg}" !~ ${pattern}` });
    return;
  }
  throw new AssertionError({ message: `expected rejection matching ${pattern}` });
}

/** ‖got − want‖₂ / ‖want‖₂ (relative L2 error; a zero reference counts as 1e-60). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0, w = 0;
  for (let i = 0; i < want.length; i++) {
    d += (got[i] - want[i]) ** 2;
    w += want[i] ** 2;
  }
  return Math.sqrt(d / Math.max(w, 1e-60));
}

/** Writes a test fixture file, making its folders. */
export async function put(path: string, bytes: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
  else await Deno.writeFile(path, bytes);
}
