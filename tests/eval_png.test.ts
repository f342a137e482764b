/** PNG encoder (decoded back with node:zlib), colormaps and heatmap overlays. */
import { inflateSync } from "node:zlib";
import { encodePng, type RasterImage } from "../data/png_encode.ts";
import { crc32 } from "../data/png_format.ts";
import {
  colorbarRaster,
  grayRaster,
  inferno,
  jet,
  normalizeMinMax,
  overlayRaster,
  pngDataUri,
  resizeBilinear,
} from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";

/** Minimal PNG decoder for 8-bit images with filters None/Sub/Up (what a reader must handle). */
function decodePng(png: Uint8Array): RasterImage {
  assertEquals(Array.from(png.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8, width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  for (;;) {
    const len = dv.getUint32(off);
    const type = String.fromCharCode(...png.subarray(off + 4, off + 8));
    const body = png.subarray(off + 8, off + 8 + len);
    assertEquals(
      dv.getUint32(off + 8 + len),
      crc32(png.subarray(off + 4, off + 8 + len)),
      `${type} CRC`,
    );
    if (type === "IHDR") {
      width = dv.getUint32(off + 8);
      height = dv.getUint32(off + 12);
      assertEquals(body[8], 8, "bit depth");
      channels = ({ 0: 1, 4: 2, 2: 3, 6: 4 } as Record<number, number>)[body[9]];
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  const stride = width * channels;
  const data = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const left = x >= channels ? data[y * stride + x - channels] : 0;
      const up = y > 0 ? data[(y - 1) * stride + x] : 0;
      data[y * stride + x] = (v + (f === 1 ? left : f === 2 ? up : 0)) & 0xff;
    }
  }
  return { width, height, channels: channels as 1 | 2 | 3 | 4, data };
}

Deno.test("crc32: standard check value", () => {
  assertEquals(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("encodePng: gray, gray+alpha, RGB and RGBA images decode back exactly, both filters", () => {
  const rng = new Rng(4);
  for (const channels of [1, 2, 3, 4] as const) {
    for (const filter of ["sub", "up"] as const) {
      const img: RasterImage = {
        width: 13,
        height: 7,
        channels,
        data: new Uint8Array(13 * 7 * channels),
      };
      for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(256);
      const png = encodePng(img, { filter });
      // Filter bytes of the first two rows: Sub, Sub; or None, Up.
      const raw = inflateSync(png.subarray(8 + 25 + 8, png.length - 12 - 4));
      assertEquals([raw[0], raw[13 * channels + 1]], filter === "sub" ? [1, 1] : [0, 2]);
      const back = decodePng(png);
      assertEquals([back.width, back.height, back.channels], [13, 7, channels]);
      assertEquals(Array.from(back.data), Array.from(img.data));
    }
  }
  const uri = pngDataUri({ width: 1, height: 1, channels: 1, data: new Uint8Array([200]) });
  assert(uri.startsWith("data:image/png;base64,iVBORw0KGgo"), uri);
  assertThrows(
    () => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }),
    /5 bytes for 2x2x3/,
  );
});

Deno.test("colormaps: jet endpoints and midpoint, inferno monotonic in lightness", () => {
  assertClose(jet(0), [0, 0, 0.5], { atol: 1e-12 });
  assertClose(jet(0.5), [0.5, 1, 0.5], { atol: 1e-12 });
  assertClose(jet(1), [0.5, 0, 0], { atol: 1e-12 });
  assertClose(inferno(0), [0.0015, 0.0005, 0.0139], { atol: 1e-4 }); // matplotlib inferno(0)
  assertClose(inferno(1), [0.9884, 0.9984, 0.6449], { atol: 1e-4 }); // matplotlib inferno(1)
  let prev = -1;
  for (let k = 0; k <= 100; k++) {
    const [r, g, b] = inferno(k / 100);
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    assert(lum > prev, `inferno lightness not increasing at ${k / 100}`);
    prev = lum;
  }
});

Deno.test("heatmaps: resize, normalization and overlay", () => {
  const src = Float32Array.from([0, 1, 2, 3]); // 2×2
  assertEquals(Array.from(resizeBilinear(src, 2, 2, 2, 2)), [0, 1, 2, 3]);
  const up = resizeBilinear(src, 2, 2, 4, 4);
  assertClose([up[0], up[15], up[5]], [0, 3, 0.75], { atol: 1e-6 }); // corners clamp, centre interpolates
  assertEquals(Array.from(normalizeMinMax([2, 4, 3])), [0, 1, 0.5]);
  assertEquals(Array.from(normalizeMinMax([5, 5])), [0, 0]);
  const image = [0, 0.5, 1, 0.25];
  const g = grayRaster(image, 2, 2);
  assertEquals(Array.from(g.data.subarray(0, 8)), [0, 0, 0, 255, 128, 128, 128, 255]);
  // Zero heat keeps the gray pixel; full heat blends 60% of the colormap in.
  const o = overlayRaster(image, [0, 0, 1, 0], 2, 2, { cmap: "jet", alpha: 0.6 });
  assertEquals(Array.from(o.data.subarray(4, 8)), [128, 128, 128, 255]);
  assertEquals(Array.from(o.data.subarray(8, 12)), [Math.round((0.4 + 0.3) * 255), 102, 102, 255]);
  const bar = colorbarRaster("inferno", 16, 2);
  assertEquals([bar.width, bar.height, bar.data.length], [16, 2, 128]);
});
