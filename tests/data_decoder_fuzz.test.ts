/**
 * Seeded fuzzing of both decoders: a few hundred mutations (bit flips, truncations, chunk and
 * marker length edits, dimension edits) of the small valid fixtures. Every outcome must be an
 * image of the size the (mutated) header declares, or an ImageDecodeError: no other exception,
 * no other size, and never more than MAX_IMAGE_PIXELS (which bounds memory).
 */
import { assert } from "./helpers.ts";
import { decodePngGray } from "../data/png_decode.ts";
import { crc32 } from "../data/png_format.ts";
import { decodeJpegGray, decodeJpegGraySync } from "../data/jpeg.ts";
import { ImageDecodeError, MAX_IMAGE_PIXELS } from "../data/image_error.ts";
import type { GrayImage } from "../data/gray_image.ts";
import { Rng } from "../util/rng.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readFileSync(new URL(name, FIX));

/** PNG chunk starts (offsets of the length field), walking from the signature. */
function pngChunks(b: Uint8Array): number[] {
  const out: number[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 12 <= b.length; p += 12 + dv.getUint32(p)) out.push(p);
  return out;
}

/** Rewrites every chunk's CRC so that mutations reach the decoder beyond the CRC check. */
function fixCrcs(b: Uint8Array): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const p of pngChunks(b)) {
    const end = p + 8 + dv.getUint32(p);
    if (end + 4 <= b.length) dv.setUint32(end, crc32(b, p + 4, end));
  }
}

/** JPEG marker segment starts (offset of the 0xFF) up to and including SOS. */
function jpegSegments(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 2; p + 4 <= b.length && b[p] === 0xff;) {
    out.push(p);
    if (b[p + 1] === 0xda) break;
    p += 2 + ((b[p + 2] << 8) | b[p + 3]);
  }
  return out;
}

type Mutation = (b: Uint8Array, rng: Rng) => Uint8Array;

const flipBits: Mutation = (b, rng) => {
  const c = b.slice();
  for (let k = 1 + rng.int(4); k > 0; k--) c[rng.int(c.length)] ^= 1 << rng.int(8);
  return c;
};
const truncate: Mutation = (b, rng) => b.slice(0, rng.int(b.length));
const setByte: Mutation = (b, rng) => {
  const c = b.slice();
  c[rng.int(c.length)] = [0, 0xff, 0x7f, 0x80, rng.int(256)][rng.int(5)];
  return c;
};

const PNG_MUTATIONS: Mutation[] = [
  (b, rng) => { // bit flips with the CRCs repaired
    const c = flipBits(b, rng);
    fixCrcs(c);
    return c;
  },
  truncate,
  (b, rng) => { // a chunk length edited
    const c = b.slice(), dv = new DataView(c.buffer);
    const ps = pngChunks(c), p = ps[rng.int(ps.length)];
    dv.setUint32(p, [0, 1, dv.getUint32(p) + 1, dv.getUint32(p) - 1, 0x7fffffff][rng.int(5)]);
    return c;
  },
  (b, rng) => { // IHDR width/height/depth/colour/interlace edited, CRC repaired
    const c = b.slice(), dv = new DataView(c.buffer);
    const field = rng.int(4);
    if (field === 0) dv.setUint32(16, [0, 1, 39, 41, 65535, 1 << 30][rng.int(6)]);
    else if (field === 1) dv.setUint32(20, [0, 1, 27, 29, 100000][rng.int(5)]);
    else if (field === 2) c[24] = [1, 2, 4, 8, 16, 3][rng.int(6)];
    else c[25 + rng.int(4)] = rng.int(8);
    fixCrcs(c);
    return c;
  },
  (b, rng) => { // IDAT bytes set, CRC repaired
    const c = setByte(b, rng);
    fixCrcs(c);
    return c;
  },
];

const JPEG_MUTATIONS: Mutation[] = [
  flipBits,
  (b, rng) => { // cut short, EOI appended so the decoders see the damage
    const c = b.slice(0, 2 + rng.int(b.length - 2));
    const out = new Uint8Array(c.length + 2);
    out.set(c);
    out.set([0xff, 0xd9], c.length);
    return out;
  },
  (b, rng) => { // a marker segment's length edited
    const c = b.slice(), ss = jpegSegments(c), p = ss[rng.int(ss.length)];
    const len = [0, 1, 2, 3, 0xffff, ((c[p + 2] << 8) | c[p + 3]) + rng.int(5) - 2][rng.int(6)];
    c[p + 2] = len >> 8;
    c[p + 3] = len & 255;
    return c;
  },
  (b, rng) => { // frame header dimensions / components edited
    const c = b.slice(), sof = jpegSegments(c).find((p) => c[p + 1] === 0xc0 || c[p + 1] === 0xc2)!;
    const v = [0, 1, 8, 27, 41, 4096, 8193, 65535][rng.int(8)];
    const at = sof + 5 + 2 * rng.int(2);
    if (rng.int(5) === 0) c[sof + 9] = rng.int(6); // component count
    else c.set([v >> 8, v & 255], at);
    return c;
  },
  setByte,
];

/** Decodes, then checks the outcome: the declared size or ImageDecodeError, nothing else. */
async function outcome(
  decode: (b: Uint8Array) => GrayImage | Promise<GrayImage>,
  bytes: Uint8Array,
  declared: (b: Uint8Array) => [number, number] | null,
  label: string,
): Promise<"ok" | "error"> {
  let img: GrayImage;
  try {
    img = await decode(bytes);
  } catch (e) {
    assert(e instanceof ImageDecodeError, `${label}: threw ${(e as Error)?.stack ?? e}`);
    return "error";
  }
  const d = declared(bytes);
  assert(d !== null, `${label}: decoded without a readable header`);
  assert(img.width === d[0] && img.height === d[1], `${label}: ${img.width}x${img.height} != ${d}`);
  assert(img.data.length === img.width * img.height, `${label}: pixel count`);
  assert(img.width * img.height <= MAX_IMAGE_PIXELS, `${label}: over the pixel cap`);
  return "ok";
}

const pngDeclared = (b: Uint8Array): [number, number] | null => {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return b.length >= 24 ? [dv.getUint32(16), dv.getUint32(20)] : null;
};
const jpegDeclared = (b: Uint8Array): [number, number] | null => {
  const sof = jpegSegments(b).find((p) =>
    b[p + 1] >= 0xc0 && b[p + 1] <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(b[p + 1])
  );
  return sof === undefined || sof + 9 > b.length
    ? null
    : [(b[sof + 7] << 8) | b[sof + 8], (b[sof + 5] << 8) | b[sof + 6]];
};

Deno.test("fuzz: 400 seeded PNG mutations decode to the declared size or throw ImageDecodeError", async () => {
  const rng = new Rng(1601);
  const files = ["gray8.png", "interlaced.png", "palette.png", "gray4.png", "rgba16.png"];
  const seen = { ok: 0, error: 0 };
  for (let i = 0; i < 400; i++) {
    const f = files[i % files.length];
    const m = PNG_MUTATIONS[rng.int(PNG_MUTATIONS.length)];
    seen[await outcome(decodePngGray, m(read(f), rng), pngDeclared, `PNG #${i} (${f})`)]++;
  }
  // Both outcomes occur: the mutations reach past the first check.

  assert(seen.ok > 20 && seen.error > 100, JSON.stringify(seen));
});

Deno.test("fuzz: 300 seeded JPEG mutations, both decoders, declared size or ImageDecodeError", async () => {
  const rng = new Rng(1602);
  const files = ["baseline.jpg", "progressive.jpg", "progressive_rgb.jpg"];
  const seen = { ok: 0, error: 0 };
  for (let i = 0; i < 300; i++) {
    const f = files[i % files.length];
    const bytes = JPEG_MUTATIONS[rng.int(JPEG_MUTATIONS.length)](read(f), rng);
    seen[await outcome(decodeJpegGray, bytes, jpegDeclared, `JPEG #${i} (${f}, wasm)`)]++;
    seen[await outcome(decodeJpegGraySync, bytes, jpegDeclared, `JPEG #${i} (${f}, jpeg-js)`)]++;
  }

  assert(seen.ok > 20 && seen.error > 100, JSON.stringify(seen));
});
