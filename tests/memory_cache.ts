/**
 * An in-memory image cache for training-loop tests: 18-px gray images, two per patient, whose
 * positives carry a bright disc. `sorted` lists every negative before every positive within each
 * split, as real datasets in a labels.csv layout often do.
 */
import { ImageCache } from "../data/cache/reader.ts";
import { Rng } from "../util/rng.ts";

export const STORED = 18;

export function memoryCache(
  o: { n?: number; valid?: number; positive?: number; sorted?: boolean } = {},
): ImageCache {
  const n = o.n ?? 120, nValid = o.valid ?? 30, px = STORED * STORED;
  const r = new Rng(5);
  const items = Array.from({ length: n }, (_, i) => ({
    pos: r.uniform() < (o.positive ?? 0.4),
    valid: i >= n - nValid,
    cx: 5 + r.uniform() * 8,
    cy: 5 + r.uniform() * 8,
  }));
  if (o.sorted) {
    // Class-sorted within each split; a patient's two images stay together and of one class.
    for (let i = 0; i + 1 < n; i += 2) items[i + 1].pos = items[i].pos;
    const pairs = Array.from({ length: n / 2 }, (_, k) => [items[2 * k], items[2 * k + 1]]);
    const key = (p: typeof pairs[number]) => (p[0].valid ? 2 : 0) + (p[0].pos ? 1 : 0);
    pairs.sort((a, b) => key(a) - key(b));
    items.splice(0, n, ...pairs.flat());
  }
  const pixels = new Uint8Array(n * px);
  const records = items.map((it, i) => {
    for (let y = 0; y < STORED; y++) {
      for (let x = 0; x < STORED; x++) {
        const disc = it.pos && Math.hypot(x - it.cx, y - it.cy) < 3 ? 90 : 0;
        pixels[i * px + y * STORED + x] = 80 + disc + Math.floor(r.uniform() * 40);
      }
    }
    return {
      path: `/mem/p${Math.floor(i / 2)}/img${i}.png`,
      patient: `p${Math.floor(i / 2)}`,
      labels: [it.pos ? 1 : 0],
      mask: [1],
      split: (it.valid ? "valid" : "train") as "train" | "valid",
    };
  });
  return new ImageCache("/mem", {
    format: "moco-cxr-image-cache",
    version: 1,
    checksum: "",
    storedSize: STORED,
    cropSize: 16,
    count: n,
    tasks: ["Disc"],
    dataset: { name: "mem", kind: "csv", root: "/mem" },
    records,
    badImages: [],
    shards: [{ file: "mem", count: n }],
    created: "",
  }, [pixels]);
}
