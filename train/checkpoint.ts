/**
 * Training checkpoints: one safetensors file holding every tensor a run needs
 * to continue exactly (modules' state, optimizer state, the MoCo queue) and a
 * JSON `__metadata__` entry with the counters (step, epoch, queue pointer,
 * optimizer step, seed, config). Written atomically (temp file + rename), so
 * a run killed mid-write keeps the previous checkpoint.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import type { Module } from "../model/nn.ts";
import {
  readSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type TensorData,
  writeSafetensors,
} from "../model/safetensors.ts";
import { readState } from "../model/state.ts";
import { asDtype, checkFinite, NonFiniteError } from "../model/tensor_check.ts";
import { UserError } from "../util/user_error.ts";
import { DamagedCheckpointError } from "./run_errors.ts";

export { NonFiniteError };

export const CHECKPOINT_FORMAT = "moco-cxr-ts/1";

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
  await writeSafetensors(path, all, {
    format: CHECKPOINT_FORMAT,
    meta: JSON.stringify(parts.meta),
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
 * a named tensor saved in an earlier shape); returns the meta.
 */
export async function loadCheckpoint(
  path: string,
  B: Backend,
  parts: Omit<CheckpointParts, "meta">,
  older: Record<string, OlderTensor> = {},
): Promise<Record<string, unknown>> {
  const file = await readCheckpointFile(path);
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new UserError(
      `${path} is not a checkpoint of this project (format "${file.metadata.format}")`,
    );
  }
  const meta = JSON.parse(file.metadata.meta ?? "{}");
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  const take = (name: string, shape: readonly number[]): TensorData => {
    const t = file.tensors.get(name);
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
  for (const w of writes) w();
  return meta;
}

/** Reads a checkpoint file; a damaged one (cut short, overwritten) throws DamagedCheckpointError. */
async function readCheckpointFile(path: string): Promise<SafetensorsFile> {
  try {
    return await readSafetensors(path);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    throw new DamagedCheckpointError(path, e.message.replace(`${path}: `, ""));
  }
}
