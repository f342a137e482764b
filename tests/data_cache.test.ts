/**
 * Image cache: decoding into shards (several, across worker and in-thread builds alike), bad
 * images skipped and listed, the bad-share limit, reuse and rebuild on source changes, relabelling
 * without re-decoding and atomic writes.
 */
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { join } from "node:path";
import { buildCache, ensureCache } from "../data/cache/builder.ts";
import { decodeForCache } from "../data/cache/decode.ts";
import { storedSizeFor } from "../data/cache/format.ts";
import { openCache, withDatasetLabels } from "../data/cache/reader.ts";
import { loadCsvDataset, loadFolder } from "../data/generic.ts";
import { encodePngGray } from "../data/png_encode.ts";
import { encodeJpegGray } from "../data/jpeg.ts";
import { Rng } from "../util/rng.ts";

const N_GOOD = 14;

/** Folder dataset: 14 good images (PNG and JPEG, varied sizes), a corrupt PNG, a cut JPEG. */
async function fixture(dir: string): Promise<void> {
  const rng = new Rng(5);
  for (let i = 0; i < N_GOOD; i++) {
    const w = 20 + rng.int(30), h = 20 + rng.int(30);
    const data = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[y * w + x] = (x * 7 + y * 3 * i) & 255;
    }
    const cls = i % 2 ? "1_sick" : "0_normal";
    await Deno.mkdir(join(dir, "data", cls), { recursive: true });
    const img = { width: w, height: h, data };
    const name = `${String(i).padStart(8, "0")}_000`;
    if (i % 3 === 0) {
      await Deno.writeFile(join(dir, "data", cls, `${name}.jpg`), encodeJpegGray(img, 90));
    } else await Deno.writeFile(join(dir, "data", cls, `${name}.png`), encodePngGray(img));
  }
  await Deno.writeFile(
    join(dir, "data", "0_normal", "corrupt.png"),
    new Uint8Array([137, 80, 78, 71, 1, 2]),
  );
  const jpg = encodeJpegGray({ width: 32, height: 32, data: new Uint8Array(1024).fill(90) });
  await Deno.writeFile(join(dir, "data", "1_sick", "cut.jpg"), jpg.subarray(0, jpg.length >> 1));
}

async function withFixture(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_cache_" });
  try {
    await fixture(dir);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const OPTS = { size: 16, quiet: true, maxBadFraction: 0.2, shardBytes: 5 * 18 * 18 };

Deno.test("cache: stored images equal a direct decode+resize, bad files listed, shards", async () => {
  await withFixture(async (dir) => {
    const ds = await loadFolder({ root: join(dir, "data"), quiet: true });
    const cache = await buildCache(ds, { ...OPTS, dir: join(dir, "c0"), workers: 0 });
    assertEquals(cache.size, storedSizeFor({ size: 16 }));
    assertEquals(cache.size, 18);
    assertEquals(cache.count, N_GOOD);
    assertEquals(cache.index.shards.map((s) => s.count), [5, 5, 4]);
    assertEquals(cache.badImages.map((b) => b.path.split("/").pop()).sort(), [
      "corrupt.png",
      "cut.jpg",
    ]);
    assert(
      /corrupt\.png: .*PNG/.test(
        cache.badImages.find((b) => b.path.endsWith("corrupt.png"))!.error,
      ),
    );
    for (let i = 0; i < cache.count; i++) {
      const want = await decodeForCache(cache.records[i].path, 18);
      assertEquals(Array.from(cache.image(i)), Array.from(want), cache.records[i].path);
      const r = ds.records.find((x) => x.path === cache.records[i].path)!;
      assertEquals(cache.records[i].labels, Array.from(r.labels));
      assertEquals(cache.labels[i], r.labels[0]);
    }
    // Worker-built cache is byte-identical.
    const viaWorkers = await buildCache(ds, { ...OPTS, dir: join(dir, "c2"), workers: 2 });
    assertEquals(viaWorkers.records, cache.records);
    for (let s = 0; s < 3; s++) {
      assertEquals(Array.from(viaWorkers.shards[s]), Array.from(cache.shards[s]));
    }
    // Nothing temporary left beside the caches.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["c0", "c2", "data"]);
  });
});

Deno.test("cache: too many bad images fail clearly and leave nothing behind", async () => {
  await withFixture(async (dir) => {
    const ds = await loadFolder({ root: join(dir, "data"), quiet: true });
    await assertRejects(
      () => buildCache(ds, { ...OPTS, dir: join(dir, "c"), workers: 0, maxBadFraction: 0.05 }),
      /2 of 16 images are unreadable \(limit 5\.0%\)/,
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["data"]);
    await assertRejects(() => openCache(join(dir, "data")), /not an image cache/);
  });
});

Deno.test("cache: a reused cache is held to this open's bad-image limit, as a build is", async () => {
  await withFixture(async (dir) => {
    const ds = await loadFolder({ root: join(dir, "data"), quiet: true });
    const o = { ...OPTS, dir: join(dir, "c"), workers: 0 };
    // Built once under a loose limit (2 of 16 bad: 12.5% < 20%) ...
    const built = await ensureCache(ds, o);
    assertEquals(built.badImages.length, 2);
    // ... then opened under a strict one: refused with the build's own message, not reused.
    await assertRejects(
      () => ensureCache(ds, { ...o, maxBadFraction: 0 }),
      /2 of 16 images are unreadable \(limit 0\.0%\); first: .*(corrupt\.png|cut\.jpg)/,
    );
    await assertRejects(
      () => ensureCache(ds, { ...o, maxBadFraction: 0.1 }),
      /2 of 16 images are unreadable \(limit 10\.0%\)/,
    );
    // The cache is left as it was, and a looser limit reuses it.
    assertEquals((await ensureCache(ds, o)).index.created, built.index.created);
  });
});

Deno.test("cache: reused when sources match, rebuilt when a file changes, relabelled freely", async () => {
  await withFixture(async (dir) => {
    const ds = await loadFolder({ root: join(dir, "data"), quiet: true });
    const o = { ...OPTS, dir: join(dir, "c"), workers: 0 };
    const first = await ensureCache(ds, o);
    const again = await ensureCache(ds, o);
    assertEquals(again.index.created, first.index.created);
    // Other labels (positive class swapped): same pixels, no rebuild, new labels.
    const swapped = await ensureCache(
      await loadFolder({ root: join(dir, "data"), positive: "0_normal", quiet: true }),
      o,
    );
    assertEquals(swapped.index.created, first.index.created);
    assertEquals(swapped.tasks, ["0_normal"]);
    for (let i = 0; i < first.count; i++) assertEquals(swapped.labels[i], 1 - first.labels[i]);
    // Change one image: stale, rebuilt with the new pixels.
    const target = first.records[3].path;
    const flat = { width: 30, height: 30, data: new Uint8Array(900).fill(200) };
    await Deno.writeFile(
      target,
      target.endsWith(".png") ? encodePngGray(flat) : encodeJpegGray(flat, 95),
    );
    const logs: string[] = [];
    const rebuilt = await ensureCache(ds, { ...o, log: (m) => logs.push(m) });
    assert(rebuilt.checksum !== first.checksum);
    assert(logs.some((l) => /stale/.test(l)), logs.join("|"));
    assert(rebuilt.image(3).every((v) => Math.abs(v - 200) <= 2), "new pixels");
    // A damaged shard is detected on open.
    const shard = join(o.dir, rebuilt.index.shards[0].file);
    await Deno.writeFile(shard, (await Deno.readFile(shard)).subarray(10));
    await assertRejects(() => openCache(o.dir), /shard holds .* bytes, want/);
  });
});

Deno.test("cache: an image listed twice is refused, never relabelled by the last row", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data_cache_" });
  try {
    const png = encodePngGray({ width: 8, height: 8, data: new Uint8Array(64).fill(7) });
    for (const f of ["a.png", "b.png"]) await Deno.writeFile(join(dir, f), png);
    // The review's case: a CSV repeating a.png with another label. The loader refuses it.
    await Deno.writeTextFile(join(dir, "labels.csv"), "path,label\na.png,1\nb.png,0\na.png,0\n");
    await assertRejects(() => loadCsvDataset({ root: dir, quiet: true }), /rows 2 and 4/);
    // A repeat with the same label is dropped: building and reusing give the same labels.
    await Deno.writeTextFile(join(dir, "labels.csv"), "path,label\na.png,1\nb.png,0\na.png,1\n");
    const ds = await loadCsvDataset({ root: dir, quiet: true });
    const o = { ...OPTS, dir: join(dir, "c"), workers: 0 };
    const built = await ensureCache(ds, o), reused = await ensureCache(ds, o);
    assertEquals(reused.index.created, built.index.created);
    assertEquals([Array.from(built.labels), Array.from(reused.labels)], [[1, 0], [1, 0]]);
    // A dataset made by other code with a path twice: refused by the cache, not rebuilt.
    const twice = {
      ...ds,
      records: [...ds.records, { ...ds.records[0], labels: Float32Array.of(0) }],
    };
    await assertRejects(() => ensureCache(twice, o), /lists .*a\.png more than once/);
    await assertRejects(() => buildCache(twice, { ...o, dir: join(dir, "d") }), /more than once/);
    assertEquals((await openCache(o.dir)).index.created, built.index.created, "cache left alone");
    await assertRejects(
      async () => withDatasetLabels(await openCache(o.dir), twice),
      /lists .*a\.png more than once/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
