/**
 * TF.js's WebGPU backend as the reference implementation, on the same
 * adapter. Loaded lazily (it is large) and only when a TF.js row is wanted.
 */
import type * as TF from "@tensorflow/tfjs";

export type Tf = typeof TF;

let loaded: Promise<Tf> | null = null;

export function loadTf(): Promise<Tf> {
  return loaded ??= (async () => {
    const tf = await import("@tensorflow/tfjs");
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) throw new Error("TF.js: the webgpu backend failed");
    await tf.ready();
    return tf;
  })();
}

/** Submits TF.js's pending commands and waits for the device (no readback). */
export async function tfSync(tf: Tf): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const backend = tf.backend() as any;
  if (backend.commandEncoder) {
    backend.endComputePassEncoder(); // finish() on an encoder with an open pass is invalid
    backend.submitQueue();
  }
  await backend.device.queue.onSubmittedWorkDone();
}
