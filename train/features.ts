/** Frozen-backbone features of a labelled set, in eval mode, batch by batch, no tape. */
import type { Backend } from "../model/backend.ts";
import { noGrad, Var } from "../model/autograd.ts";
import type { ClassifierNet } from "../model/classifier.ts";
import type { LabelledSource } from "./sources.ts";

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
  for (let i = 0; i < src.count; i += batch) {
    const idx = Array.from({ length: Math.min(batch, src.count - i) }, (_, j) => i + j);
    const imgs = src.images(idx);
    const x = B.fromArray(imgs.data, imgs.shape);
    const f = noGrad(() => net.features(new Var(B, x)));
    out.set(await f.read(), i * F);
    f.dispose();
    B.dispose(x);
  }
  net.train(wasTraining);
  return out;
}
