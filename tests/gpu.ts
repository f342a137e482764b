/** Shared GPU for tests, plus a seeded random-array helper. */
import { getGpu } from "../kernels/device.ts";
import { Rng } from "../util/rng.ts";

export const gpu = await getGpu();

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}
