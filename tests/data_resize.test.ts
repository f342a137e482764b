/** Anti-aliased resize and centre crop against a naive 2-D triangle-filter reference. */
import { assertClose, assertEquals } from "./helpers.ts";
import {
  type GrayImage,
  resampleRect,
  resizeAndCenterCrop,
  resizeShorterSide,
} from "../data/gray_image.ts";
import { Rng } from "../util/rng.ts";

function randomImage(w: number, h: number, seed: number): GrayImage {
  const rng = new Rng(seed);
  return { width: w, height: h, data: new Uint8Array(w * h).map(() => rng.int(256)) };
}

/**
 * Reference: every output pixel is the triangle-weighted mean over ALL source pixels (radius =
 * max(1, scale) in source pixels, per axis), computed directly in 2-D in float64.
 */
function reference(
  img: GrayImage,
  x0: number,
  y0: number,
  w: number,
  h: number,
  ow: number,
  oh: number,
): number[] {
  const sx = w / ow, sy = h / oh, rx = Math.max(1, sx), ry = Math.max(1, sy);
  const out: number[] = [];
  for (let j = 0; j < oh; j++) {
    for (let i = 0; i < ow; i++) {
      const cx = x0 + (i + 0.5) * sx, cy = y0 + (j + 0.5) * sy;
      let acc = 0, norm = 0;
      for (let y = 0; y < img.height; y++) {
        const wy = Math.max(0, 1 - Math.abs(y + 0.5 - cy) / ry);
        if (wy === 0) continue;
        for (let x = 0; x < img.width; x++) {
          const wx = Math.max(0, 1 - Math.abs(x + 0.5 - cx) / rx);
          acc += wx * wy * img.data[y * img.width + x];
          norm += wx * wy;
        }
      }
      out.push(acc / norm);
    }
  }
  return out;
}

Deno.test("resize: same size is the identity", () => {
  const img = randomImage(17, 11, 1);
  assertEquals(Array.from(resampleRect(img, 0, 0, 17, 11, 17, 11).data), Array.from(img.data));
});

Deno.test("resize: a constant image stays constant at any scale", () => {
  const img = { width: 50, height: 31, data: new Uint8Array(50 * 31).fill(77) };
  for (const s of [7, 16, 64, 120]) {
    const out = resizeAndCenterCrop(img, s);
    assertEquals(out.data.every((v) => v === 77), true, `size ${s}`);
  }
});

Deno.test("resize: downscale, upscale and fractional windows match the 2-D reference", () => {
  const img = randomImage(37, 23, 2);
  const cases: [number, number, number, number, number, number][] = [
    [0, 0, 37, 23, 10, 9], // downscale ~3.7× / 2.6×
    [0, 0, 37, 23, 80, 50], // upscale
    [2.5, 1.25, 20, 20, 7, 7], // fractional window
  ];
  for (const c of cases) {
    const got = resampleRect(img, ...c).data;
    assertClose(got, reference(img, ...c), { atol: 0.51, rtol: 0, label: JSON.stringify(c) });
  }
});

Deno.test("resize: halving uses the [1,3,3,1]/8 triangle weights inside the image", () => {
  const img = randomImage(16, 16, 3);
  const out = resampleRect(img, 0, 0, 16, 16, 8, 8);
  const p = (x: number, y: number) => img.data[y * 16 + x];
  const k = [1, 3, 3, 1];
  for (let j = 1; j < 7; j++) {
    for (let i = 1; i < 7; i++) {
      let acc = 0;
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) acc += k[a] * k[b] * p(2 * i - 1 + b, 2 * j - 1 + a);
      }
      assertEquals(out.data[j * 8 + i], Math.round(acc / 64), `(${i},${j})`);
    }
  }
});

Deno.test("resize: shorter side to S then centre crop keeps the centre square", () => {
  const img = randomImage(60, 40, 4);
  const out = resizeAndCenterCrop(img, 20);
  assertEquals([out.width, out.height], [20, 20]);
  assertClose(out.data, reference(img, 10, 0, 40, 40, 20, 20), { atol: 0.51, rtol: 0 });
  const tall = resizeShorterSide({ width: 40, height: 60, data: img.data }, 20);
  assertEquals([tall.width, tall.height], [20, 30]);
});
