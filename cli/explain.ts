/**
 * The command line's words for the errors a user can act on. The layers below throw typed
 * errors that name no flag; here each gets the advice of the command line (which flag to change,
 * how to resume), so a flag's name is written in one place above the library.
 */
import { dirname } from "node:path";
import { DeviceLostError, NoAdapterError } from "../kernels/device.ts";
import { TuneCacheError } from "../kernels/tuner.ts";
import { UnknownDatasetKindError, UnknownTaskError } from "../data/data_error.ts";
import { MissingRunFolderError } from "../eval/run_files.ts";
import { RunFolderNotWritableError } from "../eval/evaluate_run.ts";
import {
  BackboneMismatchError,
  ConflictingSettingsError,
  DamagedCheckpointError,
  MissingImagenetWeightsError,
  OtherDataError,
  OtherSettingsError,
  TrainingDivergedError,
} from "../train/run_errors.ts";
import { UserError } from "../util/user_error.ts";

/** The command-line message for a typed error of the layers below, or null for any other. */
export function explainTyped(e: unknown): string | null {
  if (e instanceof UnknownDatasetKindError) {
    return `--kind must be one of ${e.kinds.join(", ")}, got "${e.kind}"`;
  }
  if (e instanceof UnknownTaskError) {
    return `--task ${e.missing.map((m) => `"${m}"`).join(", ")}: ${e.root} has no such label; ` +
      `its labels: ${e.tasks.join(", ")} (pass one of them, or drop --task)`;
  }
  if (e instanceof NoAdapterError) return noAdapterMessage(e.message);
  if (e instanceof TuneCacheError) return `--tune-cache ${e.message}`;
  if (e instanceof OtherDataError) {
    return `${e.facts}; rerun with the same --data (and --kind, --task) as ${e.record} records ` +
      `to resume it, give a new --out folder, or delete ${dirname(e.record)}.`;
  }
  if (e instanceof OtherSettingsError) {
    return `${e.facts}; rerun with the same flags (see ${e.record}) to resume it, give a new ` +
      `--out folder, or delete ${dirname(e.record)}.`;
  }
  if (e instanceof ConflictingSettingsError) {
    return e.conflict === "backbone-and-seeds"
      ? `--moco gives one backbone; --pretrain-seeds N > 1 pretrains N backbones here: pass ` +
        `--pretrain-seeds 1, or drop --moco`
      : `--e2e-fractions: ${e.facts.replace(/^end-to-end fraction /, "")}; use --fractions values`;
  }
  if (e instanceof TrainingDivergedError) {
    if (e.beforeAnyUpdate) {
      return `${e.facts} No update had run yet, so the learning rate is not the cause: check the ` +
        `input data${
          e.resumable
            ? ""
            : " and the initial weights (--weights; --moco or --imagenet in experiment)"
        }.`;
    }
    return e.resumable
      ? `${e.facts} Lower --lr, check the input data, or resume with --resume.`
      : `${e.facts} Lower the fine-tuning learning rate (--lr, or --ft-lr in experiment) or ` +
        `check the input data.`;
  }
  if (e instanceof DamagedCheckpointError) {
    return `checkpoint ${e.path} is damaged (${e.detail}); restore it from a copy, or start a ` +
      `new --out folder`;
  }
  if (e instanceof BackboneMismatchError) return `${e.facts}. Check --backbone against the file.`;
  if (e instanceof MissingImagenetWeightsError) {
    return "the imagenet init needs --imagenet FILE (torchvision weights as safetensors)";
  }
  if (e instanceof DeviceLostError) return `${e.message} Rerun with --resume to continue from it.`;
  if (e instanceof MissingRunFolderError) {
    return `run folder "${e.runDir}" does not exist; pass the folder an experiment wrote, e.g. ` +
      `--run runs/<name> (list them with: ls runs/)`;
  }
  if (e instanceof RunFolderNotWritableError) {
    return `no permission to write into ${e.runDir}: deno task evaluate writes only under runs/ ` +
      `(--allow-write=runs); move or copy the run folder into runs/`;
  }
  return null;
}

/**
 * No adapter: the device layer's advice, led by the likely cause when DENO_WEBGPU_BACKEND is set
 * (a backend this machine lacks, e.g. dx12 off Windows).
 */
export function noAdapterMessage(
  help: string,
  backend: string | undefined = envOrUndefined("DENO_WEBGPU_BACKEND"),
): string {
  if (!backend) return help;
  const [first, ...rest] = help.split("\n");
  return [
    `${first} DENO_WEBGPU_BACKEND=${backend} is set: that backend is the likely cause (unset ` +
    `it, or try DENO_WEBGPU_BACKEND=vulkan or gl).`,
    ...rest,
  ].join("\n");
}

/** An environment variable, or undefined where it is unset or not granted. */
function envOrUndefined(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The one-line message for an error a user can act on, or null for a bug (stack trace). */
export function explain(e: unknown): string | null {
  const typed = explainTyped(e);
  if (typed !== null) return typed;
  if (e instanceof UserError) return e.message;
  // node:util parseArgs: an unknown flag, a missing value, a value given to a switch.
  const code = (e as { code?: unknown })?.code;
  if (e instanceof Error && typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
    return `${e.message.replace(/\s+/g, " ").trim()} (see --help)`;
  }
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    const m = /Requires (\w+) access to (.+?),/.exec(e.message);
    const [kind, what] = m ? [m[1], m[2]] : ["", ""];
    if (kind === "all") {
      // Deno asks --allow-all of a device or other special file (/dev/null, /dev/stdin): no
      // narrower grant opens it, and no data, weights or run folder of this project is one.
      return `${what.replace(/^"|"$/g, "")}: a device or other special file (or a path under ` +
        `one), which a sandboxed task does not open: pass a regular file or folder to the flag ` +
        `that names it`;
    }
    const flag = kind ? `--allow-${kind}${what ? `=${what.replace(/^"|"$/g, "")}` : ""}` : "";
    return `Permission denied: ${e.message.replace(/\s+/g, " ").trim()}. ` +
      (flag
        ? `This run is sandboxed. If that access is intended, add ${flag} to the task's line in ` +
          `deno.json (or run with deno run ${flag} ...); otherwise point the flag that names the ` +
          `path (--data, --out) inside the granted folders.`
        : "");
  }
  if (e instanceof Deno.errors.NotFound) return `Not found: ${e.message}`;
  if (e instanceof Error && /No space left on device|ENOSPC/.test(e.message)) {
    return `Disk full: ${e.message}. Free space and rerun with --resume.`;
  }
  return null;
}
