/** Minimal PNG encoder (8-bit gray, gray+alpha, RGB or RGBA; zlib from node:zlib) for inline images. */
import { chunk, crc32 } from "../data/png.ts";
import { deflateSync } from "node:zlib";

/** Row-major 8-bit pixels with `channels` interleaved samples per pixel. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

const COLOR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 } as const; // PNG color types per channel count

export { crc32 };

/** Encodes an image as PNG bytes. */
export function encodePng(img: RasterImage): Uint8Array {
  const { width, height, channels, data } = img;
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new RangeError(`encodePng: bad size ${width}x${height}`);
  }
  if (!(channels in COLOR_TYPE)) {
    throw new RangeError(`encodePng: channels must be 1-4, got ${channels}`);
  }
  const stride = width * channels;
  if (data.length !== stride * height) {
    throw new RangeError(`encodePng: ${data.length} bytes for ${width}x${height}x${channels}`);
  }
  // Each row is prefixed with filter type 1 (Sub: difference to the pixel on the left).
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1), row = y * stride;
    raw[o] = 1;
    for (let x = 0; x < stride; x++) {
      raw[o + 1 + x] = (data[row + x] - (x >= channels ? data[row + x - channels] : 0)) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, COLOR_TYPE[channels], 0, 0, 0], 8); // bit depth, color type, compression, filter, interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** PNG as a data: URI for an <img src>. */
export function pngDataUri(img: RasterImage): string {
  const bytes = encodePng(img);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(bin)}`;
}
