/** Turns a gray image and a Grad-CAM heatmap into RGBA rasters: the image, the map, an overlay. */
import { colormap, type ColormapName } from "./colormap.ts";
import type { RasterImage } from "../data/png_encode.ts";

/** Min-max scales to [0, 1] (a constant array becomes all zeros). */
export function normalizeMinMax(a: ArrayLike<number>): Float32Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
  }
  const out = new Float32Array(a.length);
  const span = hi - lo;
  if (span > 0) { for (let i = 0; i < a.length; i++) out[i] = (a[i] - lo) / span; }
  return out;
}

/** Bilinear resize with align-corners=false sampling (Grad-CAM maps are coarser than images). */
export function resizeBilinear(
  src: ArrayLike<number>,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
): Float32Array {
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const fy = Math.min(Math.max((y + 0.5) * (sh / dh) - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, sh - 1), wy = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(Math.max((x + 0.5) * (sw / dw) - 0.5, 0), sw - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, sw - 1), wx = fx - x0;
      const top = src[y0 * sw + x0] * (1 - wx) + src[y0 * sw + x1] * wx;
      const bot = src[y1 * sw + x0] * (1 - wx) + src[y1 * sw + x1] * wx;
      out[y * dw + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

const byte = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);

/** Gray image (any range, min-max scaled) as an RGBA raster. */
export function grayRaster(image: ArrayLike<number>, width: number, height: number): RasterImage {
  const g = normalizeMinMax(image);
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < g.length; i++) {
    const v = byte(g[i]);
    data.set([v, v, v, 255], 4 * i);
  }
  return { width, height, channels: 4, data };
}

/** Heatmap values in [0, 1] through a colormap, as an RGBA raster. */
export function heatRaster(
  heat01: ArrayLike<number>,
  width: number,
  height: number,
  cmap: ColormapName,
): RasterImage {
  const f = colormap(cmap);
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = f(heat01[i]);
    data.set([byte(r), byte(g), byte(b), 255], 4 * i);
  }
  return { width, height, channels: 4, data };
}

/**
 * Image with the colored heatmap blended on top; the blend weight grows with the heat
 * (alpha * heat), so cold regions keep showing the radiograph.
 */
export function overlayRaster(
  image: ArrayLike<number>,
  heat01: ArrayLike<number>,
  width: number,
  height: number,
  { cmap = "inferno", alpha = 0.6 }: { cmap?: ColormapName; alpha?: number } = {},
): RasterImage {
  const g = normalizeMinMax(image);
  const f = colormap(cmap);
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const a = alpha * Math.min(1, Math.max(0, heat01[i]));
    const c = f(heat01[i]);
    data.set([
      byte((1 - a) * g[i] + a * c[0]),
      byte((1 - a) * g[i] + a * c[1]),
      byte((1 - a) * g[i] + a * c[2]),
      255,
    ], 4 * i);
  }
  return { width, height, channels: 4, data };
}

/** A horizontal colorbar (width×height) of a colormap, low values on the left. */
export function colorbarRaster(cmap: ColormapName, width = 256, height = 12): RasterImage {
  const row = new Float32Array(width).map((_, x) => x / (width - 1));
  const heat = new Float32Array(width * height);
  for (let y = 0; y < height; y++) heat.set(row, y * width);
  return heatRaster(heat, width, height, cmap);
}
