/**
 * The one in-memory image type of the data layer (8-bit gray, row-major) and its resampling:
 * anti-aliased resize (triangle filter whose support grows with the downscale factor, as PIL's
 * antialiased bilinear does) and the "shorter side to S, then centre crop S×S" used by the cache.
 */

/** 8-bit gray image, row-major, data.length === width * height. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Filter taps for one output axis: for output i, weights w[i*k..] over src[start[i]..]. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  k: number;
  weights: Float32Array;
}

/**
 * Taps mapping the source interval [x0, x0 + len) (continuous pixel coordinates, pixel i covers
 * [i, i+1)) onto `out` output pixels. Triangle filter of radius max(1, scale) in source pixels.
 */
function taps(srcLen: number, x0: number, len: number, out: number): Taps {
  const scale = len / out;
  const radius = Math.max(1, scale);
  const k = Math.ceil(radius) * 2 + 1;
  const start = new Int32Array(out), count = new Int32Array(out);
  const weights = new Float32Array(out * k);
  for (let i = 0; i < out; i++) {
    const center = x0 + (i + 0.5) * scale; // in continuous source coordinates
    let lo = Math.floor(center - radius - 0.5), hi = Math.ceil(center + radius - 0.5);
    lo = Math.max(lo, 0);
    hi = Math.min(hi, srcLen - 1);
    let sum = 0, n = 0;
    for (let j = lo; j <= hi && n < k; j++) {
      const w = Math.max(0, 1 - Math.abs(j + 0.5 - center) / radius);
      weights[i * k + n] = w;
      sum += w;
      n++;
    }
    if (sum <= 0) {
      // Degenerate (centre outside the source): take the nearest pixel.
      lo = Math.min(srcLen - 1, Math.max(0, Math.floor(center)));
      weights[i * k] = 1;
      sum = 1;
      n = 1;
    }
    for (let j = 0; j < n; j++) weights[i * k + j] /= sum;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, k, weights };
}

/**
 * Resamples the source rectangle [x0, x0+w) × [y0, y0+h) (may be fractional) to outW × outH with
 * the separable anti-aliased triangle filter. Rounds to nearest.
 */
export function resampleRect(
  img: GrayImage,
  x0: number,
  y0: number,
  w: number,
  h: number,
  outW: number,
  outH: number,
): GrayImage {
  const tx = taps(img.width, x0, w, outW), ty = taps(img.height, y0, h, outH);
  const src = img.data, sw = img.width;
  // Vertical pass first over only the source columns the horizontal taps touch.
  const colLo = tx.start[0], colHi = tx.start[outW - 1] + tx.count[outW - 1];
  const tmpW = colHi - colLo;
  const tmp = new Float32Array(outH * tmpW);
  for (let i = 0; i < outH; i++) {
    const s = ty.start[i], n = ty.count[i], wo = i * ty.k, to = i * tmpW;
    for (let j = 0; j < n; j++) {
      const wj = ty.weights[wo + j], so = (s + j) * sw + colLo;
      for (let x = 0; x < tmpW; x++) tmp[to + x] += wj * src[so + x];
    }
  }
  const out = new Uint8Array(outW * outH);
  for (let i = 0; i < outH; i++) {
    const to = i * tmpW;
    for (let o = 0; o < outW; o++) {
      const s = tx.start[o] - colLo, n = tx.count[o], wo = o * tx.k;
      let acc = 0;
      for (let j = 0; j < n; j++) acc += tx.weights[wo + j] * tmp[to + s + j];
      out[i * outW + o] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Resizes so the shorter side becomes `size`, keeping the aspect ratio. */
export function resizeShorterSide(img: GrayImage, size: number): GrayImage {
  const s = size / Math.min(img.width, img.height);
  const w = Math.max(1, Math.round(img.width * s)), h = Math.max(1, Math.round(img.height * s));
  return resampleRect(img, 0, 0, img.width, img.height, w, h);
}

/**
 * Resizes the shorter side to `size` and centre-crops to size×size, in one resampling of the
 * centred square of the source (same result as resize-then-crop, without the wasted columns).
 */
export function resizeAndCenterCrop(img: GrayImage, size: number): GrayImage {
  const side = Math.min(img.width, img.height);
  return resampleRect(
    img,
    (img.width - side) / 2,
    (img.height - side) / 2,
    side,
    side,
    size,
    size,
  );
}
