/**
 * The fused inverse-mapped augmentation and batch assembly against simple CPU references; nearest
 * rotation against torchvision's F.rotate(NEAREST, fill=0) and grid_sample's rounding of exact
 * halves (tests/golden/torchvision_rotate.json, made by tools/rotate_reference.py), bilinear views
 * bit for bit those made before the interpolation choice, and the sharpness of nearest views.
 */
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import {
  applyTransform,
  type AugmentOptions,
  epochBatches,
  evalAugment,
  IMAGENET_GRAY_NORM,
  type ImageSource,
  makeBatch,
  makeBatchFromSeed,
  makeTwoViewBatch,
  makeTwoViewBatchFromSeed,
  MOCO_CXR_NORM,
  roundHalfEven,
  sampleTransform,
  trainAugment,
  type Transform,
} from "../data/augment.ts";
import { Rng } from "../util/rng.ts";

const S = 24;

function source(count: number, seed = 1): ImageSource {
  const rng = new Rng(seed);
  const images = Array.from({ length: count }, () => new Uint8Array(S * S).map(() => rng.int(256)));
  const labels = new Float32Array(count * 2), mask = new Float32Array(count * 2).fill(1);
  for (let i = 0; i < count; i++) {
    labels[2 * i] = i % 2;
    labels[2 * i + 1] = (i >> 1) % 2;
    mask[2 * i + 1] = i % 3 === 0 ? 0 : 1;
  }
  return { size: S, count, tasks: ["a", "b"], image: (i) => images[i], labels, mask };
}

const IDENT: Transform = {
  cx: S / 2,
  cy: S / 2,
  sx: 1,
  sy: 1,
  angle: 0,
  flip: false,
  contrast: 1,
  brightness: 0,
};
const RAW: AugmentOptions = { size: S, normalize: "none" };

function run(img: Uint8Array, t: Transform, o: AugmentOptions = RAW): Float32Array {
  const out = new Float32Array((o.channels ?? 1) * o.size * o.size);
  applyTransform(img, S, t, o, out);
  return out;
}

/** Independent reference: inverse affine map written as a matrix, bilinear with zero fill. */
function reference(img: Uint8Array, t: Transform, n: number): number[] {
  const f = t.flip ? -1 : 1, c = Math.cos(t.angle), s = Math.sin(t.angle);
  const M = [c * t.sx * f, -s * t.sy, s * t.sx * f, c * t.sy]; // source offset per output offset
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= S || y >= S ? 0 : img[y * S + x]);
  const out: number[] = [];
  for (let v = 0; v < n; v++) {
    for (let u = 0; u < n; u++) {
      const du = u + 0.5 - n / 2, dv = v + 0.5 - n / 2;
      const X = t.cx + M[0] * du + M[1] * dv - 0.5, Y = t.cy + M[2] * du + M[3] * dv - 0.5;
      const x0 = Math.floor(X), y0 = Math.floor(Y), ax = X - x0, ay = Y - y0;
      out.push(
        ((1 - ax) * (1 - ay) * at(x0, y0) + ax * (1 - ay) * at(x0 + 1, y0) +
          (1 - ax) * ay * at(x0, y0 + 1) + ax * ay * at(x0 + 1, y0 + 1)) / 255,
      );
    }
  }
  return out;
}

Deno.test("augment: identity transform returns the image", () => {
  const img = source(1).image(0);
  assertClose(run(img, IDENT), Array.from(img, (v) => v / 255), { atol: 1e-6, rtol: 0 });
});

Deno.test("augment: horizontal flip is exact", () => {
  const img = source(1).image(0);
  const out = run(img, { ...IDENT, flip: true });
  const want: number[] = [];
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) want.push(img[y * S + (S - 1 - x)] / 255);
  assertClose(out, want, { atol: 1e-6, rtol: 0 });
});

Deno.test("augment: rotation 0 with a crop window is exactly the crop", () => {
  const img = source(1).image(0), n = 10, ox = 7, oy = 3;
  const out = run(img, { ...IDENT, cx: ox + n / 2, cy: oy + n / 2 }, {
    size: n,
    normalize: "none",
  });
  const want: number[] = [];
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) want.push(img[(oy + y) * S + ox + x] / 255);
  }
  assertClose(out, want, { atol: 1e-6, rtol: 0 });
});

Deno.test("augment: 90° rotation about the centre permutes pixels", () => {
  const img = source(1).image(0);
  const out = run(img, { ...IDENT, angle: Math.PI / 2 });
  const want: number[] = [];
  for (let v = 0; v < S; v++) for (let u = 0; u < S; u++) want.push(img[u * S + (S - 1 - v)] / 255);
  assertClose(out, want, { atol: 1e-5, rtol: 0 });
});

Deno.test("augment: random transforms match the matrix reference (zero fill outside)", () => {
  const src = source(1), img = src.image(0), rng = new Rng(5);
  const o: AugmentOptions = {
    size: 16,
    normalize: "none",
    hflip: true,
    rotateDeg: 30,
    crop: "resized",
    resizedScale: [0.2, 1],
  };
  for (let k = 0; k < 20; k++) {
    const t = sampleTransform(S, o, rng);
    assertClose(run(img, t, o), reference(img, t, 16), { atol: 2e-5, rtol: 0, label: `draw ${k}` });
  }
});

Deno.test("augment: sampled transforms stay in range and are seed-deterministic", () => {
  const o = trainAugment(20);
  const a = new Rng(9), b = new Rng(9);
  let flips = 0;
  for (let k = 0; k < 200; k++) {
    const t = sampleTransform(S, o, a);
    assertEquals(t, sampleTransform(S, o, b));
    assert(Math.abs(t.angle) <= (10 * Math.PI) / 180 + 1e-12, `angle ${t.angle}`);
    assert(t.cx - 10 >= 0 && t.cx + 10 <= S && t.cy - 10 >= 0 && t.cy + 10 <= S, "crop inside");
    assert(Number.isInteger(t.cx - 10) && Number.isInteger(t.cy - 10), "integer crop offsets");
    flips += t.flip ? 1 : 0;
  }
  assert(flips > 60 && flips < 140, `flips ${flips}/200`);
  const e = sampleTransform(S, evalAugment(20), new Rng(1));
  assertEquals([e.cx, e.cy, e.angle, e.flip], [12, 12, 0, false]);
});

Deno.test("augment: normalisation, contrast about the mean, replicated channels", () => {
  const img = source(1).image(0);
  const raw = run(img, IDENT);
  const moco = run(img, IDENT, { size: S });
  assertClose(moco, Array.from(raw, (v) => (v - MOCO_CXR_NORM.mean) / MOCO_CXR_NORM.std), {
    atol: 1e-4,
    rtol: 1e-5,
  });
  const inet = run(img, IDENT, { size: S, normalize: "imagenet", channels: 3 });
  const want = Array.from(raw, (v) => (v - IMAGENET_GRAY_NORM.mean) / IMAGENET_GRAY_NORM.std);
  for (let c = 0; c < 3; c++) {
    assertClose(inet.subarray(c * S * S, (c + 1) * S * S), want, { atol: 1e-4, rtol: 1e-5 });
  }
  const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
  const contrasted = run(img, { ...IDENT, contrast: 1.5 });
  assertClose([mean(contrasted)], [mean(raw)], { atol: 1e-5, rtol: 0, label: "mean kept" });
  assertClose(contrasted, Array.from(raw, (v) => 1.5 * (v - mean(raw)) + mean(raw)), {
    atol: 1e-5,
    rtol: 0,
  });
  assertThrows(() => run(img, IDENT, { size: S, normalize: { mean: 0, std: 0 } }), /std/);
});

Deno.test("makeBatch: shapes, labels, one rng draw, reproducible", () => {
  const src = source(10);
  const o = trainAugment(16, { channels: 3 });
  const rng = new Rng(42), twin = new Rng(42);
  const b = makeBatch(src, [3, 0, 7], o, rng);
  assertEquals([b.n, b.channels, b.size, b.x.length], [3, 3, 16, 3 * 3 * 16 * 16]);
  assertEquals(Array.from(b.labels), [1, 1, 0, 0, 1, 1]);
  assertEquals(Array.from(b.mask), [1, 0, 1, 0, 1, 1]);
  assertEquals(rng.state, (twin.nextU32(), twin.state), "exactly one draw");
  const again = makeBatchFromSeed(src, [3, 0, 7], o, b.seed);
  assertEquals(Array.from(again.x), Array.from(b.x));
  const other = makeBatch(src, [3, 0, 7], o, rng);
  assert(other.x.some((v, i) => v !== b.x[i]), "a new seed gives new augmentations");
  assertThrows(() => makeBatch(src, [10], o, rng), /out of/);
});

Deno.test("two-view batch: independent views, identical without augmentation", () => {
  const src = source(6);
  const tv = makeTwoViewBatch(src, [0, 1, 2, 3], trainAugment(16), new Rng(3));
  assertEquals(tv.q.length, 4 * 16 * 16);
  assert(tv.q.some((v, i) => v !== tv.k[i]), "views differ");
  const ev = makeTwoViewBatch(src, [0, 1], evalAugment(16), new Rng(3));
  assertEquals(Array.from(ev.q), Array.from(ev.k));
});

Deno.test("epochBatches: a shuffled partition of the indices", () => {
  const idx = Array.from({ length: 23 }, (_, i) => i * 2);
  const b = epochBatches(idx, 5, new Rng(1));
  assertEquals(b.map((x) => x.length), [5, 5, 5, 5, 3]);
  assertEquals(b.flat().sort((x, y) => x - y), idx);
  assertEquals(epochBatches(idx, 5, new Rng(1), true).length, 4);
  assertEquals(epochBatches(idx, 5, null)[0], [0, 2, 4, 6, 8]);
});

/** torchvision's rotations of small images (tools/rotate_reference.py). */
const TV = JSON.parse(
  await Deno.readTextFile(new URL("./golden/torchvision_rotate.json", import.meta.url)),
) as {
  cases: { size: number; deg: number; src: number[]; nearest: number[]; bilinear: number[] }[];
  ties: { size: number; out: number[] };
};

/** src (side s) through t at side n, raw [0, 255] values, by interp. */
function rawView(
  src: Uint8Array,
  s: number,
  t: Transform,
  interp: "nearest" | "bilinear",
  n = s,
): number[] {
  const out = new Float32Array(n * n);
  applyTransform(src, s, t, { size: n, normalize: "none", interp }, out);
  return Array.from(out, (v) => v * 255);
}

Deno.test("nearest rotation is torchvision's F.rotate(NEAREST, fill=0) exactly; bilinear its BILINEAR", () => {
  assertEquals(TV.cases.length, 10);
  for (const c of TV.cases) {
    const s = c.size, src = Uint8Array.from(c.src), label = `${s}px ${c.deg}°`;
    // torchvision's positive angle (counter-clockwise) is Transform.angle's sign
    const t = { ...IDENT, cx: s / 2, cy: s / 2, angle: (c.deg * Math.PI) / 180 };
    assertEquals(rawView(src, s, t, "nearest").map(Math.round), c.nearest, label);
    assertClose(rawView(src, s, t, "nearest"), c.nearest, { atol: 1e-3, rtol: 0, label });
    assertClose(rawView(src, s, t, "bilinear"), c.bilinear, { atol: 2e-3, rtol: 0, label });
  }
});

Deno.test("nearest rounds a source coordinate on an exact half to even, as grid_sample", () => {
  assertEquals(
    [-1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7].map(roundHalfEven),
    [-2, 0, 0, 2, 2, 4, 2, 3, 7],
  );
  // Window centre (4.5, 4.5) at angle 0: output (u, v) reads (u + 0.5, v + 0.5), all halves.
  const W = TV.ties.size, img = Uint8Array.from({ length: W * W }, (_, i) => i + 1);
  const t = { ...IDENT, cx: W / 2 + 0.5, cy: W / 2 + 0.5 };
  assertEquals(rawView(img, W, t, "nearest").map(Math.round), TV.ties.out);
  // by hand: row 0 reads pixels 0, 2, 2, 4, 4, 6, 6 and 8 (outside: 0)
  assertEquals(TV.ties.out.slice(0, 8), [1, 3, 3, 5, 5, 7, 7, 0]);
});

Deno.test("nearest: 90° about the centre permutes pixels exactly; angle 0 is the stored pixels", () => {
  const img = source(1).image(0);
  const want: number[] = [];
  for (let v = 0; v < S; v++) for (let u = 0; u < S; u++) want.push(img[u * S + (S - 1 - v)]);
  assertEquals(rawView(img, S, { ...IDENT, angle: Math.PI / 2 }, "nearest").map(Math.round), want);
  assertEquals(rawView(img, S, IDENT, "nearest").map(Math.round), Array.from(img));
});

Deno.test("interpolation: trainAugment's is nearest (MoCo-CXR's), a bare option set's bilinear", () => {
  assertEquals(trainAugment(16).interp, "nearest");
  assertEquals(trainAugment(16, { interp: "bilinear" }).interp, "bilinear");
  assertEquals(evalAugment(16).interp, undefined);
  const img = source(1).image(0), t = { ...IDENT, angle: 0.1 };
  const bare = run(img, t, RAW);
  assertEquals(Array.from(bare), Array.from(run(img, t, { ...RAW, interp: "bilinear" })));
  assert(bare.some((v, i) => v !== run(img, t, { ...RAW, interp: "nearest" })[i]));
  assertThrows(() => run(img, t, { ...RAW, interp: "bicubic" as "nearest" }), /interpolation/);
});

/** White-noise images: every neighbour difference is signal. */
function noise(s: number, count: number): ImageSource {
  const rng = new Rng(77);
  const images = Array.from({ length: count }, () => new Uint8Array(s * s).map(() => rng.int(256)));
  return {
    size: s,
    count,
    tasks: ["a"],
    image: (i) => images[i],
    labels: new Float32Array(count),
    mask: new Float32Array(count),
  };
}

/** FNV-1a of a Float32Array's bytes. */
function fnv(a: Float32Array): string {
  let h = 0x811c9dc5;
  for (const x of new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) {
    h = Math.imul(h ^ x, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

Deno.test("bilinear views are bit for bit those made before the interpolation choice", () => {
  // Hashes of the same batches made by data/augment.ts before nearest existed (commit 71c1dba).
  const src = noise(24, 6), b = { interp: "bilinear" } as const;
  const cases: [string, AugmentOptions, string, string][] = [
    ["mococxr", trainAugment(20, b), "153a3575", "9334f764"],
    [
      "strong, 3 channels",
      trainAugment(20, {
        ...b,
        channels: 3,
        crop: "resized",
        resizedScale: [0.3, 1],
        contrast: 0.3,
        brightness: 0.15,
      }),
      "c242c8f8",
      "7aa3bbb1",
    ],
    ["±30°", trainAugment(20, { ...b, rotateDeg: 30 }), "4147969c", "f37a6d46"],
    ["eval, upsampled", evalAugment(31), "fd9c9184", "fd9c9184"],
  ];
  for (const [name, o, q, k] of cases) {
    const v = makeTwoViewBatchFromSeed(src, [0, 1, 2, 3, 4, 5], o, 7);
    assertEquals([fnv(v.q), fnv(v.k)], [q, k], name);
  }
});

/** Mean squared horizontal neighbour difference over the inner part of 40 views of white noise. */
function neighbourEnergy(o: AugmentOptions, seed: number): number {
  const s = 80, n = o.size, src = noise(s, 1), rng = new Rng(seed);
  let e = 0, count = 0;
  for (let k = 0; k < 40; k++) {
    const out = new Float32Array(n * n);
    applyTransform(src.image(0), s, sampleTransform(s, o, rng), o, out);
    for (let v = 12; v < n - 12; v++) {
      for (let u = 12; u < n - 13; u++) {
        e += (out[v * n + u + 1] - out[v * n + u]) ** 2;
        count++;
      }
    }
  }
  return e / count;
}

Deno.test("nearest ±10° views keep the stored pixels' sharpness; bilinear ones lose two thirds", () => {
  const raw = { normalize: "none" } as const;
  const evalE = neighbourEnergy(evalAugment(64, raw), 1);
  const near = neighbourEnergy(trainAugment(64, raw), 2) / evalE;
  const bil = neighbourEnergy(trainAugment(64, { ...raw, interp: "bilinear" }), 2) / evalE;
  // nearest: within a few % (a neighbour may read the same stored pixel twice, or skip one)
  assert(near > 0.95 && near < 1.05, `nearest/eval neighbour-difference energy ${near}`);
  assert(bil < 0.45, `bilinear/eval ${bil}`);
});
