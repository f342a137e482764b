/** Frozen-backbone features of a labelled set, and the eval-mode batch loop they share. */
import type { Backend, BTensor } from "../model/backend.ts";
import { noGrad, Var } from "../model/autograd.ts";
import type { ClassifierNet } from "../model/classifier.ts";
import type { LabelledSource } from "./sources.ts";

/** Eval batches whose results are read in one round trip (see evalBatches). */
export const EVAL_READ_WINDOW = 8;

/**
 * Runs over a set's images (no augmentation) in batches, in order. `record(x, first)` records a
 * batch's kernels (x: its images on the device, `first`: the row of its first image) and returns
 * one tensor of results, handed to `take` with its values once read. The next batch is made and
 * uploaded on the host while the GPU runs this one, and results are read EVAL_READ_WINDOW batches
 * at a time in one round trip (Backend.readMany): a read costs a submit and a wait of ~10-13 ms
 * through Deno whatever its size, and a card that idles while the host waits drops its clock (an
 * H200's fell to 345 MHz between steps read one at a time, session 11).
 */
export async function evalBatches(
  B: Backend,
  src: LabelledSource,
  batch: number,
  record: (x: BTensor, first: number) => BTensor,
  take: (values: Float32Array, first: number) => void,
): Promise<void> {
  const upload = (i: number) => {
    const idx = Array.from({ length: Math.min(batch, src.count - i) }, (_, j) => i + j);
    const imgs = src.images(idx);
    return B.fromArray(imgs.data, imgs.shape);
  };
  let pending: { t: BTensor; first: number }[] = [];
  const drain = async () => {
    const values = await B.readMany(pending.map((p) => p.t));
    const done = pending;
    pending = [];
    done.forEach((p, k) => {
      B.dispose(p.t);
      take(values[k], p.first);
    });
  };
  let next = src.count > 0 ? upload(0) : null;
  try {
    for (let i = 0; i < src.count; i += batch) {
      const x = next!;
      next = null;
      pending.push({ t: record(x, i), first: i });
      B.dispose(x); // reused by the next upload: the queue orders its write after these reads
      B.flush();
      if (i + batch < src.count) next = upload(i + batch);
      if (pending.length >= EVAL_READ_WINDOW) await drain();
    }
    await drain();
  } finally {
    if (next) B.dispose(next);
    for (const p of pending) B.dispose(p.t);
  }
}

/** Frozen-backbone features of a labelled set, in eval mode, batch by batch, no tape. */
export async function extractFeatures(
  B: Backend,
  net: ClassifierNet,
  src: LabelledSource,
  batch = 32,
): Promise<Float32Array> {
  const F = net.featureDim;
  const out = new Float32Array(src.count * F);
  const wasTraining = net.training;
  net.eval();
  await evalBatches(
    B,
    src,
    batch,
    (x) => noGrad(() => net.features(new Var(B, x))).value,
    (values, first) => out.set(values, first * F),
  );
  net.train(wasTraining);
  return out;
}
