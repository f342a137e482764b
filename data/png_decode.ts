/**
 * PNG decoding (all colour types, bit depths 1–16, Adam7 interlacing, CRC-checked) straight to
 * one 8-bit gray channel. Inflate comes from node:zlib; the chunk walking and scanline
 * un-filtering are done here so no image library is needed. The encoder is png_encode.ts.
 *
 * 16-bit samples are mapped onto 0..255 by the range they really use, since radiographs exported
 * from DICOM often keep 10–12-bit values (0..4095) unscaled in 16 bits: with an sBIT chunk of s
 * significant bits and every sample at most 2^s − 1, by 2^s − 1; otherwise by 2^b − 1 where b is
 * the smallest bit depth from 8 to 16 that holds the image's largest (colour) sample. An image
 * whose largest sample is 32768 or more (and a file whose encoder scaled its samples to the full
 * range, as the PNG specification asks) is read by 65535, as a plain 16-bit image.
 */
import { inflateSync } from "node:zlib";
import type { GrayImage } from "./gray_image.ts";
import { checkImageSize, ImageDecodeError } from "./image_error.ts";
import { crc32, isPng } from "./png_format.ts";

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ALLOWED_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

// Adam7 passes: [xStart, yStart, xStep, yStep].
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Decodes a PNG to 8-bit gray (ITU-R 601 luma for colour; alpha ignored, as PIL's "L" does). */
export function decodePngGray(bytes: Uint8Array): GrayImage {
  if (!isPng(bytes)) throw new ImageDecodeError("not a PNG (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null;
  let sbit: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) {
      throw new ImageDecodeError(`truncated PNG: chunk header at byte ${pos}`);
    }
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const dataStart = pos + 8, dataEnd = dataStart + len;
    if (dataEnd + 4 > bytes.length) {
      throw new ImageDecodeError(`truncated PNG: ${type} chunk at byte ${pos}`);
    }
    if (crc32(bytes, pos + 4, dataEnd) !== view.getUint32(dataEnd)) {
      throw new ImageDecodeError(`corrupt PNG: CRC mismatch in ${type} chunk at byte ${pos}`);
    }
    const data = bytes.subarray(dataStart, dataEnd);
    if (type === "IHDR") {
      width = view.getUint32(dataStart);
      height = view.getUint32(dataStart + 4);
      depth = data[8];
      colorType = data[9];
      interlace = data[12];
    } else if (type === "PLTE") palette = data;
    else if (type === "sBIT") sbit = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") {
      sawEnd = true;
      break;
    }
    pos = dataEnd + 4;
  }
  if (colorType < 0) throw new ImageDecodeError("corrupt PNG: no IHDR chunk");
  if (!sawEnd) throw new ImageDecodeError("truncated PNG: no IEND chunk");
  if (!(ALLOWED_DEPTHS[colorType] ?? []).includes(depth)) {
    throw new ImageDecodeError(`unsupported PNG: color type ${colorType} with bit depth ${depth}`);
  }
  checkImageSize(width, height, "PNG");
  if (colorType === 3 && !palette) {
    throw new ImageDecodeError("corrupt PNG: palette image without PLTE");
  }
  if (interlace > 1) throw new ImageDecodeError(`corrupt PNG: interlace method ${interlace}`);
  const channels = CHANNELS[colorType];
  const expected = inflatedSize(width, height, depth * channels, interlace === 1);
  // The header fixes the inflated size: inflate stops one byte past it, so a zlib bomb costs
  // nothing, and any extra data marks the image corrupt.
  const tooLong = () =>
    new ImageDecodeError(
      `corrupt PNG: image data inflates past the ${expected} bytes its ${width}x${height} ` +
        `header implies`,
    );
  const compressed = concat(idat);
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(inflateSync(compressed, { maxOutputLength: expected + 1 }));
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLong();
    throw new ImageDecodeError(
      `corrupt PNG: image data does not inflate (${(e as Error).message})`,
    );
  }
  if (raw.length > expected) throw tooLong();
  // Un-filter in place, pass by pass (one pass when not interlaced), then convert to gray.
  const passes: Pass[] = [];
  if (interlace === 0) passes.push({ off: 0, pw: width, ph: height, x0: 0, y0: 0, dx: 1, dy: 1 });
  else {
    let off = 0;
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
      if (pw <= 0 || ph <= 0) continue;
      passes.push({ off, pw, ph, x0, y0, dx, dy });
      off += ph * (Math.ceil((pw * depth * channels) / 8) + 1);
    }
  }
  for (const p of passes) {
    if (!unfilterInPlace(raw, p.off, p.pw, p.ph, depth * channels)) {
      throw new ImageDecodeError(
        `truncated PNG: ${interlace ? "interlaced " : ""}image data too short`,
      );
    }
  }
  const out = new Uint8Array(width * height);
  const ctx: Ctx = { width, depth, channels, colorType, palette, out, full16: 65535 };
  if (depth === 16) ctx.full16 = sixteenBitRange(raw, passes, channels, colorType, sbit);
  for (const p of passes) {
    const stride = Math.ceil((p.pw * depth * channels) / 8);
    for (let y = 0; y < p.ph; y++) {
      const start = p.off + y * (stride + 1) + 1;
      writeRow(
        raw.subarray(start, start + stride),
        p.pw,
        ctx,
        (p.y0 + y * p.dy) * width,
        p.x0,
        p.dx,
      );
    }
  }
  return { width, height, data: out };
}

/** One (sub)image of the scanline data: Adam7 pass, or the whole image when not interlaced. */
interface Pass {
  /** Where its filtered rows start in the inflated data. */
  off: number;
  pw: number;
  ph: number;
  x0: number;
  y0: number;
  dx: number;
  dy: number;
}

/** Largest colour sample (gray, or R/G/B; alpha left out) of the un-filtered 16-bit passes. */
function maxSample16(raw: Uint8Array, passes: Pass[], channels: number, colorType: number): number {
  const colour = colorType === 2 || colorType === 6 ? 3 : 1;
  let max = 0;
  for (const p of passes) {
    const stride = p.pw * channels * 2;
    for (let y = 0; y < p.ph; y++) {
      const row = p.off + y * (stride + 1) + 1;
      for (let i = 0; i < p.pw; i++) {
        for (let c = 0; c < colour; c++) {
          const o = row + 2 * (i * channels + c);
          const v = (raw[o] << 8) | raw[o + 1];
          if (v > max) max = v;
        }
      }
    }
  }
  return max;
}

/**
 * The sample value that maps to 255 in a 16-bit image (see the header): 2^sBIT − 1 when an sBIT
 * chunk is given and every sample fits in it; 65535 when sBIT is given and samples exceed it (the
 * encoder scaled them to the full range); else 2^b − 1 for the smallest b in 8..16 that holds the
 * largest sample, so values kept at 12 bits (0..4095) are not darkened sixteen-fold.
 */
function sixteenBitRange(
  raw: Uint8Array,
  passes: Pass[],
  channels: number,
  colorType: number,
  sbit: Uint8Array | null,
): number {
  const max = maxSample16(raw, passes, channels, colorType);
  const colour = colorType === 2 || colorType === 6 ? 3 : 1;
  // sBIT holds one byte per channel; a malformed one (wrong length, 0 or over 16) is ignored.
  if (sbit && sbit.length >= colour) {
    const bits = Math.max(...sbit.subarray(0, colour));
    if (bits >= 1 && bits <= 16 && Math.min(...sbit.subarray(0, colour)) >= 1) {
      return max <= 2 ** bits - 1 ? 2 ** bits - 1 : 65535;
    }
  }
  let b = 8;
  while (b < 16 && max >= 2 ** b) b++;
  return 2 ** b - 1;
}

/** Bytes of filtered scanlines the header implies: rows × (stride + 1), summed over Adam7 passes. */
export function inflatedSize(
  width: number,
  height: number,
  bitsPerPixel: number,
  interlaced: boolean,
): number {
  const rows = (pw: number, ph: number) =>
    pw > 0 && ph > 0 ? ph * (Math.ceil((pw * bitsPerPixel) / 8) + 1) : 0;
  if (!interlaced) return rows(width, height);
  let sum = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    sum += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  }
  return sum;
}

interface Ctx {
  width: number;
  depth: number;
  channels: number;
  colorType: number;
  palette: Uint8Array | null;
  out: Uint8Array;
  /** 16-bit images: the sample value that maps to 255 (sixteenBitRange). */
  full16: number;
}

/**
 * Un-filters, in place, the ph scanlines of a (sub)image pw pixels wide starting at raw[off] (each
 * row a filter byte then its bytes). Returns false when raw is too short.
 */
function unfilterInPlace(
  raw: Uint8Array,
  off: number,
  pw: number,
  ph: number,
  bitsPerPixel: number,
): boolean {
  const stride = Math.ceil((pw * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter byte distance
  if (off + ph * (stride + 1) > raw.length) return false;
  const zero = new Uint8Array(stride);
  let prev: Uint8Array = zero;
  for (let y = 0; y < ph; y++) {
    const rowStart = off + y * (stride + 1);
    const ft = raw[rowStart];
    const cur = raw.subarray(rowStart + 1, rowStart + 1 + stride);
    switch (ft) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < stride; i++) cur[i] = (cur[i] + cur[i - bpp]) & 255;
        break;
      case 2:
        for (let i = 0; i < stride; i++) cur[i] = (cur[i] + prev[i]) & 255;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          cur[i] = (cur[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 255;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          cur[i] = (cur[i] + pred) & 255;
        }
        break;
      default:
        throw new ImageDecodeError(`corrupt PNG: unknown filter type ${ft} on row ${y}`);
    }
    prev = cur;
  }
  return true;
}

/** Converts one un-filtered row to gray bytes. */
function writeRow(
  row: Uint8Array,
  pw: number,
  ctx: Ctx,
  outRow: number,
  x0: number,
  dx: number,
): void {
  const { depth, channels, colorType, palette, out } = ctx;
  const luma = (r: number, g: number, b: number) =>
    Math.min(255, Math.round(0.299 * r + 0.587 * g + 0.114 * b));
  if (depth < 8) {
    const mask = (1 << depth) - 1, perByte = 8 / depth, scale = 255 / mask;
    for (let i = 0; i < pw; i++) {
      const byte = row[(i / perByte) | 0];
      const v = (byte >> (8 - depth * ((i % perByte) + 1))) & mask;
      out[outRow + x0 + i * dx] = colorType === 3
        ? paletteGray(palette!, v, luma)
        : Math.round(v * scale);
    }
    return;
  }
  const bytesPerSample = depth >> 3;
  // 16-bit samples: round(v × 255 / full16) maps 0..full16 onto 0..255 exactly at both ends
  // (full16 = 65535 gives round(v / 257)); alpha, not part of the gray, may exceed full16.
  const full = ctx.full16;
  const sample = bytesPerSample === 1
    ? (i: number) => row[i]
    : (i: number) => Math.min(255, Math.round((((row[2 * i] << 8) | row[2 * i + 1]) * 255) / full));
  for (let i = 0; i < pw; i++) {
    const s = i * channels;
    let v: number;
    if (colorType === 3) v = paletteGray(palette!, row[i], luma);
    else if (channels <= 2) v = sample(s);
    else v = luma(sample(s), sample(s + 1), sample(s + 2));
    out[outRow + x0 + i * dx] = v;
  }
}

function paletteGray(
  palette: Uint8Array,
  index: number,
  luma: (r: number, g: number, b: number) => number,
): number {
  if (3 * index + 2 >= palette.length) {
    throw new ImageDecodeError(`corrupt PNG: palette index ${index} out of range`);
  }
  return luma(palette[3 * index], palette[3 * index + 1], palette[3 * index + 2]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 0) throw new ImageDecodeError("corrupt PNG: no IDAT chunk");
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
