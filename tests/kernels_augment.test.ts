/**
 * The device augmentation (kernels/augment.ts) against its CPU reference (kernels/cpu/augment.ts)
 * on random slots, and the two views it makes from a seed (data/augment_device.ts) against the
 * host augmentation of data/augment.ts from the same seed: MoCo-CXR's crop/flip/rotation, the
 * strong set (resized crop, contrast about the mean, brightness), 3 channels, a shuffled key
 * order; and equal to f32 rounding where the geometry is an integer crop.
 */
import { AUGMENT_SLOT, augmentImages, slotsNeedMean, uploadBytes } from "../kernels/augment.ts";
import { augmentImagesCpu } from "../kernels/cpu/augment.ts";
import { Tensor } from "../kernels/tensor.ts";
import { type AugmentOptions, evalAugment, makeTwoViewBatchFromSeed } from "../data/augment.ts";
import { DeviceTwoViews } from "../data/augment_device.ts";
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
      const spec = { size: n, srcSize: S, channels };
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

async function compareViews(o: AugmentOptions, atol: number, seed: number) {
  const src = imageSource(40, 7);
  const indices = [6, 2, 4, 0, 3, 5];
  const perm = new Rng(seed).shuffle([...indices.keys()]);
  const want = makeTwoViewBatchFromSeed(src, indices, o, seed);
  const dev = new DeviceTwoViews(gpu, src, o);
  const { xq, xk } = dev.views(indices, seed, perm);
  const plane = (o.channels ?? 1) * o.size * o.size;
  const wantK = new Float32Array(want.k.length);
  perm.forEach((p, j) => wantK.set(want.k.subarray(p * plane, (p + 1) * plane), j * plane));
  assertEquals(xq.shape, [6, o.channels ?? 1, o.size, o.size]);
  assertClose(await xq.read(), want.q, { atol, rtol: 0, label: "query views" });
  assertClose(await xk.read(), wantK, { atol, rtol: 0, label: "shuffled key views" });
  xq.dispose();
  xk.dispose();
}

Deno.test("device two views equal data/augment.ts's from the same seed: MoCo-CXR's set", async () => {
  await compareViews(pretrainAugment("mococxr", 32, 1), 2e-3, 11);
});

Deno.test("device two views equal data/augment.ts's: strong set (contrast mean), 3 channels", async () => {
  await compareViews(pretrainAugment("strong", 24, 3), 2e-3, 12);
});

Deno.test("device views of an integer crop equal the host's to f32 rounding", async () => {
  // Centre crop, no flip or rotation: every source point is a stored pixel.
  await compareViews(evalAugment(30), 2e-6, 13);
});
