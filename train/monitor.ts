/**
 * The pretraining monitor: a k-nearest-neighbour probe of the current query
 * backbone. Features of a labelled reference set and a validation set
 * (cosine similarity, k = 20, similarity-weighted vote) give a score per
 * validation image for the first task, whose AUC shows whether the
 * representation is learning the finding without training any head.
 */
import type { Backend } from "../model/backend.ts";
import type { ClassifierNet } from "../model/classifier.ts";
import { auc } from "../eval/auc.ts";
import { extractFeatures } from "./features.ts";
import type { LabelledSource } from "./sources.ts";

export interface MonitorSets {
  reference: LabelledSource;
  validation: LabelledSource;
}

function normalizeRows(x: Float32Array, d: number): void {
  for (let i = 0; i < x.length; i += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i + j] * x[i + j];
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) x[i + j] *= inv;
  }
}

/** kNN scores of `query` rows against labelled `ref` rows (both L2-normalised in place). */
export function knnScores(
  ref: Float32Array,
  refLabels: ArrayLike<number>,
  query: Float32Array,
  d: number,
  k = 20,
): Float32Array {
  normalizeRows(ref, d);
  normalizeRows(query, d);
  const nr = ref.length / d, nq = query.length / d;
  const scores = new Float32Array(nq);
  const sims = new Float32Array(nr);
  for (let q = 0; q < nq; q++) {
    for (let r = 0; r < nr; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += query[q * d + j] * ref[r * d + j];
      sims[r] = s;
    }
    const top = Array.from(sims.keys()).sort((a, b) => sims[b] - sims[a]).slice(0, k);
    let num = 0, den = 0;
    for (const r of top) {
      const w = Math.exp(sims[r] / 0.1);
      num += w * refLabels[r];
      den += w;
    }
    scores[q] = num / den;
  }
  return scores;
}

export async function knnMonitor(
  B: Backend,
  net: ClassifierNet,
  sets: MonitorSets,
): Promise<Record<string, number>> {
  const d = net.featureDim;
  const ref = await extractFeatures(B, net, sets.reference);
  const val = await extractFeatures(B, net, sets.validation);
  const T = sets.reference.tasks.length;
  const refLabels = Array.from(
    { length: sets.reference.count },
    (_, i) => sets.reference.labels[i * T],
  );
  const valLabels = Array.from(
    { length: sets.validation.count },
    (_, i) => sets.validation.labels[i * T],
  );
  const scores = knnScores(ref, refLabels, val, d);
  return { knn_auc: auc(valLabels, scores) };
}
