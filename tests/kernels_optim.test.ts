import { Tensor } from "../kernels/tensor.ts";
import { adamStep, emaUpdate, sgdStep } from "../kernels/optim.ts";
import {
  type AdamOptions,
  adamStepCpu,
  emaUpdateCpu,
  type SgdOptions,
  sgdStepCpu,
} from "../kernels/cpu/optim.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertClose, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
const rand = (n: number, seed: number, scale = 1) => cpuTensor([n], randn(n, seed, scale));
const n = 1037; // not a multiple of the workgroup

const sgdCases: Array<Omit<SgdOptions, "first">> = [
  { lr: 0.1 },
  { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 },
  { lr: 0.03, momentum: 0.9, dampening: 0.1, weightDecay: 5e-4 },
  { lr: 0.03, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
];
for (const o of sgdCases) {
  Deno.test(`sgdStep matches CPU over 4 steps ${JSON.stringify(o)}`, async () => {
    const p = rand(n, 1), buf = cpuTensor([n]);
    const [gp, gb] = [up(p), up(buf)];
    for (let t = 1; t <= 4; t++) {
      const g = rand(n, 10 + t);
      sgdStep(gp, up(g), o.momentum ? gb : null, { ...o, first: t === 1 });
      sgdStepCpu(p, g, o.momentum ? buf : null, { ...o, first: t === 1 });
    }
    assertClose(await gp.read(), p.data, { atol: 1e-6, rtol: 1e-5, label: "param" });
    if (o.momentum) {
      assertClose(await gb.read(), buf.data, { atol: 1e-6, rtol: 1e-5, label: "buf" });
    }
  });
}

Deno.test("sgdStep by hand: first step uses buf = grad, second buf = μ·buf + (1−τ)·grad", async () => {
  const p = up(cpuTensor([2], [1, -2])), buf = up(cpuTensor([2])); // buf zero-initialised
  const o = { lr: 0.5, momentum: 0.9, dampening: 0.5 };
  sgdStep(p, up(cpuTensor([2], [0.2, 0.4])), buf, { ...o, first: true });
  assertClose(await buf.read(), [0.2, 0.4], { atol: 1e-7 }); // not (1−τ)·grad
  assertClose(await p.read(), [0.9, -2.2], { atol: 1e-6 });
  sgdStep(p, up(cpuTensor([2], [1, 1])), buf, o);
  assertClose(await buf.read(), [0.9 * 0.2 + 0.5, 0.9 * 0.4 + 0.5], { atol: 1e-6 });
  assertClose(await p.read(), [0.9 - 0.5 * 0.68, -2.2 - 0.5 * 0.86], { atol: 1e-6 });
});

const adamCases: Array<Omit<AdamOptions, "step">> = [
  { lr: 1e-3 },
  { lr: 1e-3, weightDecay: 1e-2 },
  { lr: 3e-4, weightDecay: 0.05, decoupled: true, beta1: 0.8, beta2: 0.99, eps: 1e-6 },
];
for (const o of adamCases) {
  Deno.test(`adamStep matches CPU over 5 steps ${JSON.stringify(o)}`, async () => {
    const p = rand(n, 2), m = cpuTensor([n]), v = cpuTensor([n]);
    const [gp, gm, gv] = [up(p), up(m), up(v)];
    for (let t = 1; t <= 5; t++) {
      const g = rand(n, 20 + t, 0.1);
      adamStep(gp, up(g), gm, gv, { ...o, step: t });
      adamStepCpu(p, g, m, v, { ...o, step: t });
    }
    assertClose(await gp.read(), p.data, { atol: 1e-6, rtol: 1e-5, label: "param" });
    assertClose(await gm.read(), m.data, { atol: 1e-7, rtol: 1e-5, label: "m" });
    assertClose(await gv.read(), v.data, { atol: 1e-9, rtol: 1e-4, label: "v" });
  });
}

Deno.test("adamStep by hand: first step moves each weight by lr·g/(|g|+eps)", async () => {
  const g = [0.5, -2e-3, 0];
  const p = up(cpuTensor([3], [1, 1, 1])), m = up(cpuTensor([3])), v = up(cpuTensor([3]));
  adamStep(p, up(cpuTensor([3], g)), m, v, { lr: 0.01, step: 1 });
  // m̂ = g, v̂ = g² after bias correction
  assertClose(await p.read(), g.map((x) => 1 - (0.01 * x) / (Math.abs(x) + 1e-8)), { atol: 1e-7 });
  assertClose(await m.read(), g.map((x) => 0.1 * x), { atol: 1e-9 });
  assertClose(await v.read(), g.map((x) => 0.001 * x * x), { atol: 1e-12, rtol: 1e-5 });
  // AdamW: the decay multiplies p by (1 − lr·wd) before the update
  const p2 = up(cpuTensor([1], [2])), m2 = up(cpuTensor([1])), v2 = up(cpuTensor([1]));
  adamStep(p2, up(cpuTensor([1], [0.5])), m2, v2, {
    lr: 0.1,
    weightDecay: 0.5,
    decoupled: true,
    step: 1,
  });
  assertClose(await p2.read(), [2 * (1 - 0.05) - 0.1 * 0.5 / (0.5 + 1e-8)], { atol: 1e-6 });
});

Deno.test("emaUpdate matches CPU and the formula", async () => {
  const k = rand(n, 3), q = rand(n, 4);
  const gk = up(k);
  emaUpdate(gk, up(q), 0.999);
  const want = k.data.map((v, i) => 0.999 * v + 0.001 * q.data[i]);
  emaUpdateCpu(k, q, 0.999);
  assertClose(await gk.read(), k.data, { atol: 1e-7 });
  assertClose(k.data, want, { atol: 1e-6 });
});

Deno.test("optimizers reject mismatched tensors", () => {
  const a = up(rand(4, 1)), b = up(rand(5, 1));
  assertThrows(() => sgdStep(a, b, null, { lr: 1 }), /grad has 5 values, param has 4/);
  assertThrows(() => sgdStep(a, a, null, { lr: 1, momentum: 0.9 }), /needs a buffer/);
  assertThrows(() => adamStep(a, a, a, b, { lr: 1, step: 1 }), /v has 5/);
  assertThrows(() => adamStep(a, a, a, a, { lr: 1, step: 0 }), /1-based/);
  assertThrows(() => emaUpdate(a, b, 0.9), /q has 5/);
});
