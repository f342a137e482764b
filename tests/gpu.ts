/** Shared GPU for tests, plus a seeded random-array helper. */
import { getGpu } from "../kernels/device.ts";
import { Rng } from "../util/rng.ts";

export const gpu = await getGpu();

/**
 * Whether the tests run on the OpenGL fallback (DENO_WEBGPU_BACKEND=gl). There Mesa's GL compiler
 * takes 1–25 s a GPU (reg) tile pipeline, more with its k steps written out, so tests that sweep
 * GPU tiles run testedGpuCandidates() (kernels/gemm/variants.ts) there and leave the rest to the
 * Vulkan run, which CI also makes.
 */
export const onGl = Deno.env.get("DENO_WEBGPU_BACKEND")?.toLowerCase() === "gl";

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}
