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
