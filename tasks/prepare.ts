/**
 * Decodes and resizes a dataset once into the binary image cache the trainers read, where they
 * look for it: runs/cache/<name>-<kind>-<stored side>-<hash>, at the trainers' default crop
 * (--preset cpu-demo's --size) unless --size says another.
 *   deno task prepare [--data <root>] [--kind chexpert|shenzhen|folder|csv] [--csv file]
 *                     [--task default|competition|all|Name,...] [--uncertainty ones|zeros|ignore]
 *                     [--size 32] [--margin 1.14] [--workers 2] [--max-bad 0.05] [--all-views]
 *                     [--patient-pattern REGEX]
 * Without --data it prepares the built-in synthetic CheXpert set (generated first if needed).
 * A cache whose sources are unchanged is reused; a stale one is rebuilt. The label flags are
 * the training tasks' own (cli/open_data.ts), so the class balance printed is the one they use.
 */
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { ensureCache } from "../data/cache/builder.ts";
import { DEFAULT_MARGIN, defaultCacheDir, storedSizeFor } from "../data/cache/format.ts";
import { ensureSyntheticChexpert } from "../data/synth/write.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import {
  CACHE_ROOT,
  DATA_LABEL_OPTIONS,
  dataLabelFlagsFrom,
  dataLabelHelp,
  DEFAULT_SYNTH_ROOT,
  describeLabelSettings,
  loadFlaggedDataset,
} from "../cli/open_data.ts";
import { UserError } from "../util/user_error.ts";
import { MAX_BAD, numFlag, type NumSpecs, WORKERS } from "../cli/flags.ts";
import {
  DEFAULT_PRESET,
  PRESET_DEFAULTS,
  PRESETS,
  PRETRAIN_NUMERIC,
} from "../cli/pretrain_flags.ts";

/** The trainers' default crop (pretrain, finetune and experiment at --preset cpu-demo). */
export const PREPARE_DEFAULT_SIZE = PRESET_DEFAULTS[DEFAULT_PRESET].size;

const USAGE = `deno task prepare [flags]   decode and resize a dataset once into the image cache

The cache goes where pretrain, finetune and experiment look for it (${CACHE_ROOT}/<name>-<kind>-
<stored side>-<hash>), for the trainers' --size given here; they reuse it while the images are
unchanged, and build it themselves when it is missing.

Data
  --data DIR            dataset root (CheXpert, Shenzhen, folder-per-class or CSV). Default: the
                        built-in synthetic CheXpert set (generated once into ${DEFAULT_SYNTH_ROOT})
  --kind K              chexpert | shenzhen | folder | csv (default: detected)
  --task T              the labels to read, as the trainers' --task: CheXpert default (Pleural
                        Effusion), competition, all or Name,...; other layouts: their label
                        names (default: all). --tasks is the same flag
Cache
  --size PX             the trainers' --size the cache is for, ${PRETRAIN_NUMERIC.size.min}-${PRETRAIN_NUMERIC.size.max} (default ${PREPARE_DEFAULT_SIZE}: their
                        default, --preset ${DEFAULT_PRESET}; gpu: ${PRESET_DEFAULTS.gpu.size}, paper: ${PRESET_DEFAULTS.paper.size}); prepare with the
                        --size you will train with
  --margin M            stored side = size x M, room for random crops and rotation (default
                        ${DEFAULT_MARGIN}, the trainers'; a cache at another margin is not one they read)
  --workers N           decoding workers (default 2; 0 decodes on this thread)
  --max-bad F           tolerated share of unreadable images, 0-1 (default 0.05; the trainers
                        check their own --max-bad against the cache each time they open it)
  --out DIR             only ${CACHE_ROOT} (the trainers read caches only there): another folder is
                        refused
Labels and patients (the same flags as pretrain, finetune and experiment):
${dataLabelHelp()}`;

/** Ranges of the numeric flags (--size: the trainers' own range). */
export const PREPARE_NUMERIC = {
  size: PRETRAIN_NUMERIC.size,
  margin: { min: 1, max: 4 },
  workers: WORKERS,
  "max-bad": MAX_BAD,
} satisfies NumSpecs;

export const PREPARE_OPTIONS = {
  data: { type: "string" },
  kind: { type: "string" },
  ...DATA_LABEL_OPTIONS,
  task: { type: "string" },
  tasks: { type: "string" },
  size: { type: "string" },
  margin: { type: "string" },
  out: { type: "string" },
  workers: { type: "string" },
  "max-bad": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Which preset's default crop `size` is, if any ("the default, --preset cpu-demo"). */
function presetOfSize(size: number): string {
  const p = PRESETS.find((p) => PRESET_DEFAULTS[p].size === size);
  if (p === DEFAULT_PRESET) return ` (their default, --preset ${p})`;
  return p ? ` (--preset ${p}'s)` : "";
}

/** Runs the task on its arguments (errors: see cli/run_main.ts runMain). */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: PREPARE_OPTIONS });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const kinds = ["chexpert", "shenzhen", "folder", "csv"];
  if (values.kind && !kinds.includes(values.kind)) {
    throw new UserError(`--kind must be one of ${kinds.join(", ")} (see --help)`);
  }
  const labels = dataLabelFlagsFrom(values);
  const n = (name: keyof typeof PREPARE_NUMERIC, d: number) =>
    numFlag(name, values[name], d, PREPARE_NUMERIC[name]);
  const size = n("size", PREPARE_DEFAULT_SIZE), margin = n("margin", DEFAULT_MARGIN);
  const workers = n("workers", 2), maxBad = n("max-bad", 0.05);
  if (values.task !== undefined && values.tasks !== undefined && values.task !== values.tasks) {
    throw new UserError(`--task and --tasks are the same flag: give one (see --help)`);
  }
  const tasks = values.task ?? values.tasks;
  // Where it will write, before reading anything: the cache folder the trainers read.
  if (values.out !== undefined && resolve(values.out) !== resolve(CACHE_ROOT)) {
    throw new UserError(
      `--out ${values.out}: the trainers read caches only from ${CACHE_ROOT}/, where prepare ` +
        `writes them; drop --out`,
    );
  }
  await requireWrite(CACHE_ROOT, "--out");
  if (values.data === undefined && labels.csv === undefined) {
    await requireWrite(DEFAULT_SYNTH_ROOT, "--data");
  }
  const root = values.data ?? (labels.csv ? dirname(resolve(labels.csv)) : undefined) ??
    await ensureSyntheticChexpert(DEFAULT_SYNTH_ROOT, {}, { log: console.log });
  const t0 = performance.now();
  const ds = await loadFlaggedDataset({ root, kind: values.kind, tasks, ...labels });
  const read = describeLabelSettings(ds);
  const links = ds.skippedSymlinks ? `, ${ds.skippedSymlinks} symbolic links skipped` : "";
  console.log(
    `${ds.kind} dataset ${ds.root}: ${ds.records.length} images${links}, tasks ${
      ds.tasks.join(", ")
    }${read ? ` (${read})` : ""}`,
  );
  const dir = defaultCacheDir(CACHE_ROOT, ds, { size, margin });
  let shown = 0;
  const cache = await ensureCache(ds, {
    dir,
    size,
    margin,
    workers,
    maxBadFraction: maxBad,
    log: console.log,
    onProgress: (done, total) => {
      if (done === total || done >= shown + total / 4) {
        shown = done;
        console.log(`  decoded ${done}/${total}`);
      }
    },
  });
  const T = cache.tasks.length;
  const pos = cache.tasks.map((_, t) => {
    let p = 0, m = 0;
    for (let i = 0; i < cache.count; i++) {
      m += cache.mask[i * T + t];
      p += cache.mask[i * T + t] * cache.labels[i * T + t];
    }
    return `${cache.tasks[t]} ${p}/${m}`;
  });
  console.log(
    `cache ${cache.dir}: ${cache.count} images at ${storedSizeFor({ size, margin })}² ` +
      `(crop ${size}), ${cache.badImages.length} bad; positives ${pos.join(", ")}; ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  console.log(
    margin === DEFAULT_MARGIN
      ? `pretrain, finetune and experiment read this cache at --size ${size}${
        presetOfSize(size)
      } on this --data: they find it in ${cache.dir}`
      : `the trainers store images at --margin ${DEFAULT_MARGIN} and will not read this cache ` +
        `(--margin ${margin}); prepare without --margin for theirs`,
  );
}

if (import.meta.main) runMain(() => main(Deno.args));
