/**
 * CPU reference for kernels/augment.ts: the same slot parameters, the same f32 arithmetic in the
 * same order (each operation rounded with Math.fround), the mean summed in f64. Nearest rounds the
 * f32 source coordinate half to even, as WGSL's round() (and grid_sample's nearest mode) does.
 */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

/** f32 parameters per output image (see kernels/augment.ts). */
export const AUGMENT_SLOT = 10;

export interface AugmentSpec {
  /** Output side n. */
  size: number;
  /** Side of the stored (source) images. */
  srcSize: number;
  /** Output channels (the one resampled channel, replicated). */
  channels: number;
  /** "nearest" (the source coordinate rounded half to even) or "bilinear" (the default). */
  interp?: "nearest" | "bilinear";
}

/** x rounded to the nearest integer, halves to the even one. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const f = Math.fround;

export function augmentImagesCpu(
  pixels: Uint8Array,
  slots: Float32Array,
  spec: AugmentSpec,
  needMean: boolean,
): CpuTensor {
  const count = slots.length / AUGMENT_SLOT, n = spec.size, n2 = n * n, S = spec.srcSize;
  const C = spec.channels, nearest = spec.interp === "nearest";
  const out = cpuTensor([count, C, n, n]);
  const val = new Float32Array(n2);
  for (let s = 0; s < count; s++) {
    const q = slots.subarray(s * AUGMENT_SLOT, (s + 1) * AUGMENT_SLOT);
    const base = q[0] * S * S;
    if (base + S * S > pixels.length) throw new Error(`augment: slot ${s} reads image ${q[0]}`);
    const tex = (x: number, y: number) =>
      x < 0 || y < 0 || x >= S || y >= S ? 0 : pixels[base + y * S + x];
    for (let i = 0; i < n2; i++) {
      const u = i % n, v = Math.floor(i / n);
      const X = f(f(q[1] + f(u * q[3])) + f(v * q[5]));
      const Y = f(f(q[2] + f(u * q[4])) + f(v * q[6]));
      if (nearest) {
        val[i] = tex(roundHalfEven(X), roundHalfEven(Y));
        continue;
      }
      const fx = Math.floor(X), fy = Math.floor(Y);
      if (fx < -1 || fy < -1 || fx >= S || fy >= S) {
        val[i] = 0;
        continue;
      }
      const ax = f(X - fx), ay = f(Y - fy);
      const p00 = tex(fx, fy), p10 = tex(fx + 1, fy), p01 = tex(fx, fy + 1);
      const p11 = tex(fx + 1, fy + 1);
      const top = f(p00 + f((p10 - p00) * ax)), bot = f(p01 + f((p11 - p01) * ax));
      val[i] = f(top + f(f(bot - top) * ay));
    }
    let m = 0;
    if (needMean) {
      for (let i = 0; i < n2; i++) m += val[i];
      m = f(m / n2);
    }
    const a = q[7], c = f(f(m * q[8]) + q[9]);
    for (let i = 0; i < n2; i++) {
      const y = f(f(val[i] * a) + c);
      for (let ch = 0; ch < C; ch++) out.data[(s * C + ch) * n2 + i] = y;
    }
  }
  return out;
}
