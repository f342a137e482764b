/** Public API of the model layer: autograd, modules, ResNet/DenseNet, weights I/O. */
export type { Backend, BTensor, ConvOpts, PoolOpts, Shape } from "./backend.ts";
export { numel } from "./backend.ts";
export { cpuBackend } from "./backend_cpu.ts";
export { gpuBackend } from "./backend_gpu.ts";
export {
  backward,
  type BackwardFn,
  clearTape,
  isGradEnabled,
  noGrad,
  record,
  tapeLength,
  Var,
} from "./autograd.ts";
export * as ops from "./ops.ts";
export {
  AvgPool2d,
  BatchNorm2d,
  Buffer,
  Conv2d,
  Counter,
  countParameters,
  type Ctx,
  GlobalAvgPool,
  Identity,
  Linear,
  MaxPool2d,
  Module,
  Parameter,
  ReLU,
  Sequential,
  type StateEntry,
} from "./nn.ts";
export * as init from "./init.ts";
export { ClassifierNet, linearHead, mlpHead, type NetOptions } from "./classifier.ts";
export { ResNet, resnet18, resnet34, resnet50, type ResNetDepth } from "./resnet.ts";
export { DenseNet, densenet121, type DenseNetConfig } from "./densenet.ts";
export {
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  serializeSafetensors,
  type TensorData,
  writeSafetensors,
} from "./safetensors.ts";
export {
  loadModel,
  type LoadOptions,
  type LoadReport,
  loadStateDict,
  readState,
  saveModel,
} from "./state.ts";
export { asDtype, checkFinite, NonFiniteError, TensorDtypeError } from "./tensor_check.ts";
