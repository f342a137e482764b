/**
 * Initial weights and exported backbones. Exports use torchvision's names and
 * shapes: a 1-channel stem is written as a 3-channel kernel of thirds of w
 * (exportBackbone), which responds as w to a gray image replicated to RGB, so
 * the file loads into torchvision as is and back here, to the bit, through the
 * 3→1 summing rule.
 */
import type { ClassifierNet } from "../model/classifier.ts";
import { type LoadReport, loadStateDict, readState } from "../model/state.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { checkFinite } from "../model/tensor_check.ts";
import { UserError } from "../util/user_error.ts";
import { rethrowIfDenied } from "../util/fs.ts";
import { BackboneMismatchError } from "./run_errors.ts";

/**
 * torchvision's DenseNet keys before 0.3 (`denselayer1.norm.1.weight`, as in its hosted
 * densenet121-*.pth): torchvision's own `_load_state_dict` renames them (`norm1.weight`).
 */
const OLD_DENSENET_KEY =
  /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$/;

/** A file's keys with torchvision's old DenseNet names renamed as torchvision does. */
export function renameOldDenseNetKeys<T>(tensors: Map<string, T>): Map<string, T> {
  if (![...tensors.keys()].some((k) => OLD_DENSENET_KEY.test(k))) return tensors;
  return new Map([...tensors].map(([k, t]) => [k.replace(OLD_DENSENET_KEY, "$1$2"), t]));
}

/** Prefixes that wrap a backbone's keys in the checkpoints people pass around. */
export const KNOWN_PREFIXES = ["module.encoder_q.", "encoder_q.", "module.", "backbone."];

/**
 * Loads a backbone (torchvision, MoCo-CXR or our own export) into `net`, leaving its head alone.
 * Every backbone tensor must be in the file — weights, biases and BN running statistics (frozen
 * features would be garbage without them) — except BN's `num_batches_tracked` counters, which
 * only momentum-less BN reads: a file lacking any other is refused (UserError naming a few).
 * A file lacking most keys, or with other shapes, is another architecture (BackboneMismatchError).
 * `what` names the file in that message ("ImageNet weights", "MoCo backbone"). torchvision's old
 * DenseNet names (`denselayer1.norm.1.weight`) are renamed first, as torchvision does.
 */
export async function loadInitWeights(
  net: ClassifierNet,
  path: string,
  what = "init weights",
): Promise<LoadReport> {
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    rethrowIfDenied(e); // explained by the task as a permission problem, naming the flag
    throw new UserError(`cannot read init weights ${path}: ${(e as Error).message}`);
  }
  const tensors = renameOldDenseNetKeys(file.tensors);
  const hasPrefix = [...tensors.keys()].some((k) => KNOWN_PREFIXES.some((p) => k.startsWith(p)));
  const report = loadStateDict(net, tensors, {
    strict: false,
    stripPrefix: hasPrefix ? KNOWN_PREFIXES : undefined,
    exclude: [`${net.headName}.`],
    source: path,
  });
  const backboneKeys = net.stateDict().filter((e) => !e.name.startsWith(`${net.headName}.`));
  const missing = report.missing.filter((k) => !k.startsWith(`${net.headName}.`));
  if (report.mismatched.length || missing.length > backboneKeys.length / 2) {
    throw new BackboneMismatchError(
      `${path} does not fit this backbone: ${missing.length} of ${backboneKeys.length} keys missing` +
        (report.mismatched.length
          ? `, mismatched shapes: ${
            report.mismatched.slice(0, 3).map((m) => `${m.name} [${m.got}] vs [${m.expected}]`)
              .join(", ")
          }`
          : ""),
    );
  }
  const needed = missing.filter((k) => !k.endsWith(".num_batches_tracked"));
  if (needed.length) {
    throw new UserError(
      `${what} ${path} lack ${needed.length} tensor${
        needed.length === 1 ? "" : "s"
      } the backbone needs (${needed.slice(0, 3).join(", ")}${needed.length > 3 ? ", …" : ""})`,
    );
  }
  return report;
}

/**
 * Writes the backbone (no head) with torchvision names; a 1-channel stem is expanded to RGB.
 * Refuses (NonFiniteError, nothing written) when any tensor holds NaN or ±Inf.
 */
export async function exportBackbone(
  net: ClassifierNet,
  path: string,
  metadata: Record<string, string>,
): Promise<void> {
  const state = await readState(net);
  for (const k of [...state.keys()]) if (k.startsWith(`${net.headName}.`)) state.delete(k);
  for (const [k, t] of state) checkFinite(k, t, `backbone export ${path}`);
  const stem = state.get(net.stemKey);
  if (stem && stem.shape[1] === 1) {
    const [o, , kh, kw] = stem.shape, k = kh * kw, src = stem.data as Float32Array;
    const rgb = new Float32Array(o * 3 * k);
    // R = G = w/3 rounded, B = w − 2R: exact (Sterbenz: 2R lies within [w/2, 2w]), so R + G + B,
    // summed in that order as loadStateDict sums a stem, is w to the bit; B is within 2 ulp of w/3
    for (let i = 0; i < o; i++) {
      for (let j = 0; j < k; j++) {
        const w = src[i * k + j], third = Math.fround(w / 3);
        rgb[(i * 3 + 0) * k + j] = third;
        rgb[(i * 3 + 1) * k + j] = third;
        rgb[(i * 3 + 2) * k + j] = w - 2 * third;
      }
    }
    state.set(net.stemKey, { dtype: "F32", shape: [o, 3, kh, kw], data: rgb });
  }
  await writeSafetensors(path, state, { ...metadata, format: "torchvision-backbone" });
}
