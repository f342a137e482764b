import { Tensor } from "../kernels/tensor.ts";
import { bceWithLogits, softmaxCrossEntropy } from "../kernels/loss.ts";
import { l2Normalize, l2NormalizeBackward } from "../kernels/normalize.ts";
import { reduceSum } from "../kernels/reduce.ts";
import { sigmoid } from "../kernels/elementwise.ts";
import { bceWithLogitsCpu, softmaxCrossEntropyCpu } from "../kernels/cpu/loss.ts";
import { l2NormalizeBackwardCpu, l2NormalizeCpu } from "../kernels/cpu/normalize.ts";
import { reduceSumCpu } from "../kernels/cpu/reduce.ts";
import { sigmoidCpu } from "../kernels/cpu/elementwise.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck, weightedSum } from "./gradcheck.ts";
import { Rng } from "../util/rng.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
const rand = (shape: number[], seed: number, scale = 1) =>
  cpuTensor(shape, randn(shape.reduce((a, b) => a * b, 1), seed, scale));
const labelsFor = (N: number, K: number, seed: number) => {
  const r = new Rng(seed);
  return cpuTensor([N], Array.from({ length: N }, () => r.int(K)));
};

for (const [N, K] of [[1, 2], [5, 14], [33, 1000], [3, 5000]]) {
  Deno.test(`softmaxCrossEntropy matches CPU [${N},${K}]`, async () => {
    const x = rand([N, K], N + K, 3);
    x.data[0] += 50; // one large logit: the log-sum-exp must not overflow
    const lab = labelsFor(N, K, 1);
    const g = softmaxCrossEntropy(up(x), up(lab));
    const r = softmaxCrossEntropyCpu(x, lab);
    assertClose(await g.loss.read(), r.loss.data, { rtol: 1e-5, label: "loss" });
    assertClose(await g.dlogits.read(), r.dlogits.data, { atol: 1e-7, rtol: 1e-4, label: "dl" });
  });
}

Deno.test("softmaxCrossEntropy: out-of-range label gives NaN on GPU, an error on CPU", async () => {
  const x = rand([2, 3], 1);
  const lab = cpuTensor([2], [0, 3]);
  assert(Number.isNaN((await softmaxCrossEntropy(up(x), up(lab)).loss.read())[0]));
  assertThrows(() => softmaxCrossEntropyCpu(x, lab), /label 3 in row 1/);
});

for (const [N, T, p] of [[7, 14, 0.6], [1, 1, 1], [300, 14, 0.5], [4, 3, 0]]) {
  Deno.test(`bceWithLogits matches CPU [${N},${T}] mask density ${p}`, async () => {
    const x = rand([N, T], 3, 4);
    x.data[0] = 90; // far in the saturated range
    if (N * T > 1) x.data[1] = -90;
    const r = new Rng(4);
    const t = cpuTensor([N, T], Array.from({ length: N * T }, () => r.int(2)));
    const m = cpuTensor([N, T], Array.from({ length: N * T }, () => (r.uniform() < p ? 1 : 0)));
    const g = bceWithLogits(up(x), up(t), up(m));
    const c = bceWithLogitsCpu(x, t, m);
    assertClose(await g.loss.read(), c.loss.data, { atol: 1e-6, rtol: 1e-5, label: "loss" });
    assertClose(await g.dlogits.read(), c.dlogits.data, { atol: 1e-7, rtol: 1e-4, label: "dl" });
    if (p === 0) assertEquals([...await g.loss.read()], [0]);
  });
}

for (const [N, D] of [[1, 128], [9, 128], [4, 3], [2, 200]]) {
  Deno.test(`l2Normalize fwd/bwd match CPU [${N},${D}]`, async () => {
    const x = rand([N, D], 5);
    if (N > 2) x.data.fill(0, D, 2 * D); // a zero row: the norm is clamped to 1e-12
    const g = l2Normalize(up(x));
    const r = l2NormalizeCpu(x);
    assertClose(await g.y.read(), r.y.data, { atol: 1e-6, label: "y" });
    assertClose(await g.norm.read(), r.norm.data, { rtol: 1e-5, label: "norm" });
    const dy = rand([N, D], 6);
    const dx = l2NormalizeBackward(up(dy), g.y, g.norm);
    assertClose(await dx.read(), l2NormalizeBackwardCpu(dy, r.y, r.norm).data, {
      atol: 1e-5,
      rtol: 1e-4,
      label: "dx",
    });
  });
}

Deno.test("sigmoid and reduceSum match CPU", async () => {
  for (const n of [1, 65, 100_001]) {
    const x = rand([n], n, 5);
    x.data[0] = -100;
    assertClose(await sigmoid(up(x)).read(), sigmoidCpu(x).data, { atol: 1e-7, rtol: 1e-5 });
    assertClose(await reduceSum(up(x)).read(), reduceSumCpu(x).data, { atol: 1e-3, rtol: 1e-5 });
  }
});

Deno.test("losses reject mismatched shapes", () => {
  const a = up(rand([2, 3], 1));
  assertThrows(() => bceWithLogits(a, up(rand([3, 2], 1)), a), /targets is \[3,2\]/);
  assertThrows(() => softmaxCrossEntropy(a, up(rand([3], 1))), /3 labels for 2 rows/);
  assertThrows(() => l2Normalize(up(rand([6], 1))), /must be 2-D/);
});

Deno.test("loss CPU gradients vs finite differences (CE, BCE with mask, L2 normalize)", () => {
  const N = 4, K = 5;
  const x = rand([N, K], 20, 2);
  const lab = labelsFor(N, K, 21);
  gradCheck((xs) => softmaxCrossEntropyCpu(cpuTensor([N, K], xs[0]), lab).loss.data[0], [x.data], [
    softmaxCrossEntropyCpu(x, lab).dlogits.data,
  ], { label: "ce" });

  const r = new Rng(22);
  const t = cpuTensor([N, K], Array.from({ length: N * K }, () => r.int(2)));
  const m = cpuTensor([N, K], Array.from({ length: N * K }, () => (r.uniform() < 0.6 ? 1 : 0)));
  gradCheck((xs) => bceWithLogitsCpu(cpuTensor([N, K], xs[0]), t, m).loss.data[0], [x.data], [
    bceWithLogitsCpu(x, t, m).dlogits.data,
  ], { label: "bce" });

  const w = randn(N * K, 23);
  const f = l2NormalizeCpu(x);
  gradCheck((xs) => weightedSum(w)(l2NormalizeCpu(cpuTensor([N, K], xs[0])).y.data), [x.data], [
    l2NormalizeBackwardCpu(cpuTensor([N, K], w), f.y, f.norm).data,
  ], { label: "l2" });
});
