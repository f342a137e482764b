/**
 * The one error type of the image decoders (PNG, JPEG, format sniffing): whatever a hostile or
 * damaged file does, decoding either returns an image of the size its header declares or throws
 * this. Also the pixel cap every decoder checks before it allocates.
 */

/** A file that is not a decodable image (corrupt, truncated, unsupported, oversized). */
export class ImageDecodeError extends Error {
  override name = "ImageDecodeError";
}

/**
 * The most pixels a decoder accepts (64 MP: a radiograph cache has no use for more; larger
 * headers are refused before any pixel buffer is allocated).
 */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/** Throws unless width × height is a positive size within MAX_IMAGE_PIXELS. */
export function checkImageSize(width: number, height: number, format: string): void {
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(`corrupt ${format}: size ${width}x${height}`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ImageDecodeError(
      `${format} too large: ${width}x${height} is ${
        ((width * height) / 1e6).toFixed(0)
      } megapixels, over the ${MAX_IMAGE_PIXELS / (1024 * 1024)} MP limit`,
    );
  }
}
