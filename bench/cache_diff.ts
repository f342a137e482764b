/**
 * Two tuning caches compared shape by shape: what a kernel change did on a card, read off the
 * caches its tuner wrote, with no more device time.
 *
 *   deno run --allow-read bench/cache_diff.ts OLD.json NEW.json [--adapter SUBSTRING] [--top N]
 *
 * For every problem key both caches hold (for the adapter whose key contains SUBSTRING, else
 * the first adapter of each file), a row gives the fastest time each recorded, its label and
 * new/old; rows are sorted by the time saved, largest first. The totals sum the common keys. A
 * record keeps the timings of every candidate it timed, so a stale record that re-timed only its
 * choice and the new candidates (kernels/tuner.ts) still compares its fastest with the old one.
 * Both runs' timings are GPU timestamps at the card's clock; read a difference under a few
 * percent as noise.
 */
import { parseArgs } from "node:util";
import type { TuneCacheFile, TuneRecord } from "../kernels/tuner.ts";

export interface DiffRow {
  key: string;
  oldMs: number;
  oldLabel: string;
  newMs: number;
  newLabel: string;
}

/** The fastest finite timing of a record and its label (the record's own choice when none). */
export function fastest(r: TuneRecord): { ms: number; label: string } {
  const ms = typeof r.ms === "object" && r.ms !== null ? r.ms : {};
  let best = { ms: Infinity, label: r.label };
  for (const [label, t] of Object.entries(ms)) {
    if (Number.isFinite(t) && t < best.ms) best = { ms: t, label };
  }
  return best;
}

/** One adapter's records: the one whose key contains `adapter`, else the file's first. */
export function adapterRecords(
  file: TuneCacheFile,
  adapter?: string,
): { key: string; records: Record<string, TuneRecord> } {
  const keys = Object.keys(file.adapters ?? {});
  const key = adapter ? keys.find((k) => k.includes(adapter)) : keys[0];
  if (key === undefined) {
    throw new Error(
      adapter ? `no adapter matching "${adapter}" (has: ${keys.join("; ")})` : "no adapters",
    );
  }
  return { key, records: file.adapters[key] };
}

/** Rows for the keys both hold with a finite timing, the most time saved first. */
export function diffRecords(
  before: Record<string, TuneRecord>,
  after: Record<string, TuneRecord>,
): DiffRow[] {
  const rows: DiffRow[] = [];
  for (const key of Object.keys(before)) {
    if (!(key in after)) continue;
    const a = fastest(before[key]), b = fastest(after[key]);
    if (!Number.isFinite(a.ms) || !Number.isFinite(b.ms)) continue;
    rows.push({ key, oldMs: a.ms, oldLabel: a.label, newMs: b.ms, newLabel: b.label });
  }
  return rows.sort((x, y) => (y.oldMs - y.newMs) - (x.oldMs - x.newMs));
}

async function readCacheFile(path: string): Promise<TuneCacheFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  try {
    const f = JSON.parse(text);
    if (f?.version === 1 && typeof f.adapters === "object" && f.adapters) return f;
  } catch { /* below */ }
  throw new Error(`${path} is not a version-1 tuning cache`);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { adapter: { type: "string" }, top: { type: "string", default: "40" } },
    allowPositionals: true,
  });
  try {
    if (positionals.length !== 2) {
      throw new Error("usage: cache_diff.ts OLD.json NEW.json [--adapter SUBSTRING] [--top N]");
    }
    const top = Number(values.top);
    if (!(Number.isInteger(top) && top > 0)) throw new Error(`--top ${values.top}: a count`);
    const [a, b] = await Promise.all(positionals.map(readCacheFile));
    const old = adapterRecords(a, values.adapter), now = adapterRecords(b, values.adapter);
    const rows = diffRecords(old.records, now.records);
    console.log(`old: ${positionals[0]} (${old.key}), new: ${positionals[1]} (${now.key})`);
    console.log(`${rows.length} shapes in both`);
    for (const r of rows.slice(0, top)) {
      console.log(
        `${r.oldMs.toFixed(4).padStart(8)} -> ${r.newMs.toFixed(4).padStart(8)} ms ` +
          `(${(r.newMs / r.oldMs).toFixed(2)}x)  ${r.key}  [${r.oldLabel} -> ${r.newLabel}]`,
      );
    }
    const sum = (f: (r: DiffRow) => number) => rows.reduce((s, r) => s + f(r), 0);
    const so = sum((r) => r.oldMs), sn = sum((r) => r.newMs);
    console.log(`total ${so.toFixed(3)} -> ${sn.toFixed(3)} ms (${(sn / so).toFixed(3)}x)`);
  } catch (e) {
    console.error(`cache_diff: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
