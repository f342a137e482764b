/**
 * Per-adapter autotuning of the GEMM-shaped kernels (matmul/bmm, the conv
 * forward and gradients).
 *
 * A kernel entry point that has several correct implementations (tile shapes,
 * Winograd or implicit GEMM or col2im) asks `choose(problem)` which to run.
 * The tuner answers from its cache when the problem was timed before; else it
 * answers the choice of the nearest shape it timed (`nearestLabel`: the same
 * op at other sizes), or failing that the caller's prior (the cost model or
 * the fixed default), and files the problem as pending. `tunePending()`
 * (called between training steps, or by a benchmark after its warm-up) then
 * times every candidate of every
 * pending problem on scratch operands of the same shape and keeps the fastest:
 * each candidate is run once to compile and warm up, then timed over a batch of
 * back-to-back calls, by GPU timestamps around the batch's compute passes where
 * the device has timestamp-query (all of a problem's candidates in the same
 * five submits, the timed batch in three rounds of alternating order, the
 * fastest kept), else as the difference of two submits of different lengths;
 * either way the timing measures throughput, not the queue's latency. Tuned
 * calls inside a candidate (Winograd's bmm) are tuned on its warm-up call,
 * before it is timed, so an algorithm is compared at its best inner tiles.
 *
 * The cache is keyed by adapter (vendor, architecture, device, description)
 * and problem key, and persists as JSON (`load`/`save`), so a second run
 * starts tuned; with `persistTo(path)` it is saved after every problem timed,
 * so a first run stopped while tuning (a time limit, Ctrl-C) keeps what it
 * timed; a save that fails (a full or read-only disk) is said once and saving
 * stops, the run going on with its choices. A record that never timed one of the problem's candidates (a tile
 * shape added since) has those timed against its choice when measuring, its
 * choice running meanwhile. Every candidate is forced in the CPU-reference
 * tests, so a choice changes results by float rounding at most.
 *
 * Modes: "measure" times pending problems; "cached" answers from the cache
 * and otherwise the nearest timed shape's choice or the prior, timing nothing;
 * "off" always answers the prior.
 * Hardware adapters default to "measure", software adapters to "off" (their
 * cost model was measured there, and compiling the fat kernels takes seconds
 * each, so timing them costs more than it could win in a short run).
 */
import type { Gpu } from "./device.ts";
import { isPermissionError, readTextOrNull, writeFileAtomic } from "../util/fs.ts";
import { UserError } from "../util/user_error.ts";

export type TuneMode = "off" | "cached" | "measure";
/** Every TuneMode, for flag parsing. */
export const TUNE_MODES: readonly TuneMode[] = ["measure", "cached", "off"];

/** One candidate: a JSON-able choice the entry point understands, and a short label. */
export interface Candidate<C> {
  label: string;
  choice: C;
}

/** A tunable call: its key, candidates (the prior first) and a scratch runner for timing. */
export interface Problem<C> {
  key: string;
  candidates: Candidate<C>[];
  /**
   * Makes scratch operands of the problem's shape and returns a function that
   * records one call with the given choice (its outputs disposed), plus a cleanup.
   */
  scratch: () => { run: (choice: C) => void; dispose: () => void };
}

export interface TuneRecord {
  label: string;
  choice: unknown;
  /** Milliseconds per call of each candidate timed, by label. */
  ms: Record<string, number>;
}

export interface TuneCacheFile {
  version: 1;
  adapters: Record<string, Record<string, TuneRecord>>;
}

const tuners = new WeakMap<Gpu, Tuner>();

/**
 * GPU time a candidate's timed batch aims at with timestamp queries (at most the caller's target):
 * nothing is subtracted, so ~10 ms of a GPU's 0.1-1.5 ms kernels is enough, where a submit
 * difference needs ~30 ms to rise above the submit's own jitter.
 */
const TIMESTAMP_TARGET_MS = 10;

/** Timed rounds of a problem's candidates (alternating order, fastest kept: see timeAllAtOnce). */
export const TIMED_ROUNDS = 3;

/** The tuner of a Gpu (created on first use with the adapter's default mode). */
export function tunerOf(gpu: Gpu): Tuner {
  let t = tuners.get(gpu);
  if (!t) tuners.set(gpu, t = new Tuner(gpu));
  return t;
}

/** The cache key of an adapter: what names the hardware and the driver. */
export function adapterKey(gpu: Gpu): string {
  const i = gpu.adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].map((s) => s || "-").join("|");
}

export class Tuner {
  mode: TuneMode;
  /** Problem key → the record chosen for this adapter. */
  private records: Record<string, TuneRecord> = {};
  /** Other adapters' records, kept so that `save` does not drop them. */
  private file: TuneCacheFile = { version: 1, adapters: {} };
  private pending = new Map<string, Problem<unknown>>();
  /** Keys being timed now (outer problems while their candidates' inner calls are tuned). */
  private inFlight = new Set<string>();
  /** Keys answered from a record, with the checked choice (see `settled`). */
  private settledChoices = new Map<string, unknown>();
  /** Problem key → label of what ran, for a run's run.json. */
  readonly used = new Map<string, string>();
  /** Milliseconds spent timing candidates so far. */
  tuningMs = 0;
  /**
   * Problems that could not be timed at all in this process (no scratch, no candidate ran): not
   * queued again, so a training loop does not retry them between every two steps.
   */
  private untimable = new Set<string>();
  /** Candidates that failed while being timed, with the reason (they are never chosen). */
  readonly failures: string[] = [];
  /** Where the cache is saved after every problem timed (persistTo), or null. */
  private persistPath: string | null = null;

  constructor(readonly gpu: Gpu) {
    this.mode = gpu.isSoftware ? "off" : "measure";
  }

  /**
   * The choice for a key that `choose` has already answered from a timing record (checked then
   * against the candidates), or undefined: callers look here first, so a tuned shape's call does
   * not rebuild its candidate list.
   */
  settled<C>(key: string): C | undefined {
    return this.settledChoices.get(key) as C | undefined;
  }

  /** The choice to run for a problem (the prior until it has been timed). */
  choose<C>(p: Problem<C>): C {
    const prior = p.candidates[0];
    if (this.mode === "off" || p.candidates.length < 2) {
      this.used.set(p.key, prior.label);
      return prior.choice;
    }
    const rec = this.records[p.key];
    const hit = rec && p.candidates.find((c) => c.label === rec.label);
    if (hit) {
      this.used.set(p.key, hit.label);
      // candidates the record never timed (added since: a new tile shape) are timed with the
      // rest when measuring; the recorded choice runs meanwhile
      const timed = timingsOf(rec) ?? {};
      const stale = this.mode === "measure" && p.candidates.some((c) => !(c.label in timed));
      if (!stale || this.untimable.has(p.key)) this.settledChoices.set(p.key, hit.choice);
      else if (!this.pending.has(p.key)) this.pending.set(p.key, p as Problem<unknown>);
      return hit.choice;
    }
    if (this.mode === "measure" && !this.pending.has(p.key) && !this.untimable.has(p.key)) {
      this.pending.set(p.key, p as Problem<unknown>);
    }
    // until it is timed (or, "cached", for good): the choice of the nearest shape this adapter
    // timed, where that is one of this problem's candidates; else the caller's prior
    const near = this.nearestLabel(p.key);
    const guess = (near !== null && p.candidates.find((c) => c.label === near)) || prior;
    this.used.set(p.key, guess.label);
    return guess.choice;
  }

  /** Nearest-record labels by key, memoised until the records change (load, a new timing). */
  private nearestMemo = new Map<string, string | null>();

  /**
   * The label recorded for the timed problem nearest to `key`: one whose key reads the same with
   * its numbers blanked (the same op, transposes, kernel geometry and storage; "conv_fwd:
   * 64x96x56x56>128:1x1/1p0" beside "…64x128x56x56>128…"), at the least Σ |ln(a / b)| over the
   * numbers (shapes off by factors, not by sums), ties to the first recorded; for an f16 key with
   * no f16 neighbour, that of the same key without its storage suffix. null: none.
   */
  nearestLabel(key: string): string | null {
    const memo = this.nearestMemo.get(key);
    if (memo !== undefined) return memo;
    const shape = key.replace(/\d+/g, "#"), nums = (key.match(/\d+/g) ?? []).map(Number);
    let best: string | null = null, bestD = Infinity;
    for (const [k, r] of Object.entries(this.records)) {
      if (k === key || k.replace(/\d+/g, "#") !== shape) continue;
      const other = (k.match(/\d+/g) ?? []).map(Number);
      const d = nums.reduce((s, v, i) => s + Math.abs(Math.log((v + 1) / (other[i] + 1))), 0);
      if (d < bestD) [best, bestD] = [r.label, d];
    }
    // an f16 shape no f16 record is near: the f32 record's choice (the labels are the same)
    const f32Key = key.replace(/:f16(>f(16|32))?$/, "");
    if (best === null && f32Key !== key) best = this.nearestLabel(f32Key);
    this.nearestMemo.set(key, best);
    return best;
  }

  /** Whether problems wait that no enclosing tuneProblems is timing (a candidate's inner calls). */
  private get innerPending(): boolean {
    return [...this.pending.keys()].some((k) => !this.inFlight.has(k));
  }

  /** Problems waiting to be timed. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * From now on, saves the cache to `path` after every problem timed (null: no longer): a first
   * run on a new GPU can spend a minute or more timing, and one stopped then keeps what it timed.
   */
  persistTo(path: string | null): void {
    this.persistPath = path;
  }

  /** Where persistTo saves, or null. */
  get persistedAt(): string | null {
    return this.persistPath;
  }

  /**
   * Times every candidate of every pending problem and records the fastest.
   * `targetMs` sizes the timed batch of each candidate (8 to 512 calls); `progress` hears the
   * count done and the total after each problem (its inner problems counted with it).
   */
  async tunePending(
    targetMs = 30,
    progress?: (done: number, total: number) => void,
  ): Promise<number> {
    const t0 = performance.now();
    try {
      return await this.tuneProblems(targetMs, progress ?? (() => {}));
    } finally {
      this.tuningMs += performance.now() - t0;
    }
  }

  /**
   * Times the pending problems not already being timed further up (`inFlight`). A candidate that
   * calls other tuned kernels (Winograd's 16 or 36 GEMMs are a bmm problem of their own) registers
   * them on its warm-up call; they are tuned then, before the candidate is timed, so an algorithm is
   * judged with its inner GEMMs at their best tiles, not at their priors. `outer` (the top level
   * only) hears each problem done, after the cache is saved where persistTo asked.
   */
  private async tuneProblems(
    targetMs: number,
    outer?: (done: number, total: number) => void,
  ): Promise<number> {
    const problems = [...this.pending.values()].filter((p) => !this.inFlight.has(p.key));
    for (const p of problems) {
      this.pending.delete(p.key);
      this.inFlight.add(p.key);
    }
    try {
      for (const [i, p] of problems.entries()) {
        try {
          await this.tuneOne(p, targetMs);
        } catch (e) {
          // a problem that cannot be timed at all here (its scratch operands do not fit, say)
          // keeps answering its prior; a lost device is not the tuner's to swallow
          if (this.gpu.lost) throw this.gpu.lost;
          this.gpu.clearCompileError();
          this.failures.push(`${p.key}: ${(e as Error).message.split("\n")[0]}`);
          this.untimable.add(p.key);
        }
        if (!outer) continue;
        await this.persist(); // its inner problems' too
        outer(i + 1, problems.length);
      }
    } finally {
      // a candidate that defers to the prior ({}) asked again while being timed
      for (const p of problems) {
        this.pending.delete(p.key);
        this.inFlight.delete(p.key);
      }
    }
    return problems.length;
  }

  /**
   * Times one problem's candidates and records the fastest (none ran: no record, the prior). A
   * stale record (one that never timed some current candidate: a tile added since) has only those
   * timed, against its own choice, in one batch: its other candidates already lost to that choice
   * on this adapter, so re-timing every one would multiply an upgraded cache's first run for
   * nothing. Their old timings stay in the record.
   */
  private async tuneOne(whole: Problem<unknown>, targetMs: number): Promise<void> {
    const old = this.records[whole.key];
    const oldMs = old ? timingsOf(old) : null;
    const stale = oldMs && whole.candidates.some((c) => c.label === old.label)
      ? whole.candidates.filter((c) => c.label === old.label || !(c.label in oldMs))
      : null;
    const p = stale ? { ...whole, candidates: stale } : whole;
    const s = p.scratch();
    let ms: Record<string, number> | null = null;
    try {
      ms = await this.timeAllAtOnce(p, s, targetMs);
      if (!ms) {
        ms = {};
        for (const c of p.candidates) {
          // a candidate that cannot run here (limits, a driver's compiler) is out, not fatal
          try {
            ms[c.label] = await this.time(() => s.run(c.choice), targetMs);
          } catch (e) {
            ms[c.label] = Infinity;
            this.gpu.clearCompileError();
            this.failures.push(`${p.key} ${c.label}: ${(e as Error).message.split("\n")[0]}`);
          }
        }
      }
    } finally {
      s.dispose();
    }
    const best = p.candidates.reduce((a, c) => (ms[c.label] < ms[a.label] ? c : a));
    if (!Number.isFinite(ms[best.label])) { // nothing ran: keep answering the prior (or record)
      this.untimable.add(p.key);
      return;
    }
    this.records[p.key] = { label: best.label, choice: best.choice, ms: { ...oldMs, ...ms } };
    this.nearestMemo.clear();
  }

  /**
   * Every candidate of a problem timed together, where the device has timestamp queries: one
   * submit warms them all up (compiling each; their inner tuned calls are tuned next, as in
   * `time`), one times each once, then TIMED_ROUNDS submits time each n times (n sized to
   * `targetMs`), each candidate a timed stretch (Gpu.timePasses): five submits a problem instead
   * of three a candidate, which on a GPU whose submit and wait cost ~10 ms is most of the tuning
   * time. null (time them one by one) without timestamps or when the shared warm-up fails (a
   * candidate that does not compile or run here, then found and dropped by the one-by-one path).
   */
  private async timeAllAtOnce<C>(
    p: Problem<C>,
    s: { run: (choice: C) => void },
    targetMs: number,
  ): Promise<Record<string, number> | null> {
    if (!this.gpu.hasTimestamps) return null;
    const warm = async () => {
      for (const c of p.candidates) s.run(c.choice);
      await this.gpu.sync();
    };
    try {
      await warm();
      if (this.innerPending) {
        await this.tuneProblems(targetMs);
        await warm(); // the inner choices just made
      }
    } catch {
      this.gpu.clearCompileError();
      return null;
    }
    const runs = (n: (i: number) => number) =>
      p.candidates.map((c, i) => () => {
        for (let k = 0; k < n(i); k++) s.run(c.choice);
      });
    const target = Math.min(targetMs, TIMESTAMP_TARGET_MS);
    try {
      const once = await this.gpu.timePasses(runs(() => 1));
      if (!this.gpu.hasTimestamps) return null; // its timestamps just proved useless (device.ts)
      const n = once.map((t) =>
        Math.min(512, Math.max(4, Math.ceil(target / Math.max(t ?? 1, 1e-3))))
      );
      // TIMED_ROUNDS rounds, the candidates' order reversed every other round, each candidate's
      // fastest round kept: a card that idled while the candidates compiled climbs back to its
      // clock during the first round (an H200: 345 to 1,980 MHz in ~200 ms of work, session 11),
      // which would otherwise favour whichever candidate is timed last
      const ms: Record<string, number> = {};
      for (const c of p.candidates) ms[c.label] = Infinity;
      const all = runs((i) => n[i]);
      for (let r = 0; r < TIMED_ROUNDS; r++) {
        const order = p.candidates.map((_, i) => r % 2 ? p.candidates.length - 1 - i : i);
        const many = await this.gpu.timePasses(order.map((i) => all[i]));
        if (!this.gpu.hasTimestamps) return null;
        order.forEach((i, k) => {
          const t = many[k], label = p.candidates[i].label;
          if (t !== null) ms[label] = Math.min(ms[label], Math.max(t / n[i], 1e-4));
        });
      }
      return ms;
    } catch {
      this.gpu.clearCompileError();
      return null; // one at a time instead, where a failing candidate is named and dropped
    }
  }

  /**
   * Milliseconds per call of `run`: after a warm-up call (which compiles, and registers the tuned
   * calls inside it: those are tuned first, see tuneProblems), the GPU time of n calls in one
   * compute pass by timestamp queries over n where the device has them (Gpu.timePasses); else the
   * difference between a submit of 1 + n calls and a submit of 1 call, over n, so the fixed cost
   * of a submit and its wait (~10 ms through Deno on an H200, more than most kernels take) cancels.
   * n sized to cover `targetMs` (4 to 512; 8 to 512 by difference).
   */
  private async time(run: () => void, targetMs: number): Promise<number> {
    const sync = () => this.gpu.sync();
    await submitMs(run, sync, 1); // compiles and warms up
    if (this.innerPending) {
      await this.tuneProblems(targetMs);
      await submitMs(run, sync, 1); // warms up the inner choices just made
    }
    // With timestamp queries: the GPU's own time of n calls (two submits, nothing to subtract;
    // a copy or clear inside a call is not counted); without, submit differences (perCallMs).
    const first = this.gpu.hasTimestamps ? 1 : 8;
    if (this.gpu.hasTimestamps) targetMs = Math.min(targetMs, TIMESTAMP_TARGET_MS);
    let per = await perCallMs(this.gpu, run, first);
    const n = Math.min(
      512,
      Math.max(first === 1 ? 4 : 8, Math.ceil(targetMs / Math.max(per, 1e-3))),
    );
    if (n > first) per = await perCallMs(this.gpu, run, n);
    return per;
  }

  /**
   * Saves where persistTo asked. A save that fails (a read-only or full disk, the path made a
   * folder since the run checked it) is said once and saving stops: the run goes on with its
   * choices, which a later run times again.
   */
  private async persist(): Promise<void> {
    const path = this.persistPath;
    if (!path) return;
    try {
      await this.save(path);
    } catch (e) {
      this.persistPath = null;
      console.warn(
        `warning: could not save the kernel tuning cache ${path} ` +
          `(${(e as Error).message.split("\n")[0]}); this run goes on with its choices unsaved, ` +
          `and a later run times them again`,
      );
    }
  }

  /** The records for this adapter, by problem key. */
  get table(): Readonly<Record<string, TuneRecord>> {
    return this.records;
  }

  /** Loads a cache file's records for this adapter (a missing file is an empty cache). */
  async load(path: string): Promise<void> {
    const file = await readCache(path);
    if (!file) return;
    this.file = file;
    this.records = { ...(file.adapters[adapterKey(this.gpu)] ?? {}), ...this.records };
    this.settledChoices.clear();
    this.nearestMemo.clear();
  }

  /**
   * Writes the cache atomically: this adapter's records over what the file holds now, so two runs
   * tuning into one cache (two jobs on a shared machine) keep each other's records; other
   * adapters' records are kept. A file damaged since it was loaded is replaced.
   */
  async save(path: string): Promise<void> {
    let now: TuneCacheFile | null = null;
    try {
      now = await readCache(path);
    } catch (e) {
      if (!(e instanceof TuneCacheError)) throw e;
    }
    const key = adapterKey(this.gpu);
    this.file = {
      version: 1,
      adapters: {
        ...this.file.adapters,
        ...now?.adapters,
        [key]: { ...now?.adapters[key], ...this.records },
      },
    };
    await writeFileAtomic(path, JSON.stringify(this.file, null, 1));
  }

  /**
   * Between training steps: times what is pending (nothing after the first step, normally),
   * saving as persistTo asked after each shape. `log` hears one line before, one after, and one
   * every `progressMs` in between (a first run on a new GPU can spend a minute or more here, so a
   * run says how far it is rather than look stalled).
   */
  async settle(log?: (line: string) => void, progressMs = 10_000): Promise<void> {
    if (this.pending.size === 0) return;
    const n = this.pending.size, t0 = performance.now(), path = this.persistPath;
    const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
    log?.(
      `kernel tuning: timing ${n} kernel shape${n === 1 ? "" : "s"} on this adapter` +
        (path ? ` (once: the choices are kept in ${path})` : ""),
    );
    let said = t0;
    const timed = await this.tunePending(30, (done, total) => {
      if (done === total || performance.now() - said < progressMs) return;
      said = performance.now();
      log?.(`kernel tuning: ${done} of ${total} shapes timed, ${secs()} s`);
    });
    log?.(
      `kernel tuning: ${timed} shape${
        timed === 1 ? "" : "s"
      } timed (with their inner GEMMs) in ${secs()} s`,
    );
  }

  /** What ran for each problem seen so far: key → candidate label (for run.json). */
  summary(): Record<string, string> {
    return Object.fromEntries(this.used);
  }
}

/** A record's timings by label, or null when a damaged cache file left something else there. */
function timingsOf(r: TuneRecord): Record<string, number> | null {
  return typeof r.ms === "object" && r.ms !== null ? r.ms : null;
}

/** A tuning cache file that cannot be read as one (the user's to delete or move). */
export class TuneCacheError extends UserError {
  override name = "TuneCacheError";
}

/** A JSON object (not null, not a list). */
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A cache file's contents, null when there is none, or a TuneCacheError naming what is wrong: not
 * a file, not JSON, not version 1, or a record that is not an object with a label (whatever else a
 * damaged record holds is tolerated: its timings are retaken, timingsOf). A denied read is thrown
 * as it is (a permission problem).
 */
async function readCache(path: string): Promise<TuneCacheFile | null> {
  let text: string | null;
  try {
    const info = await Deno.stat(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
    if (info !== null && !info.isFile) {
      throw new TuneCacheError(
        `${path} is ${info.isDirectory ? "a folder" : "not a regular file"}, not a tuning cache ` +
          `file; move it away, or give another path for the cache`,
      );
    }
    text = await readTextOrNull(path);
  } catch (e) {
    if (e instanceof TuneCacheError || isPermissionError(e)) throw e;
    throw new TuneCacheError(`${path}: cannot read the tuning cache (${(e as Error).message})`);
  }
  if (text === null) return null;
  let file: TuneCacheFile;
  try {
    file = JSON.parse(text);
  } catch {
    throw new TuneCacheError(`${path} is not a tuning cache (invalid JSON); delete it to retune`);
  }
  if (file?.version !== 1 || !isObject(file.adapters)) {
    throw new TuneCacheError(`${path} is not a version-1 tuning cache; delete it to retune`);
  }
  for (const [adapter, records] of Object.entries(file.adapters)) {
    const bad = !isObject(records)
      ? `adapter "${adapter}" holds ${JSON.stringify(records)}, not records`
      : Object.entries(records).filter(([, r]) => !isObject(r) || typeof r.label !== "string")
        .map(([key]) => `record "${key}" of adapter "${adapter}" has no label`)[0];
    if (bad) throw new TuneCacheError(`${path} is damaged (${bad}); delete it to retune`);
  }
  return file;
}

/** Wall ms of `calls` calls of `run` recorded back to back, then `sync`. */
export async function submitMs(
  run: () => void,
  sync: () => Promise<void>,
  calls: number,
): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < calls; i++) run();
  await sync();
  return performance.now() - t;
}

/**
 * ms per call of n back-to-back calls of `run`: the GPU's own time by timestamp queries where the
 * device has them (Gpu.timePasses), else by submit difference (msPerCall). What the tuner and
 * the benchmarks time with.
 */
export async function perCallMs(gpu: Gpu, run: () => void, n: number): Promise<number> {
  const [t] = await gpu.timePasses([() => {
    for (let i = 0; i < n; i++) run();
  }]);
  return t !== null ? Math.max(t / n, 1e-4) : await msPerCall(run, () => gpu.sync(), n);
}

/** How perCallMs times on this device, for a benchmark's header. */
export function timingMethod(gpu: Gpu): string {
  return gpu.hasTimestamps
    ? "GPU timestamps around the calls' compute passes"
    : "submit difference (1 + n calls minus 1 call; no timestamp-query)";
}

/**
 * ms per call at full queue occupancy: (one submit of 1 + n calls − one submit of 1 call) / n,
 * so the fixed cost of a submit and its wait (~10 ms through Deno on an H200) cancels.
 * The tuner and the benchmarks (bench/harness.ts, bench/peak.ts) time this way.
 */
export async function msPerCall(
  run: () => void,
  sync: () => Promise<void>,
  n: number,
): Promise<number> {
  const one = await submitMs(run, sync, 1);
  return Math.max((await submitMs(run, sync, 1 + n)) - one, 1e-4) / n;
}
