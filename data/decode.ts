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

/**
 * The largest image file read (1 GiB: a 64 MP image, MAX_IMAGE_PIXELS, stored uncompressed in
 * 16-bit RGBA is half that). A larger file is refused from its size, before it is read.
 */
export const MAX_IMAGE_FILE_BYTES = 1024 * 1024 * 1024;

/**
 * Reads and decodes an image file; errors name the file. Only a regular file is read (a named
 * pipe would block the read forever, a device never end it) and only up to
 * MAX_IMAGE_FILE_BYTES: checked on its stat, before a byte is read.
 */
export async function readImageGray(path: string): Promise<GrayImage> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      throw new ImageDecodeError(
        `${path}: not a regular file (${
          info.isDirectory ? "a folder" : "a pipe, socket or device"
        })`,
      );
    }
    if (info.size > MAX_IMAGE_FILE_BYTES) {
      throw new ImageDecodeError(
        `${path}: ${(info.size / 2 ** 20).toFixed(0)} MiB, over the ${
          MAX_IMAGE_FILE_BYTES / 2 ** 20
        } MiB limit for an image file`,
      );
    }
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new Error(`${path}: unreadable (${(e as Error).message})`);
  }
  try {
    return await decodeImageGray(bytes);
  } catch (e) {
    throw new ImageDecodeError(`${path}: ${(e as Error).message}`);
  }
}
