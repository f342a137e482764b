/**
 * The project's one PNG encoder: 8-bit gray, gray+alpha, RGB or RGBA, deflated by node:zlib.
 * The synthetic datasets write gray radiographs with it (`encodePngGray`), the report inlines
 * colour heatmaps with it (`encodePng`).
 */
import { deflateSync } from "node:zlib";
import type { GrayImage } from "./gray_image.ts";
import { chunk, PNG_SIGNATURE } from "./png_format.ts";

/** Row-major 8-bit pixels with `channels` interleaved samples per pixel. */
export interface RasterImage {
  /** Pixels per row. */
  width: number;
  /** Rows. */
  height: number;
  /** Samples per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** width × height × channels bytes, row by row. */
  data: Uint8Array;
}

/**
 * The scanline filter written before every row but the first under "up":
 * "sub" (difference to the pixel on the left, every row) suits flat colour plots,
 * "up" (difference to the row above; the first row unfiltered) suits smooth radiographs.
 */
export type PngFilter = "sub" | "up";

/** How `encodePng` filters and compresses. */
export interface PngEncodeOptions {
  /** Default "sub". */
  filter?: PngFilter;
  /** zlib level 0–9; default zlib's own (6). */
  level?: number;
}

const COLOR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 } as const; // PNG color types per channel count

/** Encodes an image as PNG bytes. */
export function encodePng(img: RasterImage, options: PngEncodeOptions = {}): Uint8Array {
  const { width, height, channels, data } = img;
  const { filter = "sub", level } = options;
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
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1), row = y * stride;
    if (filter === "sub") {
      raw[o] = 1;
      for (let x = 0; x < stride; x++) {
        raw[o + 1 + x] = (data[row + x] - (x >= channels ? data[row + x - channels] : 0)) & 0xff;
      }
    } else if (y === 0) {
      raw[o] = 0;
      raw.set(data.subarray(row, row + stride), o + 1);
    } else {
      raw[o] = 2;
      for (let x = 0; x < stride; x++) {
        raw[o + 1 + x] = (data[row + x] - data[row - stride + x]) & 0xff;
      }
    }
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, COLOR_TYPE[channels], 0, 0, 0], 8); // bit depth, color type, compression, filter, interlace
  const idat = level === undefined ? deflateSync(raw) : deflateSync(raw, { level });
  const parts = [
    new Uint8Array(PNG_SIGNATURE),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(idat)),
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

/** Encodes 8-bit gray pixels as a PNG (Up filter on every row: good for smooth radiographs). */
export function encodePngGray(img: GrayImage, level = 6): Uint8Array {
  const { width: w, height: h, data } = img;
  if (data.length !== w * h) {
    throw new Error(`encodePngGray: ${data.length} pixels != ${w}x${h}`);
  }
  return encodePng({ width: w, height: h, channels: 1, data }, { filter: "up", level });
}
