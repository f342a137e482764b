/**
 * The tensor operations the autograd and the modules need, as one interface
 * with two implementations: backend_gpu.ts (WebGPU kernels, `Tensor`) and
 * backend_cpu.ts (the pure-TS references, `CpuTensor`). The same model code
 * runs on either, which is what the whole-network GPU-vs-CPU tests use.
 *
 * Tensors are opaque to the model layer (`BTensor`: only the shape is read);
 * every op returns a freshly allocated tensor that the caller must dispose.
 */
import type { DType } from "../kernels/tensor.ts";

/** Dimensions, outermost first. */
export type Shape = readonly number[];
/** Storage type of a tensor: f32, or f16 (values widened to f32 by every kernel). */
export type { DType };

/** A backend tensor: kernels' `Tensor` on the GPU, `CpuTensor` on the CPU. */
export interface BTensor {
  /** Dimensions, outermost first. */
  readonly shape: Shape;
}

/** Convolution geometry. */
export interface ConvOpts {
  /** Step between windows, both axes. */
  stride: number;
  /** Zero padding on every side. */
  pad: number;
}
/** Pooling window. */
export interface PoolOpts {
  /** Window side. */
  k: number;
  /** Step between windows. */
  stride: number;
  /** Padding on every side (max pool: -inf; default 0). */
  pad?: number;
}
/** Training-mode batch norm settings. */
export interface BnTrainOpts {
  /** Running-statistics momentum (torch's, default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Apply ReLU to the output in the same pass. */
  relu?: boolean;
  /** Split BN: statistics per this many equal sub-batches (default 1). */
  groups?: number;
}

/** The tensor operations the autograd and the modules need (see the file header). */
export interface Backend {
  /** Which implementation this is. */
  readonly name: "gpu" | "cpu";

  // ---- storage ----
  /** A new tensor holding a copy of `data`. */
  fromArray(data: Float32Array, shape: Shape): BTensor;
  /** A new zero-filled tensor. */
  zeros(shape: Shape): BTensor;
  /** A new tensor with every value `v`, made on the device (no upload, so no submit). */
  full(shape: Shape, v: number): BTensor;
  /** The tensor's values (waits for the device on the GPU). */
  read(t: BTensor): Promise<Float32Array>;
  /** Several tensors' values in one wait for the device (a read each costs ~10 ms on the GPU). */
  readMany(ts: readonly BTensor[]): Promise<Float32Array[]>;
  /** Overwrites t's contents (same element count). */
  write(t: BTensor, data: Float32Array): void;
  /** Frees the tensor (its buffer returns to the pool on the GPU). */
  dispose(t: BTensor): void;
  /** acc += g, in place. */
  addInto(acc: BTensor, g: BTensor): void;
  /** Submits recorded work (no-op on the CPU). */
  flush(): void;
  /** The tensor's storage type (f16 on the CPU: f32 values that are exact halves). */
  dtype(t: BTensor): DType;
  /** x stored as `dtype` (round to nearest even into f16; a copy when it already is). */
  cast(x: BTensor, dtype: DType): BTensor;

  // ---- elementwise ----
  /** max(x, 0), NaN kept. */
  relu(x: BTensor): BTensor;
  /** dy where the ReLU output y > 0, else 0. */
  reluBackward(dy: BTensor, y: BTensor): BTensor;
  /** a + b (same shape). */
  add(a: BTensor, b: BTensor): BTensor;
  /** relu(a + b) in one pass (a residual join; the bits of add then relu). */
  addRelu(a: BTensor, b: BTensor): BTensor;
  /** a · x. */
  scale(x: BTensor, a: number): BTensor;

  // ---- convolution and dense ----
  /** 2-D convolution, NCHW, groups 1. */
  conv2d(x: BTensor, w: BTensor, bias: BTensor | null, o: ConvOpts): BTensor;
  /** dL/dx of conv2d. */
  conv2dBackwardInput(dy: BTensor, w: BTensor, xShape: Shape, o: ConvOpts): BTensor;
  /** dL/dw of conv2d. */
  conv2dBackwardWeight(dy: BTensor, x: BTensor, wShape: Shape, o: ConvOpts): BTensor;
  /** dL/dbias of conv2d (and linear): Σ over all but the channel axis. */
  conv2dBackwardBias(dy: BTensor): BTensor;
  /** x·wᵀ + bias (torch.nn.Linear). */
  linear(x: BTensor, w: BTensor, bias: BTensor | null): BTensor;
  /** dx, dw and (when asked) db of linear. */
  linearBackward(
    dy: BTensor,
    x: BTensor,
    w: BTensor,
    hasBias: boolean,
  ): { dx: BTensor; dw: BTensor; db: BTensor | null };

  // ---- batch norm ----
  /** Batch norm with batch statistics (per sub-batch group); updates the running buffers. */
  batchNormTrain(
    x: BTensor,
    gamma: BTensor,
    beta: BTensor,
    runMean: BTensor,
    runVar: BTensor,
    o: BnTrainOpts,
  ): { y: BTensor; mean: BTensor; invstd: BTensor };
  /** Batch norm with the running statistics. */
  batchNormEval(
    x: BTensor,
    gamma: BTensor,
    beta: BTensor,
    runMean: BTensor,
    runVar: BTensor,
    o: { eps?: number; relu?: boolean },
  ): BTensor;
  /** dx, dγ, dβ of batchNormTrain (ReLU fused when y is given). */
  batchNormBackward(
    dy: BTensor,
    x: BTensor,
    y: BTensor | null,
    gamma: BTensor,
    mean: BTensor,
    invstd: BTensor,
    o: { relu?: boolean; groups?: number },
  ): { dx: BTensor; dgamma: BTensor; dbeta: BTensor };

  // ---- pooling and channels ----
  /** Max pooling, -inf padding. */
  maxPool2d(x: BTensor, o: PoolOpts): BTensor;
  /** dL/dx of maxPool2d (first maximum of a window wins). */
  maxPool2dBackward(dy: BTensor, x: BTensor, o: PoolOpts): BTensor;
  /** Average pooling (no padding). */
  avgPool2d(x: BTensor, o: PoolOpts): BTensor;
  /** dL/dx of avgPool2d. */
  avgPool2dBackward(dy: BTensor, xShape: Shape, o: PoolOpts): BTensor;
  /** [N,C,H,W] → [N,C] means. */
  globalAvgPool(x: BTensor): BTensor;
  /** dL/dx of globalAvgPool. */
  globalAvgPoolBackward(dy: BTensor, xShape: Shape): BTensor;
  /** torch.cat(xs, 1). */
  concatChannels(xs: BTensor[]): BTensor;
  /** Channels [start, start + count) of x. */
  sliceChannels(x: BTensor, start: number, count: number): BTensor;
  /** acc += x's channels [start, start + acc's channels), in place (the bits of slice, then addInto). */
  addChannelsInto(acc: BTensor, x: BTensor, start: number): void;
  /**
   * A feature map [N, C, …] that a dense block fills channel range by channel range
   * (copyChannelsInto) and reads through channelPrefix views; its contents are undefined until
   * written. Disposing it drops the maker's hold: on the GPU the memory lives while a view does.
   */
  channelStore(shape: Shape, dtype: DType): BTensor;
  /** Writes all of x's channels into dst's channels [start, start + x's channels). */
  copyChannelsInto(dst: BTensor, x: BTensor, start: number): void;
  /** dst's channels [start, start + x's channels) += x, in place (f32 sums, rounded once). */
  addToChannels(dst: BTensor, x: BTensor, start: number): void;
  /**
   * Channels [0, count) of a channelStore: torch.cat of what was written there, without a copy
   * on the GPU (a view that batch norm reads in place and every other kernel refuses unless it
   * is the whole store); a copy on the CPU.
   */
  channelPrefix(store: BTensor, count: number): BTensor;

  // ---- rows and losses (the MoCo step, fine-tuning) ----
  /** x · s[0], s a one-value tensor (a scalar loss's upstream gradient). */
  scaleBy(x: BTensor, s: BTensor): BTensor;
  /** 1 / (1 + e^−x), computed stably. */
  sigmoid(x: BTensor): BTensor;
  /** out[i, :] = x[idx[i], :] (idx as f32). */
  gatherRows(x: BTensor, idx: BTensor): BTensor;
  /** Per-row x / max(‖x‖, 1e-12), with the row norms for the backward. */
  l2Normalize(x: BTensor): { y: BTensor; norm: BTensor };
  /** dL/dx of l2Normalize from its output and norms. */
  l2NormalizeBackward(dy: BTensor, y: BTensor, norm: BTensor): BTensor;
  /** [q·k₊, q·queueᵀ] / T: positive logit at column 0. */
  mocoLogits(q: BTensor, k: BTensor, queue: BTensor, T: number): BTensor;
  /** d(logits)/dq applied to dlogits. */
  mocoLogitsBackward(dlogits: BTensor, k: BTensor, queue: BTensor, T: number): BTensor;
  /** Mean softmax cross-entropy with label 0 per row, its gradient, and the top-1 count. */
  infoNce(logits: BTensor): { loss: BTensor; dlogits: BTensor; correct: BTensor };
  /** Mean BCE-with-logits over the elements with mask > 0, and its gradient. */
  bceWithLogits(
    logits: BTensor,
    targets: BTensor,
    mask: BTensor,
  ): { loss: BTensor; dlogits: BTensor };
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
