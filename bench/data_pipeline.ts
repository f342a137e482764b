/**
 * Images per second of the pretraining data pipeline at a step's shape, both ways the loop can
 * make MoCo's two views (train/pretrain.ts): on the host (data/augment.ts on this thread, the key
 * batch shuffled, both views uploaded as f32) and on the GPU (the uint8 images uploaded, the
 * views made by kernels/augment.ts). Source: random uint8 images at the cache's stored size for
 * the crop (data/cache/format.ts storedSizeFor); MoCo-CXR's augmentation, 1 channel. Each rate is
 * `reps` batches back to back and one wait for the device at the end (as the loop overlaps them
 * with the steps), after one warm-up batch; plus the GPU path's host side alone (median of
 * batches recorded with the device idle), what bounds it on a GPU whose kernel time is small.
 *
 *   deno run --allow-read --allow-env bench/data_pipeline.ts [--sizes 64,112,224] [--batch 64]
 *
 * or `deno task bench --only data`; `deno task bench --only moco` prints both beside each step.
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
import { type ImageSource, makeTwoViewBatchFromSeed } from "../data/augment.ts";
import { DeviceTwoViews } from "../data/augment_device.ts";
import { storedSizeFor } from "../data/cache/format.ts";
import { pretrainAugment } from "../train/cache_sources.ts";
import { Rng } from "../util/rng.ts";
import type { BenchEntry } from "./harness.ts";

export interface DataRates {
  size: number;
  batch: number;
  /** Host augmentation + f32 upload, img/s (an image = its two views). */
  host: number;
  /** uint8 upload + GPU augmentation, img/s. */
  device: number;
  /** The host's share of the GPU path alone (images copied, transforms drawn, uploads queued). */
  deviceHost: number;
}

function randomImages(S: number, count: number): ImageSource {
  const r = new Rng(S), px = new Uint8Array(S * S * count);
  for (let i = 0; i < px.length; i++) px[i] = r.nextU32() & 255;
  return {
    size: S,
    count,
    tasks: ["t"],
    labels: new Float32Array(count),
    mask: new Float32Array(count),
    image: (i) => px.subarray(i * S * S, (i + 1) * S * S),
  };
}

export async function timeDataPipeline(
  gpu: Gpu,
  size: number,
  batch: number,
  reps = 3,
): Promise<DataRates> {
  const N = batch, src = randomImages(storedSizeFor({ size }), 2 * N);
  const o = pretrainAugment("mococxr", size, 1), plane = size * size;
  const idx = (k: number) => Array.from({ length: N }, (_, j) => (k * N + j) % src.count);
  const perm = (k: number) => new Rng(k).shuffle([...Array(N).keys()]);
  const host = (k: number) => {
    const b = makeTwoViewBatchFromSeed(src, idx(k), o, k), p = perm(k);
    const xk = new Float32Array(N * plane);
    p.forEach((q, j) => xk.set(b.k.subarray(q * plane, (q + 1) * plane), j * plane));
    return [Tensor.from(gpu, b.q, [N, 1, size, size]), Tensor.from(gpu, xk, [N, 1, size, size])];
  };
  const dev = new DeviceTwoViews(gpu, src, o);
  const device = (k: number) => {
    const { xq, xk } = dev.views(idx(k), k, perm(k));
    return [xq, xk];
  };
  const rate = async (make: (k: number) => Tensor[]) => {
    for (const t of make(0)) t.dispose();
    await gpu.sync();
    const t0 = performance.now();
    for (let k = 1; k <= reps; k++) for (const t of make(k)) t.dispose();
    await gpu.sync();
    return (N * reps) / ((performance.now() - t0) / 1000);
  };
  // The host's share of the GPU path: each batch recorded with the device idle, median of reps.
  const hostMs: number[] = [];
  for (let k = 1; k <= Math.max(3, reps); k++) {
    await gpu.sync();
    const t0 = performance.now();
    const ts = device(k);
    hostMs.push(performance.now() - t0);
    for (const t of ts) t.dispose();
  }
  await gpu.sync();
  hostMs.sort((a, b) => a - b);
  const deviceHost = N / (hostMs[Math.floor(hostMs.length / 2)] / 1000);
  return { size, batch, host: await rate(host), device: await rate(device), deviceHost };
}

/** "data pipeline: host … img/s, GPU … img/s" with each rate's multiple of the step's. */
export function formatDataRates(r: DataRates, stepImgPerSec?: number): string {
  const x = (v: number) => stepImgPerSec ? ` (${(v / stepImgPerSec).toFixed(1)}x the step)` : "";
  return `data pipeline ${r.size} px, batch ${r.batch}: host augmentation ${
    r.host.toFixed(0)
  } img/s${x(r.host)}; GPU augmentation ${r.device.toFixed(0)} img/s${x(r.device)}, its host side ${
    r.deviceHost.toFixed(0)
  } img/s`;
}

export const dataBench: BenchEntry = {
  name: "data",
  description: "pretraining data pipeline img/s (host vs GPU augmentation) at 64/112/224 px",
  async run(ctx) {
    console.log("");
    const reps = Math.max(1, Math.round(3 * ctx.opts.repScale));
    for (const size of [64, 112, 224]) {
      console.log(formatDataRates(await timeDataPipeline(ctx.gpu, size, 64, reps)));
    }
  },
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "64,112,224" },
      batch: { type: "string", default: "64" },
      reps: { type: "string", default: "3" },
    },
  });
  const ints = (flag: string, s: string, min: number) =>
    s.split(",").map((v) => {
      const x = Number(v);
      if (!Number.isInteger(x) || x < min) {
        console.error(`--${flag}: expected integers >= ${min}, got "${s}"`);
        Deno.exit(2);
      }
      return x;
    });
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const [batch] = ints("batch", values.batch, 1), [reps] = ints("reps", values.reps, 1);
  for (const size of ints("sizes", values.sizes, 16)) {
    console.log(formatDataRates(await timeDataPipeline(gpu, size, batch, reps)));
  }
}
