/**
 * Developer check: the linear protocol's probe against scikit-learn on a real run's features.
 * Extracts frozen features of one backbone exactly as the experiment does (its splits, its
 * label-fraction subsets, its standardisation), fits our penalty path per subset, runs
 * tools/sklearn_probe.py (LogisticRegression over the same C grid, chosen on the same validation
 * split) on the same standardised features, and prints both test AUCs per cell.
 *
 *   deno run -A tools/probe_vs_sklearn.ts --data DIR [--size 32] [--backbone-file FILE]
 *       [--fractions 0.01,0.1,1] [--draws 5] [--seed 0]
 *
 * Without --backbone-file the backbone is the experiment's random init (seeded by --seed).
 * Needs .venv (bash tools/setup_torch_venv.sh).
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { auc } from "../eval/auc.ts";
import { formatFraction } from "../eval/results.ts";
import { labelFractionSubsets } from "../data/fractions.ts";
import { openData } from "../cli/open_data.ts";
import { labelledSource } from "../train/cache_sources.ts";
import { makeSplits } from "../train/splits.ts";
import { extractFeatures } from "../train/features.ts";
import { buildClassifier } from "../train/finetune.ts";
import { featureStats, standardRows } from "../train/linear_protocol.ts";
import { DEFAULT_C_GRID, fitProbePath, logits } from "../train/logistic_probe.ts";

const { values: f } = parseArgs({
  options: {
    data: { type: "string" },
    size: { type: "string" },
    "backbone-file": { type: "string" },
    fractions: { type: "string" },
    draws: { type: "string" },
    seed: { type: "string" },
  },
});
const S = Number(f.size ?? 32), seed = Number(f.seed ?? 0);
const B = gpuBackend(await getGpu());
const { cache } = await openData({ data: f.data, imageSize: S, inChannels: 1 });
const T = cache.tasks.length;
const splits = makeSplits(cache, seed);
const subsets = labelFractionSubsets(cache.records, splits.trainPool, {
  fractions: (f.fractions ?? "0.01,0.1,1").split(",").map(Number),
  draws: Number(f.draws ?? 5),
  seed,
});
const net = await buildClassifier(B, {
  backbone: "resnet18",
  inChannels: 1,
  imageSize: S,
  protocol: "linear",
  init: f["backbone-file"] ?? "random",
  batchSize: 16,
  lr: 0,
  weightDecay: 0,
  steps: 0,
  evalEvery: 1,
  patience: 0,
  seed,
}, T);
const F = net.featureDim;
const feats = async (idx: number[]) =>
  await extractFeatures(B, net, labelledSource(cache, idx, S, 1));
const [fPool, fVal, fTest] = [
  await feats(splits.trainPool),
  await feats(splits.val),
  await feats(splits.test),
];
const stats = featureStats(fPool, F);
const labelled = (idx: number[]) =>
  idx.map((c, i) => [c, i]).filter(([c]) => cache.mask[c * T] > 0);
const rows = (x: Float32Array, idx: number[]) => {
  const l = labelled(idx);
  return {
    x: standardRows(x, F, stats, l.map(([, i]) => i)),
    y: Float64Array.from(l, ([c]) => cache.labels[c * T]),
  };
};
const val = rows(fVal, splits.val), test = rows(fTest, splits.test);
const pos = new Map(splits.trainPool.map((c, i) => [c, i]));
const python = new URL("../.venv/bin/python", import.meta.url).pathname;
const script = new URL("./sklearn_probe.py", import.meta.url).pathname;
let worst = 0;
console.log("cell        n   ours C   ours AUC  sklearn C  sklearn AUC  |diff|");
for (const sub of subsets) {
  const l = labelled(sub.indices.map((c) => c));
  const train = {
    x: standardRows(fPool, F, stats, l.map(([c]) => pos.get(c)!)),
    y: Float64Array.from(l, ([c]) => cache.labels[c * T]),
  };
  const ours = fitProbePath(train, val, F);
  const oursAuc = auc(Array.from(test.y), Array.from(logits(test.x, F, ours.w, ours.b)));
  const file = await Deno.makeTempFile({ suffix: ".json" });
  const plain = (r: { x: Float64Array; y: Float64Array }) => ({
    x: Array.from(r.x),
    y: Array.from(r.y),
  });
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      F,
      grid: DEFAULT_C_GRID,
      train: plain(train),
      val: plain(val),
      test: plain(test),
    }),
  );
  const out = await new Deno.Command(python, { args: [script, file], stderr: "inherit" }).output();
  await Deno.remove(file);
  if (!out.success) Deno.exit(1);
  const ref = JSON.parse(new TextDecoder().decode(out.stdout));
  const d = Math.abs(oursAuc - ref.test_auc);
  worst = Math.max(worst, d);
  console.log(
    `${formatFraction(sub.fraction).padEnd(5)} d${sub.draw} ${
      String(train.y.length).padStart(5)
    }  ` +
      `${ours.C.toPrecision(2).padStart(7)}  ${oursAuc.toFixed(4)}    ${
        Number(ref.C).toPrecision(2).padStart(7)
      }    ${Number(ref.test_auc).toFixed(4)}     ${d.toFixed(4)}`,
  );
}
console.log(`largest |test AUC difference|: ${worst.toFixed(4)}`);
