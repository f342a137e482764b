import { Tensor } from "../kernels/tensor.ts";
import { batchNormBackward, batchNormEval, batchNormTrain } from "../kernels/batchnorm.ts";
import {
  batchNormBackwardCpu,
  batchNormEvalCpu,
  batchNormTrainCpu,
} from "../kernels/cpu/batchnorm.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assert, assertClose, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck, weightedSum } from "./gradcheck.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
const rand = (shape: number[], seed: number, scale = 1, offset = 0) =>
  cpuTensor(shape, randn(shape.reduce((a, b) => a * b, 1), seed, scale).map((v) => v + offset));

function params(C: number, seed: number) {
  return {
    gamma: rand([C], seed, 0.5, 1),
    beta: rand([C], seed + 1, 0.5),
    rm: rand([C], seed + 2, 0.1),
    rv: cpuTensor([C], randn(C, seed + 3).map((v) => 1 + Math.abs(v))),
  };
}

const cases: Array<{ shape: number[]; groups?: number; relu?: boolean; name: string }> = [
  { shape: [2, 3, 5, 7], name: "odd spatial" },
  { shape: [1, 4, 3, 3], name: "batch 1", relu: true },
  { shape: [4, 1024, 2, 2], name: "C=1024 tiny spatial" },
  { shape: [3, 2, 9, 11], name: "N·H·W=297 (not a multiple of 64)", relu: true },
  { shape: [6, 5, 4, 3], name: "split BN groups=3", groups: 3, relu: true },
  { shape: [37, 6], name: "2-D [N,C]" },
  {
    shape: [4, 3, 8, 8],
    name: "vec4 planes longer than a workgroup, groups=2",
    groups: 2,
    relu: true,
  },
  { shape: [6, 2, 2, 6], name: "vec4 planes of 3, groups=2", groups: 2 },
];

for (const c of cases) {
  Deno.test(`batchNorm train/eval/backward match CPU: ${c.name} [${c.shape}]`, async () => {
    const C = c.shape[1];
    const x = rand(c.shape, 11, 2, 0.5);
    const { gamma, beta, rm, rv } = params(C, 20);
    const o = { relu: c.relu, groups: c.groups };
    const [grm, grv] = [up(rm), up(rv)];
    const g = batchNormTrain(up(x), up(gamma), up(beta), grm, grv, o);
    const r = batchNormTrainCpu(x, gamma, beta, rm, rv, o);
    assertClose(await g.y.read(), r.y.data, { atol: 1e-5, rtol: 1e-4, label: "y" });
    assertClose(await g.mean.read(), r.mean.data, { atol: 1e-6, label: "mean" });
    assertClose(await g.invstd.read(), r.invstd.data, { atol: 1e-6, label: "invstd" });
    assertClose(await grm.read(), rm.data, { atol: 1e-6, label: "runMean" });
    assertClose(await grv.read(), rv.data, { atol: 1e-6, label: "runVar" });

    const ye = batchNormEval(up(x), up(gamma), up(beta), grm, grv, { relu: c.relu });
    const re = batchNormEvalCpu(x, gamma, beta, rm, rv, { relu: c.relu });
    assertClose(await ye.read(), re.data, { atol: 1e-5, label: "eval y" });

    const dy = rand(c.shape, 12);
    const gb = batchNormBackward(up(dy), up(x), g.y, up(gamma), g.mean, g.invstd, o);
    const rb = batchNormBackwardCpu(dy, x, r.y, gamma, r.mean, r.invstd, o);
    assertClose(await gb.dx.read(), rb.dx.data, { atol: 1e-5, rtol: 1e-3, label: "dx" });
    assertClose(await gb.dgamma.read(), rb.dgamma.data, { atol: 1e-4, label: "dgamma" });
    assertClose(await gb.dbeta.read(), rb.dbeta.data, { atol: 1e-4, label: "dbeta" });
  });
}

Deno.test("batchNorm statistics are stable for x = 1000 + small noise", async () => {
  const shape = [8, 3, 16, 16], M = 8 * 256;
  const x = rand(shape, 5, 0.01, 1000);
  const C = 3;
  const g = batchNormTrain(
    up(x),
    up(cpuTensor([C], [1, 1, 1])),
    up(cpuTensor([C])),
    up(cpuTensor([C])),
    up(cpuTensor([C], [1, 1, 1])),
    { eps: 0 },
  );
  const invstd = await g.invstd.read();
  for (let c = 0; c < C; c++) {
    let s = 0, s2 = 0, nf = 0, nf2 = 0; // exact f64 two-pass vs naive f32 one-pass
    const vals: number[] = [];
    for (let n = 0; n < 8; n++) {
      for (let i = 0; i < 256; i++) vals.push(x.data[(n * C + c) * 256 + i]);
    }
    for (const v of vals) {
      s += v;
      nf = Math.fround(nf + v);
      nf2 = Math.fround(nf2 + Math.fround(v * v));
    }
    const mu = s / M;
    for (const v of vals) s2 += (v - mu) ** 2;
    const trueVar = s2 / M;
    const naiveVar = Math.fround(nf2 / M) - Math.fround(nf / M) ** 2;
    const gpuVar = 1 / invstd[c] ** 2;
    assert(Math.abs(gpuVar - trueVar) < 0.01 * trueVar, `gpu var ${gpuVar} vs ${trueVar}`);
    assert(Math.abs(naiveVar - trueVar) > 10 * trueVar, `naive formula unexpectedly ok`);
  }
});

Deno.test("batchNorm running stats after one step follow PyTorch (momentum 0.1, unbiased)", async () => {
  const shape = [3, 2, 4, 5], C = 2, M = 3 * 20;
  const x = rand(shape, 7, 3, -1);
  const rm0 = [0.5, -0.25], rv0 = [2, 0.75];
  const grm = up(cpuTensor([C], rm0)), grv = up(cpuTensor([C], rv0));
  batchNormTrain(up(x), up(cpuTensor([C], [1, 1])), up(cpuTensor([C])), grm, grv);
  const wantM: number[] = [], wantV: number[] = [];
  for (let c = 0; c < C; c++) {
    const v: number[] = [];
    for (let n = 0; n < 3; n++) for (let i = 0; i < 20; i++) v.push(x.data[(n * C + c) * 20 + i]);
    const mu = v.reduce((a, b) => a + b) / M;
    const unbiased = v.reduce((a, b) => a + (b - mu) ** 2, 0) / (M - 1);
    wantM.push(0.9 * rm0[c] + 0.1 * mu);
    wantV.push(0.9 * rv0[c] + 0.1 * unbiased);
  }
  assertClose(await grm.read(), wantM, { atol: 1e-6 });
  assertClose(await grv.read(), wantV, { atol: 1e-5 });
});

Deno.test("split BN (groups=2) equals BN on each sub-batch; running stats are averaged", async () => {
  const shape = [4, 3, 3, 5], C = 3, half = 2 * 3 * 15;
  const x = rand(shape, 9, 1.5);
  const { gamma, beta, rm, rv } = params(C, 30);
  const grm = up(rm), grv = up(rv);
  const s = batchNormTrain(up(x), up(gamma), up(beta), grm, grv, { groups: 2 });
  const ys = await s.y.read(), means = await s.mean.read(), invs = await s.invstd.read();
  const expRm = new Float64Array(C), expRv = new Float64Array(C);
  for (let g = 0; g < 2; g++) {
    const xg = cpuTensor([2, 3, 3, 5], x.data.subarray(g * half, (g + 1) * half));
    const rmg = up(rm), rvg = up(rv);
    const r = batchNormTrain(up(xg), up(gamma), up(beta), rmg, rvg);
    assertClose(ys.subarray(g * half, (g + 1) * half), await r.y.read(), { atol: 1e-6 });
    assertClose(means.subarray(g * C, (g + 1) * C), await r.mean.read(), { atol: 1e-6 });
    assertClose(invs.subarray(g * C, (g + 1) * C), await r.invstd.read(), { rtol: 1e-5 });
    (await rmg.read()).forEach((v, c) => (expRm[c] += v / 2));
    (await rvg.read()).forEach((v, c) => (expRv[c] += v / 2));
  }
  assertClose(await grm.read(), expRm, { atol: 1e-6 });
  assertClose(await grv.read(), expRv, { atol: 1e-6 });
});

Deno.test("batchNorm rejects bad shapes and groups", () => {
  const x = up(rand([3, 2, 2, 2], 1));
  const v = up(cpuTensor([2], [1, 1]));
  assertThrows(() => batchNormTrain(x, v, v, v, v, { groups: 2 }), /groups=2 must divide/);
  assertThrows(() => batchNormTrain(x, up(cpuTensor([3])), v, v, v), /gamma has 3 values/);
  assertThrows(() => batchNormTrain(up(rand([1, 2], 1)), v, v, v, v), /more than 1 value/);
  assertThrows(() => batchNormTrain(up(rand([2, 2, 2], 1)), v, v, v, v), /\[N,C,H,W\]/);
});

for (const relu of [false, true]) {
  for (const groups of [1, 2]) {
    Deno.test(`batchNorm CPU backward vs finite differences (relu=${relu}, groups=${groups})`, () => {
      const shape = [4, 2, 2, 3], C = 2;
      const x0 = rand(shape, (relu ? 60 : 40) + groups, 1);
      const gamma0 = rand([C], 50, 0.3, 1), beta0 = rand([C], 51, 0.3, relu ? 0.1 : 0);
      const w = randn(x0.data.length, 52);
      const o = { relu, groups };
      const L = weightedSum(w);
      const fwd = (xs: Float64Array[]) =>
        batchNormTrainCpu(
          cpuTensor(shape, xs[0]),
          cpuTensor([C], xs[1]),
          cpuTensor([C], xs[2]),
          cpuTensor([C]),
          cpuTensor([C]),
          o,
        );
      const r = fwd([x0.data, gamma0.data, beta0.data].map((a) => Float64Array.from(a)));
      if (relu) {
        // Finite differences are meaningless across the ReLU kink: require a margin.
        const pre = batchNormTrainCpu(x0, gamma0, beta0, cpuTensor([C]), cpuTensor([C]), {
          groups,
        });
        assert(pre.y.data.every((v) => Math.abs(v) > 0.003), "seed puts a value at the kink");
        assert(r.y.data.some((v) => v === 0), "relu inactive: test would not test masking");
      }
      const b = batchNormBackwardCpu(cpuTensor(shape, w), x0, r.y, gamma0, r.mean, r.invstd, o);
      gradCheck((xs) => L(fwd(xs).y.data), [x0.data, gamma0.data, beta0.data], [
        b.dx.data,
        b.dgamma.data,
        b.dbeta.data,
      ], { label: "bn" });
    });
  }
}
