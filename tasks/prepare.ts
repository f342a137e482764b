/**
 * Decodes and resizes a dataset once into the binary image cache the trainers read.
 *   deno task prepare [--data <root>] [--kind chexpert|shenzhen|folder|csv] [--csv file]
 *                     [--tasks default|competition|all|Name,...] [--uncertainty ones|zeros|ignore]
 *                     [--size 128] [--margin 1.14] [--out runs/cache/...] [--workers 2]
 *                     [--max-bad 0.05] [--all-views] [--patient-pattern REGEX]
 * Without --data it prepares the built-in synthetic CheXpert set (generated first if needed).
 * A cache whose sources are unchanged is reused; a stale one is rebuilt. The label flags are
 * the training tasks' own (cli/open_data.ts), so the class balance printed is the one they use.
 */
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { ensureCache } from "../data/cache/builder.ts";
import { defaultCacheDir, storedSizeFor } from "../data/cache/format.ts";
import { ensureSyntheticChexpert } from "../data/synth/write.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import {
  DATA_LABEL_OPTIONS,
  dataLabelFlagsFrom,
  dataLabelHelp,
  describeLabelSettings,
  loadFlaggedDataset,
} from "../cli/open_data.ts";
import { UserError } from "../util/user_error.ts";
import { MAX_BAD, numFlag, type NumSpecs, WORKERS } from "../cli/flags.ts";

const USAGE =
  `usage: deno task prepare [--data <root>] [--kind chexpert|shenzhen|folder|csv] [--csv file]
       [--tasks default|competition|all|Name,...] [--uncertainty ones|zeros|ignore]
       [--size 128] [--margin 1.14] [--out runs/cache/<name>] [--workers 2] [--max-bad 0.05]
       [--all-views] [--patient-pattern REGEX]

Labels and patients (the same flags as pretrain, finetune and experiment):
${dataLabelHelp()}`;

/** Ranges of the numeric flags. */
export const PREPARE_NUMERIC = {
  size: { min: 8, max: 4096, int: true },
  margin: { min: 1, max: 4 },
  workers: WORKERS,
  "max-bad": MAX_BAD,
} satisfies NumSpecs;

export const PREPARE_OPTIONS = {
  data: { type: "string" },
  kind: { type: "string" },
  ...DATA_LABEL_OPTIONS,
  tasks: { type: "string" },
  size: { type: "string" },
  margin: { type: "string" },
  out: { type: "string" },
  workers: { type: "string" },
  "max-bad": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

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
  const size = n("size", 128), margin = n("margin", 1.14);
  const workers = n("workers", 2), maxBad = n("max-bad", 0.05);
  if (Math.round(size * margin) > 4096) {
    throw new UserError(`--size ${size} × --margin ${margin} stores images over 4096 px a side`);
  }
  // Where it will write, before reading anything (the default cache folder is under runs/).
  if (values.out !== undefined) await requireWrite(values.out);
  if (values.data === undefined && labels.csv === undefined) {
    await requireWrite("runs/synthetic", "--data");
  }
  const root = values.data ?? (labels.csv ? dirname(resolve(labels.csv)) : undefined) ??
    await ensureSyntheticChexpert("runs/synthetic", {}, { log: console.log });
  const t0 = performance.now();
  const ds = await loadFlaggedDataset({ root, kind: values.kind, tasks: values.tasks, ...labels });
  const read = describeLabelSettings(ds);
  const links = ds.skippedSymlinks ? `, ${ds.skippedSymlinks} symbolic links skipped` : "";
  console.log(
    `${ds.kind} dataset ${ds.root}: ${ds.records.length} images${links}, tasks ${
      ds.tasks.join(", ")
    }${read ? ` (${read})` : ""}`,
  );
  const dir = values.out ?? defaultCacheDir("runs/cache", ds, { size, margin });
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
}

if (import.meta.main) runMain(() => main(Deno.args));
