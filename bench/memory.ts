/**
 * GPU memory of a MoCo step at any shape without the memory: the step's code is recorded with the
 * buffer pool replaced by a counter (kernels/dry_run.ts), so the pool's footprint (what
 * `stats.bytesAllocated` reaches: weights, key encoder, optimizer state, queue, activations kept
 * for the backward pass, gradients and kernel scratch, each in its pool bucket) is known on a CPU
 * in seconds. The pool's own extras (the 4 MiB uniform ring, a few readback buffers) come on top.
 *
 *   deno run --allow-read --allow-env bench/memory.ts [--backbone resnet50] [--batch 64]
 *     [--size 224] [--conv-algo auto|gemm|winograd|col2im] [--card-gib 16] [--precision f16]
 *
 * or `deno task bench --only memory` (ResNet-18 and ResNet-50 at 224 px, batch 64, against 16 GiB).
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { dryRun } from "../kernels/dry_run.ts";
import { type ConvAlgo, setConvAlgo } from "../kernels/conv/conv2d.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import type { Backend } from "../model/backend.ts";
import { type BackboneName, checkBackbone } from "../train/backbones.ts";
import type { BenchEntry } from "./harness.ts";
import { benchMoco, convAlgoFlag, MOCO_CFG } from "./moco_step.ts";

/** The pool's uniform ring (kernels/device.ts UNIFORM_RING) and a margin for readback buffers. */
const POOL_EXTRAS = (1 << 22) + (1 << 20);

export interface Footprint {
  backbone: BackboneName;
  batch: number;
  size: number;
  algo: ConvAlgo;
  precision: "f32" | "f16";
  /** Pool bytes after two steps (the second meets the optimizer state the first creates). */
  bytes: number;
  buffers: number;
  largest: number;
}

/**
 * Two MoCo steps of `backbone` at batch N and side S (SGD with momentum, as the bench), each
 * view filled by `view(seed, n)`; returns the steps' losses. What `mocoFootprint` counts dry, and
 * what tests/kernels_dry_run.test.ts runs for real to check the count. `mark(s, true)` is called
 * just before step s records its kernels and `mark(s, false)` just after (the dispatch audit
 * listens to step 1 only).
 */
export async function twoMocoSteps(
  B: Backend,
  backbone: BackboneName,
  N: number,
  S: number,
  precision: "f32" | "f16",
  view: (seed: number, n: number) => Float32Array,
  mark?: (step: number, recording: boolean) => void,
): Promise<number[]> {
  const C = MOCO_CFG.inChannels, n = N * C * S * S;
  const { moco, opt } = await benchMoco(B, { backbone, precision });
  const inv = Float32Array.from({ length: N }, (_, i) => i);
  const losses: number[] = [];
  for (let s = 0; s < 2; s++) {
    const xq = B.fromArray(view(s, n), [N, C, S, S]);
    const xk = B.fromArray(view(s + 5, n), [N, C, S, S]);
    const un = B.fromArray(inv, [N]);
    mark?.(s, true);
    const out = moco.step(xq, xk, un);
    opt.update(0.03);
    mark?.(s, false);
    losses.push((await B.read(out.loss))[0]);
    for (const t of [xq, xk, un, out.loss, out.correct]) B.dispose(t);
  }
  opt.dispose();
  moco.dispose();
  return losses;
}

/** Dry-runs two MoCo steps (`twoMocoSteps`) and counts the pool's buffers. */
export async function mocoFootprint(
  gpu: Gpu,
  backbone: BackboneName,
  batch: number,
  size: number,
  algo: ConvAlgo = "auto",
  precision: "f32" | "f16" = "f32",
): Promise<Footprint> {
  const B = gpuBackend(gpu), N = batch, S = size;
  setConvAlgo(algo);
  try {
    const r = await dryRun(
      gpu,
      () => twoMocoSteps(B, backbone, N, S, precision, (_, n) => new Float32Array(n)),
    );
    return {
      backbone,
      batch,
      size,
      algo,
      precision,
      bytes: r.bytes,
      buffers: r.buffers,
      largest: r.largest,
    };
  } finally {
    setConvAlgo("auto");
  }
}

const GiB = 2 ** 30;

/** One line: the footprint and whether it fits a card of `cardGiB`. */
export function formatFootprint(f: Footprint, cardGiB: number): string {
  const total = f.bytes + POOL_EXTRAS;
  const fits = total <= cardGiB * GiB;
  return `${f.backbone} MoCo step, ${f.size} px, batch ${f.batch}, ${f.precision}, convs ${f.algo}: pool ` +
    `${(f.bytes / GiB).toFixed(2)} GiB in ${f.buffers} buffers (largest ` +
    `${(f.largest / 2 ** 20).toFixed(0)} MiB) + ${(POOL_EXTRAS / 2 ** 20).toFixed(0)} MiB -> ` +
    `${fits ? "fits" : "does NOT fit"} ${cardGiB} GiB (${
      fits ? `${((cardGiB * GiB - total) / GiB).toFixed(1)} GiB left` : "over"
    } before the driver's own use)`;
}

export const memoryBench: BenchEntry = {
  name: "memory",
  description: "MoCo step GPU memory by dry allocation count (ResNet-18/50, 224 px, batch 64)",
  async run(ctx) {
    console.log("");
    console.log(
      `GPU memory (dry allocation count: the step recorded on the CPU with the pool counted, no ` +
        `kernel run; kernel choices of this adapter, ${ctx.gpu.describe()})`,
    );
    for (const backbone of ["resnet18", "resnet50"] as const) {
      const runs = [["auto", "f32"], ["gemm", "f32"], ...(ctx.gpu.hasF16 ? [["auto", "f16"]] : [])];
      for (const [algo, precision] of runs as [ConvAlgo, "f32" | "f16"][]) {
        const t0 = performance.now();
        const f = await mocoFootprint(ctx.gpu, backbone, 64, 224, algo, precision);
        console.log(
          `  ${formatFootprint(f, 16)} [${((performance.now() - t0) / 1000).toFixed(1)} s]`,
        );
      }
    }
  },
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backbone: { type: "string", default: "resnet50" },
      batch: { type: "string", default: "64" },
      size: { type: "string", default: "224" },
      "conv-algo": { type: "string", default: "auto" },
      "card-gib": { type: "string", default: "16" },
      precision: { type: "string", default: "f32" },
    },
  });
  if (values.precision !== "f32" && values.precision !== "f16") {
    console.error(`--precision: f32 or f16, got "${values.precision}"`);
    Deno.exit(2);
  }
  const num = (flag: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) {
      console.error(`--${flag}: expected an integer >= ${min}, got "${v}"`);
      Deno.exit(2);
    }
    return x;
  };
  let backbone: BackboneName;
  try {
    backbone = checkBackbone(values.backbone);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const batch = num("batch", values.batch, 2), size = num("size", values.size, 32);
  const card = num("card-gib", values["card-gib"], 1);
  if (batch % MOCO_CFG.bnGroups) {
    console.error(`--batch: must be a multiple of bnGroups (${MOCO_CFG.bnGroups})`);
    Deno.exit(2);
  }
  const gpu = await getGpu();
  const f = await mocoFootprint(
    gpu,
    backbone,
    batch,
    size,
    convAlgoFlag(values["conv-algo"]),
    values.precision,
  );
  console.log(`adapter: ${gpu.describe()}`);
  console.log(formatFootprint(f, card));
}
