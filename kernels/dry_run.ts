/**
 * A dry run on the CPU: runs `fn` with the device's buffer pool replaced by a counter that hands
 * out placeholders and keeps the pool's exact rules (the same size buckets, a freed buffer reused
 * by the next request of its bucket), and with every dispatch, copy, clear, upload and flush
 * skipped (reads return zeros). Nothing is allocated or computed on the device, so the pool's
 * footprint of a step at any shape — what `stats.bytesAllocated` would reach — is known in the
 * time the host takes to record the step. Kernels that choose by adapter (Winograd, tile shapes)
 * choose as on this adapter.
 */
import { type Gpu, poolBucket } from "./device.ts";

export interface DryRunResult<T> {
  result: T;
  /** Bytes of every buffer the pool would have created (its high-water mark). */
  bytes: number;
  buffers: number;
  /** The largest single buffer (bucketed bytes). */
  largest: number;
}

const PATCHED = ["acquire", "release", "dispatch", "copy", "clear", "write", "flush", "read"];

export async function dryRun<T>(gpu: Gpu, fn: () => T | Promise<T>): Promise<DryRunResult<T>> {
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
    dispatch() {},
    copy() {},
    clear() {},
    write() {},
    flush() {},
    read: (_buf: GPUBuffer, n: number) => Promise.resolve(new ArrayBuffer(n)),
  });
  try {
    const result = await fn();
    return { result, bytes, buffers, largest };
  } finally {
    for (const k of PATCHED) delete g[k];
  }
}
