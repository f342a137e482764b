/**
 * Building the compact image cache: every image of a dataset decoded once, converted to gray,
 * resized (shorter side, anti-aliased) and centre-cropped to a stored side a bit larger than the
 * training crop (1.14×, room for random crops and rotation), kept as raw uint8 in ≤1 GiB shard
 * files plus index.json (records, labels, masks, patients, bad images, and a checksum of the
 * sources: paths, sizes, mtimes, stored size). A stale cache (checksum differs) is
 * rebuilt; building happens in a temp folder renamed into place, so a crash never leaves a half
 * cache.
 */
import { basename, dirname, join } from "node:path";
import type { Dataset } from "../types.ts";
import { WorkerPool } from "../worker_pool.ts";
import { exists } from "../paths.ts";
import { DataError, TooManyBadImagesError } from "../data_error.ts";
import { sourceChecksum } from "./checksum.ts";
import { refuseDuplicatePaths } from "../duplicates.ts";
import { oneLine } from "../../util/user_error.ts";
import { type Decoded, decodeMany } from "./decode.ts";
import {
  type BadImage,
  CACHE_FORMAT,
  CACHE_VERSION,
  type CachedRecord,
  cachedRecord,
  type CacheIndex,
  type CacheSizing,
  SHARD_BYTES,
  storedSizeFor,
} from "./format.ts";
import { type ImageCache, openCache, withDatasetLabels } from "./reader.ts";
import { ShardWriter } from "./writer.ts";

/** Where and how `buildCache` / `ensureCache` build a cache. */
export interface CacheOptions extends CacheSizing {
  /** Cache folder (e.g. runs/cache/<name>). */
  dir: string;
  /** Decoding workers (0 = this thread). Default 2. */
  workers?: number;
  /** Fail when more than this share of images is unreadable. Default 0.05. */
  maxBadFraction?: number;
  onProgress?: (done: number, total: number) => void;
  log?: (msg: string) => void;
  /** Suppress the per-image warnings (still listed in badImages). */
  quiet?: boolean;
  /** Largest shard file (default 1 GiB; smaller in tests to exercise several shards). */
  shardBytes?: number;
}

/**
 * Refuses a cache (being built, or reused) whose unreadable images pass the tolerated share
 * (default 0.05) or that holds no image: the same message either way.
 */
function checkBadImages(
  root: string,
  good: number,
  bad: BadImage[],
  maxBadFraction = 0.05,
): void {
  const n = good + bad.length;
  if (good === 0 || bad.length > maxBadFraction * n) {
    throw new TooManyBadImagesError(
      `${root}: ${bad.length} of ${n} images are unreadable (limit ${
        (100 * maxBadFraction).toFixed(1)
      }%); first: ${bad.slice(0, 3).map((b) => b.error).join("; ")}`,
    );
  }
}

/** Decodes and stores every image of a dataset (in parallel), atomically replacing `o.dir`. */
export async function buildCache(ds: Dataset, o: CacheOptions): Promise<ImageCache> {
  const stored = storedSizeFor(o);
  if (ds.records.length === 0) throw new DataError(`${ds.root}: dataset has no images to cache`);
  refuseDuplicatePaths(ds.records.map((r) => r.path), `dataset ${ds.root}`);
  const checksum = await sourceChecksum(ds, stored);
  const parent = dirname(o.dir);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${basename(o.dir)}.tmp-` });
  const workers = o.workers ?? 2;
  const pool = workers > 0 ? new WorkerPool(workers) : null;
  try {
    const px = stored * stored;
    const writer = new ShardWriter(
      tmp,
      Math.max(1, Math.floor((o.shardBytes ?? SHARD_BYTES) / px)),
    );
    const records: CachedRecord[] = [];
    const bad: BadImage[] = [];
    const CHUNK = 16, n = ds.records.length;
    const chunks: Promise<Decoded[]>[] = [];
    const launch = (c: number) => {
      const paths = ds.records.slice(c * CHUNK, (c + 1) * CHUNK).map((r) => r.path);
      return pool
        ? pool.run<Decoded[]>({ op: "decode", paths, storedSize: stored })
        : decodeMany(paths, stored);
    };
    const nChunks = Math.ceil(n / CHUNK), ahead = pool ? 2 * workers + 1 : 1;
    for (let c = 0; c < Math.min(ahead, nChunks); c++) chunks.push(launch(c));
    for (let c = 0; c < nChunks; c++) {
      const results = await chunks[c];
      if (c + ahead < nChunks) chunks.push(launch(c + ahead));
      for (let k = 0; k < results.length; k++) {
        const r = ds.records[c * CHUNK + k], res = results[k];
        if (res.ok) {
          await writer.write(res.data);
          records.push(cachedRecord(r));
        } else {
          bad.push({ path: r.path, error: res.error });
          if (!o.quiet) console.warn(`warning: skipped bad image ${oneLine(res.error)}`);
        }
      }
      o.onProgress?.(Math.min(n, (c + 1) * CHUNK), n);
    }
    await writer.close();
    checkBadImages(ds.root, records.length, bad, o.maxBadFraction);
    const index: CacheIndex = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      checksum,
      storedSize: stored,
      cropSize: o.size,
      count: records.length,
      tasks: ds.tasks,
      dataset: { name: ds.name, kind: ds.kind, root: ds.root },
      records,
      badImages: bad,
      shards: writer.shards,
      created: new Date().toISOString(),
    };
    await Deno.writeTextFile(join(tmp, "index.json"), JSON.stringify(index));
    let old: string | null = null;
    if (await exists(o.dir)) {
      old = `${tmp}.old`;
      await Deno.rename(o.dir, old);
    }
    await Deno.rename(tmp, o.dir);
    if (old) await Deno.remove(old, { recursive: true });
    if (bad.length) o.log?.(`cache ${o.dir}: ${bad.length} bad image(s) skipped`);
  } finally {
    pool?.close();
    if (await exists(tmp)) await Deno.remove(tmp, { recursive: true });
  }
  return await openCache(o.dir);
}

/**
 * Opens the cache when its pixels match the dataset's sources (checksum), else (re)builds it;
 * either way the labels are the dataset's current ones.
 */
export async function ensureCache(ds: Dataset, o: CacheOptions): Promise<ImageCache> {
  const stored = storedSizeFor(o);
  // Before the reuse below, whose failures mean "rebuild": a dataset listing an image twice is
  // refused, not rebuilt.
  refuseDuplicatePaths(ds.records.map((r) => r.path), `dataset ${ds.root}`);
  if (await exists(join(o.dir, "index.json"))) {
    let reused: ImageCache | null = null;
    try {
      const idx: CacheIndex = JSON.parse(await Deno.readTextFile(join(o.dir, "index.json")));
      const sum = await sourceChecksum(ds, stored);
      if (
        idx.format === CACHE_FORMAT && idx.version === CACHE_VERSION && idx.checksum === sum &&
        idx.cropSize === o.size
      ) {
        reused = withDatasetLabels(await openCache(o.dir), ds);
      } else o.log?.(`cache ${o.dir} is stale (sources or settings changed): rebuilding`);
    } catch (e) {
      o.log?.(`cache ${o.dir} unreadable (${(e as Error).message}): rebuilding`);
    }
    if (reused) {
      // The tolerated share is this run's, not the build's: a cache built under a looser
      // --max-bad is refused as a fresh build would be.
      checkBadImages(ds.root, reused.count, reused.badImages, o.maxBadFraction);
      return reused;
    }
  }
  return await buildCache(ds, o);
}
