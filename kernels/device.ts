/**
 * The one file that owns the GPU: adapter and device acquisition, the buffer
 * pool, the pipeline cache, uniform staging, command batching and readback.
 *
 * Submission model: every `dispatch` is recorded into one open compute pass;
 * nothing reaches the queue until `flush()` (called by `read`, `upload` and
 * explicitly at the end of a training step). Dispatch parameters go into a
 * CPU-side staging area that is copied to one uniform "ring" buffer just before
 * the submit, so a step costs a handful of queue operations, not one per kernel.
 *
 * Determinism: no kernel uses atomics on floats and every reduction has a fixed
 * order, so the same inputs give bit-identical outputs on the same adapter.
 */

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we know
const UNIFORM_RING = 1 << 22; // 16384 dispatches per submit before an early flush
const MAX_BIND_GROUPS = 1 << 16; // cache bound: a workload that never repeats starts over
/** readMany's staging buffers: under WebGPU's default maxBufferSize (256 MiB) on every adapter. */
const READ_CHUNK_BYTES = 64 << 20;
/** Staging buffers up to this size are kept for the next read of the same size. */
const KEEP_READBACK_BYTES = 1 << 20;
/**
 * Workgroup cap of 1-D grid-stride kernels on hardware GPUs: 16,384 groups of 64 lanes are ~4 waves
 * of a 132-SM card at 2,048 threads an SM, enough loads in flight to stream memory. Unmeasured on
 * a GPU so far; software adapters keep each kernel's measured cap (`Gpu.gridCap`).
 */
const HW_GRID_CAP = 16384;

/** Pool bucket for a byte size: 256-byte granules up to 64 KiB, then 1/8 powers of two. */
export function poolBucket(bytes: number): number {
  const b = Math.max(bytes, 16);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

/** How getGpu / Gpu.create pick and configure the adapter. */
export interface GpuOptions {
  /** "high-performance" picks the discrete GPU where there are several. */
  powerPreference?: GPUPowerPreference;
  /** Enable shader-f16 when the adapter has it (default true; f16 tensors need it). */
  f16?: boolean;
  /** Enable timestamp-query when the adapter has it (default true; the tuner times with it). */
  timestamps?: boolean;
}

/**
 * A compute kernel: its WGSL source (entry point `main`) and a name for
 * messages. Pipelines are cached by the source itself, so two kernels with the
 * same source share one pipeline and no hand-written key can go stale.
 */
export interface Kernel {
  /** Names the kernel in messages. */
  name: string;
  /** WGSL source, entry point `main`. */
  code: string;
}

/**
 * A family of generated kernels: wraps a generator so that each distinct
 * argument list (compared as JSON) generates its kernel once. The one memo for
 * every generated kernel in the project; pipelines are then cached by source.
 */
export function kernelFamily<A extends unknown[]>(
  make: (...args: A) => Kernel,
): (...args: A) => Kernel {
  const memo = new Map<string, Kernel>();
  return (...args: A) => {
    const id = JSON.stringify(args);
    let k = memo.get(id);
    if (!k) memo.set(id, k = make(...args));
    return k;
  };
}

/**
 * A WGSL compiler message as a reader wants it: kernel, line:column, the
 * message, and the offending source line with its neighbours.
 */
export function formatCompileError(
  kernel: Kernel,
  messages: Array<{ message: string; lineNum: number; linePos: number; type?: string }>,
): string {
  const lines = kernel.code.split("\n");
  return messages.map((m) => {
    const first = m.message.trim().split("\n")[0].replace(/^Shader '[^']*' /, "");
    const around = [m.lineNum - 2, m.lineNum - 1, m.lineNum]
      .filter((i) => i >= 1 && i <= lines.length)
      .map((i) => `${String(i).padStart(5)} | ${lines[i - 1]}`);
    const caret = `${" ".repeat(8 + Math.max(0, m.linePos - 1))}^`;
    const at = m.lineNum ? ` at ${m.lineNum}:${m.linePos}` : "";
    return [`WGSL error in kernel ${kernel.name}${at}: ${first}`, ...around, caret].join("\n");
  }).join("\n");
}

/** An error of the device layer: no adapter, a WGSL compile error, a bad shape or binding. */
export class GpuError extends Error {}

/**
 * The WebGPU device was lost (driver reset, out of memory, a hung submission): every later call
 * on it throws this. Work since the last checkpoint is gone; the commands say how to resume.
 */
export class DeviceLostError extends GpuError {
  /** Names the error in stack traces. */
  override name = "DeviceLostError";
  /** The device's loss `reason` ("destroyed" or "unknown") and the driver's message. */
  constructor(readonly reason: string, readonly detail: string) {
    super(
      `WebGPU device lost (${reason}): ${detail || "no message"}. ` +
        `Work since the last checkpoint is gone.`,
    );
  }
}

const NO_ADAPTER_HELP = `No WebGPU adapter was found.
  This project needs navigator.gpu, which works without a GPU through Mesa's
  software rasterizers:
    Debian/Ubuntu:  sudo apt-get install -y mesa-vulkan-drivers   (lavapipe, Vulkan)
    or force the OpenGL fallback (llvmpipe):  export DENO_WEBGPU_BACKEND=gl
  Also set XDG_RUNTIME_DIR (e.g. export XDG_RUNTIME_DIR=/tmp) to silence a loader warning.`;

/** No WebGPU adapter (or no navigator.gpu): the message says how to get one. */
export class NoAdapterError extends GpuError {
  /** Names the error in stack traces. */
  override name = "NoAdapterError";
  constructor() {
    super(NO_ADAPTER_HELP);
  }
}

/** A cached pipeline: a small id for bind-group keys, and its compile error once one is known. */
interface PipelineEntry {
  pipeline: GPUComputePipeline;
  id: number;
  error?: GpuError;
}

/** The WebGPU device: buffer pool, pipelines by WGSL source, batched dispatches. */
export class Gpu {
  /** The underlying WebGPU device. */
  readonly device: GPUDevice;
  /** What the adapter says of itself (vendor, architecture, device). */
  readonly adapterInfo: GPUAdapterInfo;
  /** The device's limits (the adapter's own, requested in full). */
  readonly limits: GPUSupportedLimits;
  /** Set once the device is lost; every later call throws it. */
  lost: DeviceLostError | null = null;

  private pool = new Map<number, GPUBuffer[]>();
  /** Pipelines by WGSL source, each with a small id for bind-group keys. */
  private pipelines = new Map<string, PipelineEntry>();
  /** The first WGSL compile error seen, thrown by the next call (see `pipeline`). */
  private compileError: GpuError | null = null;
  private compiling: Promise<void>[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniformRing: GPUBuffer;
  private uniformStage = new Uint8Array(UNIFORM_RING);
  private uniformUsed = 0;
  private readbacks = new Map<number, GPUBuffer[]>();
  /** Set when a timer's passes all read 0 ns (see hasTimestamps). */
  private timestampsDead = false;
  /**
   * Every timed pass of the last stopTimer: its stretch, its first kernel and its GPU begin and end
   * in ms from the first pass's beginning (bench/step_timeline.ts reads the gaps between them).
   */
  lastTimeline: Array<{ stretch: number; label: string; begin: number; end: number }> = [];
  /** The running pass timer (startTimer … stopTimer), if any. */
  private timer: {
    querySet: GPUQuerySet;
    /** Most timed passes (query pairs). */
    capacity: number;
    /** Timed pass i (query pair i) → its stretch. */
    passOf: number[];
    /** Timed pass i → the kernel of its first dispatch. */
    labels: string[];
    /** Per stretch: false when it ran out of query pairs. */
    complete: boolean[];
    /** Whether a stretch is open. */
    open: boolean;
  } | null = null;
  private writable = new Map<string, Set<number>>();
  /**
   * Bind groups by (kernel, bindings): creating one costs ~35 µs of host time,
   * and a training step repeats the same dispatches on the same pooled
   * buffers and uniform-ring slots every step. Cleared with the pool.
   */
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  /** Counters for tests and benchmarks: allocations should stop growing after warm-up. */
  readonly stats = {
    buffersCreated: 0,
    /** Bytes of every pooled buffer created (the pool keeps them: the footprint's high-water mark). */
    bytesAllocated: 0,
    pipelinesCreated: 0,
    bindGroupsCreated: 0,
    dispatches: 0,
    /** Compute passes begun (a copy or a clear ends the open one). */
    passes: 0,
    copies: 0,
    clears: 0,
    submits: 0,
  };

  private constructor(device: GPUDevice, info: GPUAdapterInfo) {
    this.device = device;
    this.adapterInfo = info;
    this.limits = device.limits;
    this.uniformRing = device.createBuffer({
      size: UNIFORM_RING,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      this.lost = new DeviceLostError(info.reason, info.message);
    });
  }

  /** Opens the adapter and its device (getGpu shares one per process). */
  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    if (typeof navigator === "undefined" || !navigator.gpu) throw new NoAdapterError();
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
    if (!adapter) throw new NoAdapterError();
    // Ask for the adapter's real limits: the defaults cap a binding at 128 MiB
    // and storage buffers per stage at 8.
    const l = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    };
    const requiredFeatures: GPUFeatureName[] = [];
    if ((opts.f16 ?? true) && adapter.features.has("shader-f16")) {
      requiredFeatures.push("shader-f16");
    }
    if ((opts.timestamps ?? true) && adapter.features.has("timestamp-query")) {
      requiredFeatures.push("timestamp-query");
    }
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    device.addEventListener("uncapturederror", (e) => {
      const msg = (e as GPUUncapturedErrorEvent).error.message;
      // "… is invalid" only echoes an error reported once already (a compile error, say)
      if (!/ is invalid\s*$/.test(msg)) console.error(`WebGPU error: ${msg}`);
    });
    return new Gpu(device, adapter.info);
  }

  /** Whether the device has shader-f16 (f16 storage tensors, `--precision f16`). */
  get hasF16(): boolean {
    return this.device.features.has("shader-f16");
  }

  /**
   * Whether the device has timestamp-query (`timePasses`) and its timestamps have not been found
   * wanting (every timed pass reading 0 ns: a driver that writes no times; timing then falls back
   * to submit differences).
   */
  get hasTimestamps(): boolean {
    return this.device.features.has("timestamp-query") && !this.timestampsDead;
  }

  /**
   * Most workgroups a 1-D grid-stride kernel dispatches: `softwareCap` (measured on lavapipe,
   * where fewer, longer invocations win) on software adapters, HW_GRID_CAP on hardware ones.
   */
  gridCap(softwareCap: number): number {
    return this.isSoftware ? softwareCap : Math.max(softwareCap, HW_GRID_CAP);
  }

  /** One line naming the adapter, for logs and reports. */
  describe(): string {
    const i = this.adapterInfo;
    return i.description || `${i.vendor} ${i.architecture} ${i.device}`.trim();
  }

  /** True on CPU rasterizers (lavapipe/llvmpipe), where kernels prefer few, fat invocations. */
  get isSoftware(): boolean {
    return this.adapterInfo.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader/i.test(this.describe());
  }

  /** Throws the device's loss or a pending WGSL compile error. */
  private check(): void {
    if (this.lost) throw this.lost;
    if (this.compileError) throw this.compileError;
  }

  // ---- buffers -------------------------------------------------------------

  /** A storage buffer of at least `bytes` bytes, from the pool when one is free. */
  acquire(bytes: number): GPUBuffer {
    this.check();
    const size = poolBucket(bytes);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new GpuError(
        `A tensor of ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this adapter's binding limit of ${
          (this.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)
        } MiB; use a smaller batch, image size or MoCo queue.`,
      );
    }
    const free = this.pool.get(size);
    if (free?.length) return free.pop()!;
    this.stats.buffersCreated++;
    this.stats.bytesAllocated += size;
    const buf = this.device.createBuffer({
      size,
      // UNIFORM too: the windowed GEMM (gemm/windows.ts) reads panels through uniform bindings
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
        GPUBufferUsage.COPY_DST,
    });
    this.bufferId(buf);
    return buf;
  }

  /**
   * Returns a buffer to the pool. Safe even if recorded-but-unsubmitted work
   * still reads it: a later user's writes are recorded after those reads.
   */
  release(buf: GPUBuffer): void {
    // Free lists are kept sorted by creation, newest first, and `acquire` takes
    // the oldest: which buffer an acquire gets then depends only on which are
    // free, not on the order they were released in, so a training step that
    // repeats its allocations gets the same buffers every step (and reuses its
    // bind groups). A LIFO list permutes them from step to step.
    const list = this.pool.get(buf.size);
    if (!list) return void this.pool.set(buf.size, [buf]);
    const id = this.bufferId(buf);
    let i = list.length;
    while (i > 0 && this.bufferId(list[i - 1]) < id) i--;
    list.splice(i, 0, buf);
  }

  /** Drops every pooled buffer (after a model is discarded, say). */
  trim(): void {
    for (const list of this.pool.values()) {
      for (const b of list) {
        b.destroy();
        this.stats.bytesAllocated -= b.size;
      }
    }
    this.pool.clear();
    this.bindGroups.clear();
  }

  /** Writes host data into a buffer, after flushing recorded work so order is kept. */
  write(buf: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.check();
    this.flush();
    this.device.queue.writeBuffer(
      buf,
      byteOffset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Records a buffer-to-buffer copy in the current batch. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.check();
    this.endPass();
    this.encoderOrNew().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.stats.copies++;
  }

  /** Records zero-filling `bytes` bytes of a buffer (multiples of 4) in the current batch. */
  clear(buf: GPUBuffer, byteOffset: number = 0, bytes: number = buf.size - byteOffset): void {
    this.check();
    this.endPass();
    this.encoderOrNew().clearBuffer(buf, byteOffset, bytes);
    this.stats.clears++;
  }

  /** Reads `bytes` bytes of a buffer back to the host (flushes the batch). */
  async read(buf: GPUBuffer, bytes: number, byteOffset = 0): Promise<ArrayBuffer> {
    return (await this.readMany([{ buf, bytes, byteOffset }]))[0];
  }

  /**
   * Reads several buffer ranges in one round trip: every copy is recorded into staging buffers of
   * at most `chunkBytes` (a larger range gets its own), submitted once, and mapped together. One
   * `read` costs a submit and a wait of ~10-12 ms through Deno whatever its size (lavapipe and an
   * H200 alike, session 11), so a checkpoint's ~340 tensors read one by one took 5 s. Staging
   * buffers up to KEEP_READBACK_BYTES are kept for the next read of their size (a training loop's
   * scalars, an eval window's outputs); larger ones are dropped: a model's state is too large to
   * keep a second copy of.
   */
  async readMany(
    parts: ReadonlyArray<{ buf: GPUBuffer; bytes: number; byteOffset?: number }>,
    chunkBytes = READ_CHUNK_BYTES,
  ): Promise<ArrayBuffer[]> {
    await this.checkCompiled();
    const chunks: { size: number; items: { part: number; offset: number }[] }[] = [];
    let open: (typeof chunks)[number] | null = null;
    parts.forEach((p, part) => {
      const size = Math.ceil(p.bytes / 4) * 4;
      if (!open || open.size + size > chunkBytes) chunks.push(open = { size: 0, items: [] });
      open.items.push({ part, offset: open.size });
      open.size += size;
    });
    const staging = chunks.map((c) => {
      const size = Math.max(4, c.size);
      return this.readbacks.get(size)?.pop() ?? this.device.createBuffer({
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    });
    let mapped = false;
    try {
      chunks.forEach((c, i) => {
        for (const { part, offset } of c.items) {
          const p = parts[part], size = Math.ceil(p.bytes / 4) * 4;
          if (size > 0) this.copy(p.buf, p.byteOffset ?? 0, staging[i], offset, size);
        }
      });
      this.flush();
      try {
        await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
      } catch (e) {
        this.check();
        throw e;
      }
      mapped = true;
      const out: ArrayBuffer[] = new Array(parts.length);
      chunks.forEach((c, i) => {
        const range = staging[i].getMappedRange();
        for (const { part, offset } of c.items) {
          out[part] = range.slice(offset, offset + parts[part].bytes);
        }
        staging[i].unmap();
      });
      return out;
    } finally {
      for (const b of staging) {
        if (!mapped || b.size > KEEP_READBACK_BYTES) b.destroy();
        else this.readbacks.set(b.size, (this.readbacks.get(b.size) ?? []).concat(b));
      }
    }
  }

  // ---- pipelines and dispatch ----------------------------------------------

  /**
   * The compiled pipeline for a kernel, built once per WGSL source. Creation
   * runs inside a validation error scope; a compile error is formatted with
   * line:column and the offending source (formatCompileError) and thrown by the
   * next call on this Gpu (`sync` and `read` wait for it), instead of surfacing
   * as an asynchronous console warning.
   */
  pipeline(kernel: Kernel): GPUComputePipeline {
    return this.entry(kernel).pipeline;
  }

  /** The cached pipeline of a kernel and its id, compiled on first use. */
  private entry(kernel: Kernel): PipelineEntry {
    let p = this.pipelines.get(kernel.code);
    if (!p) {
      this.device.pushErrorScope("validation");
      const module = this.device.createShaderModule({ code: kernel.code, label: kernel.name });
      const pipeline = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: kernel.name,
      });
      const scope = this.device.popErrorScope();
      const entry: PipelineEntry = { pipeline, id: this.pipelines.size };
      this.compiling.push(
        scope.then(async (err) => {
          if (!err) return;
          const info = await module.getCompilationInfo();
          const errors = info.messages.filter((m) => m.type === "error");
          // kept on the pipeline too: a later dispatch of it throws at once, naming it, even
          // after the first report was handled (the tuner drops such a candidate)
          entry.error = new GpuError(
            errors.length
              ? formatCompileError(kernel, errors)
              : `WebGPU rejected kernel ${kernel.name}: ${err.message.trim()}`,
          );
          this.compileError ??= entry.error;
        }),
      );
      p = entry;
      this.pipelines.set(kernel.code, p);
      this.stats.pipelinesCreated++;
    }
    return p;
  }

  /** Forgets a compile error once its caller has dealt with it (the tuner drops that candidate). */
  clearCompileError(): void {
    this.compileError = null;
  }

  /** Waits for every pipeline created so far to be checked; throws a compile error if any. */
  async checkCompiled(): Promise<void> {
    const pending = this.compiling;
    this.compiling = [];
    await Promise.all(pending);
    this.check();
  }

  /**
   * Records one dispatch. Binding convention for every kernel in this project:
   * `@binding(0)` is the uniform parameter block (when `params` is given), then
   * the buffers in the order passed: whole buffers, or a range of one (a
   * uniform window: `{ buffer, offset, size }`, offset a multiple of 256).
   */
  dispatch(
    kernel: Kernel,
    buffers: Array<GPUBuffer | GPUBufferBinding>,
    params: ArrayBufferView | null,
    groups: [number, number?, number?],
  ): void {
    this.check();
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxG = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxG || y > maxG || z > maxG) {
      throw new GpuError(`${kernel.name}: dispatch ${x}x${y}x${z} exceeds ${maxG} per dimension`);
    }
    this.checkAliasing(kernel, buffers);
    const { pipeline, id, error } = this.entry(kernel);
    if (error) throw error;
    const entries: GPUBindGroupEntry[] = [];
    let key = `${id}`;
    if (params) {
      if (params.byteLength > UNIFORM_SLOT) throw new GpuError(`${kernel.name}: params too large`);
      if (this.uniformUsed + UNIFORM_SLOT > UNIFORM_RING) this.flush();
      const offset = this.uniformUsed;
      this.uniformStage.set(
        new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
        offset,
      );
      this.uniformUsed += UNIFORM_SLOT;
      entries.push({
        binding: 0,
        resource: { buffer: this.uniformRing, offset, size: UNIFORM_SLOT },
      });
      key += `|u${offset}`;
    }
    buffers.forEach((b, i) => {
      const resource = b instanceof GPUBuffer ? { buffer: b } : b;
      entries.push({ binding: i + 1, resource });
      key += `|${this.bufferId(resource.buffer)}:${resource.offset ?? 0}:${resource.size ?? ""}`;
    });
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      this.bindGroups.set(key, bindGroup);
      this.stats.bindGroupsCreated++;
    }
    if (!this.pass) {
      this.pass = this.newPass();
      this.stats.passes++;
      const t = this.timer;
      if (t?.open && t.labels.length < t.passOf.length) t.labels.push(kernel.name);
    }
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
  }

  /** A small stable id per buffer, for bind-group keys. */
  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, id = this.nextBufferId++);
    return id;
  }

  /**
   * WebGPU rejects a buffer bound twice in one dispatch when either binding is
   * read_write, and only reports it asynchronously; catch it here, naming the kernel.
   */
  private checkAliasing(kernel: Kernel, bindings: Array<GPUBuffer | GPUBufferBinding>): void {
    const buffers = bindings.map((b) => b instanceof GPUBuffer ? b : b.buffer);
    for (let i = 1; i < buffers.length; i++) {
      const j = buffers.indexOf(buffers[i]);
      if (j === i) continue;
      let rw = this.writable.get(kernel.code);
      if (!rw) {
        rw = new Set(
          [...kernel.code.matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)]
            .map((m) => Number(m[1])),
        );
        this.writable.set(kernel.code, rw);
      }
      if (rw.has(i + 1) || rw.has(j + 1)) {
        throw new GpuError(`${kernel.name}: bindings ${j + 1} and ${i + 1} are the same buffer`);
      }
    }
  }

  /** The current batch's command encoder. */
  private encoderOrNew(): GPUCommandEncoder {
    return this.encoder ??= this.device.createCommandEncoder();
  }

  /** Ends the open compute pass, if any. */
  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformRing, 0, this.uniformStage, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.stats.submits++;
  }

  /**
   * GPU milliseconds of the work each function records, from timestamp queries (see startTimer):
   * all in one submit, read back once, so the queue's latency (a submit and its wait: ~10 ms
   * through Deno on an H200) is not in the figure and needs no subtracting. null for every
   * function where the device has no timestamp-query; callers then time by submit difference
   * (tuner.ts msPerCall).
   */
  async timePasses(fns: Array<() => void>): Promise<Array<number | null>> {
    if (!this.hasTimestamps || fns.length === 0) return fns.map(() => null);
    this.startTimer(2048);
    try {
      for (const fn of fns) {
        this.beginTimed();
        fn();
        this.endTimed();
      }
    } catch (e) {
      await this.stopTimer().catch(() => {}); // the timer ends with the error
      throw e;
    }
    return await this.stopTimer();
  }

  /**
   * Starts timing stretches of recorded work: from `beginTimed` to `endTimed` every compute pass
   * (one, unless a copy, a clear or a flush inside ends it and a later dispatch opens another)
   * writes GPU timestamps at its beginning and end, and a stretch's time is the sum over its
   * passes (copies and clears between them are not counted). `capacity` bounds the passes
   * (≤ 2,048); a stretch that would need more reads null. `stopTimer` submits and returns each
   * stretch's milliseconds. Used by `timePasses` (the tuner) and bench/profile_step.ts's in-step
   * profile. Needs timestamp-query (`hasTimestamps`).
   */
  startTimer(capacity: number): void {
    if (!this.hasTimestamps) throw new GpuError("startTimer: this device has no timestamp-query");
    if (this.timer) throw new GpuError("startTimer: a timer is already running");
    if (!(capacity >= 1 && capacity <= 2048)) {
      throw new GpuError(`startTimer: capacity ${capacity} is not 1-2048 passes`);
    }
    this.flush();
    this.timer = {
      querySet: this.device.createQuerySet({ type: "timestamp", count: 2 * capacity }),
      capacity,
      passOf: [],
      labels: [],
      complete: [],
      open: false,
    };
  }

  /** Opens the next timed stretch (see startTimer). */
  beginTimed(): void {
    const t = this.timer;
    if (!t) throw new GpuError("beginTimed: no timer (startTimer first)");
    if (t.open) throw new GpuError("beginTimed: the previous stretch is still open");
    this.endPass();
    t.complete.push(true);
    t.open = true;
  }

  /** Closes the open timed stretch; later dispatches go into untimed passes. */
  endTimed(): void {
    const t = this.timer;
    if (!t?.open) return;
    this.endPass();
    t.open = false;
  }

  /** Submits, reads the timestamps and ends the timer: ms per stretch (null: out of capacity). */
  async stopTimer(): Promise<Array<number | null>> {
    const t = this.timer;
    if (!t) throw new GpuError("stopTimer: no timer");
    this.endTimed();
    this.timer = null;
    const count = 2 * t.passOf.length;
    const out: Array<number | null> = t.complete.map((ok) => ok ? 0 : null);
    if (count === 0) {
      t.querySet.destroy();
      return out;
    }
    const resolved = this.device.createBuffer({
      size: 8 * count,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: 8 * count,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      this.endPass(); // an untimed pass may be open (dispatches after the last stretch)
      const enc = this.encoderOrNew();
      enc.resolveQuerySet(t.querySet, 0, count, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, staging, 0, 8 * count);
      this.flush();
      await staging.mapAsync(GPUMapMode.READ);
      const ts = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      await this.checkCompiled();
      // timestamps are nanoseconds; a pass whose end reads before its start is not a time
      const t0 = ts[0];
      this.lastTimeline = t.passOf.map((stretch, i) => ({
        stretch,
        label: t.labels[i] ?? "",
        begin: Number(ts[2 * i] - t0) / 1e6,
        end: Number(ts[2 * i + 1] - t0) / 1e6,
      }));
      t.passOf.forEach((stretch, i) => {
        const [a, b] = [ts[2 * i], ts[2 * i + 1]];
        const prev = out[stretch];
        out[stretch] = prev === null || b < a ? null : prev + Number(b - a) / 1e6;
      });
      if (ts.every((x) => x === 0n)) {
        // no times were written: this driver's timestamps cannot time anything
        this.timestampsDead = true;
        console.warn("timestamp queries read 0 on this device: timing by submit difference");
        return out.map(() => null);
      }
      return out;
    } finally {
      t.querySet.destroy();
      resolved.destroy();
      staging.destroy();
    }
  }

  /** A new compute pass for the next dispatch: timed (timestamp writes) inside a timed stretch. */
  private newPass(): GPUComputePassEncoder {
    const t = this.timer;
    if (!t?.open) return this.encoderOrNew().beginComputePass();
    const stretch = t.complete.length - 1;
    if (t.passOf.length >= t.capacity) {
      t.complete[stretch] = false;
      return this.encoderOrNew().beginComputePass();
    }
    const i = t.passOf.length;
    t.passOf.push(stretch);
    return this.encoderOrNew().beginComputePass({
      timestampWrites: {
        querySet: t.querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
  }

  /** Waits until the GPU has finished everything submitted (for benchmarks). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkCompiled();
  }

  /** Runs `fn` inside validation and out-of-memory error scopes and throws what they caught. */
  async checked<T>(fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    const result = await fn();
    this.flush();
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    const err = validation ?? oom;
    if (err) {
      throw new GpuError(`WebGPU ${validation ? "validation" : "memory"} error: ${err.message}`);
    }
    return result;
  }

  /** Submits pending work, frees every buffer and destroys the device. */
  destroy(): void {
    this.flush();
    this.trim();
    for (const list of this.readbacks.values()) for (const b of list) b.destroy();
    this.uniformRing.destroy();
    this.device.destroy();
  }
}

let shared: Promise<Gpu> | null = null;

/** The process-wide GPU, created on first use. */
export function getGpu(opts?: GpuOptions): Promise<Gpu> {
  return shared ??= Gpu.create(opts);
}

/** Workgroup counts for `n` invocations of `wg` lanes, folded into 2-D past the 65,535 limit. */
export function grid1d(n: number, wg: number): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/** Packs a uniform block of u32/i32/f32 fields, each 4 bytes, in declaration order. */
export function params(fields: Array<number | { f32: number } | { i32: number }>): Uint32Array {
  const n = Math.ceil(fields.length / 4) * 4 || 4; // uniform blocks are 16-byte multiples
  const u = new Uint32Array(n);
  const f = new Float32Array(u.buffer);
  const s = new Int32Array(u.buffer);
  fields.forEach((v, i) => {
    if (typeof v === "number") u[i] = v;
    else if ("f32" in v) f[i] = v.f32;
    else s[i] = v.i32;
  });
  return u;
}
