/**
 * MoCo-CXR in Deno + WebGPU, as a library: what a researcher scripting their own experiment
 * imports. The commands (`deno task pretrain`, `finetune`, `experiment`, …; see README.md) are
 * built from exactly these calls:
 *
 * ```ts
 * import {
 *   getGpu,
 *   gpuBackend,
 *   gpuTrainOps,
 *   openData,
 *   pretrain,
 *   pretrainAugment,
 *   type PretrainConfig,
 *   pretrainImages,
 *   twoViewSource,
 * } from "./mod.ts";
 *
 * declare const config: PretrainConfig; // e.g. what `deno task pretrain` builds from its flags
 * const { imageSize: S, moco: { inChannels: C } } = config;
 * const B = gpuBackend(await getGpu());
 * const { cache } = await openData({ imageSize: S, inChannels: C }); // synthetic without `data`
 * const { indices } = pretrainImages(cache); // the training split less the test patients' images
 * const aug = pretrainAugment(config.augment, S, C, config.rotateInterp); // as the run records
 * const views = twoViewSource(cache, indices, aug);
 * const summary = await pretrain(B, gpuTrainOps, config, views, "runs/my-run");
 * console.log(summary.lastLoss, summary.backbonePath);
 * ```
 *
 * Bottom up: the device and its backends, the backbones and weights files, data (datasets, the
 * image cache, sources of training views), training (MoCo, pretraining, fine-tuning, the
 * experiment grid, Grad-CAM), evaluation (AUROC with its confidence intervals). Each layer's own
 * entry point (`model/mod.ts`, `data/mod.ts`, `eval/mod.ts`) holds the rest, for work inside
 * this repository.
 *
 * @module
 */

// Device and backends.
export {
  DeviceLostError,
  getGpu,
  Gpu,
  GpuError,
  type GpuOptions,
  type Kernel,
} from "./kernels/device.ts";
export { CONV_ALGOS, type ConvAlgo, setConvAlgo } from "./kernels/conv/conv2d.ts";
export type {
  Backend,
  BnTrainOpts,
  BTensor,
  ConvOpts,
  DType,
  PoolOpts,
  Shape,
} from "./model/backend.ts";
export { gpuBackend } from "./model/backend_gpu.ts";
export { cpuBackend } from "./model/backend_cpu.ts";
export {
  type AdamOptions,
  type AmpTensors,
  cpuTrainOps,
  gpuTrainOps,
  type LossScaleOptions,
  type SgdOptions,
  type TrainOps,
} from "./train/train_ops.ts";
export {
  DEFAULT_LOSS_SCALE,
  type LossScaleConfig,
  LossScaler,
  type LossScaleStats,
} from "./train/loss_scale.ts";
export { Rng } from "./util/rng.ts";

// Backbones and weights.
export { type BackboneName, BACKBONES, buildBackbone } from "./train/backbones.ts";
export { ClassifierNet, type NetOptions } from "./model/classifier.ts";
export { Module, Parameter } from "./model/nn.ts";
export type { Ctx, StateEntry } from "./model/nn.ts";
export type { Init as ParamInit } from "./model/init.ts";
export { Buffer, Counter } from "./model/nn.ts";
export { Var } from "./model/autograd.ts";
export type { LoadReport } from "./model/state.ts";
export { exportBackbone, loadInitWeights } from "./train/weights.ts";

// Data.
export type {
  BadRow,
  BlankPolicy,
  DataRecord,
  Dataset,
  DatasetKind,
  LabelSettings,
  RecordMeta,
  Split,
  UncertaintyPolicy,
} from "./data/types.ts";
export type { DatasetIdentity } from "./data/identity.ts";
export { ImageCache } from "./data/cache/reader.ts";
export type { BadImage, CachedRecord, CacheIndex } from "./data/cache/format.ts";
export type { AugmentOptions, ImageSource, Interp, Normalization } from "./data/augment.ts";
export { type DataFlags, type DataLabelFlags, openData, type OpenedData } from "./cli/open_data.ts";
export {
  type LabelledNorm,
  labelledSource,
  type PretrainAugment,
  pretrainAugment,
  twoViewSource,
} from "./train/cache_sources.ts";
export {
  type DeviceViews,
  type ImageBatch,
  imageBatch,
  type LabelledSource,
  type TwoViewSource,
} from "./train/sources.ts";

// Training.
export { Moco, type MocoConfig, type MocoStepResult } from "./train/moco.ts";
export { type OptimConfig, Optimizer } from "./train/optimizer.ts";
export type { Schedule } from "./train/schedule.ts";
export {
  pretrain,
  type PretrainConfig,
  type PretrainHooks,
  type PretrainSummary,
} from "./train/pretrain.ts";
export {
  buildClassifier,
  finetune,
  type FinetuneConfig,
  type FinetuneResult,
  type FinetuneSets,
  type FrozenFeatures,
  meanAuc,
  type Predictions,
  type Protocol,
} from "./train/finetune.ts";
export {
  type ExperimentConfig,
  type ExperimentData,
  type ExperimentPlanOptions,
  type PlanSizes,
  runExperiment,
} from "./train/experiment.ts";
export {
  makeSplits,
  pretrainImages,
  type Splits,
  type SplitsId,
  type SplitSource,
  testImages,
  type TestSource,
} from "./train/splits.ts";
export { type Init, INITS } from "./eval/results.ts";
export type { FeatureSets } from "./train/linear_protocol.ts";
export { type CamResult, gradCam } from "./train/gradcam.ts";

// Evaluation.
export { auc } from "./eval/auc.ts";
export {
  bootstrapAuc,
  type BootstrapOptions,
  type BootstrapResult,
  pairedBootstrap,
} from "./eval/bootstrap.ts";
export { delong, delongPaired, type DelongTest } from "./eval/delong.ts";
export { evaluateRun } from "./eval/evaluate_run.ts";
export { type Plan, type PlanLine, type Timings } from "./train/plan.ts";
