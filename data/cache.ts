/**
 * Compact image cache: every image of a dataset decoded once, converted to gray, resized
 * (shorter side, anti-aliased) and centre-cropped to a stored side a bit larger than the training
 * crop (1.14×, room for random crops and rotation), kept as raw uint8 in ≤1 GiB shard files plus
 * index.json (records, labels, masks, patients, bad images, and a checksum of the sources: paths,
 * sizes, mtimes, labels, stored size). A stale cache (checksum differs) is rebuilt; building
 * happens in a temp folder renamed into place, so a crash never leaves a half cache.
 * Images are loaded into SharedArrayBuffers so batch workers can read them without copies.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { readImageGray } from "./decode.ts";
import { resizeAndCenterCrop } from "./gray_image.ts";
import type { ImageSource } from "./augment.ts";
import type { DataRecord, Dataset, DatasetKind, RecordMeta, Split } from "./types.ts";
import { WorkerPool } from "./worker_pool.ts";
import { exists } from "./paths.ts";
import { DataError, TooManyBadImagesError } from "./data_error.ts";

export const CACHE_FORMAT = "moco-cxr-image-cache";
export const CACHE_VERSION = 1;
/** Stored side = round(crop side × this), as in MoCo-CXR-style resize-then-crop pipelines. */
export const DEFAULT_MARGIN = 1.14;
const SHARD_BYTES = 1 << 30;

export interface CachedRecord {
  path: string;
  patient: string;
  labels: number[];
  mask: number[];
  split?: Split;
  meta?: RecordMeta;
}

export interface BadImage {
  path: string;
  error: string;
}

export interface CacheIndex {
  format: string;
  version: number;
  checksum: string;
  storedSize: number;
  cropSize: number;
  count: number;
  tasks: string[];
  dataset: { name: string; kind: DatasetKind; root: string };
  records: CachedRecord[];
  badImages: BadImage[];
  shards: { file: string; count: number }[];
  created: string;
}

export interface CacheOptions {
  /** Cache folder (e.g. runs/cache/<name>). */
  dir: string;
  /** Training crop side; the stored side is round(size × margin) unless storedSize is given. */
  size: number;
  margin?: number;
  storedSize?: number;
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

export function storedSizeFor(o: Pick<CacheOptions, "size" | "margin" | "storedSize">): number {
  const s = o.storedSize ?? Math.round(o.size * (o.margin ?? DEFAULT_MARGIN));
  if (!(Number.isInteger(s) && s >= 8 && s <= 4096 && s >= o.size)) {
    throw new Error(`cache: bad stored size ${s} for crop ${o.size}`);
  }
  return s;
}

/** The cache: an ImageSource over the stored images plus the record table. */
export class ImageCache implements ImageSource {
  readonly size: number;
  readonly cropSize: number;
  readonly count: number;
  readonly tasks: string[];
  readonly labels: Float32Array;
  readonly mask: Float32Array;
  readonly perShard: number;

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

  image(i: number): Uint8Array {
    const px = this.size * this.size;
    const s = Math.floor(i / this.perShard), o = (i - s * this.perShard) * px;
    return this.shards[s].subarray(o, o + px);
  }

  get records(): CachedRecord[] {
    return this.index.records;
  }

  get badImages(): BadImage[] {
    return this.index.badImages;
  }

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

/** Checksum of what the cached pixels come from: paths, file sizes and mtimes, stored size. */
export async function sourceChecksum(ds: Dataset, storedSize: number): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ format: CACHE_FORMAT, version: CACHE_VERSION, storedSize }));
  const B = 64;
  for (let s = 0; s < ds.records.length; s += B) {
    const chunk = ds.records.slice(s, s + B);
    const stats = await Promise.all(chunk.map((r) => Deno.stat(r.path).catch(() => null)));
    chunk.forEach((r, i) => {
      const st = stats[i];
      h.update(
        JSON.stringify([
          r.path,
          st ? st.size : -1,
          st?.mtime ? st.mtime.getTime() : -1,
        ]) + "\n",
      );
    });
  }
  return h.digest("hex");
}

/** Decodes one image file to stored-size gray (what the workers run). */
export async function decodeForCache(path: string, storedSize: number): Promise<Uint8Array> {
  const img = await readImageGray(path);
  return resizeAndCenterCrop(img, storedSize).data;
}

type Decoded = { ok: true; data: Uint8Array } | { ok: false; error: string };

/** Decodes a list of files, errors captured per file (shared by the worker op). */
export async function decodeMany(paths: string[], storedSize: number): Promise<Decoded[]> {
  const out: Decoded[] = [];
  for (const p of paths) {
    try {
      out.push({ ok: true, data: await decodeForCache(p, storedSize) });
    } catch (e) {
      out.push({ ok: false, error: (e as Error).message });
    }
  }
  return out;
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

/** Writes images in order into shard files of at most SHARD_BYTES. */
class ShardWriter {
  readonly shards: { file: string; count: number }[] = [];
  private file: Deno.FsFile | null = null;
  private inShard = 0;
  constructor(private readonly dir: string, private readonly perShard: number) {}

  async write(img: Uint8Array): Promise<void> {
    if (!this.file || this.inShard === this.perShard) {
      this.file?.close();
      const name = `images-${String(this.shards.length).padStart(3, "0")}.u8`;
      this.file = await Deno.open(join(this.dir, name), {
        write: true,
        create: true,
        truncate: true,
      });
      this.shards.push({ file: name, count: 0 });
      this.inShard = 0;
    }
    let off = 0;
    while (off < img.length) off += await this.file.write(img.subarray(off));
    this.inShard++;
    this.shards[this.shards.length - 1].count++;
  }

  async close(): Promise<void> {
    if (this.file) {
      await this.file.sync();
      this.file.close();
    }
    this.file = null;
  }
}

/** Decodes and stores every image of a dataset (in parallel), atomically replacing `o.dir`. */
export async function buildCache(ds: Dataset, o: CacheOptions): Promise<ImageCache> {
  const stored = storedSizeFor(o);
  if (ds.records.length === 0) throw new DataError(`${ds.root}: dataset has no images to cache`);
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
          records.push({
            path: r.path,
            patient: r.patient,
            labels: Array.from(r.labels),
            mask: Array.from(r.mask),
            ...(r.split ? { split: r.split } : {}),
            ...(r.meta ? { meta: r.meta } : {}),
          });
        } else {
          bad.push({ path: r.path, error: res.error });
          if (!o.quiet) console.warn(`warning: skipped bad image ${res.error}`);
        }
      }
      o.onProgress?.(Math.min(n, (c + 1) * CHUNK), n);
    }
    await writer.close();
    const maxBad = o.maxBadFraction ?? 0.05;
    if (records.length === 0 || bad.length > maxBad * n) {
      throw new TooManyBadImagesError(
        `${ds.root}: ${bad.length} of ${n} images are unreadable (limit ${
          (100 * maxBad).toFixed(1)
        }%); first: ${bad.slice(0, 3).map((b) => b.error).join("; ")}`,
      );
    }
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

/** The same cached pixels with the labels, tasks, patients and splits of `ds` (same paths). */
export function withDatasetLabels(cache: ImageCache, ds: Dataset): ImageCache {
  const byPath = new Map(ds.records.map((r) => [r.path, r]));
  const records = cache.records.map((c) => {
    const r = byPath.get(c.path);
    if (!r) throw new Error(`${cache.dir}: cached image ${c.path} is not in dataset ${ds.root}`);
    return {
      path: r.path,
      patient: r.patient,
      labels: Array.from(r.labels),
      mask: Array.from(r.mask),
      ...(r.split ? { split: r.split } : {}),
      ...(r.meta ? { meta: r.meta } : {}),
    };
  });
  return new ImageCache(cache.dir, { ...cache.index, tasks: ds.tasks, records }, cache.shards);
}

/**
 * Opens the cache when its pixels match the dataset's sources (checksum), else (re)builds it;
 * either way the labels are the dataset's current ones.
 */
export async function ensureCache(ds: Dataset, o: CacheOptions): Promise<ImageCache> {
  const stored = storedSizeFor(o);
  if (await exists(join(o.dir, "index.json"))) {
    try {
      const idx: CacheIndex = JSON.parse(await Deno.readTextFile(join(o.dir, "index.json")));
      const sum = await sourceChecksum(ds, stored);
      if (
        idx.format === CACHE_FORMAT && idx.version === CACHE_VERSION && idx.checksum === sum &&
        idx.cropSize === o.size
      ) {
        return withDatasetLabels(await openCache(o.dir), ds);
      }
      o.log?.(`cache ${o.dir} is stale (sources or settings changed): rebuilding`);
    } catch (e) {
      o.log?.(`cache ${o.dir} unreadable (${(e as Error).message}): rebuilding`);
    }
  }
  return await buildCache(ds, o);
}

/** A cache folder name unique to the dataset root and sizes: <base>/<name>-<kind>-<side>-<hash>. */
export function defaultCacheDir(
  base: string,
  ds: Dataset,
  o: Pick<CacheOptions, "size" | "margin" | "storedSize">,
): string {
  const stored = storedSizeFor(o);
  const h = createHash("sha256").update(JSON.stringify([ds.root, ds.kind, stored, o.size]))
    .digest("hex").slice(0, 10);
  const safe = ds.name.replace(/[^A-Za-z0-9._-]+/g, "_");
  return join(base, `${safe}-${ds.kind}-${stored}-${h}`);
}
