/**
 * Training checkpoints: one safetensors file holding every tensor a run needs
 * to continue exactly (modules' state, optimizer state, the MoCo queue) and a
 * JSON `__metadata__` entry with the counters (step, epoch, queue pointer,
 * optimizer step, seed, config). Written atomically (temp file + rename), so
 * a run killed mid-write keeps the previous checkpoint.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import type { Module } from "../model/nn.ts";
import { readSafetensors, type TensorData, writeSafetensors } from "../model/safetensors.ts";
import { readState } from "../model/state.ts";
import { UserError } from "../util/cli.ts";

export const CHECKPOINT_FORMAT = "moco-cxr-ts/1";

export interface CheckpointParts {
  modules: Record<string, Module>;
  tensors: Record<string, BTensor>;
  meta: Record<string, unknown>;
}

/** A checkpoint that would hold NaN or infinite values is refused (the previous one stays). */
export class NonFiniteError extends Error {
  constructor(readonly tensor: string) {
    super(`non-finite values in ${tensor}`);
  }
}

function checkFinite(name: string, t: TensorData): void {
  if (t.dtype !== "F32") return;
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) throw new NonFiniteError(name);
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
  for (const [name, t] of Object.entries(parts.tensors)) {
    all.push([name, { dtype: "F32", shape: [...t.shape], data: await B.read(t) }]);
  }
  // A driver may lose a NaN on the way to the loss (max(NaN, x) = x is allowed), so the
  // weights themselves are checked before they can replace a good checkpoint.
  for (const [name, t] of all) checkFinite(name, t);
  await writeSafetensors(path, all, {
    format: CHECKPOINT_FORMAT,
    meta: JSON.stringify(parts.meta),
  });
}

/** Loads a checkpoint into existing modules and tensors (shapes must match); returns the meta. */
export async function loadCheckpoint(
  path: string,
  B: Backend,
  parts: Omit<CheckpointParts, "meta">,
): Promise<Record<string, unknown>> {
  const file = await readSafetensors(path);
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new UserError(
      `${path} is not a checkpoint of this project (format "${file.metadata.format}")`,
    );
  }
  const take = (name: string, shape: readonly number[]): TensorData => {
    const t = file.tensors.get(name);
    if (!t) throw new UserError(`${path}: checkpoint lacks "${name}" (different configuration?)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(
        `${path}: "${name}" has shape [${t.shape}], this run expects [${shape}] (different backbone or settings?)`,
      );
    }
    return t;
  };
  for (const [prefix, m] of Object.entries(parts.modules)) {
    for (const e of m.stateDict()) e.write(take(`${prefix}.${e.name}`, e.shape).data);
  }
  for (const [name, t] of Object.entries(parts.tensors)) {
    B.write(t, take(name, t.shape).data as Float32Array);
  }
  return JSON.parse(file.metadata.meta ?? "{}");
}
