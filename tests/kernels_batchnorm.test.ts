import { ChannelPrefix, ChannelStore, Tensor } from "../kernels/tensor.ts";
import {
  batchNormBackward,
  batchNormEval,
  batchNormPath,
  batchNormTrain,
  setBatchNormPath,
} from "../kernels/batchnorm.ts";
import { bnGridPlan } from "../kernels/batchnorm_grid.ts";
import { setPerGeometry } from "../kernels/wgsl.ts";
import { dryRun } from "../kernels/dry_run.ts";
import {
  batchNormBackwardCpu,
  batchNormEvalCpu,
  batchNormTrainCpu,
} from "../kernels/cpu/batchnorm.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assert, assertBits, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck, weightedSum } from "./gradcheck.ts";
import { assertHalfClose, half, hasF16 } from "./f16.ts";

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

/**
 * The layouts every test runs on (forced: lavapipe would pick "channel"): the per-channel
 * kernels, the grid path with its own chunking, and the grid path with short chunks forced
 * (K = 7 items: most lanes of a workgroup idle, chunk edges inside planes, a ragged last chunk;
 * K = 300: lanes with one or two items, the 256-lane stride crossing planes).
 */
type PathVariant = {
  label: string;
  path: "channel" | "grid";
  chunkItems?: number;
  /** The grid's apply kernels compiled per shape, as on hardware (wgsl.ts setPerGeometry). */
  perShape?: boolean;
};
const PATHS: PathVariant[] = [
  { label: "channel", path: "channel" },
  { label: "grid", path: "grid" },
  { label: "grid K=7", path: "grid", chunkItems: 7 },
  { label: "grid K=300", path: "grid", chunkItems: 300 },
  { label: "grid per shape", path: "grid", perShape: true },
];

/** Runs fn with the batch-norm path forced, then restores the default. */
async function onPath<T>(pv: Omit<PathVariant, "label">, fn: () => Promise<T>): Promise<T> {
  setBatchNormPath(pv.path, { chunkItems: pv.chunkItems });
  setPerGeometry(pv.perShape ?? "auto");
  try {
    return await fn();
  } finally {
    setBatchNormPath("auto");
    setPerGeometry("auto");
  }
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
  // grid path's own chunking: 8 chunks of 1,024 vec4 per channel; 3 uneven chunks per (g, c)
  // (1,280 + 1,280 + 1,040 vec4) whose edges fall inside planes of 900 vec4
  { shape: [8, 3, 64, 64], name: "many chunks per channel", relu: true },
  { shape: [8, 3, 60, 60], name: "uneven chunks, groups=2", groups: 2 },
];

const big = (shape: number[]) => shape.reduce((a, b) => a * b, 1) > 50_000;

for (const pv of PATHS) {
  for (const c of cases) {
    // forced short chunks on the big shapes would only be slow (thousands of chunks)
    if (pv.chunkItems && big(c.shape)) continue;
    Deno.test(
      `batchNorm train/eval/backward match CPU (${pv.label}): ${c.name} [${c.shape}]`,
      () => onPath(pv, () => matchesCpu(c)),
    );
  }
}

async function matchesCpu(c: typeof cases[number]): Promise<void> {
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
}

// f16 storage: x, y, dy, dx f16; γ, β, running and saved statistics, dγ, dβ f32. The f16
// kernels on half inputs against the f32 references on the same values: statistics and dγ/dβ
// to f32 accuracy (they are computed in f32 from the widened halves), y and dx within one
// half rounding. Scalar (H·W % 4 ≠ 0) and vec4 planes, ReLU fused, split BN.
const f16Cases: Array<{ shape: number[]; groups?: number; relu?: boolean; name: string }> = [
  { shape: [2, 3, 5, 7], name: "scalar planes" },
  { shape: [3, 2, 9, 11], name: "scalar planes, relu, groups=3", groups: 3, relu: true },
  { shape: [4, 3, 8, 8], name: "vec4 planes, relu, groups=2", groups: 2, relu: true },
  { shape: [4, 16, 2, 2], name: "vec4 planes of 1" },
  { shape: [37, 6], name: "2-D [N,C]", relu: true },
  { shape: [8, 3, 60, 60], name: "uneven chunks, relu, groups=2", groups: 2, relu: true },
];

for (const pv of PATHS) {
  for (const c of f16Cases) {
    if (pv.chunkItems && big(c.shape)) continue;
    Deno.test({
      name: `batchNorm train/eval/backward on f16 storage match CPU (${pv.label}): ${c.name} ` +
        `[${c.shape}]`,
      ignore: !hasF16,
      fn: () => onPath(pv, () => matchesCpuF16(c)),
    });
  }
}

async function matchesCpuF16(c: typeof f16Cases[number]): Promise<void> {
  const C = c.shape[1];
  const h = (t: CpuTensor) => cpuTensor(t.shape, half(t.data));
  const up16 = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape, "f16");
  const x = h(rand(c.shape, 11, 2, 0.5));
  const { gamma, beta, rm, rv } = params(C, 20);
  const o = { relu: c.relu, groups: c.groups };
  const [grm, grv] = [up(rm), up(rv)];
  const g = batchNormTrain(up16(x), up(gamma), up(beta), grm, grv, o);
  const r = batchNormTrainCpu(x, gamma, beta, rm, rv, o);
  assertEquals([g.y.dtype, g.mean.dtype, g.invstd.dtype], ["f16", "f32", "f32"]);
  assertHalfClose(await g.y.read(), r.y.data, { label: "y" });
  assertClose(await g.mean.read(), r.mean.data, { atol: 1e-6, label: "mean" });
  assertClose(await g.invstd.read(), r.invstd.data, { atol: 1e-6, label: "invstd" });
  assertClose(await grm.read(), rm.data, { atol: 1e-6, label: "runMean" });
  assertClose(await grv.read(), rv.data, { atol: 1e-6, label: "runVar" });

  const ye = batchNormEval(up16(x), up(gamma), up(beta), grm, grv, { relu: c.relu });
  const re = batchNormEvalCpu(x, gamma, beta, rm, rv, { relu: c.relu });
  assertEquals(ye.dtype, "f16");
  assertHalfClose(await ye.read(), re.data, { label: "eval y" });

  const dy = h(rand(c.shape, 12));
  // The reference masks with the kernel's own (f16) forward output, as the kernel does.
  const yk = cpuTensor(c.shape, await g.y.read());
  const gb = batchNormBackward(up16(dy), up16(x), g.y, up(gamma), g.mean, g.invstd, o);
  const rb = batchNormBackwardCpu(dy, x, yk, gamma, r.mean, r.invstd, o);
  assertEquals([gb.dx.dtype, gb.dgamma.dtype, gb.dbeta.dtype], ["f16", "f32", "f32"]);
  assertHalfClose(await gb.dx.read(), rb.dx.data, { label: "dx" });
  assertClose(await gb.dgamma.read(), rb.dgamma.data, { atol: 1e-4, label: "dgamma" });
  assertClose(await gb.dbeta.read(), rb.dbeta.data, { atol: 1e-4, label: "dbeta" });
}

Deno.test({
  name: "batchNorm rejects mixed f32/f16 activations and f16 parameters",
  ignore: !hasF16,
  fn() {
    const shape = [2, 2, 2, 2], C = 2;
    const x16 = Tensor.from(gpu, half(rand(shape, 1).data), shape, "f16");
    const x32 = up(rand(shape, 1)), v = up(cpuTensor([C], [1, 1]));
    const v16 = Tensor.from(gpu, [1, 1], [C], "f16");
    const { y, mean, invstd } = batchNormTrain(x16, v, v, up(cpuTensor([C])), up(cpuTensor([C])), {
      relu: true,
    });
    const mix = /batchNormBackward: operands mix f32 and f16/;
    assertThrows(() => batchNormBackward(x32, x16, null, v, mean, invstd), mix);
    assertThrows(() => batchNormBackward(x16, x32, null, v, mean, invstd), /mix f16 and f32/);
    assertThrows(
      () => batchNormBackward(x16, x16, x32, v, mean, invstd, { relu: true }),
      /mix f16 and f32/,
    );
    assertThrows(() => batchNormTrain(x16, v16, v, v, v), /gamma must be f32, got f16/);
    assertThrows(() => batchNormEval(x16, v, v, v16, v), /runMean must be f32/);
    assertThrows(() => batchNormBackward(x16, x16, y, v, mean, v16, { relu: true }), /invstd/);
  },
});

for (const pv of PATHS) {
  Deno.test(`batchNorm statistics are stable for x = 1000 + small noise (${pv.label})`, () =>
    onPath(pv, async () => {
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
    }));
}

for (const pv of PATHS) {
  const name = `batchNorm running stats after one step follow PyTorch (momentum 0.1, unbiased)`;
  Deno.test(`${name} (${pv.label})`, () =>
    onPath(pv, async () => {
      const shape = [3, 2, 4, 5], C = 2, M = 3 * 20;
      const x = rand(shape, 7, 3, -1);
      const rm0 = [0.5, -0.25], rv0 = [2, 0.75];
      const grm = up(cpuTensor([C], rm0)), grv = up(cpuTensor([C], rv0));
      batchNormTrain(up(x), up(cpuTensor([C], [1, 1])), up(cpuTensor([C])), grm, grv);
      const wantM: number[] = [], wantV: number[] = [];
      for (let c = 0; c < C; c++) {
        const v: number[] = [];
        for (let n = 0; n < 3; n++) {
          for (let i = 0; i < 20; i++) v.push(x.data[(n * C + c) * 20 + i]);
        }
        const mu = v.reduce((a, b) => a + b) / M;
        const unbiased = v.reduce((a, b) => a + (b - mu) ** 2, 0) / (M - 1);
        wantM.push(0.9 * rm0[c] + 0.1 * mu);
        wantV.push(0.9 * rv0[c] + 0.1 * unbiased);
      }
      assertClose(await grm.read(), wantM, { atol: 1e-6 });
      assertClose(await grv.read(), wantV, { atol: 1e-5 });
    }));
}

for (const pv of PATHS) {
  const name = "split BN (groups=2) equals BN on each sub-batch; running stats are averaged";
  Deno.test(`${name} (${pv.label})`, () =>
    onPath(pv, async () => {
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
    }));
}

/** Every output of train (y, mean, invstd, runMean, runVar), eval and backward, in order. */
async function allOutputs(
  shape: number[],
  o: { relu?: boolean; groups?: number },
  dtype: "f32" | "f16" = "f32",
): Promise<Float32Array[]> {
  const C = shape[1];
  const act = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape, dtype);
  const x = rand(shape, 11, 2, 0.5), dy = rand(shape, 12);
  const { gamma, beta, rm, rv } = params(C, 20);
  const [grm, grv] = [up(rm), up(rv)];
  const g = batchNormTrain(act(x), up(gamma), up(beta), grm, grv, o);
  const ye = batchNormEval(act(x), up(gamma), up(beta), grm, grv, { relu: o.relu });
  const gb = batchNormBackward(act(dy), act(x), g.y, up(gamma), g.mean, g.invstd, o);
  const ts = [g.y, g.mean, g.invstd, grm, grv, ye, gb.dx, gb.dgamma, gb.dbeta];
  const out = await Promise.all(ts.map((t) => t.read()));
  ts.forEach((t) => t.dispose());
  return out;
}

const OUTPUT_NAMES = ["y", "mean", "invstd", "runMean", "runVar", "eval y", "dx", "dγ", "dβ"];

// The two layouts sum in different orders, so they agree to f32 rounding, not bit for bit.
const agreeCases: Array<{ shape: number[]; relu?: boolean; groups?: number }> = [
  { shape: [8, 3, 64, 64], relu: true },
  { shape: [8, 3, 60, 60], groups: 2 },
  { shape: [6, 5, 4, 3], groups: 3, relu: true },
  { shape: [4, 1024, 2, 2] },
];
for (const c of agreeCases) {
  for (const dtype of ["f32", "f16"] as const) {
    Deno.test({
      name: `batchNorm grid and channel paths agree: [${c.shape}] relu=${!!c.relu} ` +
        `groups=${c.groups ?? 1} ${dtype}`,
      ignore: dtype === "f16" && !hasF16,
      async fn() {
        const a = await onPath({ path: "channel" }, () => allOutputs(c.shape, c, dtype));
        const b = await onPath({ path: "grid" }, () => allOutputs(c.shape, c, dtype));
        // f16 outputs may round to neighbouring halves; dγ, dβ are sums of up to 32K terms
        // of either sign, so their rounding is relative to Σ|d|, not to the result
        const tol = dtype === "f16" ? { atol: 1e-3, rtol: 2e-3 } : { atol: 2e-6, rtol: 2e-5 };
        a.forEach((v, i) =>
          assertClose(b[i], v, {
            ...tol,
            ...(i >= 7 ? { atol: 1e-4 } : {}),
            label: OUTPUT_NAMES[i],
          })
        );
      },
    });
  }
}

for (const pv of PATHS) {
  Deno.test(`batchNorm is deterministic: two runs give the same bits (${pv.label})`, async () => {
    const runs: Array<[number[], { relu?: boolean; groups?: number }]> = [
      [[8, 3, 60, 60], { groups: 2, relu: true }],
      [[3, 2, 9, 11], {}],
    ];
    for (const [shape, o] of runs) {
      if (pv.chunkItems && big(shape)) continue;
      const run = () => onPath(pv, () => allOutputs(shape, o));
      const [a, b] = [await run(), await run()];
      a.forEach((v, i) => {
        const same = new Uint32Array(v.buffer).every((w, j) =>
          w === new Uint32Array(b[i].buffer)[j]
        );
        assert(same, `${OUTPUT_NAMES[i]} differs between two runs on [${shape}]`);
      });
    }
  });
}

Deno.test("batchNorm grid chunking follows the documented formula", () => {
  // ResNet-18 at batch 64, 224 px (batchnorm_grid.ts header)
  assertEquals(bnGridPlan(64, 64, 112 * 112, 1), {
    vec: true,
    L: 3136,
    R: 200704,
    K: 3328,
    chunks: 61,
  });
  assertEquals(bnGridPlan(64, 64, 56 * 56, 1), {
    vec: true,
    L: 784,
    R: 50176,
    K: 1024,
    chunks: 49,
  });
  assertEquals(bnGridPlan(64, 128, 28 * 28, 1).chunks, 10);
  assertEquals(bnGridPlan(64, 512, 7 * 7, 1), { vec: false, L: 49, R: 3136, K: 1280, chunks: 3 });
  // split BN halves R; the test shapes above
  assertEquals(bnGridPlan(64, 64, 56 * 56, 2).chunks, 20);
  assertEquals(bnGridPlan(8, 3, 64 * 64, 1), { vec: true, L: 1024, R: 8192, K: 1024, chunks: 8 });
  assertEquals(bnGridPlan(8, 3, 60 * 60, 2), { vec: true, L: 900, R: 3600, K: 1280, chunks: 3 });
  assertEquals(bnGridPlan(8, 3, 60 * 60, 1).chunks, 6);
  assertEquals(bnGridPlan(37, 6, 1, 1), { vec: false, L: 1, R: 37, K: 256, chunks: 1 });
  assertEquals(bnGridPlan(3, 2, 99, 3, 7), { vec: false, L: 99, R: 99, K: 7, chunks: 15 });
  // layer1: ≥ 4 × 132 SMs of workgroups per statistics pass
  assert(64 * bnGridPlan(64, 64, 56 * 56, 1).chunks >= 4 * 132);
});

Deno.test("batchNorm dispatch counts: channel 1/1/1, grid 3/1/3; grid scratch is pooled", async () => {
  const shape = [4, 3, 8, 8], C = 3, o = { relu: true, groups: 2 };
  const x = up(rand(shape, 1)), dy = up(rand(shape, 2));
  const { gamma, beta, rm, rv } = params(C, 3);
  const [ga, be, grm, grv] = [up(gamma), up(beta), up(rm), up(rv)];
  const count = (f: () => Tensor[]) => {
    const d0 = gpu.stats.dispatches;
    f().forEach((t) => t.dispose());
    return gpu.stats.dispatches - d0;
  };
  for (const [path, want] of [["channel", [1, 1, 1]], ["grid", [3, 1, 3]]] as const) {
    setBatchNormPath(path);
    try {
      const step = () => [
        count(() => {
          const g = batchNormTrain(x, ga, be, grm, grv, o);
          return [g.y, g.mean, g.invstd];
        }),
        count(() => [batchNormEval(x, ga, be, grm, grv, o)]),
        count(() => {
          const g = batchNormTrain(x, ga, be, grm, grv, o);
          const b = batchNormBackward(dy, x, g.y, ga, g.mean, g.invstd, o);
          return [g.y, g.mean, g.invstd, b.dx, b.dgamma, b.dbeta];
        }) - want[0],
      ];
      assertEquals(step(), want, path);
      await gpu.sync();
      const created = gpu.stats.buffersCreated;
      step();
      await gpu.sync();
      assertEquals(gpu.stats.buffersCreated, created, `${path}: a repeated step allocates`);
    } finally {
      setBatchNormPath("auto");
    }
  }
});

Deno.test("batchNorm picks the channel path on software adapters, grid on hardware", () => {
  assertEquals(batchNormPath(gpu), gpu.isSoftware ? "channel" : "grid");
  setBatchNormPath("grid");
  assertEquals(batchNormPath(gpu), "grid");
  setBatchNormPath("auto");
  assertThrows(() => setBatchNormPath("grid", { chunkItems: 0 }), /positive integer/);
  assertEquals(batchNormPath(gpu), gpu.isSoftware ? "channel" : "grid");
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

// On a hardware GPU the grid's eval kernel (grid-stride: each item finds its channel by division)
// is compiled per plane size and reads only the item count and the channel count of its u32
// fields as uniforms, and eps (a switch ignored, or the channels baked too, fails it). The train and backward applies walk
// chunks like the statistics passes, with no division an item, and stay uniform-driven.
Deno.test("batch norm's eval kernel on hardware reads only the item and channel counts and eps", async () => {
  const shape = [4, 3, 6, 6], C = 3;
  const t = (n: number[], v = 1) =>
    Tensor.from(gpu, new Float32Array(n.reduce((a, b) => a * b)).fill(v), n);
  const x = t(shape), g = t([C]), b = t([C]), rm = t([C], 0), rv = t([C]);
  const codes: Array<[string, string]> = [];
  await dryRun(gpu, () => {
    batchNormEval(x, g, b, rm, rv, { relu: true });
    batchNormTrain(x, g, b, rm, rv, { relu: true });
  }, { hardware: true, onDispatch: (d) => codes.push([d.kernel.name, d.kernel.code]) });
  const evals = codes.filter(([n]) => /^bn-grid:eval/.test(n));
  assertEquals(evals.length, 1, codes.map(([n]) => n).join(" "));
  const read = [...new Set([...evals[0][1].matchAll(/\bp\.(\w+)/g)].map((m) => m[1]))].sort();
  assertEquals(read, ["C", "eps", "total"], evals[0][0]);
  const apply = codes.find(([n]) => /^bn-grid:apply/.test(n))!;
  assert(/\bp\.L\b/.test(apply[1]), "the train apply reads its geometry from the uniforms");
  for (const v of [x, g, b, rm, rv]) v.dispose();
});

// A dense block's layer input is a channel prefix of its feature store, read in place
// (tensor.ts ChannelPrefix; model/densenet.ts). Every batch-norm kernel that reads x must give the
// bits it gives on the contiguous copy of those channels, on every path, f32 and f16: the store's
// channels past the prefix hold other values, so reading image n at the contiguous offset (or
// past the prefix) changes the result.
const prefixCases: Array<{ shape: number[]; extra: number; groups?: number; relu?: boolean }> = [
  { shape: [4, 3, 8, 8], extra: 5, groups: 2, relu: true }, // vec4 planes
  { shape: [3, 2, 9, 11], extra: 1, relu: true }, // scalar planes
  { shape: [6, 5, 4, 3], extra: 3, groups: 3 }, // scalar planes, split BN
  { shape: [8, 3, 60, 60], extra: 2, relu: true }, // many chunks per channel
];

for (const pv of PATHS) {
  for (const dtype of ["f32", "f16"] as const) {
    for (const c of prefixCases) {
      if (pv.chunkItems && big(c.shape)) continue;
      Deno.test({
        name: `batchNorm reads a channel prefix in place, the bits of its copy (${pv.label}, ` +
          `${dtype}): [${c.shape}] of ${c.shape[1] + c.extra} channels`,
        ignore: dtype === "f16" && !hasF16,
        fn: () => onPath(pv, () => prefixMatchesCopy(c, dtype)),
      });
    }
  }
}

async function prefixMatchesCopy(c: typeof prefixCases[number], dtype: "f32" | "f16") {
  const [N, C, ...plane] = c.shape;
  const CS = C + c.extra, HW = plane.reduce((a, b) => a * b, 1);
  const all = randn(N * CS * HW, 31, 2).map((v) => v + 0.5);
  const store = new ChannelStore(gpu, [N, CS, ...plane], undefined, dtype);
  store.write(all);
  const prefix = new ChannelPrefix(store, C);
  const copy = Tensor.from(gpu, await prefix.read(), c.shape, dtype);
  const { gamma, beta, rm, rv } = params(C, 40);
  const dy = Tensor.from(gpu, randn(N * C * HW, 32), c.shape, dtype);
  const o = { relu: c.relu, groups: c.groups };
  const outputs = async (x: Tensor) => {
    const [grm, grv] = [up(rm), up(rv)];
    const t = batchNormTrain(x, up(gamma), up(beta), grm, grv, o);
    const e = batchNormEval(x, up(gamma), up(beta), grm, grv, { relu: c.relu });
    const b = batchNormBackward(dy, x, c.relu ? t.y : null, up(gamma), t.mean, t.invstd, o);
    return await Promise.all(
      [t.y, t.mean, t.invstd, grm, grv, e, b.dx, b.dgamma, b.dbeta].map((u) => u.read()),
    );
  };
  const [viaPrefix, viaCopy] = [await outputs(prefix), await outputs(copy)];
  const names = ["y", "mean", "invstd", "runMean", "runVar", "eval y", "dx", "dgamma", "dbeta"];
  viaCopy.forEach((want, i) => assertBits(viaPrefix[i], want, names[i]));
  prefix.dispose();
  store.dispose();
}
