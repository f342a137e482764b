/**
 * PNG/JPEG decoding against ImageMagick-made fixtures (tests/fixtures: the same 40×28 picture
 * as 8/16-bit gray, 4-bit gray, gray+alpha, RGB, RGBA-16, palette, Adam7-interlaced PNG, and
 * baseline / progressive JPEG; *.pgm are ImageMagick's own raw decodes), and the encoders.
 */
import { assert, assertClose, assertEquals, assertRejects, assertThrows } from "./helpers.ts";
import { decodePngGray } from "../data/png_decode.ts";
import { encodePngGray } from "../data/png_encode.ts";
import { chunk, PNG_SIGNATURE } from "../data/png_format.ts";
import { deflateSync } from "node:zlib";
import { decodeJpegGray, decodeJpegGraySync, encodeJpegGray } from "../data/jpeg.ts";
import { decodeImageGray, readImageGray } from "../data/decode.ts";
import type { GrayImage } from "../data/gray_image.ts";
import { Rng } from "../util/rng.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readFileSync(new URL(name, FIX));

/** Parses a binary PGM (P5, maxval 255). */
function pgm(bytes: Uint8Array): GrayImage {
  const head = new TextDecoder().decode(bytes.subarray(0, 32));
  const m = head.match(/^P5\s+(\d+)\s+(\d+)\s+255\s/);
  if (!m) throw new Error("not a P5 PGM");
  return { width: +m[1], height: +m[2], data: bytes.subarray(m[0].length) };
}

const REF = pgm(read("gray8.pgm"));

function meanAbs(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

Deno.test("PNG: 8-bit gray, gray+alpha, palette and interlaced decode exactly", () => {
  for (const f of ["gray8.png", "gray_alpha8.png", "palette.png", "interlaced.png"]) {
    const img = decodePngGray(read(f));
    assertEquals([img.width, img.height], [REF.width, REF.height], f);
    assertEquals(Array.from(img.data), Array.from(REF.data), f);
  }
});

Deno.test("PNG: 4-bit gray matches ImageMagick's decode", () => {
  const ref = pgm(read("gray4.pgm"));
  assertEquals(Array.from(decodePngGray(read("gray4.png")).data), Array.from(ref.data));
});

Deno.test("PNG: 16-bit gray, RGB and 16-bit RGBA agree with the 8-bit gray within 1", () => {
  for (const f of ["gray16.png", "rgb8.png", "rgba16.png"]) {
    const img = decodePngGray(read(f));
    assertClose(img.data, REF.data, { atol: 1, rtol: 0, label: f });
  }
});

/** A 16-bit PNG (gray, or RGB when channels is 3) of the given samples, with optional sBIT. */
function png16(
  w: number,
  h: number,
  samples: number[],
  channels: 1 | 3,
  sbit?: number[],
): Uint8Array {
  const stride = w * channels * 2;
  const raw = new Uint8Array(h * (stride + 1));
  for (let y = 0; y < h; y++) {
    for (let i = 0; i < w * channels; i++) {
      const v = samples[y * w * channels + i], o = y * (stride + 1) + 1 + 2 * i;
      raw[o] = v >> 8;
      raw[o + 1] = v & 255;
    }
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([16, channels === 1 ? 0 : 2, 0, 0, 0], 8);
  const parts = [
    new Uint8Array(PNG_SIGNATURE),
    chunk("IHDR", ihdr),
    ...(sbit ? [chunk("sBIT", new Uint8Array(sbit))] : []),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

Deno.test("PNG: 12-bit values in 16 bits use their range (sBIT, else the largest sample)", () => {
  // A DICOM-style export: a 0..4095 ramp stored unscaled in a 16-bit gray PNG.
  const ramp = Array.from({ length: 64 }, (_, i) => Math.round((i * 4095) / 63));
  const want = ramp.map((v) => Math.round((v * 255) / 4095));
  for (const sbit of [undefined, [12]]) {
    const img = decodePngGray(png16(64, 1, ramp, 1, sbit));
    assertEquals(Array.from(img.data), want, `sBIT ${sbit}`);
    assertEquals(new Set(img.data).size, 64, "every ramp step its own gray level");
  }
  // sBIT names the range even when the image does not reach it (a dark 12-bit image stays dark).
  const dark = ramp.map((v) => v >> 1);
  assertEquals(
    Array.from(decodePngGray(png16(64, 1, dark, 1, [12])).data),
    dark.map((v) => Math.round((v * 255) / 4095)),
  );
  // Without sBIT that image is read by its own range: 11 bits.
  assertEquals(
    Array.from(decodePngGray(png16(64, 1, dark, 1)).data),
    dark.map((v) => Math.round((v * 255) / 2047)),
  );
  // RGB: the largest of the colour samples sets the range.
  const rgb = ramp.flatMap((v) => [v, v, v]);
  assertEquals(Array.from(decodePngGray(png16(64, 1, rgb, 3)).data), want);
});

Deno.test("PNG: ordinary 16-bit images, and sBIT over scaled samples, read as before (÷257)", () => {
  const full = Array.from({ length: 64 }, (_, i) => Math.round((i * 65535) / 63));
  const mid = Array.from({ length: 64 }, (_, i) => 20000 + i * 320); // max 40160 ≥ 32768
  const byOld = (a: number[]) => a.map((v) => Math.round(v / 257));
  assertEquals(Array.from(decodePngGray(png16(64, 1, full, 1)).data), byOld(full));
  assertEquals(Array.from(decodePngGray(png16(64, 1, mid, 1)).data), byOld(mid));
  // A spec-conforming encoder scaled 12-bit values to the full range: sBIT 12 but samples over
  // 4095, so the samples are 16-bit ones.
  const scaled = full.map((v) => v & 0xfff0);
  assertEquals(Array.from(decodePngGray(png16(64, 1, scaled, 1, [12])).data), byOld(scaled));
});

Deno.test("PNG: encoder round-trips exactly, odd sizes included", () => {
  const rng = new Rng(7);
  for (const [w, h] of [[1, 1], [13, 7], [64, 33]]) {
    const data = new Uint8Array(w * h).map(() => rng.int(256));
    const back = decodePngGray(encodePngGray({ width: w, height: h, data }));
    assertEquals([back.width, back.height], [w, h]);
    assertEquals(Array.from(back.data), Array.from(data));
  }
});

Deno.test("PNG: corrupt, truncated and non-PNG input is rejected with a reason", () => {
  const good = read("gray8.png");
  const flipped = good.slice();
  const idat = new TextDecoder("latin1").decode(good).indexOf("IDAT");
  flipped[idat + 10] ^= 0xff; // inside the IDAT data: its CRC no longer matches
  assertThrows(() => decodePngGray(flipped), /CRC mismatch/);
  assertThrows(() => decodePngGray(good.slice(0, good.length - 30)), /truncated PNG/);
  assertThrows(() => decodePngGray(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), /not a PNG/);
});

Deno.test("JPEG: baseline, progressive and progressive colour decode close to the source", async () => {
  const base = await decodeJpegGray(read("baseline.jpg"));
  for (const f of ["baseline.jpg", "progressive.jpg", "progressive_rgb.jpg"]) {
    const img = await decodeJpegGray(read(f));
    assertEquals([img.width, img.height], [REF.width, REF.height], f);
    assert(meanAbs(img.data, REF.data) < 3, `${f}: mean abs error ${meanAbs(img.data, REF.data)}`);
    assert(meanAbs(img.data, base.data) < 1.5, `${f} vs baseline`);
  }
  // The pure-JS fallback reads progressive files too.
  const js = decodeJpegGraySync(read("progressive.jpg"));
  assertClose(js.data, base.data, { atol: 3, rtol: 0, label: "jpeg-js progressive" });
});

Deno.test("JPEG: own baseline encoder decodes back (both decoders), odd sizes", async () => {
  const w = 45, h = 29;
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      data[y * w + x] = Math.round(127 + 100 * Math.sin(x / 6) * Math.cos(y / 5));
    }
  }
  const img = { width: w, height: h, data };
  for (const [q, maxMean] of [[95, 1.5], [60, 4]]) {
    const bytes = encodeJpegGray(img, q);
    const a = await decodeJpegGray(bytes), b = decodeJpegGraySync(bytes);
    assertEquals([a.width, a.height, b.width, b.height], [w, h, w, h]);
    assert(meanAbs(a.data, data) < maxMean, `q${q}: mean abs ${meanAbs(a.data, data)}`);
    assertClose(a.data, b.data, { atol: 2, rtol: 0, label: `decoders agree q${q}` });
  }
  // Higher quality → closer.
  const e95 = meanAbs((await decodeJpegGray(encodeJpegGray(img, 95))).data, data);
  const e30 = meanAbs((await decodeJpegGray(encodeJpegGray(img, 30))).data, data);
  assert(e95 < e30, `q95 error ${e95} should be below q30 error ${e30}`);
});

Deno.test("JPEG: truncated and garbage data are rejected", async () => {
  const bytes = read("baseline.jpg");
  await assertRejects(() => decodeJpegGray(bytes.slice(0, 300)), /truncated JPEG/);
  // SOI and EOI around noise: no frame header to decode.
  const garbage = new Uint8Array(400).map((_, i) => (i * 37) & 0xfe);
  garbage.set([0xff, 0xd8, 0xff, 0xfe], 0);
  garbage.set([0xff, 0xd9], 398);
  await assertRejects(() => decodeJpegGray(garbage), /corrupt JPEG/);
  await assertRejects(
    () => decodeImageGray(new Uint8Array([0x47, 0x49, 0x46])),
    /unknown image format/,
  );
  await assertRejects(() => decodeImageGray(new Uint8Array(0)), /empty file/);
});

Deno.test("JPEG: a 12-bit frame is refused with the precision named, by both decoders", async () => {
  const bytes = read("baseline.jpg").slice();
  let sof = -1;
  for (let i = 2; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0xff && (bytes[i + 1] === 0xc0 || bytes[i + 1] === 0xc2)) {
      sof = i;
      break;
    }
  }
  assert(sof > 0, "fixture has a frame header");
  bytes[sof + 1] = 0xc1; // extended sequential, as 12-bit JPEGs are
  bytes[sof + 4] = 12;
  const msg = /unsupported JPEG: 12-bit samples \(frame precision 12\)/;
  await assertRejects(() => decodeJpegGray(bytes), msg);
  assertThrows(() => decodeJpegGraySync(bytes), msg);
  const dir = await Deno.makeTempDir({ prefix: "data_codecs_" });
  try {
    await Deno.writeFile(`${dir}/ct12.jpg`, bytes);
    await assertRejects(() => readImageGray(`${dir}/ct12.jpg`), /ct12\.jpg: unsupported JPEG/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readImageGray names the file in errors and sniffs format by content", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data_codecs_" });
  try {
    await Deno.writeFile(`${dir}/actually_png.jpg`, read("gray8.png"));
    assertEquals((await readImageGray(`${dir}/actually_png.jpg`)).width, 40);
    await assertRejects(() => readImageGray(`${dir}/missing.png`), /missing\.png: unreadable/);
    await Deno.writeFile(`${dir}/bad.png`, new Uint8Array([1, 2, 3]));
    await assertRejects(() => readImageGray(`${dir}/bad.png`), /bad\.png: unknown image format/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
