/** Public API of eval/: AUC statistics, results computation and I/O, and the HTML report. */
export {
  auc,
  type BinaryPredictions,
  checkPredictions,
  type ClassCounts,
  EvalInputError,
  midranks,
  type RocCurve,
  rocCurve,
  thinRoc,
} from "./auc.ts";
export {
  type AucTerm,
  bootstrapAuc,
  bootstrapContrast,
  type BootstrapOptions,
  type BootstrapResult,
  pairedBootstrap,
  quantileSorted,
  type SharedResample,
  sharedResample,
} from "./bootstrap.ts";
export {
  delong,
  delongContrast,
  type DelongCovariance,
  delongCovariance,
  delongPaired,
  type DelongTest,
} from "./delong.ts";
export { erfc, normalCdf, normalQuantile, twoSidedP } from "./normal.ts";
export { type DrawPair, pairedDifference, type PairedDifferenceStats } from "./paired.ts";
export {
  seedDifference,
  type SeedDifferenceStats,
  type SeedPairs,
  studentTCdf,
  studentTQuantile,
} from "./seeds.ts";
export {
  type CellKey,
  cellName,
  type CellPredictions,
  type CellResult,
  checkCellKey,
  checkIds,
  computeResults,
  DEFAULT_COMPARISONS,
  formatFraction,
  type Init,
  INITS,
  MEAN_TASK,
  type PairedDifference,
  type Protocol,
  PROTOCOLS,
  type Results,
  RESULTS_SCHEMA,
  type ResultsOptions,
  type ResultsSettings,
  type SummaryRow,
} from "./results.ts";
export { readResults, RESULTS_FILES, resultsToCsv, writeResults } from "./results_io.ts";
export { writeFileAtomic } from "../util/fs.ts";
export {
  codeVersion,
  type GradCamFile,
  type GradCamItem,
  gradCamItem,
  listPretrainMetrics,
  type MetricsRow,
  parseMetrics,
  PREDICTIONS_FORMAT,
  type PredictionsFile,
  predictionsFileName,
  readMetricsFile,
  readPredictionsFile,
  readRunGradCams,
  readRunMetadata,
  readRunPredictions,
  writePredictionsFile,
} from "./run_files.ts";
export { alignScores, parseScoresCsv, readScoresCsv, type ScoresTable } from "./scores_csv.ts";
export {
  BELOW_CHANCE,
  belowChance,
  belowChanceWarning,
  computeHeadline,
  type Headline,
  LOW_FRACTION_MAX,
  type ProtocolVerdict,
  type Verdict,
  verdictOf,
} from "./headline.ts";
export { buildReport, type ReportInput } from "./report.ts";
export { isSyntheticRoot, keyFacts } from "./report/prose.ts";
export {
  type CurveSeries,
  type Panel,
  pretrainPanels,
  type ProbeCheck,
  probeChecks,
  rocPanels,
  trainingPanels,
} from "./report_data.ts";
export { linePlot, type PlotSeries, type PlotSpec } from "./svg_plot.ts";
export { pngDataUri } from "./png.ts";
export { colormap, type ColormapName, inferno, jet } from "./colormap.ts";
export {
  colorbarRaster,
  grayRaster,
  heatRaster,
  normalizeMinMax,
  overlayRaster,
  resizeBilinear,
} from "./heatmap.ts";
export {
  fmtAuc,
  fmtCi,
  fmtCiP,
  fmtDiff,
  fmtP,
  INIT_COLOR,
  INIT_LABEL,
  PROTOCOL_LABEL,
} from "./format.ts";
export { newDocument, parseDocument } from "./dom.ts";
export { evaluateRun } from "./evaluate_run.ts";
