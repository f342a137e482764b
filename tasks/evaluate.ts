/**
 * deno task evaluate: (re)computes a run's results and report, or compares two prediction CSVs.
 *
 *   deno task evaluate --run runs/<dir>          reads runs/<dir>/predictions/*.json (format in
 *       eval/run_files.ts) and writes results.json, results.csv, summary.csv, differences.csv
 *       and report.html into runs/<dir>
 *   deno task evaluate --scores a.csv [--compare b.csv]
 *       AUC [CI] of each CSV (columns id,label,score) and the paired difference a − b
 *       (DeLong and bootstrap)
 */
import { parseArgs } from "node:util";
import {
  alignScores,
  bootstrapAuc,
  delong,
  delongPaired,
  EvalInputError,
  fmtAuc,
  fmtCi,
  fmtDiff,
  fmtP,
  pairedBootstrap,
  readScoresCsv,
} from "../eval/mod.ts";
import { evaluateRun } from "../eval/evaluate_run.ts";
import { explainTyped } from "../cli/explain.ts";
import { describeRange, inRange, type NumSpecs, SEED } from "../cli/flags.ts";

const USAGE = `Usage:
  deno task evaluate --run runs/<dir> [options]
      Recompute results and report.html of a run folder from its predictions/*.json.
  deno task evaluate --scores a.csv [--compare b.csv] [options]
      AUC with 95% CIs of a prediction CSV (columns id,label,score), and the paired
      difference a − b when --compare is given (both files must hold the same ids).

Options:
  --replicates N   bootstrap resamples, at least 2 (default 1000)
  --seed S         bootstrap seed (default 0)
  --level L        confidence level (default 0.95)
  --title T        report title (run mode)
  --colormap NAME  Grad-CAM colormap: inferno (default; perceptually uniform, colour-blind safe)
                   or jet
  -h, --help       show this help

The two modes draw their own bootstrap resamples (--run seeds a stream per cell and comparison,
--scores one from --seed), so the same predictions get slightly different bootstrap CIs in each:
they agree within Monte-Carlo error, which more --replicates shrinks (DeLong's draw nothing).

Run folder layout (see eval/run_files.ts): predictions/<cell>.json (required),
metrics/*.jsonl, gradcam/*.json and run.json (optional).`;

export interface Io {
  log: (msg: string) => void;
  error: (msg: string) => void;
}

/** Ranges of the numeric flags. */
export const EVALUATE_NUMERIC = {
  // 2 at least: a CI needs a spread, and the seed-level analysis a variance of replicates.
  replicates: { min: 2, max: 1_000_000, int: true },
  seed: SEED,
  level: { min: 0, max: 1, above: true, below: true },
} satisfies NumSpecs;

function numberOpt(
  v: string | undefined,
  name: keyof typeof EVALUATE_NUMERIC,
  def: number,
): number {
  if (v === undefined) return def;
  const x = Number(v), spec = EVALUATE_NUMERIC[name];
  if (v.trim() === "" || !inRange(x, spec)) {
    throw new EvalInputError(`--${name} must be ${describeRange(spec)}, got "${v}"`);
  }
  return x;
}

/** Runs the command; returns the exit code (0 ok, 1 bad input or failure, 2 usage). */
export async function main(
  args: string[],
  io: Io = { log: console.log, error: console.error },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        run: { type: "string" },
        scores: { type: "string" },
        compare: { type: "string" },
        replicates: { type: "string" },
        seed: { type: "string" },
        level: { type: "string" },
        title: { type: "string" },
        colormap: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    io.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    io.log(USAGE);
    return 0;
  }
  if ((v.run === undefined) === (v.scores === undefined)) {
    io.error(`error: give exactly one of --run or --scores\n\n${USAGE}`);
    return 2;
  }
  if (v.compare !== undefined && v.scores === undefined) {
    io.error(`error: --compare needs --scores\n\n${USAGE}`);
    return 2;
  }
  try {
    const opts = {
      replicates: numberOpt(v.replicates, "replicates", 1000),
      seed: numberOpt(v.seed, "seed", 0),
      level: numberOpt(v.level, "level", 0.95),
    };
    const colormap = v.colormap ?? "inferno";
    if (colormap !== "jet" && colormap !== "inferno") {
      throw new EvalInputError(`--colormap ${colormap}: use jet or inferno`);
    }
    if (v.run !== undefined) {
      await evaluateRun(v.run, { ...opts, title: v.title, colormap }, io.log);
    } else {
      await compareScores(v.scores!, v.compare, opts, io);
    }
    return 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      io.error(
        `error: ${(e as Error).message}; deno task evaluate may read anywhere but write only ` +
          `under runs/: keep run folders in runs/.`,
      );
    } else if (
      e instanceof EvalInputError || e instanceof Deno.errors.NotFound || e instanceof RangeError
    ) {
      io.error(`error: ${explainTyped(e) ?? (e as Error).message}`);
    } else {
      throw e;
    }
    return 1;
  }
}

async function compareScores(
  pathA: string,
  pathB: string | undefined,
  opts: { replicates: number; seed: number; level: number },
  io: Io,
): Promise<void> {
  const a = await readScoresCsv(pathA);
  const pct = `${Math.round(opts.level * 100)}%`;
  const describe = (path: string, t: { labels: ArrayLike<number>; scores: ArrayLike<number> }) => {
    const b = bootstrapAuc(t.labels, t.scores, { ...opts, what: path });
    let pos = 0;
    for (let i = 0; i < t.labels.length; i++) pos += t.labels[i];
    const lines = [
      `${path}: AUC ${fmtAuc(b.estimate)}, n = ${t.labels.length} (${pos} positive)`,
      `  bootstrap ${pct} CI ${fmtCi(b.ci)} (${opts.replicates} resamples, seed ${opts.seed}` +
      (b.redrawn > 0 ? `, ${b.redrawn} redrawn for a missing class` : "") + ")",
    ];
    try {
      const d = delong(t.labels, t.scores, { level: opts.level, what: path });
      lines.push(
        `  DeLong    ${pct} CI ${fmtCi(d.ci)}, SE ${d.se.toFixed(4)}, vs 0.5: ${fmtP(d.p)}`,
      );
    } catch (e) {
      if (!(e instanceof EvalInputError)) throw e;
      lines.push(`  DeLong: ${e.message}`);
    }
    io.log(lines.join("\n"));
  };
  describe(pathA, a);
  if (pathB === undefined) return;
  const b = alignScores(a, await readScoresCsv(pathB), pathA, pathB);
  describe(pathB, b);
  const what = `${pathA} vs ${pathB}`;
  const pb = pairedBootstrap(a.labels, a.scores, b.scores, { ...opts, what });
  const boot =
    `  bootstrap ${pct} CI ${fmtCi(pb.ci, fmtDiff)}, ${
      fmtP(pb.p, { replicates: opts.replicates })
    } (${opts.replicates} paired resamples` +
    (pb.redrawn > 0 ? `, ${pb.redrawn} redrawn for a missing class` : "") + ")";
  let lines: string[];
  try {
    const d = delongPaired(a.labels, a.scores, b.scores, { level: opts.level, what });
    lines = [
      `  DeLong    ${pct} CI ${fmtCi(d.ci, fmtDiff)}, z = ${d.z.toFixed(2)}, ${fmtP(d.p)} ` +
      `(AUC correlation ${d.correlation.toFixed(2)})`,
      boot,
    ];
  } catch (e) {
    if (!(e instanceof EvalInputError)) throw e;
    // DeLong needs 2 examples of each class; the bootstrap still works (redrawing resamples).
    lines = [`  DeLong: not computed (${e.message}); bootstrap only`, boot];
  }
  io.log(
    [
      `\nPaired difference (${pathA}) − (${pathB}): ΔAUC ${
        fmtDiff(pb.estimate)
      } on ${a.ids.length} shared ids`,
      ...lines,
    ].join("\n"),
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
