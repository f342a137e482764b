/** Frozen-backbone features of a labelled set, and the eval-mode batch loop they share. */
import type { Backend, BTensor } from "../model/backend.ts";
import { noGrad, Var } from "../model/autograd.ts";
import type { ClassifierNet } from "../model/classifier.ts";
import type { LabelledSource } from "./sources.ts";

/**
 * Runs over a set's images (no augmentation) in batches, in order. `record(x, first)` records a
 * batch's kernels (x: its images on the device, `first`: the row of its first image) and returns
 * what to await for its result; the next batch is made and uploaded on the host while the GPU
 * runs this one, and only then is the result awaited.
 */
export async function evalBatches(
  B: Backend,
  src: LabelledSource,
  batch: number,
  record: (x: BTensor, first: number) => () => Promise<void>,
): Promise<void> {
  const upload = (i: number) => {
    const idx = Array.from({ length: Math.min(batch, src.count - i) }, (_, j) => i + j);
    const imgs = src.images(idx);
    return B.fromArray(imgs.data, imgs.shape);
  };
  let next = src.count > 0 ? upload(0) : null;
  try {
    for (let i = 0; i < src.count; i += batch) {
      const x = next!;
      next = null;
      const done = record(x, i);
      B.dispose(x); // reused by the next upload: the queue orders its write after these reads
      B.flush();
      if (i + batch < src.count) next = upload(i + batch);
      await done();
    }
  } finally {
    if (next) B.dispose(next);
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
  await evalBatches(B, src, batch, (x, first) => {
    const f = noGrad(() => net.features(new Var(B, x)));
    return async () => {
      out.set(await f.read(), first * F);
      f.dispose();
    };
  });
  net.train(wasTraining);
  return out;
}
