/**
 * Tensors in GPU storage buffers, f32 or f16 (`dtype`; f16 needs the adapter's
 * `shader-f16`, see Gpu.hasF16). Kernels compute in f32 whatever the storage:
 * an f16 tensor is read as f32 and rounded once when written.
 *
 * Layout: contiguous row-major, NCHW for images. NCHW because torchvision's
 * weights and the CPU references are NCHW, and because the implicit-GEMM conv
 * kernels want output pixels (n, oh, ow) as the GEMM column index: for a fixed
 * (c, kh, kw) neighbouring lanes then read neighbouring input addresses, while
 * the weight row is the same for every lane (a uniform load on CPU adapters).
 */
import { type Gpu, GpuError } from "./device.ts";

export type Shape = readonly number[];

/** Element type of a tensor's storage. */
export type DType = "f32" | "f16";

/** Bytes per element of a dtype. */
export const bytesPer = (d: DType): number => d === "f16" ? 2 : 4;

/** Storage bytes of n elements, rounded up to 4 (WebGPU writes and copies move 4-byte units). */
export const storageBytes = (n: number, d: DType): number => Math.ceil((n * bytesPer(d)) / 4) * 4;

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly gpu: Gpu;
  readonly shape: Shape;
  readonly size: number;
  /** Storage element type. */
  readonly dtype: DType;
  private buf: GPUBuffer | null;

  constructor(gpu: Gpu, shape: Shape, buffer?: GPUBuffer, dtype: DType = "f32") {
    if (dtype === "f16" && !gpu.hasF16) {
      throw new GpuError(`this adapter (${gpu.describe()}) has no shader-f16: f16 tensors need it`);
    }
    this.gpu = gpu;
    this.shape = [...shape];
    this.size = numel(shape);
    this.dtype = dtype;
    this.buf = buffer ?? gpu.acquire(storageBytes(this.size, dtype));
  }

  /** Storage bytes (a multiple of 4). */
  get bytes(): number {
    return storageBytes(this.size, this.dtype);
  }

  /** Uninitialised tensor (pooled buffers hold stale data: kernels must write every element). */
  static empty(gpu: Gpu, shape: Shape, dtype: DType = "f32"): Tensor {
    return new Tensor(gpu, shape, undefined, dtype);
  }

  /** A tensor holding `data` (rounded to nearest-even when the dtype is f16). */
  static from(
    gpu: Gpu,
    data: ArrayLike<number>,
    shape: Shape = [data.length],
    dtype: DType = "f32",
  ): Tensor {
    if (numel(shape) !== data.length) {
      throw new GpuError(`Tensor.from: ${data.length} values do not fill shape [${shape}]`);
    }
    const t = new Tensor(gpu, shape, undefined, dtype);
    t.write(data instanceof Float32Array ? data : Float32Array.from(data));
    return t;
  }

  static zeros(gpu: Gpu, shape: Shape, dtype: DType = "f32"): Tensor {
    return Tensor.from(gpu, new Float32Array(numel(shape)), shape, dtype);
  }

  get buffer(): GPUBuffer {
    if (!this.buf) throw new GpuError(`use of a disposed tensor [${this.shape}]`);
    return this.buf;
  }

  /**
   * The storage that a kernel reading strided images binds (batch norm's x): the buffer, whose
   * images lie `imageChannels` planes apart. A ChannelPrefix's is its store's.
   */
  get storage(): GPUBuffer {
    return this.buffer;
  }

  /** Channel planes between two images in `storage`: shape[1] for a contiguous NCHW tensor. */
  get imageChannels(): number {
    return this.shape[1];
  }

  get disposed(): boolean {
    return this.buf === null;
  }

  /** Overwrites the contents (f16 storage rounds to nearest-even). */
  write(data: Float32Array): void {
    if (data.length !== this.size) {
      throw new GpuError(`Tensor.write: ${data.length} values for shape [${this.shape}]`);
    }
    if (this.dtype === "f32") return this.gpu.write(this.buffer, data);
    const h = new Float16Array(this.bytes / 2); // padded to 4 bytes
    h.set(data);
    this.gpu.write(this.buffer, h);
  }

  /** The contents as f32 (f16 storage widened exactly). */
  async read(): Promise<Float32Array> {
    return this.widen(await this.gpu.read(this.buffer, this.bytes));
  }

  /** This tensor's raw storage as f32 values. */
  widen(raw: ArrayBuffer): Float32Array {
    if (this.dtype === "f32") return new Float32Array(raw);
    return Float32Array.from(new Float16Array(raw, 0, this.size));
  }

  /** Same storage, new shape (the element count must match); the view does not own the buffer. */
  view(shape: Shape): Tensor {
    if (numel(shape) !== this.size) {
      throw new GpuError(`cannot view [${this.shape}] as [${shape}]`);
    }
    return new TensorView(this, shape);
  }

  /** A new tensor with the same contents and dtype. */
  clone(): Tensor {
    const t = new Tensor(this.gpu, this.shape, undefined, this.dtype);
    this.gpu.copy(this.buffer, 0, t.buffer, 0, this.bytes);
    return t;
  }

  /** Copies another tensor's contents into this one (same element count and dtype). */
  copyFrom(src: Tensor): void {
    if (src.size !== this.size || src.dtype !== this.dtype) {
      throw new GpuError(
        `copyFrom: [${src.shape}] ${src.dtype} into [${this.shape}] ${this.dtype}`,
      );
    }
    this.gpu.copy(src.buffer, 0, this.buffer, 0, this.bytes);
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
    super(base.gpu, shape, base.buffer, base.dtype);
    this.base = base;
  }
  override get buffer(): GPUBuffer {
    return this.base.buffer;
  }
  override dispose(): void {}
}

/**
 * A dense block's feature map, filled channel range by channel range (concat.ts copyChannelsInto)
 * and read through ChannelPrefix views. Held by its maker and by every view: the storage returns
 * to the pool when the last of them is disposed.
 */
export class ChannelStore extends Tensor {
  private holds = 1;

  /** One more holder (a view). */
  hold(): void {
    if (this.disposed) throw new GpuError(`hold of a disposed channel store [${this.shape}]`);
    this.holds++;
  }

  /** Drops one hold; the storage is released with the last. */
  override dispose(): void {
    if (this.disposed) return;
    if (--this.holds <= 0) super.dispose();
  }
}

/**
 * Channels [0, C) of an NCHW ChannelStore [N, C_store, …], in place: image n's channel c at plane
 * n·C_store + c of the store. The torch.cat of a dense block's features so far, read by the next
 * layer's batch norm without a copy. Only kernels that read `storage` with `imageChannels` (batch
 * norm's x) take a strict prefix: `buffer` refuses one, so any other kernel given it fails at once
 * instead of reading the wrong planes. With C = C_store it is the whole store, contiguous, and
 * `buffer` is the store's. Disposing the view drops its hold on the store.
 */
export class ChannelPrefix extends Tensor {
  private store: ChannelStore | null;

  constructor(store: ChannelStore, channels: number) {
    const [N, C, ...rest] = store.shape;
    if (
      !(store.shape.length >= 2 && Number.isInteger(channels) && channels >= 1 && channels <= C)
    ) {
      throw new GpuError(`ChannelPrefix: ${channels} channels of a store [${store.shape}]`);
    }
    super(store.gpu, [N, channels, ...rest], store.buffer, store.dtype);
    store.hold();
    this.store = store;
  }

  /** The store this view reads. */
  get base(): ChannelStore {
    if (!this.store) throw new GpuError(`use of a disposed channel prefix [${this.shape}]`);
    return this.store;
  }

  /** Whether the view is all of its store (then contiguous). */
  get whole(): boolean {
    return this.shape[1] === this.base.shape[1];
  }

  override get buffer(): GPUBuffer {
    if (this.whole) return this.base.buffer;
    throw new GpuError(
      `channels [0, ${this.shape[1]}) of a [${this.base.shape}] store are read in place only by ` +
        "batch norm; this kernel needs a contiguous tensor",
    );
  }

  override get storage(): GPUBuffer {
    return this.base.buffer;
  }

  override get imageChannels(): number {
    return this.base.shape[1];
  }

  override get disposed(): boolean {
    return this.store === null;
  }

  /** This view's values out of its store's (as `base.read()` gives them). */
  fromStore(all: Float32Array): Float32Array {
    const [N, C] = this.shape, plane = this.size / (N * C), CS = this.imageChannels;
    const out = new Float32Array(this.size);
    for (let n = 0; n < N; n++) {
      out.set(all.subarray(n * CS * plane, (n * CS + C) * plane), n * C * plane);
    }
    return out;
  }

  override async read(): Promise<Float32Array> {
    return this.fromStore(await this.base.read());
  }

  override view(shape: Shape): Tensor {
    if (!this.whole) throw new GpuError(`cannot reshape a strided channel prefix [${this.shape}]`);
    return super.view(shape);
  }

  override clone(): Tensor {
    if (!this.whole) throw new GpuError(`cannot clone a strided channel prefix [${this.shape}]`);
    return super.clone();
  }

  override dispose(): void {
    this.store?.dispose();
    this.store = null;
  }
}

/** Several tensors' contents as f32 in one round trip to the device (Gpu.readMany). */
export async function readTensors(ts: readonly Tensor[]): Promise<Float32Array[]> {
  if (ts.length === 0) return [];
  const gpu = ts[0].gpu;
  if (ts.some((t) => t.gpu !== gpu)) throw new GpuError("readTensors: tensors of two devices");
  const src = ts.map((t) => t instanceof ChannelPrefix ? t.base : t);
  const raw = await gpu.readMany(src.map((t) => ({ buf: t.buffer, bytes: t.bytes })));
  return ts.map((t, i) => {
    const v = src[i].widen(raw[i]);
    return t instanceof ChannelPrefix ? t.fromStore(v) : v;
  });
}
