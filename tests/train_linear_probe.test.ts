/**
 * The linear protocol's probe (train/logistic_probe.ts, train/linear_protocol.ts): L-BFGS reaches
 * the optimum of the L2-regularised objective (its gradient vanishes), the penalty is chosen by
 * validation AUC, and on the same standardised features it agrees with scikit-learn's
 * LogisticRegression (coefficients at every C of the path, the chosen C, test AUC within 0.005).
 * The scikit-learn check runs tools/sklearn_probe.py in .venv (tools/setup_torch_venv.sh) and is
 * skipped where that venv is absent.
 */
import { auc } from "../eval/auc.ts";
import {
  DEFAULT_C_GRID,
  fitLogistic,
  fitProbePath,
  logits,
  type ProbeRows,
} from "../train/logistic_probe.ts";
import { featureStats, linearProtocol, standardRows } from "../train/linear_protocol.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals } from "./helpers.ts";

const F = 48;

/**
 * Features as a frozen backbone gives them: a shared latent factor correlating every dimension,
 * per-dimension scales and offsets, and a weak class signal on a third of the dimensions.
 */
function features(n: number, seed: number): { x: Float32Array; y: Float64Array } {
  const r = new Rng(seed), dims = new Rng(7);
  const scale = Array.from({ length: F }, () => 0.2 + 3 * dims.uniform());
  const offset = Array.from({ length: F }, () => 5 * dims.normal());
  const signal = Array.from({ length: F }, (_, j) => (j % 3 === 0 ? 0.35 * dims.normal() : 0));
  const load = Array.from({ length: F }, () => dims.normal());
  const x = new Float32Array(n * F), y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = r.uniform() < 0.4 ? 1 : 0;
    const latent = r.normal();
    for (let j = 0; j < F; j++) {
      x[i * F + j] = offset[j] +
        scale[j] * (r.normal() + 0.8 * latent * load[j] + y[i] * signal[j]);
    }
  }
  return { x, y };
}

/** Train (n < F: separable, as a 1% cell), validation and test rows, standardised on a pool. */
function problem() {
  const pool = features(300, 1), val = features(120, 2), test = features(400, 3);
  const stats = featureStats(pool.x, F);
  const rows = (d: { x: Float32Array; y: Float64Array }, n: number): ProbeRows => ({
    x: standardRows(d.x, F, stats, Array.from({ length: n }, (_, i) => i)),
    y: d.y.slice(0, n),
  });
  return { train: rows(pool, 40), val: rows(val, 120), test: rows(test, 400) };
}

Deno.test("L-BFGS reaches the optimum: the gradient of the penalised objective vanishes", () => {
  const { train } = problem();
  for (const C of [1e-3, 1e-1, 10]) {
    const fit = fitLogistic(train, F, C);
    assert(fit.converged, `C=${C}: not converged in ${fit.iterations} iterations`);
    // Recompute ∇J independently: (1/n) Xᵀ(p − y) + w/(C n), and (1/n) Σ (p − y).
    const n = train.y.length, s = logits(train.x, F, fit.w, fit.b);
    const e = Array.from(s, (v, i) => 1 / (1 + Math.exp(-v)) - train.y[i]);
    let worst = Math.abs(e.reduce((a, v) => a + v, 0) / n);
    for (let j = 0; j < F; j++) {
      let g = fit.w[j] / (C * n);
      for (let i = 0; i < n; i++) g += (e[i] * train.x[i * F + j]) / n;
      worst = Math.max(worst, Math.abs(g));
    }
    assert(worst < 1e-6, `C=${C}: |grad| ${worst}`);
  }
});

Deno.test("the penalty path keeps the C with the best validation AUC, strongest among ties", () => {
  const { train, val } = problem();
  const r = fitProbePath(train, val, F);
  assertEquals(r.path.map((p) => p.C), DEFAULT_C_GRID);
  const best = Math.max(...r.path.map((p) => p.valAuc));
  assertEquals(r.valAuc, best);
  assertEquals(r.C, r.path.find((p) => p.valAuc === best)!.C);
  assertEquals(r.chosenBy, "validation-auc");
  assertEquals(auc(Array.from(val.y), Array.from(logits(val.x, F, r.w, r.b))), best);
  // The grid matters here: the weakest penalty overfits 40 images of 48 dimensions.
  assert(best > r.path[r.path.length - 1].valAuc + 0.01, JSON.stringify(r.path));
  // Scored on its own (separable) training rows, several Cs rank perfectly: the strongest wins.
  const self = fitProbePath(train, train, F);
  assert(self.path.filter((p) => p.valAuc === 1).length > 1, JSON.stringify(self.path));
  assertEquals(self.C, self.path.find((p) => p.valAuc === 1)!.C);
  // A validation set of one class cannot choose: sklearn's default C = 1, said so.
  const oneClass = { x: val.x, y: new Float64Array(val.y.length) };
  const d = fitProbePath(train, oneClass, F);
  assertEquals([d.C, d.chosenBy], [1, "default"]);
  // Training rows of one class: nothing to fit, constant scores, said so (no endless intercept).
  const one = fitProbePath({ x: train.x, y: new Float64Array(train.y.length).fill(1) }, val, F);
  assertEquals([one.chosenBy, one.path.length, one.b], ["one-class", 0, 0]);
  assert(one.w.every((v) => v === 0) && Number.isNaN(one.C));
});

Deno.test("multi-task: each task gets its own C; the head applies the probe to raw features", () => {
  const a = features(200, 4), v = features(80, 5), t = features(60, 6);
  // Task 1 is task 0's label flipped and masked on every third image.
  const two = (d: { y: Float64Array }) => {
    const n = d.y.length, labels = new Float32Array(2 * n), mask = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      labels.set([d.y[i], 1 - d.y[i]], 2 * i);
      mask.set([1, i % 3 === 0 ? 0 : 1], 2 * i);
    }
    return { labels, mask, count: n };
  };
  const trainIdx = Array.from({ length: 50 }, (_, i) => 2 * i);
  const r = linearProtocol({ train: a.x, val: v.x, test: t.x }, F, {
    train: two(a),
    trainIdx,
    val: two(v),
  }, 2);
  assertEquals(r.probes.length, 2);
  assertEquals(r.curve.length, DEFAULT_C_GRID.length);
  // Task 1's probe saw only its unmasked training rows.
  const used1 = trainIdx.filter((i) => i % 3 !== 0).length;
  assert(r.probes.every((p) => DEFAULT_C_GRID.includes(p.C)));
  // Head: weight [2, F], bias [2]; logits of raw test features = the probe's scores.
  const w = r.head.get("weight")!.data as Float32Array,
    b = r.head.get("bias")!.data as Float32Array;
  for (let i = 0; i < 60; i++) {
    for (let k = 0; k < 2; k++) {
      let s = b[k];
      for (let j = 0; j < F; j++) s += w[k * F + j] * t.x[i * F + j];
      assertClose([1 / (1 + Math.exp(-s))], [r.testScores[i * 2 + k]], { atol: 1e-4, rtol: 0 });
    }
  }
  // Task 1 refitted alone on its own rows gives the same solution at its C.
  const stats = featureStats(a.x, F);
  const rows1 = trainIdx.filter((i) => i % 3 !== 0);
  assertEquals(rows1.length, used1);
  const alone = fitLogistic(
    { x: standardRows(a.x, F, stats, rows1), y: Float64Array.from(rows1, (i) => 1 - a.y[i]) },
    F,
    r.probes[1].C,
  );
  assertClose(r.probes[1].w, alone.w, { atol: 1e-4, rtol: 1e-3 });
  // A task without labelled training images in the subset: task 0 is still probed, task 1
  // scores a constant 0.5, and the path is task 0's.
  const unlabelled = two(a);
  for (const i of trainIdx) unlabelled.mask[2 * i + 1] = 0;
  const u = linearProtocol({ train: a.x, val: v.x, test: t.x }, F, {
    train: unlabelled,
    trainIdx,
    val: two(v),
  }, 2);
  assertEquals(u.probes.map((p) => p.chosenBy), ["validation-auc", "one-class"]);
  assertEquals(u.probes[0].C, r.probes[0].C);
  assert(Array.from({ length: 60 }, (_, i) => u.testScores[2 * i + 1]).every((x) => x === 0.5));
  assertEquals(u.curve.map((c) => c.val_auc), r.probes[0].path.map((p) => p.valAuc));
});

const python = new URL("../.venv/bin/python", import.meta.url).pathname;
const script = new URL("../tools/sklearn_probe.py", import.meta.url).pathname;
const haveSklearn = await Deno.stat(python).then(() => true, () => false);

Deno.test({
  name: "the probe agrees with scikit-learn's LogisticRegression on the same features",
  ignore: !haveSklearn,
  fn: async () => {
    const { train, val, test } = problem();
    const file = await Deno.makeTempFile({ suffix: ".json" });
    const plain = (r: ProbeRows) => ({ x: Array.from(r.x), y: Array.from(r.y) });
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
    const out = await new Deno.Command(python, { args: [script, file], stderr: "piped" }).output();
    await Deno.remove(file);
    assert(out.success, new TextDecoder().decode(out.stderr));
    const ref = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      C: number;
      test_auc: number;
      path: { C: number; w: number[]; b: number; val_auc: number }[];
    };
    const ours = fitProbePath(train, val, F);
    ref.path.forEach((p, k) => {
      const fit = fitLogistic(train, F, p.C);
      const scale = Math.max(...p.w.map(Math.abs), Math.abs(p.b));
      assertClose([...fit.w, fit.b], [...p.w, p.b], {
        atol: 1e-4 * scale,
        rtol: 0,
        label: `C=${p.C}`,
      });
      assertClose([ours.path[k].valAuc], [p.val_auc], { atol: 1e-9, rtol: 0, label: `C=${p.C}` });
    });
    assertEquals(ours.C, ref.C);
    const testAuc = auc(Array.from(test.y), Array.from(logits(test.x, F, ours.w, ours.b)));
    assert(Math.abs(testAuc - ref.test_auc) < 0.005, `ours ${testAuc}, sklearn ${ref.test_auc}`);
  },
});
