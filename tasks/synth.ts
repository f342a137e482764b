/**
 * Generates the built-in synthetic radiograph datasets (CheXpert and Shenzhen layouts).
 *   deno task synth --out runs/synthetic --n 2000 --size 128 [--seed 0] [--kind both]
 *                   [--shenzhen-n 600] [--workers 2]
 * Reuses an existing dataset with the same parameters; prints where it is and its label mix.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ensureSyntheticChexpert, ensureSyntheticShenzhen } from "../data/synth_write.ts";

const USAGE = `usage: deno task synth [--out runs/synthetic] [--n 2000] [--size 128] [--seed 0]
       [--kind chexpert|shenzhen|both] [--shenzhen-n 600] [--workers 2]`;

function int(v: string | undefined, name: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "runs/synthetic" },
      n: { type: "string" },
      size: { type: "string" },
      seed: { type: "string" },
      kind: { type: "string", default: "both" },
      "shenzhen-n": { type: "string" },
      workers: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const kind = values.kind!;
  if (!["chexpert", "shenzhen", "both"].includes(kind)) {
    throw new Error(`--kind: ${kind}?\n${USAGE}`);
  }
  const size = int(values.size, "size", 128, 16), seed = int(values.seed, "seed", 0);
  const workers = int(values.workers, "workers", 2);
  const progress = (what: string) => {
    let shown = 0;
    return (done: number, total: number) => {
      // About every 25%.
      if (done === total || done >= shown + total / 4) {
        shown = done;
        console.log(`  ${what}: ${done}/${total}`);
      }
    };
  };
  const t0 = performance.now();
  if (kind !== "shenzhen") {
    const root = await ensureSyntheticChexpert(
      values.out!,
      { n: int(values.n, "n", 2000, 2), size, seed },
      { workers, log: console.log, onProgress: progress("CheXpert") },
    );
    const meta = JSON.parse(await Deno.readTextFile(join(root, "..", "synth.json")));
    const s = meta.summary;
    console.log(
      `CheXpert: ${root} (${s.train} train + ${s.valid} valid frontal, ${s.laterals} lateral, ` +
        `${s.patients} patients)`,
    );
    console.log(
      "  prevalence: " +
        Object.entries(s.prevalence as Record<string, number>)
          .filter(([, v]) => v > 0)
          .map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`)
          .join(", "),
    );
  }
  if (kind !== "chexpert") {
    const root = await ensureSyntheticShenzhen(
      values.out!,
      { n: int(values["shenzhen-n"], "shenzhen-n", 600, 2), size, seed },
      { workers, log: console.log, onProgress: progress("Shenzhen") },
    );
    console.log(`Shenzhen: ${root}`);
  }
  console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`synth: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
