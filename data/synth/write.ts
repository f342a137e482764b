/**
 * Writes the synthetic CheXpert / Shenzhen datasets to disk (in parallel workers), and the
 * ensure* entry points the trainers call: generate once into a temp folder, rename into place
 * atomically, reuse while the parameters (and generator version) match.
 */
import { dirname, join } from "node:path";
import {
  CHEXPERT_HEADER,
  chexpertDefaults,
  type PatientPlan,
  planChexpert,
  renderChexpertPatient,
  renderShenzhenImage,
  shenzhenDefaults,
  SYNTH_VERSION,
  type SynthChexpertOptions,
  type SynthShenzhenOptions,
} from "./dataset.ts";
import { CHEXPERT_OBSERVATIONS } from "../chexpert.ts";
import { WorkerPool } from "../worker_pool.ts";
import { exists } from "../paths.ts";

export interface WriteOptions {
  /** Parallel workers (0 = in this thread). Default 2. */
  workers?: number;
  /** Progress callback (images done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Per-patient result sent back by a worker (files are already on disk). */
export interface WrittenPatient {
  index: number;
  split: "train" | "valid";
  rows: string[];
  /** Frontal images: rel path and the true labels, in CHEXPERT_OBSERVATIONS order (-1 = n/a). */
  truth: { rel: string; labels: number[] }[];
}

/** Renders and writes some patients' images under dir; returns their CSV rows. */
export async function writeChexpertPatients(
  dir: string,
  plans: PatientPlan[],
  opts: SynthChexpertOptions,
): Promise<WrittenPatient[]> {
  const out: WrittenPatient[] = [];
  for (const p of plans) {
    const r = renderChexpertPatient(p, opts);
    const made = new Set<string>();
    for (const f of r.files) {
      const d = dirname(join(dir, f.rel));
      if (!made.has(d)) await Deno.mkdir(d, { recursive: true });
      made.add(d);
      await Deno.writeFile(join(dir, f.rel), f.bytes);
    }
    out.push({
      index: p.index,
      split: p.split,
      rows: r.rows,
      truth: r.truth.map((t) => ({
        rel: t.rel,
        labels: CHEXPERT_OBSERVATIONS.map((o) => t.labels[o] ?? -1),
      })),
    });
  }
  return out;
}

/** Renders and writes Shenzhen images [from, to) into dir/CXR_png and dir/ClinicalReadings. */
export async function writeShenzhenImages(
  dir: string,
  from: number,
  to: number,
  opts: SynthShenzhenOptions,
): Promise<number> {
  for (let i = from; i < to; i++) {
    const r = renderShenzhenImage(i, opts);
    await Deno.writeFile(join(dir, "CXR_png", `${r.name}.png`), r.png);
    await Deno.writeTextFile(join(dir, "ClinicalReadings", `${r.name}.txt`), r.reading);
  }
  return to - from;
}

/** Runs chunks of work inline or on a worker pool, in order of completion. */
async function runChunks<T>(
  n: number,
  chunk: number,
  workers: number,
  inline: (from: number, to: number) => Promise<T>,
  remote: (pool: WorkerPool, from: number, to: number) => Promise<T>,
  onDone: (r: T, from: number, to: number) => void,
): Promise<void> {
  const ranges: [number, number][] = [];
  for (let s = 0; s < n; s += chunk) ranges.push([s, Math.min(n, s + chunk)]);
  if (workers <= 0) {
    for (const [a, b] of ranges) onDone(await inline(a, b), a, b);
    return;
  }
  const pool = new WorkerPool(workers);
  try {
    await Promise.all(ranges.map(async ([a, b]) => onDone(await remote(pool, a, b), a, b)));
  } finally {
    pool.close();
  }
}

export interface ChexpertSummary {
  patients: number;
  train: number;
  valid: number;
  laterals: number;
  /** Share of true positives among frontal images, per observation. */
  prevalence: { [obs: string]: number };
}

/**
 * Writes a synthetic CheXpert dataset under dir (dir/CheXpert-v1.0-small/...). Not atomic: use
 * ensureSyntheticChexpert for that. Also writes dir/synthetic_truth.csv with the true labels.
 */
export async function writeSyntheticChexpert(
  dir: string,
  opts: SynthChexpertOptions = {},
  w: WriteOptions = {},
): Promise<ChexpertSummary> {
  const o = chexpertDefaults(opts);
  const plan = planChexpert(o);
  const results: WrittenPatient[] = new Array(plan.length);
  let done = 0;
  await Deno.mkdir(join(dir, "CheXpert-v1.0-small"), { recursive: true });
  await runChunks(
    plan.length,
    24,
    w.workers ?? 2,
    (a, b) => writeChexpertPatients(dir, plan.slice(a, b), o),
    (pool, a, b) =>
      pool.run<WrittenPatient[]>({ op: "synthChexpert", dir, plans: plan.slice(a, b), opts: o }),
    (r) => {
      for (const p of r) {
        results[p.index] = p;
        done += p.truth.length;
      }
      w.onProgress?.(done, o.n);
    },
  );
  const header = CHEXPERT_HEADER.join(",");
  const csv = { train: [header], valid: [header] };
  const truth = ["Path," + CHEXPERT_OBSERVATIONS.join(",")];
  const pos = new Array(CHEXPERT_OBSERVATIONS.length).fill(0);
  let laterals = 0;
  const frontal = { train: 0, valid: 0 };
  for (const p of results) {
    csv[p.split].push(...p.rows);
    laterals += p.rows.length - p.truth.length;
    frontal[p.split] += p.truth.length;
    for (const t of p.truth) {
      truth.push([t.rel, ...t.labels.map((v) => (v < 0 ? "" : String(v)))].join(","));
      t.labels.forEach((v, i) => (pos[i] += v === 1 ? 1 : 0));
    }
  }
  const root = join(dir, "CheXpert-v1.0-small");
  await Deno.writeTextFile(join(root, "train.csv"), csv.train.join("\n") + "\n");
  await Deno.writeTextFile(join(root, "valid.csv"), csv.valid.join("\n") + "\n");
  await Deno.writeTextFile(join(dir, "synthetic_truth.csv"), truth.join("\n") + "\n");
  const total = frontal.train + frontal.valid;
  return {
    patients: plan.length,
    train: frontal.train,
    valid: frontal.valid,
    laterals,
    prevalence: Object.fromEntries(CHEXPERT_OBSERVATIONS.map((o, i) => [o, pos[i] / total])),
  };
}

/** Writes a synthetic Shenzhen dataset under dir (CXR_png/, ClinicalReadings/). */
export async function writeSyntheticShenzhen(
  dir: string,
  opts: SynthShenzhenOptions = {},
  w: WriteOptions = {},
): Promise<{ images: number; tb: number }> {
  const o = shenzhenDefaults(opts);
  await Deno.mkdir(join(dir, "CXR_png"), { recursive: true });
  await Deno.mkdir(join(dir, "ClinicalReadings"), { recursive: true });
  let done = 0;
  await runChunks(
    o.n,
    32,
    w.workers ?? 2,
    (a, b) => writeShenzhenImages(dir, a, b, o),
    (pool, a, b) => pool.run<number>({ op: "synthShenzhen", dir, from: a, to: b, opts: o }),
    (k) => w.onProgress?.(done += k, o.n),
  );
  return { images: o.n, tb: o.n - Math.ceil(o.n / 2) };
}

const PARAMS_FILE = "synth.json";

/**
 * Generates into a temp folder beside `final`, writes the params file last, then renames into
 * place (replacing a stale copy). Reuses `final` when its params file matches.
 */
async function ensureGenerated(
  final: string,
  params: Record<string, unknown>,
  generate: (tmp: string) => Promise<unknown>,
): Promise<void> {
  const want = JSON.stringify(params);
  const current = async () => {
    try {
      const p = JSON.parse(await Deno.readTextFile(join(final, PARAMS_FILE)));
      return JSON.stringify(p.params) === want;
    } catch {
      return false;
    }
  };
  if (await current()) return;
  const parent = dirname(final);
  await Deno.mkdir(parent, { recursive: true });
  const base = final.slice(parent.length + 1);
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${base}.tmp-` });
  try {
    const summary = await generate(tmp);
    await Deno.writeTextFile(
      join(tmp, PARAMS_FILE),
      JSON.stringify({ params, summary, created: new Date().toISOString() }, null, 1) + "\n",
    );
    let old: string | null = null;
    if (await exists(final)) {
      old = `${tmp}.old`;
      await Deno.rename(final, old);
    }
    try {
      await Deno.rename(tmp, final);
    } catch (e) {
      // Someone else finished first: keep theirs if it is current.
      if (await current()) return;
      throw e;
    }
    if (old) await Deno.remove(old, { recursive: true });
  } finally {
    if (await exists(tmp)) await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * The default dataset: a synthetic CheXpert set under outRoot, generated once and reused.
 * Returns the dataset root (…/CheXpert-v1.0-small), ready for loadDataset.
 */
export async function ensureSyntheticChexpert(
  outRoot: string,
  opts: SynthChexpertOptions = {},
  w: WriteOptions & { log?: (msg: string) => void } = {},
): Promise<string> {
  const o = chexpertDefaults(opts);
  const final = join(outRoot, `chexpert-n${o.n}-s${o.size}-seed${o.seed}`);
  await ensureGenerated(final, { generator: "chexpert", version: SYNTH_VERSION, ...o }, (tmp) => {
    w.log?.(`generating synthetic CheXpert (${o.n} frontal images, ${o.size}px) in ${final}`);
    return writeSyntheticChexpert(tmp, o, w);
  });
  return join(final, "CheXpert-v1.0-small");
}

/** A synthetic Shenzhen set under outRoot, generated once and reused. Returns its root. */
export async function ensureSyntheticShenzhen(
  outRoot: string,
  opts: SynthShenzhenOptions = {},
  w: WriteOptions & { log?: (msg: string) => void } = {},
): Promise<string> {
  const o = shenzhenDefaults(opts);
  const final = join(outRoot, `shenzhen-n${o.n}-s${o.size}-seed${o.seed}`);
  await ensureGenerated(final, { generator: "shenzhen", version: SYNTH_VERSION, ...o }, (tmp) => {
    w.log?.(`generating synthetic Shenzhen (${o.n} images, ${o.size}px) in ${final}`);
    return writeSyntheticShenzhen(tmp, o, w);
  });
  return final;
}
