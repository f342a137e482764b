/**
 * PNG decoding (all colour types, bit depths 1–16, Adam7 interlacing, CRC-checked) straight to
 * one 8-bit gray channel. Inflate comes from node:zlib; the chunk walking and scanline
 * un-filtering are done here so no image library is needed. The encoder is png_encode.ts.
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
  const out = new Uint8Array(width * height);
  const ctx = { width, height, depth, channels, colorType, palette, out };
  if (interlace === 0) {
    const used = unfilterInto(raw, 0, width, height, ctx, 0, 0, 1, 1);
    if (used < 0) throw new ImageDecodeError("truncated PNG: image data too short");
  } else {
    let off = 0;
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
      if (pw <= 0 || ph <= 0) continue;
      const used = unfilterInto(raw, off, pw, ph, ctx, x0, y0, dx, dy);
      if (used < 0) throw new ImageDecodeError("truncated PNG: interlaced image data too short");
      off += used;
    }
  }
  return { width, height, data: out };
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
  height: number;
  depth: number;
  channels: number;
  colorType: number;
  palette: Uint8Array | null;
  out: Uint8Array;
}

/**
 * Un-filters one (sub)image of pw×ph pixels starting at raw[off] and writes its gray values to
 * ctx.out at (x0 + i*dx, y0 + j*dy). Returns the bytes consumed, or -1 when raw is too short.
 */
function unfilterInto(
  raw: Uint8Array,
  off: number,
  pw: number,
  ph: number,
  ctx: Ctx,
  x0: number,
  y0: number,
  dx: number,
  dy: number,
): number {
  const bitsPerPixel = ctx.depth * ctx.channels;
  const stride = Math.ceil((pw * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter byte distance
  if (off + ph * (stride + 1) > raw.length) return -1;
  let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0; y < ph; y++) {
    const rowStart = off + y * (stride + 1);
    const ft = raw[rowStart];
    const src = raw.subarray(rowStart + 1, rowStart + 1 + stride);
    switch (ft) {
      case 0:
        cur.set(src);
        break;
      case 1:
        for (let i = 0; i < stride; i++) {
          cur[i] = (src[i] + (i >= bpp ? cur[i - bpp] : 0)) & 255;
        }
        break;
      case 2:
        for (let i = 0; i < stride; i++) cur[i] = (src[i] + prev[i]) & 255;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          cur[i] = (src[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 255;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          cur[i] = (src[i] + pred) & 255;
        }
        break;
      default:
        throw new ImageDecodeError(`corrupt PNG: unknown filter type ${ft} on row ${y}`);
    }
    writeRow(cur, pw, ctx, ctx.out, (y0 + y * dy) * ctx.width, x0, dx);
    [prev, cur] = [cur, prev];
  }
  return ph * (stride + 1);
}

/** Converts one un-filtered row to gray bytes. */
function writeRow(
  row: Uint8Array,
  pw: number,
  ctx: Ctx,
  out: Uint8Array,
  outRow: number,
  x0: number,
  dx: number,
): void {
  const { depth, channels, colorType, palette } = ctx;
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
  // 16-bit samples: round(v / 257) maps 0..65535 onto 0..255 exactly at both ends.
  const sample = bytesPerSample === 1
    ? (i: number) => row[i]
    : (i: number) => Math.round(((row[2 * i] << 8) | row[2 * i + 1]) / 257);
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
