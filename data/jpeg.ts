/**
 * JPEG decoding to 8-bit gray, and gray JPEG encoding. Decoding uses imagescript's WebAssembly
 * JPEG codec (baseline and progressive; ~1 ms for 128², 4× faster than jpeg-js on this box),
 * loaded directly so no native addon / FFI permission is needed; jpeg-js (pure JS, also reads
 * progressive) is the fallback for anything the wasm codec rejects, and for sandboxes where the
 * wasm codec cannot load (see wasmCodec). Encoding: jpeg_encode.ts.
 */
// Pinned inline: deno.json (not this layer's file) has no import-map entries for these.
// deno-lint-ignore no-import-prefix
import jpegJs from "npm:jpeg-js@0.4.4";
import type { GrayImage } from "./gray_image.ts";
import { encodeJpegGrayBaseline } from "./jpeg_encode.ts";
import { checkImageSize, ImageDecodeError, MAX_IMAGE_PIXELS } from "./image_error.ts";

/** True when the bytes start with the JPEG SOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** A JPEG must end with EOI (FFD9), allowing some trailing padding; otherwise it was cut short. */
function hasEndMarker(bytes: Uint8Array): boolean {
  for (let i = bytes.length - 2; i >= Math.max(0, bytes.length - 1024); i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return true;
  }
  return false;
}

/**
 * The frame size a JPEG declares: walks the marker segments from SOI to the first SOFn (before
 * any decoder runs, so a header claiming 11000×11000 is refused before anything is allocated).
 * A frame whose sample precision is not 8 bits (12-bit JPEG) is refused.
 */
export function jpegFrameSize(bytes: Uint8Array): { width: number; height: number } {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) {
      throw new ImageDecodeError(`corrupt JPEG: no marker at byte ${pos}`);
    }
    const marker = bytes[pos + 1];
    if (marker === 0xff) { // fill byte
      pos++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // EOI or SOS before any frame header
    const len = (bytes[pos + 2] << 8) | bytes[pos + 3];
    if (len < 2) throw new ImageDecodeError(`corrupt JPEG: segment length ${len} at byte ${pos}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (isSof) {
      if (len < 8 || pos + 9 > bytes.length) {
        throw new ImageDecodeError(`truncated JPEG: frame header at byte ${pos}`);
      }
      // Both decoders read 8-bit samples only: a 12- or 16-bit frame (DICOM exports) would
      // come out as garbage, so it is refused here.
      const precision = bytes[pos + 4];
      if (precision !== 8) {
        throw new ImageDecodeError(
          `unsupported JPEG: ${precision}-bit samples (frame precision ${precision}); only ` +
            `8-bit JPEGs are read: convert the image to 8-bit JPEG or to PNG (16-bit PNG keeps ` +
            `12-bit values)`,
        );
      }
      const height = (bytes[pos + 5] << 8) | bytes[pos + 6];
      const width = (bytes[pos + 7] << 8) | bytes[pos + 8];
      checkImageSize(width, height, "JPEG");
      return { width, height };
    }
    pos += 2 + len;
  }
  throw new ImageDecodeError("corrupt JPEG: no frame header (SOF) before the scan");
}

function toGray(src: ArrayLike<number>, width: number, height: number, stride: number) {
  const out = new Uint8Array(width * height);
  if (stride === 1) {
    for (let i = 0; i < out.length; i++) out[i] = src[i];
    return out;
  }
  for (let i = 0, o = 0; i < out.length; i++, o += stride) {
    out[i] = Math.min(255, Math.round(0.299 * src[o] + 0.587 * src[o + 1] + 0.114 * src[o + 2]));
  }
  return out;
}

interface WasmCodec {
  decode(b: Uint8Array): { width: number; height: number; format: number; buffer: Uint8Array };
}
interface WasmModule {
  init(): Promise<WasmCodec>;
}
let codec: WasmCodec | null = null;
/** The wasm module, or false once it proved unusable in this sandbox (then jpeg-js decodes). */
let wasmModule: WasmModule | false | null = null;

/**
 * Loads imagescript's wasm JPEG codec on first use. It reads IMAGESCRIPT_WASM_SIMD when imported
 * and its .wasm file from Deno's npm cache, so under a narrowed --allow-env / --allow-read it may
 * not load: then (without prompting for the variable) every JPEG goes to jpeg-js, whose pixels
 * are within 2 gray levels of the wasm codec's.
 */
async function wasmCodec(): Promise<WasmCodec | null> {
  if (wasmModule === false) return null;
  try {
    if (wasmModule === null) {
      const env = await Deno.permissions.query({ name: "env", variable: "IMAGESCRIPT_WASM_SIMD" });
      if (env.state !== "granted") {
        wasmModule = false;
        return null;
      }
      // deno-lint-ignore no-import-prefix
      wasmModule = (await import("npm:imagescript@1.3.1/wasm/node/jpeg.js")).default as WasmModule;
    }
    return codec ??= await wasmModule.init();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      throw e;
    }
    wasmModule = false;
    return null;
  }
}

/** Decodes with the wasm codec; null when it cannot (CMYK, or it failed). */
async function decodeWasm(
  bytes: Uint8Array,
  size: { width: number; height: number },
): Promise<GrayImage | null> {
  const wasm = await wasmCodec();
  if (!wasm) return null;
  let fb;
  try {
    fb = wasm.decode(bytes);
  } catch {
    codec = null; // a failed decode may leave the instance in a bad state: start afresh
    return null;
  }
  if (fb.width !== size.width || fb.height !== size.height) return null;
  const n = fb.width * fb.height;
  if (fb.format === 0 && fb.buffer.length >= n) {
    return { width: fb.width, height: fb.height, data: toGray(fb.buffer, fb.width, fb.height, 1) };
  }
  if (fb.format === 1 && fb.buffer.length >= 3 * n) {
    return { width: fb.width, height: fb.height, data: toGray(fb.buffer, fb.width, fb.height, 3) };
  }
  return null;
}

/** Checks the SOI and EOI markers and the declared frame size (within the pixel cap). */
function checkJpeg(bytes: Uint8Array): { width: number; height: number } {
  if (!isJpeg(bytes)) throw new ImageDecodeError("not a JPEG (no SOI marker)");
  if (!hasEndMarker(bytes)) throw new ImageDecodeError("truncated JPEG: no EOI marker at the end");
  return jpegFrameSize(bytes);
}

/**
 * Decodes a JPEG (baseline or progressive, gray or colour) to 8-bit gray of the size its frame
 * header declares; anything else throws ImageDecodeError.
 */
export async function decodeJpegGray(bytes: Uint8Array): Promise<GrayImage> {
  const size = checkJpeg(bytes);
  const img = await decodeWasm(bytes, size);
  return img ?? decodeJsChecked(bytes, size);
}

/** Synchronous pure-JS decode (jpeg-js), with the same checks. */
export function decodeJpegGraySync(bytes: Uint8Array): GrayImage {
  return decodeJsChecked(bytes, checkJpeg(bytes));
}

function decodeJsChecked(bytes: Uint8Array, size: { width: number; height: number }): GrayImage {
  let r;
  try {
    r = jpegJs.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    throw new ImageDecodeError(`corrupt JPEG: ${(e as Error)?.message ?? e}`);
  }
  if (
    r.width !== size.width || r.height !== size.height ||
    r.data.length < 3 * size.width * size.height
  ) {
    throw new ImageDecodeError(
      `corrupt JPEG: decoded ${r.width}x${r.height}, header says ${size.width}x${size.height}`,
    );
  }
  return { width: r.width, height: r.height, data: toGray(r.data, r.width, r.height, 3) };
}

/** Encodes a gray image as a baseline JPEG of the given quality (1–100). */
export function encodeJpegGray(img: GrayImage, quality = 90): Uint8Array {
  return encodeJpegGrayBaseline(img, quality);
}
