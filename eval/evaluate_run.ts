/**
 * A run folder's evaluation: reads predictions/, metrics/, gradcam/ and run.json
 * (layout in run_files.ts), computes every AUC, CI and paired difference, and
 * writes results.json/csv, summary.csv, differences.csv and report.html.
 * Used by `deno task evaluate --run` and at the end of `deno task experiment`.
 */
import { join } from "node:path";
import { EvalInputError } from "./auc.ts";
import { computeResults, formatFraction } from "./results.ts";
import { RESULTS_FILES, writeResults } from "./results_io.ts";
import {
  listPretrainMetrics,
  type MetricsRow,
  readMetricsFile,
  readRunGradCams,
  readRunMetadata,
  readRunPredictions,
} from "./run_files.ts";
import { codeVersion } from "./run_files.ts";
import { buildReport } from "./report.ts";
import { pretrainPanels, probeChecks, rocPanels, trainingPanels } from "./report_data.ts";
import { belowChance, belowChanceWarning, computeHeadline } from "./headline.ts";
import { fmtAuc, fmtCi, fmtCiP, fmtDiff, fmtP, INIT_LABEL } from "./format.ts";
import { writeFileAtomic } from "../util/fs.ts";

/** The run folder may not be written here (the sandbox); evaluateRun checks before computing. */
export class RunFolderNotWritableError extends EvalInputError {
  override name = "RunFolderNotWritableError";
  constructor(readonly runDir: string) {
    super(`no permission to write into ${runDir}; move or copy the run folder where it may`);
  }
}

/**
 * Recomputes a run folder's statistics (AUCs, bootstrap and DeLong CIs, paired differences) and
 * rewrites its results files and report.html from the predictions alone.
 */
export async function evaluateRun(
  runDir: string,
  opts: {
    replicates: number;
    seed: number;
    level: number;
    title?: string;
    colormap: "jet" | "inferno";
  },
  log: (msg: string) => void = console.log,
): Promise<void> {
  const cells = await readRunPredictions(runDir);
  // Fail before the computation, not after it, when the folder is not writable here.
  if ((await Deno.permissions.query({ name: "write", path: runDir })).state !== "granted") {
    throw new RunFolderNotWritableError(runDir);
  }
  log(
    `${runDir}: ${cells.length} prediction files; computing AUCs, CIs and paired differences…`,
  );
  const results = computeResults(cells, opts);

  const metrics = new Map<string, MetricsRow[]>();
  for (const file of new Set(cells.map((c) => c.metrics_file).filter((f) => f !== undefined))) {
    try {
      metrics.set(file, await readMetricsFile(join(runDir, file)));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      results.warnings.push(`metrics file ${file} (named by a predictions file) does not exist`);
    }
  }
  const pretrain = new Map<string, MetricsRow[]>();
  for (const file of await listPretrainMetrics(runDir)) {
    pretrain.set(file, await readMetricsFile(join(runDir, file)));
  }
  const written = await writeResults(runDir, results);
  const metadata = await readRunMetadata(runDir);
  const queueSize = (metadata?.config as { pretrain?: { moco?: { queueSize?: unknown } } })
    ?.pretrain?.moco?.queueSize;
  const html = buildReport({
    results,
    title: opts.title,
    runName: runDir.replace(/\/+$/, "").split("/").pop(),
    roc: rocPanels(cells),
    training: [
      ...pretrainPanels(pretrain, {
        queueSize: typeof queueSize === "number" ? queueSize : undefined,
      }),
      ...trainingPanels(cells, metrics),
    ],
    probes: probeChecks(cells, metrics),
    pretrainSteps: [...pretrain.values()].map((rows) => Math.max(0, ...rows.map((x) => x.step))),
    codeVersion: await codeVersion(),
    gradcam: await readRunGradCams(runDir),
    gradcamColormap: opts.colormap,
    metadata,
    files: Object.values(RESULTS_FILES),
  });
  const reportPath = join(runDir, "report.html");
  await writeFileAtomic(reportPath, html);
  written.push(reportPath);

  const mainTask = results.summary.some((s) => s.task === "mean")
    ? "mean"
    : results.summary[0].task;
  log(`\nTest AUC [${Math.round(opts.level * 100)}% CI], task ${mainTask}:`);
  for (const s of results.summary.filter((x) => x.task === mainTask)) {
    log(
      `  ${s.backbone.padEnd(10)} ${s.protocol.padEnd(6)} ${
        formatFraction(s.fraction).padStart(6)
      } ` +
        `${INIT_LABEL[s.init].padEnd(11)} ${fmtAuc(s.auc)} ${fmtCi(s.ci)}` +
        (s.n_draws > 1 ? `  (${s.n_draws} draws)` : "") +
        (s.n_seeds > 1 ? `  (${s.n_seeds} seeds, sd ${s.seed_sd.toFixed(3)})` : ""),
    );
  }
  const diffs = results.differences.filter((d) => d.task === mainTask);
  if (diffs.length > 0) {
    log(
      `\nDifferences [${Math.round(opts.level * 100)}% CI] and the p of the same test (the ` +
        `paired bootstrap's, or with several seeds the seed-level t's; DeLong's in brackets):`,
    );
  }
  for (const d of diffs) {
    const s = d.seeds;
    log(
      `  ${d.backbone.padEnd(10)} ${d.protocol.padEnd(6)} ${
        formatFraction(d.fraction).padStart(6)
      } ` +
        `${INIT_LABEL[d.init]} − ${INIT_LABEL[d.baseline]} ${fmtDiff(d.diff)} ` +
        `${fmtCi(d.ci, fmtDiff)} ${fmtCiP(d, opts.replicates)}` +
        (!s && d.p_delong !== null ? ` (DeLong ${fmtP(d.p_delong)})` : "") +
        (s
          ? `  seeds ${
            s.seed_diffs.map(fmtDiff).join(" ")
          } (${s.seeds_positive}/${s.n_seeds} > 0; ` +
            `${Math.round(100 * s.seed_share)}% of the variance from seeds, net of test-image ` +
            `noise; test-only CI ` +
            `${fmtCi(s.ci_test, fmtDiff)})`
          : ""),
    );
  }
  log(`\n${computeHeadline(results).text}`);
  for (const w of results.warnings) log(`warning: ${w}`);
  for (const s of belowChance(results)) log(`warning: ${belowChanceWarning(s)}`);
  log(`\nwrote:\n${written.map((p) => `  ${p}`).join("\n")}`);
}
