/**
 * How the GEMM-shaped kernels (conv, matmul, their reductions and transforms)
 * spell the storage type of the operands they read and the outputs they write,
 * following kernels/wgsl.ts's convention for f16 storage: bindings `array<S>`,
 * every load widened with `f32(…)`, f32 arithmetic, one rounding `S(…)` at the
 * store. For f32 storage the spelling is the one these kernels had before f16
 * existed (plain `f32`, no alias, no conversions), so their f32 WGSL, and with
 * it the pipelines and every f32 result, stays byte-identical.
 */
import type { DType } from "../tensor.ts";
import { storagePrelude } from "../wgsl.ts";

export interface StorageWgsl {
  /** Opens the module: `enable f16;` and `alias S = f16;` for f16, nothing for f32. */
  prelude: string;
  /** The element type of a binding of this storage (`S` or `f32`). */
  t: string;
  /** A load widened to f32. */
  ld: (e: string) => string;
  /** An f32 value rounded to the storage type for a store. */
  st: (e: string) => string;
}

const F32: StorageWgsl = { prelude: "", t: "f32", ld: (e) => e, st: (e) => e };
const F16: StorageWgsl = {
  prelude: storagePrelude("f16"),
  t: "S",
  ld: (e) => `f32(${e})`,
  st: (e) => `S(${e})`,
};

/** The WGSL spelling of storage type d (see the file header). */
export const storageWgsl = (d: DType): StorageWgsl => (d === "f16" ? F16 : F32);

/**
 * The prelude of a module binding several storage types: `enable f16;` once if
 * any is f16, and `alias S = f16;` (bindings of f32 scratch are spelled `f32`).
 */
export const preludeOf = (...ds: DType[]): string => (ds.includes("f16") ? F16.prelude : "");
