/**
 * The safetensors format, read and written without dependencies:
 *   [u64 little-endian header length n][n bytes of JSON header][raw tensor bytes]
 * header = { name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str} },
 * offsets relative to the start of the data section, tensors little-endian row-major.
 *
 * Everything in a file is untrusted: the header length, JSON, dtypes, shapes
 * and offsets are all validated against the file size before any tensor is
 * read, so a truncated or malformed file gives a clear error naming the file
 * and the tensor, never an out-of-bounds read or an allocation larger than the
 * file. F16/BF16/F64 are widened/narrowed to f32 on read; I64 stays BigInt64.
 * (Assumes a little-endian host, as every WebGPU platform is.)
 */
import { writeFileAtomic } from "../util/fs.ts";

/** A decoded tensor: floats as f32, integer counters as i64. */
export interface TensorData {
  dtype: "F32" | "I64";
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorData>;
  metadata: Record<string, string>;
  /** Each tensor's dtype in the file (F16, BF16 and F64 are F32 in `tensors`). */
  fileDtypes: Map<string, string>;
  /** Where the data section starts in the file (8 + the header length). */
  dataStart: number;
}

/** A file that is not valid safetensors (truncated, malformed header, bad offsets). */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 };
/** The largest finite f32; F64 values beyond it are refused rather than read as ±Inf. */
const F32_MAX = 3.4028234663852886e38;
/** The reference implementation's limit: larger headers are rejected as malformed. */
export const MAX_HEADER_BYTES = 100_000_000;

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(
  dtype: string,
  bytes: Uint8Array,
  fail: (msg: string) => never,
): Float32Array | BigInt64Array {
  const copy = bytes.slice(); // aligned, owned
  switch (dtype) {
    case "F32":
      return new Float32Array(copy.buffer);
    case "I64":
      return new BigInt64Array(copy.buffer);
    case "F64": {
      const src = new Float64Array(copy.buffer), out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        if (Number.isFinite(v) && Math.abs(v) > F32_MAX && !Number.isFinite(Math.fround(v))) {
          fail(
            `holds ${v} at ${i}, outside the f32 range (±${F32_MAX.toPrecision(8)}) it is read ` +
              `into; rescale or store it as F32`,
          );
        }
        out[i] = v;
      }
      return out;
    }
    case "F16":
      return Float32Array.from(new Uint16Array(copy.buffer), f16ToF32);
    case "BF16": {
      const u = new Uint16Array(copy.buffer), out = new Uint32Array(u.length);
      for (let i = 0; i < u.length; i++) out[i] = u[i] << 16;
      return new Float32Array(out.buffer);
    }
  }
  throw new Error(`unknown dtype ${dtype}`);
}

/** Parses a whole safetensors file held in memory; `what` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, what = "safetensors file"): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${what}: ${msg}`);
  };
  if (bytes.length < 8) fail(`too short (${bytes.length} bytes) for the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(n64);
  if (n > bytes.length - 8) {
    fail(
      `header length ${n} exceeds the file size (${bytes.length} bytes): truncated or not safetensors`,
    );
  }
  let header: unknown;
  try {
    // Shapes and offsets are integers (usize) in the reference library: a number written as
    // "4.0" or "4e0" is kept as its source text here, so the integer checks below refuse it.
    const integral = (_k: string, v: unknown, c?: { source?: string }) =>
      typeof v === "number" && c?.source !== undefined && !/^-?\d+$/.test(c.source) ? c.source : v;
    header = (JSON.parse as (text: string, reviver: typeof integral) => unknown)(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)),
      integral,
    );
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const dataStart = 8 + n, dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; b: number; e: number }[] = [];
  const tensors = new Map<string, TensorData>();
  const fileDtypes = new Map<string, string>();
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof info !== "object" || info === null || Array.isArray(info)) {
        fail("__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== "object" || t === null) fail(`tensor "${name}": entry is not an object`);
    if (typeof t.dtype !== "string" || !(t.dtype in DTYPE_BYTES)) {
      fail(
        `tensor "${name}": unsupported dtype ${JSON.stringify(t.dtype)} (F32, F16, BF16, F64, I64)`,
      );
    }
    const dtype = t.dtype as string;
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(
        `tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`,
      );
    }
    const shape = t.shape as number[];
    const off = t.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((v) => Number.isSafeInteger(v) && v >= 0)
    ) {
      fail(
        `tensor "${name}": data_offsets ${JSON.stringify(off)} must be two non-negative integers`,
      );
    }
    const [b, e] = off as number[];
    if (b > e || e > dataLen) {
      fail(
        `tensor "${name}": data_offsets [${b}, ${e}] out of range (data section is ${dataLen} bytes)`,
      );
    }
    // Element count from the shape.
    // Once the product passes the data section's byte count it is not computed further (it
    // could pass 2^53), and no exact size is claimed.
    let count = 1, huge = false;
    for (const d of shape) {
      if (d === 0) {
        [count, huge] = [0, false];
        break;
      }
      if (!huge && (count *= d) > dataLen) huge = true;
    }
    if (huge) {
      fail(
        `tensor "${name}": shape [${shape}] of ${dtype} exceeds the data section (${dataLen} ` +
          `bytes; data_offsets span ${e - b})`,
      );
    }
    if (count * DTYPE_BYTES[dtype] !== e - b) {
      fail(
        `tensor "${name}": shape [${shape}] of ${dtype} needs ${
          count * DTYPE_BYTES[dtype]
        } bytes ` +
          `but data_offsets span ${e - b}`,
      );
    }
    spans.push({ name, b, e });
    fileDtypes.set(name, dtype);
    tensors.set(name, { dtype: dtype === "I64" ? "I64" : "F32", shape, data: new Float32Array(0) });
  }
  // As the reference library: the tensors tile the data section exactly, in offset order — no
  // overlap, no gap, nothing after the last (a duplicated JSON key, whose dropped copy leaves a
  // hole, is refused here too).
  spans.sort((x, y) => x.b - y.b || x.e - y.e);
  let end = 0;
  for (let i = 0; i < spans.length; i++) {
    const { name, b } = spans[i];
    if (b < end) {
      fail(`tensors "${spans[i - 1].name}" and "${name}" overlap in the data section`);
    }
    if (b > end) {
      fail(
        `bytes ${end}..${b} of the data section belong to no tensor (before "${name}"; a gap, ` +
          `or a tensor named twice in the header)`,
      );
    }
    end = spans[i].e;
  }
  if (end !== dataLen) {
    fail(
      `the data section has ${dataLen - end} bytes after its last tensor (${dataLen} bytes, ` +
        `tensors end at ${end})`,
    );
  }
  for (const { name, b, e } of spans) {
    const dtype = fileDtypes.get(name)!;
    tensors.get(name)!.data = decode(
      dtype,
      bytes.subarray(dataStart + b, dataStart + e),
      (msg) => fail(`tensor "${name}": ${msg}`),
    );
  }
  return { tensors, metadata, fileDtypes, dataStart };
}

/** Serialises tensors (in the given order, 8-byte aligned) with optional string metadata. */
export function serializeSafetensors(
  tensors: Iterable<[string, TensorData]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new Error(`"__metadata__" is not a valid tensor name`);
    if (Object.hasOwn(header, name)) throw new Error(`tensor "${name}" is given twice`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(`tensor "${name}": ${t.data.length} values for shape [${t.shape}]`);
    }
    if ((t.dtype === "I64") !== (t.data instanceof BigInt64Array)) {
      throw new Error(`tensor "${name}": data does not match dtype ${t.dtype}`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    parts.push(bytes);
    offset += bytes.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20); // 8-aligned data section
  head.set(raw);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const b of parts) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await Deno.readFile(path), path);
}

/** Writes atomically: a temp file next to the target, then a rename. */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, TensorData]>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
