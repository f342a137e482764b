/**
 * Smoke test on real radiographs: the shared NIH subset (1,000 64×64 RGB/RGBA PNGs with a
 * labels.csv and folder-per-class copies) loads, caches and batches. Skipped when absent.
 */
import { assert, assertEquals } from "./helpers.ts";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadDataset } from "../data/load.ts";
import { ensureCache } from "../data/cache/builder.ts";
import { makeBatch, trainAugment } from "../data/augment.ts";
import { sharedPatients, splitByPatient } from "../data/fractions.ts";
import { Rng } from "../util/rng.ts";

const NIH = fileURLToPath(new URL("../../shared/data/nih1000", import.meta.url));
const absent = !existsSync(`${NIH}/labels.csv`);

Deno.test({
  name: "NIH subset: load (CSV and folder layouts), cache, batch",
  ignore: absent,
  async fn() {
    const ds = await loadDataset({ root: NIH });
    assertEquals(ds.kind, "csv");
    assertEquals(ds.records.length, 1000);
    const viaFolders = await loadDataset({ root: NIH, kind: "folder" });
    assertEquals(viaFolders.records.length, 1000);
    const dir = await Deno.makeTempDir({ prefix: "data_nih_" });
    try {
      const cache = await ensureCache(ds, { dir: `${dir}/cache`, size: 56, workers: 2 });
      assertEquals([cache.count, cache.size, cache.badImages.length], [1000, 64, 0]);
      const pos = Array.from(cache.labels).filter((v) => v === 1).length;
      assert(pos > 100 && pos < 900, `positives ${pos}`);
      const train = cache.splitIndices("train");
      assert(train.length > 0 && cache.splitIndices("test").length > 0);
      const b = makeBatch(cache, train.slice(0, 8), trainAugment(56, { channels: 3 }), new Rng(1));
      assertEquals(b.x.length, 8 * 3 * 56 * 56);
      assert(b.x.every(Number.isFinite));
      const mean = b.x.reduce((s, v) => s + v, 0) / b.x.length;
      assert(Math.abs(mean) < 10, `normalised mean ${mean}`);
      const split = splitByPatient(cache.records, { seed: 1 });
      assertEquals(sharedPatients(cache.records, split.train, split.test), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
