/**
 * Baseline grayscale JPEG encoder (JFIF, one component, standard ITU T.81 Annex K luminance
 * quantisation and Huffman tables, IJG quality scaling). Written here because jpeg-js's encoder
 * takes ~30 ms per 128² image and imagescript's needs a native addon (FFI); this one takes
 * 1–3 ms (measured on the shared dev box), which matters for thousands of synthetic images.
 */
import type { GrayImage } from "./gray_image.ts";

// deno-fmt-ignore
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
  58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

// deno-fmt-ignore
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61,
  12, 12, 14, 19, 26, 58, 60, 55,
  14, 13, 16, 24, 40, 57, 69, 56,
  14, 17, 22, 29, 51, 87, 80, 62,
  18, 22, 37, 56, 68, 109, 103, 77,
  24, 35, 55, 64, 81, 104, 113, 92,
  49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];

const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
// deno-fmt-ignore
const AC_VALUES = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
  0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
  0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
  0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
  0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
  0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
  0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
  0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
  0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
  0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
  0xf9, 0xfa,
];

/** Canonical Huffman codes: symbol → [code, length]. */
function huffmanTable(bits: number[], values: number[]): { code: Uint16Array; len: Uint8Array } {
  const code = new Uint16Array(256), len = new Uint8Array(256);
  let c = 0, k = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < bits[l - 1]; i++) {
      code[values[k]] = c++;
      len[values[k]] = l;
      k++;
    }
    c <<= 1;
  }
  return { code, len };
}

const DC = huffmanTable(DC_BITS, DC_VALUES);
const AC = huffmanTable(AC_BITS, AC_VALUES);

/** DCT basis: M[u*8 + x] = c(u)/2 · cos((2x+1)uπ/16), so F = M f Mᵀ. */
const DCT = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    for (let x = 0; x < 8; x++) {
      m[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) / 2 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
    }
  }
  return m;
})();

/** IJG quality scaling of the standard luminance table (natural order). */
export function quantTable(quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(
    LUMA_Q,
    (b) => Math.min(255, Math.max(1, Math.floor((b * scale + 50) / 100))),
  );
}

class BitWriter {
  buf = new Uint8Array(4096);
  pos = 0;
  private acc = 0;
  private n = 0;

  private byte(b: number) {
    if (this.pos + 2 > this.buf.length) {
      const nb = new Uint8Array(this.buf.length * 2);
      nb.set(this.buf);
      this.buf = nb;
    }
    this.buf[this.pos++] = b;
    if (b === 0xff) this.buf[this.pos++] = 0; // byte stuffing
  }

  /** Appends the low `count` (≤ 16) bits of value, most significant first. */
  bits(value: number, count: number) {
    this.acc = (this.acc << count) | (value & ((1 << count) - 1));
    this.n += count;
    while (this.n >= 8) {
      this.n -= 8;
      this.byte((this.acc >>> this.n) & 255);
    }
    this.acc &= (1 << this.n) - 1;
  }

  flush() {
    if (this.n > 0) this.bits((1 << (8 - this.n)) - 1, 8 - this.n); // pad with ones
  }
}

function category(v: number): number {
  let a = Math.abs(v), c = 0;
  while (a > 0) {
    a >>= 1;
    c++;
  }
  return c;
}

/** Encodes 8-bit gray pixels as a baseline JPEG. */
export function encodeJpegGrayBaseline(img: GrayImage, quality = 90): Uint8Array {
  const { width: w, height: h, data } = img;
  if (!(w >= 1 && h >= 1 && w < 65536 && h < 65536) || data.length !== w * h) {
    throw new Error(`encodeJpegGray: bad image ${w}x${h} with ${data.length} pixels`);
  }
  const qt = quantTable(quality);
  const out = new BitWriter();
  const block = new Float64Array(64), tmp = new Float64Array(64), zz = new Int32Array(64);
  let prevDC = 0;
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      // Level-shifted block, edges replicated.
      for (let y = 0; y < 8; y++) {
        const row = Math.min(by + y, h - 1) * w;
        for (let x = 0; x < 8; x++) block[y * 8 + x] = data[row + Math.min(bx + x, w - 1)] - 128;
      }
      // tmp = M · block (over rows), then F = tmp · Mᵀ.
      for (let u = 0; u < 8; u++) {
        for (let x = 0; x < 8; x++) {
          let s = 0;
          for (let y = 0; y < 8; y++) s += DCT[u * 8 + y] * block[y * 8 + x];
          tmp[u * 8 + x] = s;
        }
      }
      for (let u = 0; u < 8; u++) {
        for (let v = 0; v < 8; v++) {
          let s = 0;
          for (let x = 0; x < 8; x++) s += tmp[u * 8 + x] * DCT[v * 8 + x];
          block[u * 8 + v] = s;
        }
      }
      for (let k = 0; k < 64; k++) zz[k] = Math.round(block[ZIGZAG[k]] / qt[ZIGZAG[k]]);
      const diff = zz[0] - prevDC;
      prevDC = zz[0];
      const dc = category(diff);
      out.bits(DC.code[dc], DC.len[dc]);
      if (dc) out.bits(diff < 0 ? diff + (1 << dc) - 1 : diff, dc);
      let run = 0;
      for (let k = 1; k < 64; k++) {
        const v = zz[k];
        if (v === 0) {
          run++;
          continue;
        }
        while (run > 15) {
          out.bits(AC.code[0xf0], AC.len[0xf0]);
          run -= 16;
        }
        const c = category(v), sym = (run << 4) | c;
        out.bits(AC.code[sym], AC.len[sym]);
        out.bits(v < 0 ? v + (1 << c) - 1 : v, c);
        run = 0;
      }
      if (run > 0) out.bits(AC.code[0], AC.len[0]); // EOB
    }
  }
  out.flush();
  const header: number[] = [0xff, 0xd8];
  const seg = (marker: number, body: number[]) =>
    header.push(0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255, ...body);
  seg(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  seg(0xdb, [0, ...ZIGZAG.map((i) => qt[i])]);
  seg(0xc0, [8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0]);
  seg(0xc4, [0x00, ...DC_BITS, ...DC_VALUES, 0x10, ...AC_BITS, ...AC_VALUES]);
  seg(0xda, [1, 1, 0x00, 0, 63, 0]);
  const bytes = new Uint8Array(header.length + out.pos + 2);
  bytes.set(header);
  bytes.set(out.buf.subarray(0, out.pos), header.length);
  bytes.set([0xff, 0xd9], header.length + out.pos);
  return bytes;
}
