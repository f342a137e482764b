/**
 * Hostile image files, generated here: a PNG zlib bomb (tiny header, huge IDAT) and JPEGs whose
 * frame header lies about the size. Both must be refused with ImageDecodeError before the
 * decoder inflates or allocates anything near the claimed size.
 */
import { deflateSync } from "node:zlib";
import { assert, assertRejects, assertThrows } from "./helpers.ts";
import { decodePngGray, inflatedSize } from "../data/png_decode.ts";
import { chunk } from "../data/png_format.ts";
import { decodeJpegGray, decodeJpegGraySync, jpegFrameSize } from "../data/jpeg.ts";
import { ImageDecodeError, MAX_IMAGE_PIXELS } from "../data/image_error.ts";
import { decodeImageGray } from "../data/decode.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readFileSync(new URL(name, FIX));

/** An 8-bit gray PNG of w×h whose IDAT holds `raw` (the filtered scanlines) deflated. */
function pngWithRaw(w: number, h: number, raw: Uint8Array, interlace = 0): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([8, 0, 0, 0, interlace], 8);
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

Deno.test("PNG zlib bomb: a 16x16 header over 64 MiB of IDAT is refused as corrupt", () => {
  const bomb = pngWithRaw(16, 16, new Uint8Array(64 << 20));
  assert(bomb.length < 100_000, `bomb is small on disk (${bomb.length} bytes)`);
  assertThrows(
    () => decodePngGray(bomb),
    (e: unknown) => e instanceof ImageDecodeError && /inflates past the 272 bytes/.test(e.message),
  );
});

Deno.test("PNG: one byte more than the header implies is corrupt; exactly enough decodes", () => {
  const exact = new Uint8Array(16 * 17);
  assert(decodePngGray(pngWithRaw(16, 16, exact)).data.length === 256);
  assertThrows(
    () => decodePngGray(pngWithRaw(16, 16, new Uint8Array(16 * 17 + 1))),
    ImageDecodeError,
  );
  // Interlaced 5x3: passes 1-7 hold 1x1, 1x1, none, 1x1, 3x1, 2x2, 5x1 pixels (+1 filter byte/row).
  const n = inflatedSize(5, 3, 8, true);
  assert(n === 2 + 2 + 0 + 2 + 4 + 6 + 6, `Adam7 size of 5x3 gray8: ${n}`);
  assert(decodePngGray(pngWithRaw(5, 3, new Uint8Array(n), 1)).width === 5);
  assertThrows(() => decodePngGray(pngWithRaw(5, 3, new Uint8Array(n + 1), 1)), ImageDecodeError);
});

/** baseline.jpg (40×28) with its frame header claiming w×h. */
function jpegClaiming(w: number, h: number): Uint8Array {
  const b = read("baseline.jpg").slice();
  const sof = 89; // FFC0 segment of the fixture
  assert(b[sof] === 0xff && b[sof + 1] === 0xc0, "fixture layout");
  b.set([h >> 8, h & 255, w >> 8, w & 255], sof + 5);
  return b;
}

Deno.test("JPEG dimension lie: 11000x11000 and 9000x9000 are refused before decoding", async () => {
  for (const [w, h] of [[11000, 11000], [9000, 9000], [65535, 1100]]) {
    assert(w * h > MAX_IMAGE_PIXELS);
    const bytes = jpegClaiming(w, h);
    assertThrows(() => jpegFrameSize(bytes), /too large/);
    await assertRejects(() => decodeJpegGray(bytes), /JPEG too large: \d+x\d+/);
    assertThrows(() => decodeJpegGraySync(bytes), ImageDecodeError);
    await assertRejects(() => decodeImageGray(bytes), /over the 64 MP limit/);
  }
});

Deno.test("JPEG: a header that disagrees with the data gives the declared size or an error", async () => {
  // 41x28 claimed over 40x28 data: whatever a decoder makes of it, never a different size.
  for (const [w, h] of [[41, 28], [40, 29], [8, 8], [0, 28]]) {
    const bytes = jpegClaiming(w, h);
    for (const decode of [decodeJpegGray, (b: Uint8Array) => decodeJpegGraySync(b)]) {
      try {
        const img = await decode(bytes);
        assert(img.width === w && img.height === h && img.data.length === w * h, `${w}x${h}`);
      } catch (e) {
        assert(e instanceof ImageDecodeError, `${w}x${h}: ${e}`);
      }
    }
  }
});
