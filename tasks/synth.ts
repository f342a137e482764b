/**
 * Generates the built-in synthetic radiograph datasets (CheXpert and Shenzhen layouts).
 *   deno task synth --out runs/synthetic --n 2000 --size 128 [--seed 0] [--kind both]
 *                   [--shenzhen-n 600] [--workers 2]
 * Reuses an existing dataset with the same parameters; prints where it is and its label mix.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ensureSyntheticChexpert, ensureSyntheticShenzhen } from "../data/synth/write.ts";
import { requireWrite, runMain } from "../cli/run_main.ts";
import { UserError } from "../util/user_error.ts";
import { numFlag, type NumSpecs, SEED, WORKERS } from "../cli/flags.ts";

const USAGE = `usage: deno task synth [--out runs/synthetic] [--n 2000] [--size 128] [--seed 0]
       [--kind chexpert|shenzhen|both] [--shenzhen-n 600] [--workers 2]`;

/** Ranges of the numeric flags. */
export const SYNTH_NUMERIC = {
  n: { min: 2, max: 1_000_000, int: true },
  size: { min: 16, max: 4096, int: true },
  seed: SEED,
  "shenzhen-n": { min: 2, max: 1_000_000, int: true },
  workers: WORKERS,
} satisfies NumSpecs;

export const SYNTH_OPTIONS = {
  out: { type: "string", default: "runs/synthetic" },
  n: { type: "string" },
  size: { type: "string" },
  seed: { type: "string" },
  kind: { type: "string", default: "both" },
  "shenzhen-n": { type: "string" },
  workers: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs the task on its arguments (errors: see cli/run_main.ts runMain). */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: SYNTH_OPTIONS });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const kind = values.kind!;
  if (!["chexpert", "shenzhen", "both"].includes(kind)) {
    throw new UserError(`--kind must be chexpert, shenzhen or both, got "${kind}"`);
  }
  const int = (name: keyof typeof SYNTH_NUMERIC, d: number) =>
    numFlag(name, values[name], d, SYNTH_NUMERIC[name]);
  const size = int("size", 128), seed = int("seed", 0), workers = int("workers", 2);
  const nChexpert = int("n", 2000), nShenzhen = int("shenzhen-n", 600);
  await requireWrite(values.out!);
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
      { n: nChexpert, size, seed },
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
      { n: nShenzhen, size, seed },
      { workers, log: console.log, onProgress: progress("Shenzhen") },
    );
    console.log(`Shenzhen: ${root}`);
  }
  console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (import.meta.main) runMain(() => main(Deno.args));
