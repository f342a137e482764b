/**
 * Synthetic radiographs: deterministic rendering and dataset writing (in-thread and in workers
 * alike), the CheXpert/Shenzhen layouts loading through the real loaders, findings that change
 * the image where they should (effusion at the lung base, cardiomegaly at the heart), and the
 * generate-once/reuse behaviour of ensureSyntheticChexpert.
 */
import { assert, assertEquals } from "./helpers.ts";
import { join } from "node:path";
import { Rng } from "../util/rng.ts";
import {
  type Findings,
  sampleAcquisition,
  sampleAnatomy,
  sampleFindings,
  type Scene,
} from "../data/synth/scene.ts";
import { renderFrontal, renderLateral } from "../data/synth/render.ts";
import {
  ensureSyntheticChexpert,
  writeSyntheticChexpert,
  writeSyntheticShenzhen,
} from "../data/synth/write.ts";
import { planChexpert } from "../data/synth/dataset.ts";
import { loadDataset } from "../data/load.ts";
import { readCsv } from "../data/csv.ts";
import { readImageGray } from "../data/decode.ts";

const NONE: Partial<Findings> = {
  effusionLeft: 0,
  effusionRight: 0,
  edema: 0,
  consolidation: [],
  atelectasis: null,
  nodule: null,
  pneumothorax: null,
  devices: false,
  tb: null,
};

function scene(seed: number, f: Partial<Findings> = {}): Scene {
  const rng = new Rng(seed);
  const anatomy = sampleAnatomy(rng);
  const acquisition = sampleAcquisition(rng);
  const findings = { ...sampleFindings(rng, anatomy, null), ...NONE, ...f };
  return { anatomy, acquisition, findings };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_synth_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** All files under dir (relative path → bytes). */
async function tree(dir: string, sub = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(join(dir, sub))) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory) { for (const [k, v] of await tree(dir, rel)) out.set(k, v); }
    else out.set(rel, await Deno.readFile(join(dir, rel)));
  }
  return out;
}

Deno.test("synth render: deterministic, sized as asked, textures follow the seed", () => {
  const s = scene(3);
  const a = renderFrontal(s, 64, 77), b = renderFrontal(s, 64, 77);
  assertEquals([a.width, a.height, a.data.length], [64, 77, 64 * 77]);
  assertEquals(Array.from(a.data), Array.from(b.data));
  const other = renderFrontal({ ...s, acquisition: { ...s.acquisition, textureSeed: 1 } }, 64, 77);
  assert(other.data.some((v, i) => v !== a.data[i]));
  const lat = renderLateral(s, 48);
  assert(
    lat.data.some((v, i) => v !== renderFrontal(s, 48).data[i]),
    "lateral differs from frontal",
  );
  // Body and background: the centre is brighter than the corners.
  const c = a.data[38 * 64 + 32], corner = a.data[0];
  assert(c > corner, `centre ${c} vs corner ${corner}`);
});

Deno.test("synth render: effusion brightens the lung base on its side only", () => {
  const W = 64;
  let baseGain = 0, otherGain = 0, topChange = 0;
  for (let k = 0; k < 12; k++) {
    const clean = renderFrontal(scene(100 + k), W).data;
    // Same scene and noise, effusion on the patient's right (image left).
    const eff = renderFrontal(scene(100 + k, { effusionRight: 0.6 }), W).data;
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < W; x++) {
        const d = eff[y * W + x] - clean[y * W + x];
        assert(d >= -1, `effusion darkened (${x},${y}) by ${-d}`);
        if (y < W * 0.4) topChange += Math.abs(d);
        else if (x < W / 2) baseGain += d;
        else otherGain += d;
      }
    }
  }
  const perImage = baseGain / 12;
  assert(perImage > 2000, `lung-base gain per image ${perImage} (sum of gray levels)`);
  assert(otherGain < 0.05 * baseGain, `other side changed ${otherGain} vs ${baseGain}`);
  assertEquals(topChange, 0);
});

Deno.test("synth scenes: effusion is common and ranges from subtle to large (generator v3)", () => {
  // Contrastive pretraining only learns a finding that is among the main differences between
  // images (tools/probe_representation.ts); CheXpert's training set is ~40% effusion.
  const rng = new Rng(9);
  const sev: number[] = [];
  let positive = 0;
  const n = 4000;
  for (let i = 0; i < n; i++) {
    const f = sampleFindings(rng, sampleAnatomy(rng), null);
    if (f.effusionLeft > 0 || f.effusionRight > 0) positive++;
    for (const e of [f.effusionLeft, f.effusionRight]) if (e > 0) sev.push(e);
  }
  const p = positive / n;
  assert(p > 0.3 && p < 0.5, `prevalence ${p}`);
  const small = sev.filter((e) => e < 0.35).length / sev.length;
  const large = sev.filter((e) => e > 0.7).length / sev.length;
  assert(small > 0.15 && large > 0.25, `subtle ${small}, large ${large}`);
  assert(sev.every((e) => e >= 0.15 && e <= 1));
});

Deno.test("synth render: a larger cardiothoracic ratio brightens the heart region", () => {
  const W = 64;
  let gain = 0;
  for (let k = 0; k < 8; k++) {
    const normal = renderFrontal(scene(200 + k, { ctr: 0.42 }), W).data;
    const big = renderFrontal(scene(200 + k, { ctr: 0.6 }), W).data;
    for (let i = 0; i < normal.length; i++) gain += big[i] - normal[i];
  }
  assert(gain / 8 > 8000, `heart enlargement adds ${gain / 8} gray levels per image`);
});

Deno.test("synth CheXpert: real layout, uncertain/blank/lateral rows, same bytes with workers", async () => {
  await withDir(async (dir) => {
    const o = { n: 40, size: 40, seed: 5 };
    const s0 = await writeSyntheticChexpert(join(dir, "a"), o, { workers: 0 });
    const s2 = await writeSyntheticChexpert(join(dir, "b"), o, { workers: 2 });
    assertEquals(s0, s2);
    assertEquals(s0.train + s0.valid, 40);
    const ta = await tree(join(dir, "a")), tb = await tree(join(dir, "b"));
    assertEquals([...ta.keys()].sort(), [...tb.keys()].sort());
    for (const [k, v] of ta) assertEquals(v, tb.get(k), k);
    const root = join(dir, "a", "CheXpert-v1.0-small");
    const ds = await loadDataset({ root: join(dir, "a") });
    assertEquals([ds.kind, ds.records.length], ["chexpert", 40]);
    assert(ds.records.some((r) => r.split === "valid"));
    const patients = new Set(ds.records.map((r) => r.patient));
    assert(patients.size < 40, "some patients have several studies");
    const train = await readCsv(join(root, "train.csv"));
    const cells = train.rows.flatMap((r) => r.cells.slice(5));
    assert(
      cells.includes("-1.0") && cells.includes("") && cells.includes("1.0") &&
        cells.includes("0.0"),
    );
    assert(train.rows.some((r) => r.cells[3] === "Lateral"), "lateral views present");
    const valid = await readCsv(join(root, "valid.csv"));
    assert(valid.rows.every((r) => r.cells.slice(5).every((c) => c === "1.0" || c === "0.0")));
    const img = await readImageGray(ds.records[0].path);
    assertEquals(img.width, 40);
    assert(img.height >= 40 && img.height <= 48);
    // The plan alone says how many patients; ids follow CheXpert's numbering.
    assertEquals(planChexpert(o).length, s0.patients);
  });
});

Deno.test("synth Shenzhen: layout and readings load through the Shenzhen loader", async () => {
  await withDir(async (dir) => {
    await writeSyntheticShenzhen(dir, { n: 10, size: 32, seed: 1 }, { workers: 0 });
    const ds = await loadDataset({ root: dir });
    assertEquals(ds.kind, "shenzhen");
    assertEquals(ds.records.map((r) => r.labels[0]), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert(ds.records.every((r) => r.meta?.age !== undefined && r.meta?.sex !== undefined));
    assert(ds.records.slice(5).every((r) => /PTB/.test(r.meta!.reading!)));
    assert(ds.records.slice(0, 5).every((r) => r.meta!.reading === "normal"));
  });
});

Deno.test("ensureSyntheticChexpert: generates once, reuses, regenerates on other params", async () => {
  await withDir(async (dir) => {
    const o = { n: 12, size: 32, seed: 2 };
    const root = await ensureSyntheticChexpert(dir, o, { workers: 0 });
    assertEquals(root, join(dir, "chexpert-n12-s32-seed2", "CheXpert-v1.0-small"));
    const params = join(root, "..", "synth.json");
    const stamp = (await Deno.stat(params)).mtime!.getTime();
    assertEquals(await ensureSyntheticChexpert(dir, o, { workers: 0 }), root);
    assertEquals((await Deno.stat(params)).mtime!.getTime(), stamp, "reused, not rewritten");
    // A different generator version in the params file makes it stale.
    const meta = JSON.parse(await Deno.readTextFile(params));
    meta.params.version = -1;
    await Deno.writeTextFile(params, JSON.stringify(meta));
    await ensureSyntheticChexpert(dir, { ...o, quality: 90 }, { workers: 0 });
    assert(JSON.parse(await Deno.readTextFile(params)).params.version > 0);
    // Only the dataset folder is left (no temp or old copies).
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["chexpert-n12-s32-seed2"]);
    assertEquals((await loadDataset({ root })).records.length, 12);
  });
});
