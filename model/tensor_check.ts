/**
 * Checks on tensors coming from or going to files: every value finite, and the dtype the model
 * entry expects. Errors name the file and the tensor, so a corrupt backbone, ImageNet file or
 * checkpoint is refused on load (and a diverged model is never exported).
 */
import { UserError } from "../util/user_error.ts";
import type { TensorData } from "./safetensors.ts";

/** A tensor holding NaN or ±Inf; `tensor` is its name in the file. */
export class NonFiniteError extends UserError {
  constructor(readonly tensor: string, readonly where: string, detail: string) {
    super(`${where}: tensor "${tensor}" holds non-finite values (${detail})`);
  }
}

/** A tensor whose dtype or values do not fit the model entry it is loaded into. */
export class TensorDtypeError extends UserError {
  constructor(readonly tensor: string, readonly where: string, detail: string) {
    super(`${where}: tensor "${tensor}" ${detail}`);
  }
}

/** Throws NonFiniteError unless every value of a float tensor is finite. */
export function checkFinite(name: string, t: TensorData, where: string): void {
  if (t.dtype !== "F32") return;
  const d = t.data as Float32Array;
  let bad = 0, first = -1;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      if (bad++ === 0) first = i;
    }
  }
  if (bad) {
    throw new NonFiniteError(name, where, `${bad} of ${d.length}, first ${d[first]} at ${first}`);
  }
}

/** A BN running variance below zero (its features would be NaN) is refused by name. */
function checkVariance(name: string, d: Float32Array, where: string): void {
  const first = d.findIndex((v) => v < 0);
  if (first < 0) return;
  const bad = d.reduce((n, v) => n + (v < 0 ? 1 : 0), 0);
  throw new TensorDtypeError(
    name,
    where,
    `holds negative variances (${bad} of ${d.length}, first ${d[first]} at ${first}); a BN ` +
      `running_var is never below zero, so the file is corrupt: convert or export it again`,
  );
}

/**
 * The tensor's values as the dtype the model expects: F32 for weights (an I64 file tensor is
 * refused), I64 for counters (an F32 one is taken when every value is a whole number). A BN
 * `running_var` holding a negative value is refused (TensorDtypeError).
 */
export function asDtype(
  name: string,
  t: TensorData,
  want: "F32" | "I64",
  where: string,
): Float32Array | BigInt64Array {
  if (t.dtype === want) {
    checkFinite(name, t, where);
    if (/(^|\.)running_var$/.test(name)) checkVariance(name, t.data as Float32Array, where);
    return t.data;
  }
  if (want === "F32") {
    throw new TensorDtypeError(name, where, "is an integer tensor (I64) where weights are floats");
  }
  const src = t.data as Float32Array;
  const out = new BigInt64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    if (!Number.isSafeInteger(src[i])) {
      throw new TensorDtypeError(
        name,
        where,
        `is a counter stored as floats holding ${src[i]} at ${i}; expected whole numbers`,
      );
    }
    out[i] = BigInt(src[i]);
  }
  return out;
}
