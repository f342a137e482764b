/** Images inlined in the report: a PNG (data/png_encode.ts) as a data: URI. */
import { encodePng, type RasterImage } from "../data/png_encode.ts";

/** PNG as a data: URI for an <img src>. */
export function pngDataUri(img: RasterImage): string {
  const bytes = encodePng(img);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(bin)}`;
}
