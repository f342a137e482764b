/**
 * The tensor operations the autograd and the modules need, as one interface
 * with two implementations: backend_gpu.ts (WebGPU kernels, `Tensor`) and
 * backend_cpu.ts (the pure-TS references, `CpuTensor`). The same model code
 * runs on either, which is what the whole-network GPU-vs-CPU tests use.
 *
 * Tensors are opaque to the model layer (`BTensor`: only the shape is read);
 * every op returns a freshly allocated tensor that the caller must dispose.
 */

export type Shape = readonly number[];

/** A backend tensor: kernels' `Tensor` on the GPU, `CpuTensor` on the CPU. */
export interface BTensor {
  readonly shape: Shape;
}

export interface ConvOpts {
  stride: number;
  pad: number;
}
export interface PoolOpts {
  k: number;
  stride: number;
  pad?: number;
}
export interface BnTrainOpts {
  momentum?: number;
  eps?: number;
  relu?: boolean;
  groups?: number;
}

export interface Backend {
  readonly name: "gpu" | "cpu";

  // ---- storage ----
  fromArray(data: Float32Array, shape: Shape): BTensor;
  zeros(shape: Shape): BTensor;
  read(t: BTensor): Promise<Float32Array>;
  /** Overwrites t's contents (same element count). */
  write(t: BTensor, data: Float32Array): void;
  dispose(t: BTensor): void;
  /** acc += g, in place. */
  addInto(acc: BTensor, g: BTensor): void;
  /** Submits recorded work (no-op on the CPU). */
  flush(): void;

  // ---- elementwise ----
  relu(x: BTensor): BTensor;
  reluBackward(dy: BTensor, y: BTensor): BTensor;
  add(a: BTensor, b: BTensor): BTensor;
  scale(x: BTensor, a: number): BTensor;

  // ---- convolution and dense ----
  conv2d(x: BTensor, w: BTensor, bias: BTensor | null, o: ConvOpts): BTensor;
  conv2dBackwardInput(dy: BTensor, w: BTensor, xShape: Shape, o: ConvOpts): BTensor;
  conv2dBackwardWeight(dy: BTensor, x: BTensor, wShape: Shape, o: ConvOpts): BTensor;
  conv2dBackwardBias(dy: BTensor): BTensor;
  linear(x: BTensor, w: BTensor, bias: BTensor | null): BTensor;
  linearBackward(
    dy: BTensor,
    x: BTensor,
    w: BTensor,
    hasBias: boolean,
  ): { dx: BTensor; dw: BTensor; db: BTensor | null };

  // ---- batch norm ----
  batchNormTrain(
    x: BTensor,
    gamma: BTensor,
    beta: BTensor,
    runMean: BTensor,
    runVar: BTensor,
    o: BnTrainOpts,
  ): { y: BTensor; mean: BTensor; invstd: BTensor };
  batchNormEval(
    x: BTensor,
    gamma: BTensor,
    beta: BTensor,
    runMean: BTensor,
    runVar: BTensor,
    o: { eps?: number; relu?: boolean },
  ): BTensor;
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
  maxPool2d(x: BTensor, o: PoolOpts): BTensor;
  maxPool2dBackward(dy: BTensor, x: BTensor, o: PoolOpts): BTensor;
  avgPool2d(x: BTensor, o: PoolOpts): BTensor;
  avgPool2dBackward(dy: BTensor, xShape: Shape, o: PoolOpts): BTensor;
  globalAvgPool(x: BTensor): BTensor;
  globalAvgPoolBackward(dy: BTensor, xShape: Shape): BTensor;
  concatChannels(xs: BTensor[]): BTensor;
  sliceChannels(x: BTensor, start: number, count: number): BTensor;

  // ---- rows and losses (the MoCo step, fine-tuning) ----
  /** x · s[0], s a one-value tensor (a scalar loss's upstream gradient). */
  scaleBy(x: BTensor, s: BTensor): BTensor;
  sigmoid(x: BTensor): BTensor;
  /** out[i, :] = x[idx[i], :] (idx as f32). */
  gatherRows(x: BTensor, idx: BTensor): BTensor;
  /** Per-row x / max(‖x‖, 1e-12), with the row norms for the backward. */
  l2Normalize(x: BTensor): { y: BTensor; norm: BTensor };
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
