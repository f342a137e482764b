/**
 * A dry run on the CPU: runs `fn` with the device's buffer pool replaced by a counter that hands
 * out placeholders and keeps the pool's exact rules (the same size buckets, a freed buffer reused
 * by the next request of its bucket), and with every dispatch, copy, clear, upload and flush
 * skipped (reads return zeros). Nothing is allocated or computed on the device, so the pool's
 * footprint of a step at any shape — what `stats.bytesAllocated` would reach — is known in the
 * time the host takes to record the step. Kernels that choose by adapter (Winograd, tile shapes)
 * choose as on this adapter, or, with `hardware`, as on a hardware GPU (the adapter's
 * `isSoftware` reads false, so every kernel takes its GPU layout and the tuner's prior), and
 * `onDispatch` sees every dispatch (bench/dispatch_audit.ts lists a step's grids that way).
 */
import { type Gpu, type Kernel, poolBucket } from "./device.ts";
import { tunerOf } from "./tuner.ts";

export interface DryRunResult<T> {
  result: T;
  /** Bytes of every buffer the pool would have created (its high-water mark). */
  bytes: number;
  buffers: number;
  /** The largest single buffer (bucketed bytes). */
  largest: number;
}

/** One recorded dispatch: the kernel, its grid and the bytes of the buffers it binds. */
export interface DryDispatch {
  kernel: Kernel;
  groups: [number, number, number];
  /** Bytes bound (a whole buffer's pool bucket, or a binding's range): what it may touch. */
  bytesBound: number;
}

export interface DryRunOptions {
  /** Choose kernels as on a hardware GPU (`isSoftware` false) instead of as on this adapter. */
  hardware?: boolean;
  onDispatch?: (d: DryDispatch) => void;
}

const PATCHED = [
  "acquire",
  "release",
  "dispatch",
  "copy",
  "clear",
  "write",
  "flush",
  "read",
  "isSoftware",
];

export async function dryRun<T>(
  gpu: Gpu,
  fn: () => T | Promise<T>,
  opts: DryRunOptions = {},
): Promise<DryRunResult<T>> {
  gpu.flush();
  const free = new Map<number, number>();
  let bytes = 0, buffers = 0, largest = 0;
  const g = gpu as unknown as Record<string, unknown>;
  if (PATCHED.some((k) => Object.hasOwn(g, k))) throw new Error("dryRun: already in a dry run");
  Object.assign(g, {
    acquire(n: number) {
      const size = poolBucket(n);
      const f = free.get(size) ?? 0;
      if (f > 0) free.set(size, f - 1);
      else {
        bytes += size;
        buffers++;
        largest = Math.max(largest, size);
      }
      return { size, label: "dry-run placeholder" } as unknown as GPUBuffer;
    },
    release(buf: GPUBuffer) {
      free.set(buf.size, (free.get(buf.size) ?? 0) + 1);
    },
    dispatch(
      kernel: Kernel,
      buffers: Array<GPUBuffer | GPUBufferBinding>,
      _params: unknown,
      groups: [number, number?, number?],
    ) {
      const [x, y = 1, z = 1] = groups;
      if (!opts.onDispatch || x === 0 || y === 0 || z === 0) return;
      const bytesBound = buffers.reduce(
        (s, b) => s + ("buffer" in b ? b.size ?? b.buffer.size - (b.offset ?? 0) : b.size),
        0,
      );
      opts.onDispatch({ kernel, groups: [x, y, z], bytesBound });
    },
    copy() {},
    clear() {},
    write() {},
    flush() {},
    read: (_buf: GPUBuffer, n: number) => Promise.resolve(new ArrayBuffer(n)),
  });
  // Create the tuner now, in the adapter's own mode ("off" on software adapters: the prior), not
  // first inside a hardware dry run, which would leave it measuring.
  tunerOf(gpu);
  Object.defineProperty(g, "isSoftware", {
    value: opts.hardware ? false : gpu.isSoftware,
    configurable: true,
  });
  try {
    const result = await fn();
    return { result, bytes, buffers, largest };
  } finally {
    for (const k of PATCHED) delete g[k];
  }
}
