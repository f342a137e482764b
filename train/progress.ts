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

export class Progress {
  private tty = Deno.stdout.isTerminal();
  private lastPlain = 0;
  private enc = new TextEncoder();
  private startedAt = performance.now();
  private startStep: number | null = null;

  constructor(private label: string, private plainEverySec = 10) {}

  line(f: ProgressFields): string {
    if (this.startStep === null) {
      this.startStep = f.step - 1;
      this.startedAt = performance.now();
    }
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const done = f.step - this.startStep;
    const eta = done > 0 ? (elapsed / done) * (f.totalSteps - f.step) : NaN;
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
      const now = performance.now();
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
