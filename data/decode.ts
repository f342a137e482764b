/** Format sniffing and file reading: any supported image file → 8-bit gray. */
import { decodePngGray } from "./png_decode.ts";
import { isPng } from "./png_format.ts";
import { decodeJpegGray, isJpeg } from "./jpeg.ts";
import type { GrayImage } from "./gray_image.ts";
import { ImageDecodeError } from "./image_error.ts";

/** File extensions the loaders treat as images. */
export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

export function isImagePath(path: string): boolean {
  const p = path.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => p.endsWith(e));
}

/** Decodes PNG or JPEG bytes (detected by content, not name) to 8-bit gray; ImageDecodeError. */
export async function decodeImageGray(bytes: Uint8Array): Promise<GrayImage> {
  if (isPng(bytes)) return decodePngGray(bytes);
  if (isJpeg(bytes)) return await decodeJpegGray(bytes);
  if (bytes.length === 0) throw new ImageDecodeError("empty file");
  throw new ImageDecodeError("unknown image format (expected PNG or JPEG)");
}

/** Reads and decodes an image file; errors name the file. */
export async function readImageGray(path: string): Promise<GrayImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${path}: unreadable (${(e as Error).message})`);
  }
  try {
    return await decodeImageGray(bytes);
  } catch (e) {
    throw new ImageDecodeError(`${path}: ${(e as Error).message}`);
  }
}
