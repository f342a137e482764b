/**
 * The progress line: redrawn in place on a terminal, printed as plain lines
 * (at most every `plainEverySec` seconds) when output goes to a file or CI log.
 */
export interface ProgressFields {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  acc?: number;
  lr: number;
  imgPerSec: number;
  extra?: string;
}

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Steps the ETA's rate is measured over: the recent pace, not the average since the start. */
export const ETA_WINDOW = 20;

export class Progress {
  private tty = Deno.stdout.isTerminal();
  private lastPlain = 0;
  private enc = new TextEncoder();
  /** (step, ms) of the latest updates, oldest first: the first update only starts the clock. */
  private recent: [number, number][] = [];

  constructor(
    private label: string,
    private plainEverySec = 10,
    private now: () => number = () => performance.now(),
  ) {}

  /**
   * Remaining time at the pace of the last ETA_WINDOW steps: the first steps (pipeline builds,
   * cold caches) are slower, and an average since the start would keep the ETA nearly flat
   * while the throughput climbs.
   */
  private eta(f: ProgressFields): number {
    const t = this.now();
    this.recent.push([f.step, t]);
    if (this.recent.length > ETA_WINDOW + 1) this.recent.shift();
    const [s0, t0] = this.recent[0], [s1, t1] = this.recent[this.recent.length - 1];
    const done = s1 - s0;
    return done > 0 ? ((t1 - t0) / 1000 / done) * (f.totalSteps - f.step) : NaN;
  }

  line(f: ProgressFields): string {
    const eta = this.eta(f);
    const acc = f.acc === undefined ? "" : ` acc ${(100 * f.acc).toFixed(1)}%`;
    return `${this.label} step ${f.step}/${f.totalSteps} ep ${f.epoch} loss ${
      f.loss.toFixed(4)
    }${acc} lr ${f.lr.toExponential(2)} ${f.imgPerSec.toFixed(1)} img/s ETA ${formatEta(eta)}${
      f.extra ? " " + f.extra : ""
    }`;
  }

  update(f: ProgressFields): void {
    const text = this.line(f);
    if (this.tty) {
      Deno.stdout.writeSync(this.enc.encode(`\r\x1b[2K${text}`));
    } else {
      const now = this.now();
      if (now - this.lastPlain >= this.plainEverySec * 1000 || f.step === f.totalSteps) {
        console.log(text);
        this.lastPlain = now;
      }
    }
  }

  /** Ends a redrawn line before other output. */
  log(msg: string): void {
    if (this.tty) Deno.stdout.writeSync(this.enc.encode("\r\x1b[2K"));
    console.log(msg);
  }

  done(): void {
    if (this.tty) Deno.stdout.writeSync(this.enc.encode("\n"));
  }
}
