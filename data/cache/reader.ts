/**
 * Opening a cache: index.json and its shards read into SharedArrayBuffers (so batch workers read
 * the pixels without copies), served as an ImageSource with the record table.
 */
import { join } from "node:path";
import type { ImageSource } from "../augment.ts";
import type { DataRecord, Dataset, Split } from "../types.ts";
import { refuseDuplicatePaths } from "../duplicates.ts";
import {
  type BadImage,
  CACHE_FORMAT,
  CACHE_VERSION,
  type CachedRecord,
  cachedRecord,
  type CacheIndex,
} from "./format.ts";

/** The cache: an ImageSource over the stored images plus the record table. */
export class ImageCache implements ImageSource {
  /** Side of the stored square images. */
  readonly size: number;
  /** The training crop side the cache was built for. */
  readonly cropSize: number;
  /** Number of images. */
  readonly count: number;
  /** Task names, one label column each. */
  readonly tasks: string[];
  /** count × tasks labels (0/1), row-major. */
  readonly labels: Float32Array;
  /** count × tasks: 1 where a label is used, 0 where it is ignored. */
  readonly mask: Float32Array;
  /** Images per shard file (the last may hold fewer). */
  readonly perShard: number;

  /** A cache read from `dir`: its index and its shards' pixels (openCache reads both). */
  constructor(readonly dir: string, readonly index: CacheIndex, readonly shards: Uint8Array[]) {
    this.size = index.storedSize;
    this.cropSize = index.cropSize;
    this.count = index.count;
    this.tasks = index.tasks;
    const T = this.tasks.length;
    this.labels = new Float32Array(this.count * T);
    this.mask = new Float32Array(this.count * T);
    index.records.forEach((r, i) => {
      this.labels.set(r.labels, i * T);
      this.mask.set(r.mask, i * T);
    });
    this.perShard = index.shards[0]?.count ?? 1;
  }

  /** Stored pixels of image i (size × size, row-major), a view into its shard. */
  image(i: number): Uint8Array {
    const px = this.size * this.size;
    const s = Math.floor(i / this.perShard), o = (i - s * this.perShard) * px;
    return this.shards[s].subarray(o, o + px);
  }

  /** The cached records, in image order. */
  get records(): CachedRecord[] {
    return this.index.records;
  }

  /** Images left out of the cache because they could not be decoded. */
  get badImages(): BadImage[] {
    return this.index.badImages;
  }

  /** The checksum of the sources the cache was built from. */
  get checksum(): string {
    return this.index.checksum;
  }

  /** Indices of a split (records without one count as "train"). */
  splitIndices(split: Split): number[] {
    const out: number[] = [];
    this.index.records.forEach((r, i) => {
      if ((r.split ?? "train") === split) out.push(i);
    });
    return out;
  }

  /** The records as DataRecord (Float32Array labels), e.g. for the samplers. */
  dataRecords(): DataRecord[] {
    return this.index.records.map((r) => ({
      path: r.path,
      patient: r.patient,
      labels: Float32Array.from(r.labels),
      mask: Float32Array.from(r.mask),
      split: r.split,
      meta: r.meta,
    }));
  }
}

/** Reads index.json and the shards of a cache folder into shared memory. */
export async function openCache(dir: string): Promise<ImageCache> {
  let index: CacheIndex;
  try {
    index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  } catch (e) {
    throw new Error(`${dir}: not an image cache (index.json: ${(e as Error).message})`);
  }
  if (index.format !== CACHE_FORMAT || index.version !== CACHE_VERSION) {
    throw new Error(
      `${dir}: cache format ${index.format} v${index.version}, expected ${CACHE_FORMAT} ` +
        `v${CACHE_VERSION}: rebuild it`,
    );
  }
  const px = index.storedSize * index.storedSize;
  const shards: Uint8Array[] = [];
  let total = 0;
  for (const s of index.shards) {
    const path = join(dir, s.file);
    const want = s.count * px;
    const view = new Uint8Array(new SharedArrayBuffer(want));
    const f = await Deno.open(path);
    try {
      let off = 0;
      while (off < want) {
        const n = await f.read(view.subarray(off));
        if (n === null) break;
        off += n;
      }
      if (off !== want || (await f.read(new Uint8Array(1))) !== null) {
        throw new Error(`${path}: shard holds ${off === want ? "more" : off} bytes, want ${want}`);
      }
    } finally {
      f.close();
    }
    shards.push(view);
    total += s.count;
  }
  if (total !== index.count || index.records.length !== index.count) {
    throw new Error(
      `${dir}: cache index is inconsistent (${total} images, ${index.count} records)`,
    );
  }
  return new ImageCache(dir, index, shards);
}

/**
 * The same cached pixels with the labels, tasks, patients and splits of `ds` (same paths). A
 * dataset or cache listing a path twice is refused: which labels it got would depend on order.
 */
export function withDatasetLabels(cache: ImageCache, ds: Dataset): ImageCache {
  refuseDuplicatePaths(ds.records.map((r) => r.path), `dataset ${ds.root}`);
  refuseDuplicatePaths(cache.records.map((r) => r.path), `cache ${cache.dir} (rebuild it)`);
  const byPath = new Map(ds.records.map((r) => [r.path, r]));
  const records = cache.records.map((c) => {
    const r = byPath.get(c.path);
    if (!r) throw new Error(`${cache.dir}: cached image ${c.path} is not in dataset ${ds.root}`);
    return cachedRecord(r);
  });
  return new ImageCache(cache.dir, { ...cache.index, tasks: ds.tasks, records }, cache.shards);
}
