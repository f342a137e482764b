/**
 * Moving a module's state_dict to and from safetensors files: name matching
 * with explicit prefix stripping, a report of missing / unexpected /
 * shape-mismatched keys, strict and non-strict loading, and the grayscale
 * stem rule (a 3-channel stem kernel loads into a 1-channel stem summed over
 * RGB, which gives the same response to a gray image replicated to RGB).
 */
import type { Module, StateEntry } from "./nn.ts";
import { ClassifierNet } from "./classifier.ts";
import { readSafetensors, type TensorData, writeSafetensors } from "./safetensors.ts";
import { asDtype, checkFinite } from "./tensor_check.ts";
import { UserError } from "../util/user_error.ts";

export interface LoadOptions {
  /** Fail on any missing, unexpected or mismatched key (default true). */
  strict?: boolean;
  /**
   * Prefixes to strip, e.g. "module.encoder_q." for a MoCo checkpoint. When
   * given, keys that carry none of them (encoder_k, queue, …) are ignored.
   * The longest matching prefix is stripped.
   */
  stripPrefix?: string | string[];
  /** State keys (after stripping) starting with one of these are skipped, e.g. ["fc."]. */
  exclude?: string[];
  /** Names the source in errors about a tensor's values or dtype (default "weights"). */
  source?: string;
}

/** What loading a state dict did, key by key. */
export interface LoadReport {
  /** Keys loaded. */
  loaded: string[];
  /** Model keys the file lacks. */
  missing: string[];
  /** File keys the model lacks. */
  unexpected: string[];
  /** Keys whose shapes differ. */
  mismatched: { name: string; expected: number[]; got: number[] }[];
  /** Keys without any of the stripPrefix prefixes. */
  ignored: string[];
  /** Loaded through the 3→1-channel stem rule. */
  adapted: string[];
}

const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Sums a [O,3,KH,KW] kernel over its input channels into [O,1,KH,KW]. */
function sumOverChannels(t: TensorData): Float32Array {
  const [o, c, kh, kw] = t.shape, k = kh * kw, src = t.data as Float32Array;
  const out = new Float32Array(o * k);
  for (let i = 0; i < o; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let j = 0; j < k; j++) out[i * k + j] += src[(i * c + ch) * k + j];
    }
  }
  return out;
}

/**
 * Loads named tensors into a module's parameters and buffers. Every loaded tensor must be finite
 * and of the entry's dtype (NonFiniteError / TensorDtypeError name it); nothing is written
 * unless all of them are.
 */
export function loadStateDict(
  module: Module,
  tensors: Map<string, TensorData>,
  o: LoadOptions = {},
): LoadReport {
  const strict = o.strict ?? true;
  const prefixes = (typeof o.stripPrefix === "string" ? [o.stripPrefix] : o.stripPrefix ?? [])
    .slice().sort((a, b) => b.length - a.length);
  const report: LoadReport = {
    loaded: [],
    missing: [],
    unexpected: [],
    mismatched: [],
    ignored: [],
    adapted: [],
  };
  const where = o.source ?? "weights";
  const excluded = (k: string) => (o.exclude ?? []).some((p) => k.startsWith(p));
  const src = new Map<string, TensorData>();
  const fileKey = new Map<TensorData, string>();
  const keyOf = (t: TensorData) => fileKey.get(t)!;
  for (const [key, t] of tensors) {
    let k = key;
    if (prefixes.length) {
      const p = prefixes.find((p) => key.startsWith(p));
      if (p === undefined) {
        report.ignored.push(key);
        continue;
      }
      k = key.slice(p.length);
    }
    if (!excluded(k)) {
      src.set(k, t);
      fileKey.set(t, key);
    }
  }
  const stemKey = module instanceof ClassifierNet ? module.stemKey : null;
  const entries = module.stateDict().filter((e) => !excluded(e.name));
  const plan: [StateEntry, Float32Array | BigInt64Array][] = [];
  for (const e of entries) {
    const t = src.get(e.name);
    src.delete(e.name);
    if (!t) {
      report.missing.push(e.name);
    } else if (sameShape(e.shape, t.shape)) {
      plan.push([e, asDtype(keyOf(t), t, e.dtype, where)]);
    } else if (
      e.name === stemKey && e.shape.length === 4 && e.shape[1] === 1 && t.shape.length === 4 &&
      t.shape[1] === 3 &&
      sameShape([e.shape[0], ...e.shape.slice(2)], [t.shape[0], ...t.shape.slice(2)])
    ) {
      // an RGB stem summed over its channels: F32 and finite, as any weight (asDtype names it)
      asDtype(keyOf(t), t, "F32", where);
      plan.push([e, sumOverChannels(t)]);
      report.adapted.push(e.name);
    } else {
      report.mismatched.push({ name: e.name, expected: e.shape, got: t.shape });
    }
  }
  report.unexpected.push(...src.keys());
  if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
    const list = (xs: string[]) =>
      xs.slice(0, 8).join(", ") + (xs.length > 8 ? `, … (${xs.length})` : "");
    const parts = [];
    if (report.missing.length) parts.push(`missing keys: ${list(report.missing)}`);
    if (report.unexpected.length) parts.push(`unexpected keys: ${list(report.unexpected)}`);
    if (report.mismatched.length) {
      parts.push(
        `shape mismatches: ${
          list(report.mismatched.map((m) => `${m.name} (model [${m.expected}], file [${m.got}])`))
        }`,
      );
    }
    throw new Error(`strict state load failed: ${parts.join("; ")}`);
  }
  for (const [e, data] of plan) {
    e.write(data);
    report.loaded.push(e.name);
  }
  return report;
}

/** A module's whole state on the host (for saving or comparing), read in one round trip. */
export async function readState(module: Module): Promise<Map<string, TensorData>> {
  const entries = module.stateDict();
  const tensors = entries.flatMap((e) => e.tensor ? [e.tensor()] : []);
  const values = await module.backend.readMany(tensors);
  const out = new Map<string, TensorData>();
  let i = 0;
  for (const e of entries) {
    const data = e.tensor ? values[i++] : await e.read();
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

/**
 * Writes a module's whole state to a safetensors file (atomically). Refuses (NonFiniteError,
 * nothing written) when any tensor holds NaN or ±Inf, as exportBackbone and saveCheckpoint do.
 */
export async function saveModel(
  path: string,
  module: Module,
  metadata?: Record<string, string>,
): Promise<void> {
  const state = await readState(module);
  for (const [k, t] of state) checkFinite(k, t, `model save ${path}`);
  await writeSafetensors(path, state, metadata);
}

export async function loadModel(
  path: string,
  module: Module,
  o: LoadOptions = {},
): Promise<LoadReport> {
  const { tensors } = await readSafetensors(path);
  try {
    return loadStateDict(module, tensors, { source: path, ...o });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
