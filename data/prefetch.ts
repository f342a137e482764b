/**
 * Keeps the GPU fed: batches are made ahead of use, either on worker threads that read the
 * cache's shared pixels (BatchWorkers), or in this thread between awaits (timer tasks run while
 * the trainer awaits GPU work). Seeds are drawn from the caller's Rng in batch order when a batch
 * is scheduled, so the output does not depend on the mode, the worker count or the depth.
 * Each yielded batch carries rngState: the caller's Rng state right after its seed was drawn,
 * i.e. what a resumed run should restore to continue with the next batch.
 */
import type { Rng } from "../util/rng.ts";
import {
  type AugmentOptions,
  type Batch,
  makeBatchFromSeed,
  makeTwoViewBatchFromSeed,
  type TwoViewBatch,
} from "./augment.ts";
import type { ImageCache } from "./cache/reader.ts";
import { WorkerPool } from "./worker_pool.ts";

let nextCacheId = 1;

/** Worker threads that make batches from a cache's shared pixels. */
export class BatchWorkers {
  private readonly pool: WorkerPool;
  private readonly cacheId = nextCacheId++;
  readonly ready: Promise<void>;

  constructor(readonly cache: ImageCache, workers = 2) {
    this.pool = new WorkerPool(workers);
    this.ready = this.pool.broadcast({
      op: "initSource",
      cacheId: this.cacheId,
      shards: cache.shards.map((s) => s.buffer),
      perShard: cache.perShard,
      size: cache.size,
      count: cache.count,
      tasks: cache.tasks,
      labels: cache.labels,
      mask: cache.mask,
    }).then(() => {});
  }

  async make(indices: number[], o: AugmentOptions, seed: number): Promise<Batch> {
    await this.ready;
    return await this.pool.run<Batch>({ op: "batch", cacheId: this.cacheId, indices, o, seed });
  }

  async makeTwoView(
    indices: number[],
    o: AugmentOptions,
    seed: number,
    ok: AugmentOptions = o,
  ): Promise<TwoViewBatch> {
    await this.ready;
    return await this.pool.run<TwoViewBatch>({
      op: "twoView",
      cacheId: this.cacheId,
      indices,
      o,
      ok,
      seed,
    });
  }

  close(): void {
    this.pool.close();
  }
}

export interface PrefetchOptions {
  /** Batches made ahead (default 3). */
  depth?: number;
  /** Make batches on these workers (default: in this thread, between awaits). */
  workers?: BatchWorkers | null;
}

/** Yields to the event loop, then runs fn (so GPU callbacks get their turn first). */
function later<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) =>
    setTimeout(() => {
      try {
        resolve(fn());
      } catch (e) {
        reject(e);
      }
    }, 0)
  );
}

async function* prefetch<T>(
  batches: Iterable<number[]>,
  rng: Rng,
  depth: number,
  make: (indices: number[], seed: number) => Promise<T>,
): AsyncGenerator<T & { rngState: number }> {
  const queue: Promise<T & { rngState: number }>[] = [];
  const it = batches[Symbol.iterator]();
  const schedule = () => {
    const next = it.next();
    if (next.done) return false;
    const seed = rng.nextU32(), rngState = rng.state;
    const p = make(next.value, seed).then((b) => Object.assign(b as object, { rngState }));
    p.catch(() => {}); // surfaced when awaited; avoids unhandled rejections when abandoned
    queue.push(p as Promise<T & { rngState: number }>);
    return true;
  };
  for (let i = 0; i < Math.max(1, depth); i++) if (!schedule()) break;
  while (queue.length > 0) {
    const b = await queue.shift()!;
    schedule();
    yield b;
  }
}

/** Augmented single-view batches, made ahead (see PrefetchOptions). */
export function prefetchBatches(
  cache: ImageCache,
  batches: Iterable<number[]>,
  o: AugmentOptions,
  rng: Rng,
  p: PrefetchOptions = {},
): AsyncGenerator<Batch & { rngState: number }> {
  const w = p.workers;
  return prefetch(
    batches,
    rng,
    p.depth ?? 3,
    (idx, seed) => w ? w.make(idx, o, seed) : later(() => makeBatchFromSeed(cache, idx, o, seed)),
  );
}

/** Two-view (MoCo query/key) batches, made ahead. */
export function prefetchTwoViewBatches(
  cache: ImageCache,
  batches: Iterable<number[]>,
  o: AugmentOptions,
  rng: Rng,
  p: PrefetchOptions & { viewK?: AugmentOptions } = {},
): AsyncGenerator<TwoViewBatch & { rngState: number }> {
  const w = p.workers, ok = p.viewK ?? o;
  return prefetch(
    batches,
    rng,
    p.depth ?? 3,
    (idx, seed) =>
      w
        ? w.makeTwoView(idx, o, seed, ok)
        : later(() => makeTwoViewBatchFromSeed(cache, idx, o, seed, ok)),
  );
}
