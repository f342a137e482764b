/**
 * The image cache on disk: index.json (this file's CacheIndex) beside raw uint8 shard files of
 * stored-size gray images, in record order; the stored side, and the folder a cache lives in.
 * The reader is reader.ts, the builder builder.ts.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { DataRecord, Dataset, DatasetKind, RecordMeta, Split } from "../types.ts";

/** index.json's `format`: what marks a folder as an image cache. */
export const CACHE_FORMAT = "moco-cxr-image-cache";
/** index.json's `version`; a cache of another version is rebuilt. */
export const CACHE_VERSION = 1;
/** Stored side = round(crop side × this), as in MoCo-CXR-style resize-then-crop pipelines. */
export const DEFAULT_MARGIN = 1.14;
/** Largest shard file by default (1 GiB). */
export const SHARD_BYTES = 1 << 30;

/** One cached image's record (labels and mask as plain arrays, for JSON). */
export interface CachedRecord {
  /** Absolute path of the source image. */
  path: string;
  /** Patient id. */
  patient: string;
  /** Per task, 0 or 1. */
  labels: number[];
  /** Per task, 1 = use the label, 0 = ignore it. */
  mask: number[];
  /** Split given by the dataset itself. */
  split?: Split;
  /** What the dataset tells of the image (view, sex, age, …). */
  meta?: RecordMeta;
}

/** A dataset record as the cache stores it (typed arrays as plain arrays, absent fields left out). */
export function cachedRecord(r: DataRecord): CachedRecord {
  return {
    path: r.path,
    patient: r.patient,
    labels: Array.from(r.labels),
    mask: Array.from(r.mask),
    ...(r.split ? { split: r.split } : {}),
    ...(r.meta ? { meta: r.meta } : {}),
  };
}

/** An image the build could not decode, and why; it is left out of the cache. */
export interface BadImage {
  /** The image file. */
  path: string;
  /** Why it could not be decoded. */
  error: string;
}

/** index.json: the records in shard order, the shards, and what the pixels were made from. */
export interface CacheIndex {
  /** Always CACHE_FORMAT. */
  format: string;
  /** CACHE_VERSION at build time. */
  version: number;
  /** sourceChecksum of the sources (checksum.ts): a different one means a stale cache. */
  checksum: string;
  /** Side of the stored square images, in pixels. */
  storedSize: number;
  /** The training crop side the cache was built for. */
  cropSize: number;
  /** Number of cached images (= records). */
  count: number;
  /** Task names, one label column each. */
  tasks: string[];
  /** The dataset the images come from. */
  dataset: { name: string; kind: DatasetKind; root: string };
  /** One per cached image, in shard order. */
  records: CachedRecord[];
  /** Images left out because they could not be decoded. */
  badImages: BadImage[];
  /** Shard files in order, with the number of images each holds. */
  shards: { file: string; count: number }[];
  /** Build time (ISO 8601). */
  created: string;
}

/** How big a cache stores its images: the training crop, and the margin or stored side around it. */
export interface CacheSizing {
  /** Training crop side; the stored side is round(size × margin) unless storedSize is given. */
  size: number;
  margin?: number;
  storedSize?: number;
}

/** The stored image side for a crop size (throws outside 8–4096 or below the crop). */
export function storedSizeFor(o: CacheSizing): number {
  const s = o.storedSize ?? Math.round(o.size * (o.margin ?? DEFAULT_MARGIN));
  if (!(Number.isInteger(s) && s >= 8 && s <= 4096 && s >= o.size)) {
    throw new Error(`cache: bad stored size ${s} for crop ${o.size}`);
  }
  return s;
}

/** A cache folder name unique to the dataset root and sizes: <base>/<name>-<kind>-<side>-<hash>. */
export function defaultCacheDir(
  base: string,
  ds: Dataset,
  o: CacheSizing,
): string {
  const stored = storedSizeFor(o);
  const h = createHash("sha256").update(JSON.stringify([ds.root, ds.kind, stored, o.size]))
    .digest("hex").slice(0, 10);
  const safe = ds.name.replace(/[^A-Za-z0-9._-]+/g, "_");
  return join(base, `${safe}-${ds.kind}-${stored}-${h}`);
}
