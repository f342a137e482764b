/** DeLong variance/tests against a published example, a brute-force O(n·m) version, and sklearn. */
import {
  auc,
  delong,
  delongContrast,
  delongCovariance,
  delongPaired,
  EvalInputError,
} from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";

/** Hanley & McNeil (1982) CT ratings, also DeLong et al. (1988): 58 normal, 51 abnormal. */
function hanleyMcNeil(): { labels: number[]; scores: number[] } {
  const normal = [33, 6, 6, 11, 2], abnormal = [3, 2, 2, 11, 33]; // counts at ratings 1..5
  const labels: number[] = [], scores: number[] = [];
  normal.forEach((k, r) => {
    for (let i = 0; i < k; i++) labels.push(0), scores.push(r + 1);
  });
  abnormal.forEach((k, r) => {
    for (let i = 0; i < k; i++) labels.push(1), scores.push(r + 1);
  });
  return { labels, scores };
}

/** DeLong structural components straight from the definition (psi kernel, O(n·m)). */
function bruteCovariance(labels: number[], scoresList: number[][]): number[][] {
  const pos = labels.flatMap((y, i) => (y === 1 ? [i] : []));
  const neg = labels.flatMap((y, i) => (y === 0 ? [i] : []));
  const psi = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
  const v10 = scoresList.map((s) =>
    pos.map((i) => neg.reduce((t, j) => t + psi(s[i], s[j]), 0) / neg.length)
  );
  const v01 = scoresList.map((s) =>
    neg.map((j) => pos.reduce((t, i) => t + psi(s[i], s[j]), 0) / pos.length)
  );
  const cov = (a: number[], b: number[]) => {
    const ma = a.reduce((x, y) => x + y) / a.length, mb = b.reduce((x, y) => x + y) / b.length;
    return a.reduce((t, _, k) => t + (a[k] - ma) * (b[k] - mb), 0) / (a.length - 1);
  };
  return scoresList.map((_, p) =>
    scoresList.map((_, q) => cov(v10[p], v10[q]) / pos.length + cov(v01[p], v01[q]) / neg.length)
  );
}

function randomData(seed: number, n: number) {
  const rng = new Rng(seed);
  const labels = Array.from({ length: n }, () => (rng.uniform() < 0.35 ? 1 : 0));
  labels[0] = labels[1] = 1;
  labels[2] = labels[3] = 0;
  const shared = labels.map(() => rng.normal());
  const a = labels.map((y, i) => Math.round((y + shared[i] + 0.5 * rng.normal()) * 3) / 3);
  const b = labels.map((y, i) => Math.round((0.6 * y + shared[i] + 0.5 * rng.normal()) * 2) / 2);
  const c = labels.map(() => rng.int(4)); // uninformative, heavily tied
  return { labels, a, b, c };
}

Deno.test("delong: Hanley–McNeil CT data gives the published AUC 0.8932 and SE 0.0307", () => {
  const { labels, scores } = hanleyMcNeil();
  assertEquals(labels.length, 109);
  const t = delong(labels, scores);
  assertClose([t.estimate], [0.8932], { atol: 5e-5, rtol: 0, label: "AUC" });
  assertClose([t.estimate], [2642 / 2958], { atol: 1e-12, rtol: 0, label: "exact U / (m n)" });
  assertClose([t.se], [0.0307], { atol: 5e-5, rtol: 0, label: "DeLong SE" });
  assertClose([t.se], [Math.sqrt(bruteCovariance(labels, [scores])[0][0])], {
    atol: 1e-12,
    rtol: 0,
  });
  // Normal CI and z-test against 0.5.
  assertClose(
    t.ci,
    [t.estimate - 1.959963984540054 * t.se, t.estimate + 1.959963984540054 * t.se],
    {
      atol: 1e-12,
      rtol: 0,
    },
  );
  assert(t.p < 1e-30, `p ${t.p}`);
});

Deno.test("delong: fast midrank covariance equals the O(n·m) definition (3 models, ties)", () => {
  for (const seed of [1, 2, 3]) {
    const { labels, a, b, c } = randomData(seed, 150 + 40 * seed);
    const fast = delongCovariance(labels, [a, b, c]);
    const slow = bruteCovariance(labels, [a, b, c]);
    assertClose(fast.cov.flat(), slow.flat(), { atol: 1e-14, rtol: 1e-10, label: `seed ${seed}` });
    assertClose(fast.aucs, [auc(labels, a), auc(labels, b), auc(labels, c)], {
      atol: 1e-12,
      rtol: 0,
    });
  }
});

Deno.test("delong: paired difference and contrasts", () => {
  const { labels, a, b } = randomData(5, 400);
  const cov = bruteCovariance(labels, [a, b]);
  const d = delongPaired(labels, a, b);
  assertClose([d.estimate], [auc(labels, a) - auc(labels, b)], { atol: 1e-12, rtol: 0 });
  assertClose([d.variance], [cov[0][0] + cov[1][1] - 2 * cov[0][1]], { atol: 1e-15, rtol: 1e-10 });
  assertClose([d.correlation], [cov[0][1] / Math.sqrt(cov[0][0] * cov[1][1])], {
    atol: 1e-12,
    rtol: 0,
  });
  assert(d.ci[0] < d.estimate && d.estimate < d.ci[1]);
  // A contrast with weights [1, -1] is the same test; a model against itself has no difference.
  const c = delongContrast(labels, [a, b], [1, -1]);
  assertClose([c.p, c.z], [d.p, d.z], { atol: 1e-12, rtol: 0 });
  const self = delongPaired(labels, a, a);
  assertEquals([self.estimate, self.variance, self.p], [0, 0, 1]);
  // Mean of two models minus mean of two others = half the sum of the two paired differences.
  const m = delongContrast(labels, [a, a, b, b], [0.5, 0.5, -0.5, -0.5]);
  assertClose([m.estimate, m.variance], [d.estimate, d.variance], { atol: 1e-12, rtol: 1e-9 });
});

Deno.test("delong: coverage of the 95% CI on simulated data is about 95%", () => {
  // Binormal scores with separation 1: true AUC = Phi(1/sqrt 2) = 0.7602499389065233.
  const trueAuc = 0.7602499389065233;
  const rng = new Rng(2024);
  let covered = 0;
  const N = 300;
  for (let k = 0; k < N; k++) {
    const labels = Array.from({ length: 120 }, (_, i) => (i < 40 ? 1 : 0));
    const scores = labels.map((y) => y + rng.normal());
    const t = delong(labels, scores);
    if (t.ci[0] <= trueAuc && trueAuc <= t.ci[1]) covered++;
  }
  const rate = covered / N;
  assert(rate > 0.9 && rate < 0.99, `coverage ${rate}`);
});

Deno.test("delong: errors name the problem", () => {
  assertThrows(
    () => delong([1, 0, 0], [0.3, 0.1, 0.2], { what: "tiny" }),
    (e: Error) =>
      e instanceof EvalInputError &&
      /tiny: DeLong variance needs at least 2 positives/.test(e.message),
  );
  assertThrows(
    () => delongPaired([1, 1, 0, 0], [1, 2, 3, 4], [1, 2, 3]),
    /model 1.*4 labels but 3 scores/,
  );
  assertThrows(() => delong([1, 1, 0, 0], [1, 2, 3, 4], { level: 1.2 }), /level must be in/);
});

// Optional cross-check against scikit-learn when a Python with sklearn is available and allowed.
const PYTHONS = [".venv/bin/python", "python3"];
function findSklearnPython(): string | null {
  for (const py of PYTHONS) {
    if (Deno.permissions.querySync({ name: "run", command: py }).state !== "granted") continue;
    try {
      const out = new Deno.Command(py, {
        args: ["-c", "import importlib.util as u, sys; sys.exit(u.find_spec('sklearn') is None)"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
      if (out.success) return py;
    } catch {
      // not installed
    }
  }
  return null;
}
const sklearnPython = findSklearnPython();

Deno.test({
  name: "delong: AUCs agree with sklearn.metrics.roc_auc_score (skipped without sklearn)",
  ignore: sklearnPython === null,
  fn() {
    const { labels, a, c } = randomData(9, 300);
    const code =
      "import json,sys; from sklearn.metrics import roc_auc_score as f; d=json.load(sys.stdin); " +
      "print(json.dumps([f(d['y'], d['a']), f(d['y'], d['c'])]))";
    const p = new Deno.Command(sklearnPython!, {
      args: ["-c", code],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    return w.write(new TextEncoder().encode(JSON.stringify({ y: labels, a, c })))
      .then(() => w.close())
      .then(() => p.output())
      .then((out) => {
        if (!out.success) {
          throw new Error(`${sklearnPython} failed: ${new TextDecoder().decode(out.stderr)}`);
        }
        const ref = JSON.parse(new TextDecoder().decode(out.stdout));
        assertClose([auc(labels, a), auc(labels, c)], ref, { atol: 1e-12, rtol: 0 });
      });
  },
});
