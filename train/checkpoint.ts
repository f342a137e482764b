/**
 * Training checkpoints: one safetensors file holding every tensor a run needs
 * to continue exactly (modules' state, optimizer state, the MoCo queue) and a
 * JSON `__metadata__` entry with the counters (step, epoch, queue pointer,
 * optimizer step, seed, config). Written atomically and durably (temp file, flushed, renamed,
 * directory flushed: util/fs.ts), so a run killed mid-write, or a power loss, keeps the previous
 * checkpoint; temp files of a killed save are removed by the next save.
 *
 * Integrity: `__metadata__.data_sha256` is the SHA-256 of the data section (every tensor's bytes),
 * checked on load when present (checkpoints written before it still load). Every tensor must be
 * F32 or I64 (a checkpoint rewritten in F16 would resume, but not exactly) and one the run has.
 * Each refusal is a DamagedCheckpointError naming the file and the tensor or field.
 */
import { createHash } from "node:crypto";
import type { Backend, BTensor } from "../model/backend.ts";
import type { Module } from "../model/nn.ts";
import {
  parseSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type TensorData,
  writeSafetensors,
} from "../model/safetensors.ts";
import { readState } from "../model/state.ts";
import { asDtype, checkFinite, NonFiniteError } from "../model/tensor_check.ts";
import { UserError } from "../util/user_error.ts";
import { removeStaleTemps } from "../util/fs.ts";
import { DamagedCheckpointError } from "./run_errors.ts";

export { NonFiniteError };

export const CHECKPOINT_FORMAT = "moco-cxr-ts/1";
/** The `__metadata__` key of the data section's SHA-256 (hex). */
export const DATA_HASH_KEY = "data_sha256";

export interface CheckpointParts {
  modules: Record<string, Module>;
  tensors: Record<string, BTensor>;
  meta: Record<string, unknown>;
}

export async function saveCheckpoint(
  path: string,
  B: Backend,
  parts: CheckpointParts,
): Promise<void> {
  const all: [string, TensorData][] = [];
  for (const [prefix, m] of Object.entries(parts.modules)) {
    for (const [name, t] of await readState(m)) all.push([`${prefix}.${name}`, t]);
  }
  const named = Object.entries(parts.tensors);
  const values = await B.readMany(named.map(([, t]) => t));
  named.forEach(([name, t], i) =>
    all.push([name, { dtype: "F32", shape: [...t.shape], data: values[i] }])
  );
  // A driver may lose a NaN on the way to the loss (max(NaN, x) = x is allowed), so the
  // weights themselves are checked before they can replace a good checkpoint (NonFiniteError:
  // a checkpoint that would hold NaN or infinite values is refused, the previous one stays).
  for (const [name, t] of all) checkFinite(name, t, path);
  // The data section is the tensors' bytes in this order, back to back (serializeSafetensors).
  const hash = createHash("sha256");
  for (const [, t] of all) {
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  await removeStaleTemps(path);
  await writeSafetensors(path, all, {
    format: CHECKPOINT_FORMAT,
    meta: JSON.stringify(parts.meta),
    [DATA_HASH_KEY]: hash.digest("hex"),
  });
}

/**
 * How an older checkpoint's tensor becomes this run's: called with the saved values when the
 * saved shape is `from`, and the checkpoint's meta; returns the values in the run's shape.
 */
export interface OlderTensor {
  from: readonly number[];
  convert: (saved: Float32Array, meta: Record<string, unknown>) => Float32Array;
}

/**
 * Loads a checkpoint into existing modules and tensors (shapes must match, or `older` converts
 * a named tensor saved in an earlier shape); returns the meta. `checkMeta` sees the meta before
 * any tensor is taken, and throws to refuse it (nothing is written into the run then).
 */
export async function loadCheckpoint(
  path: string,
  B: Backend,
  parts: Omit<CheckpointParts, "meta">,
  older: Record<string, OlderTensor> = {},
  checkMeta?: (meta: Record<string, unknown>) => void,
): Promise<Record<string, unknown>> {
  const { file, meta } = await readCheckpointFile(path);
  checkMeta?.(meta);
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  const unused = new Set(file.tensors.keys());
  const take = (name: string, shape: readonly number[]): TensorData => {
    const t = file.tensors.get(name);
    unused.delete(name);
    if (!t) throw new UserError(`${path}: checkpoint lacks "${name}" (different configuration?)`);
    const o = older[name];
    if (o && !sameShape(t.shape, shape) && sameShape(t.shape, o.from)) {
      const saved = asDtype(name, t, "F32", path) as Float32Array;
      return { dtype: "F32", shape: [...shape], data: o.convert(saved, meta) };
    }
    if (!sameShape(t.shape, shape)) {
      throw new UserError(
        `${path}: "${name}" has shape [${t.shape}], this run expects [${shape}] (different backbone or settings?)`,
      );
    }
    return t;
  };
  // Every tensor is checked (shape, dtype, finite) before any is written into the run.
  const writes: (() => void)[] = [];
  for (const [prefix, m] of Object.entries(parts.modules)) {
    for (const e of m.stateDict()) {
      const name = `${prefix}.${e.name}`;
      const data = asDtype(name, take(name, e.shape), e.dtype, path);
      writes.push(() => e.write(data));
    }
  }
  for (const [name, t] of Object.entries(parts.tensors)) {
    const data = asDtype(name, take(name, t.shape), "F32", path) as Float32Array;
    writes.push(() => B.write(t, data));
  }
  if (unused.size) {
    const names = [...unused];
    throw new DamagedCheckpointError(
      path,
      `it holds ${names.length} tensor${names.length === 1 ? "" : "s"} this run does not have: ${
        names.slice(0, 3).map((n) => `"${n}"`).join(", ")
      }${names.length > 3 ? ", …" : ""}`,
    );
  }
  for (const w of writes) w();
  return meta;
}

/**
 * Reads a checkpoint file and its meta. A damaged one (cut short, overwritten, its data changed
 * since it was saved, a tensor in another dtype, meta that is not a JSON object) throws
 * DamagedCheckpointError; another project's file, UserError.
 */
async function readCheckpointFile(
  path: string,
): Promise<{ file: SafetensorsFile; meta: Record<string, unknown> }> {
  const bytes = await Deno.readFile(path);
  let file: SafetensorsFile;
  try {
    file = parseSafetensors(bytes, path);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    throw new DamagedCheckpointError(path, e.message.replace(`${path}: `, ""));
  }
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new UserError(
      `${path} is not a checkpoint of this project (format "${file.metadata.format}")`,
    );
  }
  const recorded = file.metadata[DATA_HASH_KEY];
  if (recorded !== undefined) {
    const actual = createHash("sha256").update(bytes.subarray(file.dataStart)).digest("hex");
    if (actual !== recorded) {
      throw new DamagedCheckpointError(
        path,
        `its tensors' bytes do not match the SHA-256 recorded in __metadata__.${DATA_HASH_KEY}: ` +
          `changed or corrupted since it was saved`,
      );
    }
  }
  for (const [name, dtype] of file.fileDtypes) {
    if (dtype !== "F32" && dtype !== "I64") {
      throw new DamagedCheckpointError(
        path,
        `tensor "${name}" is ${dtype}; a checkpoint holds F32 and I64 only (rewritten by ` +
          `another tool?), and a converted one would not resume exactly`,
      );
    }
  }
  let meta: unknown;
  try {
    meta = JSON.parse(file.metadata.meta ?? "{}");
  } catch (e) {
    throw new DamagedCheckpointError(
      path,
      `__metadata__.meta is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    const what = meta === null ? "null" : Array.isArray(meta) ? "a list" : typeof meta;
    throw new DamagedCheckpointError(path, `__metadata__.meta is ${what}, not a JSON object`);
  }
  return { file, meta: meta as Record<string, unknown> };
}
