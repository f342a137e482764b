/**
 * The device augmentation (kernels/augment.ts) against its CPU reference (kernels/cpu/augment.ts)
 * on random slots, bilinear and nearest (and nearest's exact halves against grid_sample's
 * rounding, tests/golden/torchvision_rotate.json), and the two views it makes from a seed
 * (data/augment_device.ts) against the host augmentation of data/augment.ts from the same seed:
 * MoCo-CXR's crop/flip/rotation (nearest, and bilinear), the strong set (resized crop, contrast
 * about the mean, brightness), 3 channels, a shuffled key order; and equal to f32 rounding where
 * the geometry is an integer crop. Nearest views may differ from the host's only at pixels whose
 * f64 source coordinate lies within f32 rounding of a half (the host rounds f64, the device f32).
 */
import { AUGMENT_SLOT, augmentImages, slotsNeedMean, uploadBytes } from "../kernels/augment.ts";
import { augmentImagesCpu } from "../kernels/cpu/augment.ts";
import { Tensor } from "../kernels/tensor.ts";
import {
  type AugmentOptions,
  evalAugment,
  makeTwoViewBatchFromSeed,
  sampleTransform,
} from "../data/augment.ts";
import { DeviceTwoViews, slotParams } from "../data/augment_device.ts";
import { pretrainAugment } from "../train/cache_sources.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { imageSource } from "./image_source.ts";

Deno.test("augmentImages matches its CPU reference on random slots (with and without the mean)", async () => {
  const S = 37, n = 29, images = 3, r = new Rng(5);
  const src = imageSource(S, images);
  const bytes = new Uint8Array(images * S * S);
  for (let i = 0; i < images; i++) bytes.set(src.image(i), i * S * S);
  for (const withMean of [false, true]) {
    const count = 5, slots = new Float32Array(count * AUGMENT_SLOT);
    for (let s = 0; s < count; s++) {
      const ang = (r.uniform() - 0.5) * 0.6, sc = 0.6 + r.uniform(), fl = s % 2 ? -1 : 1;
      slots.set([
        s % images,
        s === 0 ? -6 : r.uniform() * 10 - 2, // slot 0 reads partly outside the image: black
        r.uniform() * 10,
        Math.cos(ang) * sc * fl,
        Math.sin(ang) * sc * fl,
        -Math.sin(ang) * sc,
        Math.cos(ang) * sc,
        0.05 + r.uniform() * 0.02,
        withMean ? (r.uniform() - 0.5) * 0.02 : 0,
        r.uniform() - 6,
      ], s * AUGMENT_SLOT);
    }
    assertEquals(slotsNeedMean(slots), withMean);
    for (const channels of [1, 3]) {
      const spec = { size: n, srcSize: S, channels, interp: "bilinear" as const };
      const pix = uploadBytes(gpu, bytes);
      const st = Tensor.from(gpu, slots, [count, AUGMENT_SLOT]);
      const got = augmentImages(pix, st, spec, withMean);
      const want = augmentImagesCpu(bytes, slots, spec, withMean);
      assertEquals(got.shape, want.shape);
      const g = await got.read();
      // f32 source points either way; a fused multiply-add on the device moves one by an ulp
      assertClose(g, want.data, { atol: 2e-5, rtol: 0, label: `mean ${withMean}, C ${channels}` });
      // slot 0's first pixel reads (-6, y): black, i.e. the intensity map's offset alone
      if (!withMean) assertEquals(want.data[0], slots[9]);
      let black = 0;
      for (let i = 0; i < n * n; i++) if (want.data[i] === want.data[0]) black++;
      assert(black > 0 && black < n * n / 2, `slot 0 should be partly outside (${black})`);
      for (const t of [pix, st, got]) t.dispose();
    }
  }
});

/** Distance of x from the nearest half-integer (a boundary between two nearest pixels). */
const fromHalf = (x: number) => Math.abs(x - Math.floor(x) - 0.5);

/**
 * The device's two views of 6 images against the host's from `seed`. Bilinear: within atol.
 * Nearest (tie > 0): every pixel within atol except where the host's f64 source point (slotParams
 * of the same draws) has a coordinate within `tie` of a half, where host and device may read
 * neighbours; returns how many such pixels differed.
 */
async function compareViews(o: AugmentOptions, atol: number, seed: number, tie = 0) {
  const src = imageSource(40, 7);
  const indices = [6, 2, 4, 0, 3, 5];
  const perm = new Rng(seed).shuffle([...indices.keys()]);
  const want = makeTwoViewBatchFromSeed(src, indices, o, seed);
  const dev = new DeviceTwoViews(gpu, src, o);
  const { xq, xk } = dev.views(indices, seed, perm);
  const C = o.channels ?? 1, n = o.size, plane = C * n * n;
  const wantK = new Float32Array(want.k.length);
  perm.forEach((p, j) => wantK.set(want.k.subarray(p * plane, (p + 1) * plane), j * plane));
  assertEquals(xq.shape, [6, C, n, n]);
  const gq = await xq.read(), gk = await xk.read();
  xq.dispose();
  xk.dispose();
  if (!tie) {
    assertClose(gq, want.q, { atol, rtol: 0, label: "query views" });
    assertClose(gk, wantK, { atol, rtol: 0, label: "shuffled key views" });
    return 0;
  }
  // The host's draws again, in makeTwoViewBatchFromSeed's order: q, k for each image.
  const rng = new Rng(seed), tq: number[][] = [], tk: number[][] = [];
  for (let i = 0; i < indices.length; i++) {
    tq.push(slotParams(sampleTransform(src.size, o, rng), i, o));
    tk.push(slotParams(sampleTransform(src.size, o, rng), i, o));
  }
  let near = 0;
  const check = (
    got: Float32Array,
    exp: Float32Array,
    slot: (j: number) => number[],
    what: string,
  ) => {
    for (let i = 0; i < got.length; i++) {
      if (Math.abs(got[i] - exp[i]) <= atol) continue;
      const j = Math.floor(i / plane), px = i % (n * n), u = px % n, v = Math.floor(px / n);
      const q = slot(j), X = q[1] + u * q[3] + v * q[5], Y = q[2] + u * q[4] + v * q[6];
      assert(
        fromHalf(X) < tie || fromHalf(Y) < tie,
        `${what} ${j} pixel (${u}, ${v}): device ${got[i]}, host ${exp[i]}, source (${X}, ${Y})`,
      );
      near++;
    }
  };
  check(gq, want.q, (j) => tq[j], "query view");
  check(gk, wantK, (j) => tk[perm[j]], "key view");
  return near;
}

Deno.test("device two views equal data/augment.ts's from the same seed: MoCo-CXR's set, bilinear", async () => {
  await compareViews(pretrainAugment("mococxr", 32, 1, "bilinear"), 2e-3, 11);
});

Deno.test("device two views equal data/augment.ts's: strong set (contrast mean), 3 channels, bilinear", async () => {
  await compareViews(pretrainAugment("strong", 24, 3, "bilinear"), 2e-3, 12);
});

Deno.test("device nearest views are the host's stored pixels, but at f32 rounding of a half", async () => {
  // MoCo-CXR's set (nearest by default) and the strong set, several seeds: the pixels that may
  // differ are those whose f64 source coordinate is within 2e-5 px of a half (sides < 64 here:
  // f32 rounding of the affine map is a few 1e-6); a stored pixel apart is ≥ 1/(255·0.0856).
  assertEquals(pretrainAugment("mococxr", 32, 1).interp, "nearest");
  let near = 0, pixels = 0;
  for (const seed of [11, 21, 31, 41]) {
    near += await compareViews(pretrainAugment("mococxr", 32, 1), 2e-5, seed, 2e-5);
    // contrast about the mean: one pixel read differently moves its view's mean, so every pixel
    // by up to 0.3·(255/(255·0.0856))/24² ≈ 6e-3; one stored level is ≥ 0.7/(255·0.0856) = 0.03
    near += await compareViews(pretrainAugment("strong", 24, 3), 1e-2, seed + 1, 2e-5);
    pixels += 2 * 6 * (32 * 32 + 3 * 24 * 24);
  }
  assert(near <= pixels * 1e-3, `${near} of ${pixels} pixels differ`);
});

Deno.test("augmentImages nearest: its CPU reference on random slots; exact halves to even, as grid_sample", async () => {
  const golden = JSON.parse(
    await Deno.readTextFile(new URL("./golden/torchvision_rotate.json", import.meta.url)),
  ) as { ties: { size: number; out: number[] } };
  const S = 37, n = 29, images = 3, r = new Rng(6), f = Math.fround;
  const src = imageSource(S, images);
  const bytes = new Uint8Array(images * S * S);
  for (let i = 0; i < images; i++) bytes.set(src.image(i), i * S * S);
  const count = 5, slots = new Float32Array(count * AUGMENT_SLOT);
  for (let s = 0; s < count; s++) {
    const ang = (r.uniform() - 0.5) * 0.6, sc = 0.6 + r.uniform(), fl = s % 2 ? -1 : 1;
    slots.set([
      s % images,
      s === 0 ? -6 : r.uniform() * 10 - 2,
      r.uniform() * 10,
      Math.cos(ang) * sc * fl,
      Math.sin(ang) * sc * fl,
      -Math.sin(ang) * sc,
      Math.cos(ang) * sc,
      1,
      s === 2 ? 0.01 : 0, // one slot with the mean pass
      0,
    ], s * AUGMENT_SLOT);
  }
  const spec = { size: n, srcSize: S, channels: 1, interp: "nearest" as const };
  const pix = uploadBytes(gpu, bytes), st = Tensor.from(gpu, slots, [count, AUGMENT_SLOT]);
  const got = augmentImages(pix, st, spec, true);
  const want = augmentImagesCpu(bytes, slots, spec, true);
  const g = await got.read();
  // stored pixels (a = 1, b = 0; slot 2 adds 0.01·mean): equal, but where the device's fused
  // multiply-add moves an f32 source coordinate within an ulp of a half to the other pixel
  let near = 0;
  for (let i = 0; i < g.length; i++) {
    if (Math.abs(g[i] - want.data[i]) <= 1e-4) continue;
    const q = slots.subarray(Math.floor(i / (n * n)) * AUGMENT_SLOT), u = i % n;
    const v = Math.floor((i % (n * n)) / n);
    const X = f(f(q[1] + f(u * q[3])) + f(v * q[5])), Y = f(f(q[2] + f(u * q[4])) + f(v * q[6]));
    assert(fromHalf(X) < 1e-5 || fromHalf(Y) < 1e-5, `pixel ${i}: ${g[i]} vs ${want.data[i]}`);
    near++;
  }
  assert(near <= 2, `${near} pixels differ`);
  // slot 0's values are stored pixels or 0 (outside): no blending
  const stored = new Set(bytes);
  for (let i = 0; i < n * n; i++) assert(stored.has(g[i]) || g[i] === 0, `pixel ${i}: ${g[i]}`);
  for (const t of [pix, st, got]) t.dispose();

  // Output (u, v) reads (u + 0.5, v + 0.5): every coordinate an exact half, exact in f32.
  const W = golden.ties.size, img = Uint8Array.from({ length: W * W }, (_, i) => i + 1);
  const tie = Float32Array.from([0, 0.5, 0.5, 1, 0, 0, 1, 1, 0, 0]);
  const tspec = { size: W, srcSize: W, channels: 1, interp: "nearest" as const };
  const tp = uploadBytes(gpu, img), ts = Tensor.from(gpu, tie, [1, AUGMENT_SLOT]);
  const tg = augmentImages(tp, ts, tspec, false);
  assertEquals(Array.from(await tg.read()), golden.ties.out);
  assertEquals(Array.from(augmentImagesCpu(img, tie, tspec, false).data), golden.ties.out);
  for (const t of [tp, ts, tg]) t.dispose();
});

Deno.test("device views of an integer crop equal the host's to f32 rounding", async () => {
  // Centre crop, no flip or rotation: every source point is a stored pixel, either interpolation.
  await compareViews(evalAugment(30), 2e-6, 13);
  await compareViews(evalAugment(30, { interp: "nearest" }), 2e-6, 13);
});
