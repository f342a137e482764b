/// <reference lib="deno.worker" />
/**
 * The data layer's worker thread (see worker_pool.ts): decodes images for the cache, renders
 * synthetic patients, and makes augmented batches from a cache's shared pixels.
 */
import { decodeMany } from "./cache/decode.ts";
import { writeChexpertPatients, writeShenzhenImages } from "./synth/write.ts";
import {
  type AugmentOptions,
  type ImageSource,
  makeBatchFromSeed,
  makeTwoViewBatchFromSeed,
} from "./augment.ts";
import type { PatientPlan, SynthChexpertOptions, SynthShenzhenOptions } from "./synth/dataset.ts";

const sources = new Map<number, ImageSource>();

/** The (non-shared) buffers of freshly made arrays, to transfer instead of copy. */
function buffers(...arrays: ArrayBufferView[]): Transferable[] {
  return arrays.map((a) => a.buffer as ArrayBuffer);
}

// deno-lint-ignore no-explicit-any
type Req = { op: string; [k: string]: any };

async function handle(req: Req): Promise<{ result: unknown; transfer: Transferable[] }> {
  switch (req.op) {
    case "decode": {
      const res = await decodeMany(req.paths as string[], req.storedSize as number);
      const transfer = buffers(...res.flatMap((r) => (r.ok ? [r.data] : [])));
      return { result: res, transfer };
    }
    case "synthChexpert":
      return {
        result: await writeChexpertPatients(
          req.dir as string,
          req.plans as PatientPlan[],
          req.opts as SynthChexpertOptions,
        ),
        transfer: [],
      };
    case "synthShenzhen":
      return {
        result: await writeShenzhenImages(
          req.dir as string,
          req.from as number,
          req.to as number,
          req.opts as SynthShenzhenOptions,
        ),
        transfer: [],
      };
    case "initSource": {
      const shards = (req.shards as SharedArrayBuffer[]).map((b) => new Uint8Array(b));
      const size = req.size as number, perShard = req.perShard as number, px = size * size;
      sources.set(req.cacheId as number, {
        size,
        count: req.count as number,
        tasks: req.tasks as string[],
        labels: req.labels as Float32Array,
        mask: req.mask as Float32Array,
        image(i: number) {
          const s = Math.floor(i / perShard), o = (i - s * perShard) * px;
          return shards[s].subarray(o, o + px);
        },
      });
      return { result: true, transfer: [] };
    }
    case "batch":
    case "twoView": {
      const src = sources.get(req.cacheId as number);
      if (!src) throw new Error(`batch worker: unknown cache ${req.cacheId}`);
      const o = req.o as AugmentOptions;
      if (req.op === "batch") {
        const b = makeBatchFromSeed(src, req.indices as number[], o, req.seed as number);
        return { result: b, transfer: buffers(b.x, b.labels, b.mask) };
      }
      const b = makeTwoViewBatchFromSeed(src, req.indices, o, req.seed, req.ok as AugmentOptions);
      return { result: b, transfer: buffers(b.q, b.k, b.labels, b.mask) };
    }
    default:
      throw new Error(`data worker: unknown op ${req.op}`);
  }
}

self.onmessage = async (e: MessageEvent<{ id: number; req: Req }>) => {
  const { id, req } = e.data;
  try {
    const { result, transfer } = await handle(req);
    self.postMessage({ id, result }, transfer);
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
