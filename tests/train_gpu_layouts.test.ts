/**
 * The ResNet-18 MoCo step with the kernels a hardware GPU gets — batch norm's grid layout, the GPU
 * GEMM tiles compiled per conv geometry, hardware grid caps, the tuner's priors — run for real on
 * this adapter, against the same step with this adapter's own kernels. Each GPU variant is checked
 * alone against the CPU references in the kernel tests; this checks them wired together in a
 * model, so that a lent GPU's minutes are not what finds a wiring fault.
 */
import { setConvAlgo } from "../kernels/conv/conv2d.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { twoMocoSteps } from "../bench/memory.ts";
import { Rng } from "../util/rng.ts";
import { assert } from "./helpers.ts";
import { gpu } from "./gpu.ts";

/** The two steps' losses with the kernels of a hardware GPU (`hardware`) or of this adapter. */
async function losses(hardware: boolean): Promise<number[]> {
  const view = (seed: number, n: number) => {
    const r = new Rng(seed + 1);
    return Float32Array.from({ length: n }, () => r.normal());
  };
  tunerOf(gpu); // created in this adapter's mode: the priors below, nothing timed
  // both sides as implicit GEMMs (a GPU's priors): the comparison is of layouts, not algorithms
  setConvAlgo("gemm");
  if (hardware) Object.defineProperty(gpu, "isSoftware", { value: false, configurable: true });
  try {
    return await twoMocoSteps(gpuBackend(gpu), "resnet18", 16, 64, "f32", view);
  } finally {
    delete (gpu as unknown as Record<string, unknown>).isSoftware;
    setConvAlgo("auto");
  }
}

Deno.test({
  name: "a MoCo step with a hardware GPU's kernels gives this adapter's losses within rounding",
  ignore: !gpu.isSoftware, // on a GPU both sides are the same kernels
  fn: async () => {
    const here = await losses(false), hw = await losses(true);
    assert(gpu.isSoftware, "the adapter reads as itself again");
    const d = hw.map((x, i) => Math.abs(x - here[i]));
    // step 1 is the initial weights' loss (the forward kernels); step 2 follows an SGD update
    // from gradients through every backward kernel. Measured: equal, then 4.8e-7 apart (a
    // rounding change such as Winograd for implicit GEMM moves step 2 by ~2e-4 at this shape)
    assert(d[0] < 1e-5 && d[1] < 1e-4, `losses ${here} here, ${hw} with GPU kernels`);
  },
});
