/**
 * Decodes and resizes a dataset once into the binary image cache the trainers read.
 *   deno task prepare [--data <root>] [--kind chexpert|shenzhen|folder|csv] [--csv file]
 *                     [--tasks default|competition|all|Name,...] [--uncertainty ones|zeros|ignore]
 *                     [--size 128] [--margin 1.14] [--out runs/cache/...] [--workers 2]
 *                     [--max-bad 0.05] [--all-views]
 * Without --data it prepares the built-in synthetic CheXpert set (generated first if needed).
 * A cache whose sources are unchanged is reused; a stale one is rebuilt.
 */
import { parseArgs } from "node:util";
import { defaultCacheDir, ensureCache, storedSizeFor } from "../data/cache.ts";
import { loadDataset } from "../data/load.ts";
import { ensureSyntheticChexpert } from "../data/synth_write.ts";
import type { DatasetKind, UncertaintyPolicy } from "../data/types.ts";

const USAGE =
  `usage: deno task prepare [--data <root>] [--kind chexpert|shenzhen|folder|csv] [--csv file]
       [--tasks default|competition|all|Name,...] [--uncertainty ones|zeros|ignore]
       [--size 128] [--margin 1.14] [--out runs/cache/<name>] [--workers 2] [--max-bad 0.05]
       [--all-views]`;

function num(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got "${v}"`);
  return n;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      data: { type: "string" },
      kind: { type: "string" },
      csv: { type: "string" },
      tasks: { type: "string" },
      uncertainty: { type: "string" },
      size: { type: "string" },
      margin: { type: "string" },
      out: { type: "string" },
      workers: { type: "string" },
      "max-bad": { type: "string" },
      "all-views": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const kinds = ["chexpert", "shenzhen", "folder", "csv"];
  if (values.kind && !kinds.includes(values.kind)) {
    throw new Error(`--kind must be one of ${kinds.join(", ")}\n${USAGE}`);
  }
  const policies = ["ones", "zeros", "ignore"];
  if (values.uncertainty && !policies.includes(values.uncertainty)) {
    throw new Error(`--uncertainty must be one of ${policies.join(", ")}`);
  }
  const size = num(values.size, "size", 128);
  if (!Number.isInteger(size) || size < 8) throw new Error(`--size must be an integer >= 8`);
  const root = values.data ??
    await ensureSyntheticChexpert("runs/synthetic", {}, { log: console.log });
  const t0 = performance.now();
  const ds = await loadDataset({
    root,
    kind: values.kind as DatasetKind | undefined,
    csv: values.csv,
    tasks: values.tasks,
    uncertainty: values.uncertainty as UncertaintyPolicy | undefined,
    frontalOnly: !values["all-views"],
  });
  console.log(
    `${ds.kind} dataset ${ds.root}: ${ds.records.length} images, tasks ${ds.tasks.join(", ")}`,
  );
  const margin = num(values.margin, "margin", 1.14);
  const dir = values.out ?? defaultCacheDir("runs/cache", ds, { size, margin });
  let shown = 0;
  const cache = await ensureCache(ds, {
    dir,
    size,
    margin,
    workers: num(values.workers, "workers", 2),
    maxBadFraction: num(values["max-bad"], "max-bad", 0.05),
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

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`prepare: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
