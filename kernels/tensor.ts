/**
 * f32 tensors in GPU storage buffers.
 *
 * Layout: contiguous row-major, NCHW for images. NCHW because torchvision's
 * weights and the CPU references are NCHW, and because the implicit-GEMM conv
 * kernels want output pixels (n, oh, ow) as the GEMM column index: for a fixed
 * (c, kh, kw) neighbouring lanes then read neighbouring input addresses, while
 * the weight row is the same for every lane (a uniform load on CPU adapters).
 */
import { type Gpu, GpuError } from "./device.ts";

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly gpu: Gpu;
  readonly shape: Shape;
  readonly size: number;
  private buf: GPUBuffer | null;

  constructor(gpu: Gpu, shape: Shape, buffer?: GPUBuffer) {
    this.gpu = gpu;
    this.shape = [...shape];
    this.size = numel(shape);
    this.buf = buffer ?? gpu.acquire(this.size * 4);
  }

  /** Uninitialised tensor (pooled buffers hold stale data: kernels must write every element). */
  static empty(gpu: Gpu, shape: Shape): Tensor {
    return new Tensor(gpu, shape);
  }

  static from(gpu: Gpu, data: ArrayLike<number>, shape: Shape = [data.length]): Tensor {
    if (numel(shape) !== data.length) {
      throw new GpuError(`Tensor.from: ${data.length} values do not fill shape [${shape}]`);
    }
    const t = new Tensor(gpu, shape);
    t.write(data instanceof Float32Array ? data : Float32Array.from(data));
    return t;
  }

  static zeros(gpu: Gpu, shape: Shape): Tensor {
    return Tensor.from(gpu, new Float32Array(numel(shape)), shape);
  }

  get buffer(): GPUBuffer {
    if (!this.buf) throw new GpuError(`use of a disposed tensor [${this.shape}]`);
    return this.buf;
  }

  get disposed(): boolean {
    return this.buf === null;
  }

  write(data: Float32Array): void {
    if (data.length !== this.size) {
      throw new GpuError(`Tensor.write: ${data.length} values for shape [${this.shape}]`);
    }
    this.gpu.write(this.buffer, data);
  }

  async read(): Promise<Float32Array> {
    return new Float32Array(await this.gpu.read(this.buffer, this.size * 4));
  }

  /** Same storage, new shape (the element count must match); the view does not own the buffer. */
  view(shape: Shape): Tensor {
    if (numel(shape) !== this.size) {
      throw new GpuError(`cannot view [${this.shape}] as [${shape}]`);
    }
    return new TensorView(this, shape);
  }

  /** A new tensor with the same contents. */
  clone(): Tensor {
    const t = new Tensor(this.gpu, this.shape);
    this.gpu.copy(this.buffer, 0, t.buffer, 0, this.size * 4);
    return t;
  }

  /** Copies another tensor's contents into this one (same element count). */
  copyFrom(src: Tensor): void {
    if (src.size !== this.size) throw new GpuError(`copyFrom: [${src.shape}] into [${this.shape}]`);
    this.gpu.copy(src.buffer, 0, this.buffer, 0, this.size * 4);
  }

  /** Returns the buffer to the pool; the tensor must not be used afterwards. */
  dispose(): void {
    if (this.buf) this.gpu.release(this.buf);
    this.buf = null;
  }
}

/** A reshaped alias: disposing it does nothing; the base owns the storage. */
class TensorView extends Tensor {
  private base: Tensor;
  constructor(base: Tensor, shape: Shape) {
    super(base.gpu, shape, base.buffer);
    this.base = base;
  }
  override get buffer(): GPUBuffer {
    return this.base.buffer;
  }
  override dispose(): void {}
}
