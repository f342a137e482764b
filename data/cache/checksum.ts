/** The cache's checksum of its sources: a stale cache is one whose checksum differs. */
import { createHash } from "node:crypto";
import type { Dataset } from "../types.ts";
import { CACHE_FORMAT, CACHE_VERSION } from "./format.ts";

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
