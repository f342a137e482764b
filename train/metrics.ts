/** Per-run metrics as JSON lines: one object per logged step or evaluation, appended. */
export class MetricsLog {
  private file: Deno.FsFile;
  private enc = new TextEncoder();

  private constructor(file: Deno.FsFile) {
    this.file = file;
  }

  /** Opens for append; on resume, lines past `keepUpToStep` (from the killed run) are dropped. */
  static async open(path: string, keepUpToStep?: number): Promise<MetricsLog> {
    if (keepUpToStep !== undefined) {
      let text = "";
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      const kept = text.split("\n").filter((l) => {
        if (!l.trim()) return false;
        try {
          const step = JSON.parse(l).step;
          return typeof step !== "number" || step <= keepUpToStep;
        } catch {
          return false; // a half-written last line from a killed run
        }
      });
      await Deno.writeTextFile(path, kept.map((l) => l + "\n").join(""));
    }
    return new MetricsLog(await Deno.open(path, { append: true, create: true }));
  }

  write(obj: Record<string, unknown>): void {
    this.file.writeSync(this.enc.encode(JSON.stringify(obj) + "\n"));
  }

  close(): void {
    this.file.close();
  }
}

export async function readMetrics(path: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return [];
    }
  });
}

/** What a resumed run needs of the steps before it to summarise the whole run. */
export interface LossHistory {
  /** Loss of the run's first step (NaN when none was logged). */
  firstLoss: number;
  /** Loss of the last logged step. */
  lastLoss: number;
  /** Per 1-based epoch: sum and count of the contrastive accuracy of its logged steps. */
  accByEpoch: Map<number, { sum: number; count: number }>;
}

/** Summarises the step records (those with a loss) of a metrics log, up to `upToStep`. */
export function lossHistory(records: Record<string, number>[], upToStep: number): LossHistory {
  const h: LossHistory = { firstLoss: NaN, lastLoss: NaN, accByEpoch: new Map() };
  for (const r of records) {
    if (typeof r.loss !== "number" || !(r.step <= upToStep)) continue;
    if (Number.isNaN(h.firstLoss)) h.firstLoss = r.loss;
    h.lastLoss = r.loss;
    const e = h.accByEpoch.get(r.epoch) ?? { sum: 0, count: 0 };
    e.sum += r.acc;
    e.count++;
    h.accByEpoch.set(r.epoch, e);
  }
  return h;
}
