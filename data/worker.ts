/// <reference lib="deno.worker" />
/**
 * The data layer's worker thread (see worker_pool.ts): decodes images for the cache and renders
 * synthetic patients. (Batches are made on the training thread or on the GPU: a worker pool did
 * not keep up better on the 2-core box, bench/RESULTS.md, session 6 (data pipeline).)
 */
import { decodeMany } from "./cache/decode.ts";
import { writeChexpertPatients, writeShenzhenImages } from "./synth/write.ts";
import type { PatientPlan, SynthChexpertOptions, SynthShenzhenOptions } from "./synth/dataset.ts";

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
