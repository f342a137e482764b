/** Decoding source images to the cache's stored size (what the build's workers run). */
import { readImageGray } from "../decode.ts";
import { resizeAndCenterCrop } from "../gray_image.ts";

/** Decodes one image file to stored-size gray (what the workers run). */
export async function decodeForCache(path: string, storedSize: number): Promise<Uint8Array> {
  const img = await readImageGray(path);
  return resizeAndCenterCrop(img, storedSize).data;
}

/** One file's outcome: its stored-size pixels, or why it could not be read. */
export type Decoded = { ok: true; data: Uint8Array } | { ok: false; error: string };

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
