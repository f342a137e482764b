/**
 * MoCo-CXR in Deno + WebGPU: the public API of every layer, bottom up.
 * Entry points for users are the tasks in deno.json (see README.md).
 */
export { Rng } from "./util/rng.ts";
export { getGpu, Gpu, GpuError } from "./kernels/device.ts";
export { Tensor } from "./kernels/tensor.ts";
/** Forces the conv algorithm (auto / gemm / winograd / col2im), e.g. to compare or reproduce. */
export { setConvAlgo } from "./kernels/conv/conv2d.ts";
export * as model from "./model/mod.ts";
export * as data from "./data/mod.ts";
export * as evaluation from "./eval/mod.ts";
export { Moco, type MocoConfig } from "./train/moco.ts";
export { pretrain, type PretrainConfig } from "./train/pretrain.ts";
export { finetune, type FinetuneConfig } from "./train/finetune.ts";
export { type ExperimentConfig, runExperiment } from "./train/experiment.ts";
export { gradCam } from "./train/gradcam.ts";
export { cpuTrainOps, gpuTrainOps } from "./train/train_ops.ts";
