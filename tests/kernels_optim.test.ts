import { Tensor } from "../kernels/tensor.ts";
import {
  adamStep,
  adamStepMany,
  BIAS_CORRECTION,
  emaUpdate,
  emaUpdateMany,
  flagNonFinite,
  setGroupedOptim,
  sgdStep,
  sgdStepMany,
  updateLossScale,
} from "../kernels/optim.ts";
import {
  type AdamOptions,
  adamStepCpu,
  AMP_APPLIED,
  AMP_WORDS,
  ampWords,
  biasCorrectionF32,
  emaUpdateCpu,
  flagNonFiniteCpu,
  type SgdOptions,
  sgdStepCpu,
  updateLossScaleCpu,
} from "../kernels/cpu/optim.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { params } from "../kernels/device.ts";

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

// ---- loss scaling (f16 steps) ---------------------------------------------------------------

/** A scaler state at `scale` with the found flag set or not (CPU and GPU copies). */
function ampPair(scale: number, found: boolean, applied = 0) {
  const flags = cpuTensor([AMP_WORDS]);
  ampWords(flags)[0] = found ? 1 : 0;
  ampWords(flags)[AMP_APPLIED] = applied;
  const cpu = { scale: cpuTensor([1], [scale]), flags };
  return { cpu, gpu: { scale: up(cpu.scale), flags: up(flags) } };
}

/**
 * The GPU update against the CPU's, written in the same order: equal on software adapters; a
 * hardware compiler may fuse `p - lr * d` into one FMA (NVIDIA does: H200, session 11), which
 * moves the result by at most one f32 ulp (2^-23 relative), far under any wrong unscaling.
 */
const SAME_OP_ORDER = gpu.isSoftware ? { atol: 0, rtol: 0 } : { atol: 2 ** -21, rtol: 2 ** -22 };

for (const vec of [true, false]) {
  const m = vec ? 1036 : 1037;
  Deno.test(`sgd and adam with a loss scale: unscaled as CPU, no-ops when flagged (n=${m})`, async () => {
    const S = 1024;
    for (const found of [false, true]) {
      const p = cpuTensor([m], randn(m, 1)), buf = cpuTensor([m]), mm = cpuTensor([m]);
      const v = cpuTensor([m]);
      const g = cpuTensor([m], randn(m, 2).map((x) => x * S));
      const a = ampPair(S, found);
      const [gp, gbuf, gm, gv] = [up(p), up(buf), up(mm), up(v)];
      const o = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, first: true };
      sgdStep(gp, up(g), gbuf, o, a.gpu);
      const p2 = cpuTensor([m], p.data), buf2 = cpuTensor([m]);
      sgdStepCpu(p2, g, buf2, o, a.cpu);
      assertClose(await gp.read(), p2.data, { ...SAME_OP_ORDER, label: `sgd found=${found}` });
      // The unscaled step equals the plain step on g / S.
      const p3 = cpuTensor([m], p.data), buf3 = cpuTensor([m]);
      sgdStepCpu(p3, cpuTensor([m], g.data.map((x) => x / S)), buf3, o);
      assertClose(p2.data, found ? p.data : p3.data, { atol: 0, rtol: 0 });
      const ao = { lr: 1e-3, weightDecay: 1e-4, step: 1 };
      const pa = up(p);
      adamStep(pa, up(g), gm, gv, ao, a.gpu);
      const p4 = cpuTensor([m], p.data);
      adamStepCpu(p4, g, mm, v, ao, a.cpu);
      assertClose(await pa.read(), p4.data, {
        atol: 1e-7,
        rtol: 1e-6,
        label: `adam found=${found}`,
      });
      if (found) assertClose(p4.data, p.data, { atol: 0, rtol: 0 });
      else assert(p4.data.some((x, i) => x !== p.data[i]), "adam moved nothing");
    }
  });
}

// Many gradients, 7 a dispatch where grouped (hardware adapters; forced here), else one each: a
// non-finite value in any one of them (the first, a middle one, the last of a full group, the one
// after it; the longest and the shortest) sets the flag, and finite ones do not. A kernel that
// skipped a binding, read one gradient's length for another, or let a row walk another row's
// workgroups would miss one of these.
for (const [grouped, want] of [[true, 2], [false, 11]] as const) {
  Deno.test(`flagNonFinite over many gradients flags any one of them (grouped ${grouped})`, async () => {
    const sizes = [5, 1037, 64, 3, 4096, 17, 256, 9, 1, 33, 70000];
    const grads = sizes.map((n, t) => randn(n, 40 + t));
    const flagged = async (gs: Float32Array[]) => {
      const p = ampPair(1, false);
      const d0 = gpu.stats.dispatches;
      flagNonFinite(gs.map((g, t) => up(cpuTensor([sizes[t]], g))), p.gpu);
      const dispatches = gpu.stats.dispatches - d0;
      flagNonFiniteCpu(gs.map((g, t) => cpuTensor([sizes[t]], g)), p.cpu);
      return {
        gpu: new Uint32Array((await p.gpu.flags.read()).buffer)[0],
        cpu: ampWords(p.cpu.flags)[0],
        dispatches,
      };
    };
    setGroupedOptim(grouped);
    try {
      assertEquals(await flagged(grads), { gpu: 0, cpu: 0, dispatches: want });
      for (const t of [0, 3, 6, 7, 8, 10]) {
        for (const at of [0, sizes[t] - 1]) {
          const gs = grads.map((g) => g.slice());
          gs[t][at] = t % 2 ? NaN : -Infinity;
          assertEquals(await flagged(gs), { gpu: 1, cpu: 1, dispatches: want }, `${t}[${at}]`);
        }
      }
    } finally {
      setGroupedOptim("auto");
    }
  });
}

Deno.test("flagNonFinite flags inf and NaN only; updateLossScale backs off, counts, grows", async () => {
  const o = { interval: 2, growth: 2, backoff: 0.5, maxScale: 4096 };
  const a = ampPair(1024, false);
  const ok = randn(1037, 3).map((x) => x * 6e4);
  flagNonFinite([up(cpuTensor([1037], ok))], a.gpu);
  flagNonFiniteCpu([cpuTensor([1037], ok)], a.cpu);
  const words = async () => new Uint32Array((await a.gpu.flags.read()).buffer);
  assertEquals([...(await words())], [0, 0, 0, 0]);
  for (const bad of [Infinity, -Infinity, NaN]) {
    const g = ok.slice();
    g[777] = bad;
    const b = ampPair(1024, false);
    flagNonFinite([up(cpuTensor([1037], g))], b.gpu);
    flagNonFiniteCpu([cpuTensor([1037], g)], b.cpu);
    assertEquals(new Uint32Array((await b.gpu.flags.read()).buffer)[0], 1, `${bad}`);
    assertEquals(ampWords(b.cpu.flags)[0], 1);
  }
  // found → halve and count a skip; then two good steps → double (capped at maxScale); every
  // good step counts as applied (Adam's step count under the scaler), a skipped one does not.
  const seq: [boolean, number, number[]][] = [
    [true, 512, [0, 0, 1, 0]],
    [false, 512, [0, 1, 1, 1]],
    [false, 1024, [0, 0, 1, 2]],
    [false, 1024, [0, 1, 1, 3]],
    [false, 2048, [0, 0, 1, 4]],
    [true, 1024, [0, 0, 2, 4]],
  ];
  for (const [found, scale, w] of seq) {
    if (found) {
      const g = cpuTensor([4], [1, NaN, 0, 0]);
      flagNonFinite([up(g)], a.gpu);
      flagNonFiniteCpu([g], a.cpu);
    }
    updateLossScale(a.gpu, o);
    updateLossScaleCpu(a.cpu, o);
    assertEquals((await a.gpu.scale.read())[0], scale);
    assertEquals(a.cpu.scale.data[0], scale);
    assertEquals([...(await words())], w);
    assertEquals([...ampWords(a.cpu.flags)], w);
  }
});

// Adam under a loss scaler counts the steps applied (the flags' word 3), as torch's state['step']
// under GradScaler, which a skipped step never advances; the host cannot know which steps the
// device skipped, so the bias corrections are computed on the device, in f32.
const BC_TS = [1, 2, 3, 7, 8, 12, 100, 1000, 4097, 65535, 65536, 1_000_003, 2 ** 32 - 1];
const BC_CS = [0.1, 0.001, 0.2, 0.01, 0.5].map(Math.fround);

Deno.test("biasCorrection: the GPU's f32 bits are the CPU's, a few roundings from 1 − β^t in f64", async () => {
  const n = BC_TS.length * BC_CS.length;
  const out = Tensor.empty(gpu, [n]);
  gpu.dispatch(
    {
      name: "test_bias_correction",
      code: `
struct P { nt: u32, _a: u32, _b: u32, _c: u32, ts: array<vec4u, 4>, cs: array<vec4f, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
${BIAS_CORRECTION}
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3u) {
  let i = wid.x;
  let t = i % p.nt;
  let c = i / p.nt;
  o[i] = biasCorrection(p.cs[c / 4u][c % 4u], p.ts[t / 4u][t % 4u]);
}`,
    },
    [out.buffer],
    params([
      BC_TS.length,
      0,
      0,
      0,
      ...BC_TS,
      ...new Array(16 - BC_TS.length).fill(0),
      ...BC_CS.map((c) => ({ f32: c })),
      ...new Array(8 - BC_CS.length).fill({ f32: 0 }),
    ]),
    [n],
  );
  const got = await out.read();
  const want = BC_CS.flatMap((c) => BC_TS.map((t) => biasCorrectionF32(c, t)));
  assertClose(got, want, { ...SAME_OP_ORDER, label: "GPU vs CPU" });
  // f64: 1 − (1 − c)^t from the same f32 c; a few f32 roundings (2^-24 each) away at most
  const exact = BC_CS.flatMap((c) => BC_TS.map((t) => -Math.expm1(t * Math.log1p(-c))));
  assertClose(want, exact, { atol: 0, rtol: 8 * 2 ** -24, label: "CPU vs f64" });
  // and against the host's f64 scalars of the unscaled path (β = 0.9, 0.999 given in f64)
  for (const [b, c] of [[0.9, Math.fround(0.1)], [0.999, Math.fround(1 - 0.999)]]) {
    for (let t = 1; t <= 20_000; t += t < 100 ? 1 : 97) {
      const e = Math.abs(biasCorrectionF32(c, t) / (1 - b ** t) - 1);
      assert(e < 8 * 2 ** -24, `β ${b}, t ${t}: ${e}`);
    }
  }
});

for (const vec of [true, false]) {
  const m = vec ? 1036 : 1037;
  Deno.test(`adam with a loss scale: a skipped step does not count; the next update is the first (n=${m})`, async () => {
    const S = 1024, lr = 1e-3;
    const o = { interval: 2000, growth: 2, backoff: 0.5, maxScale: 2 ** 24 };
    const p0 = randn(m, 1), g = randn(m, 2);
    const a = ampPair(S, false);
    const p = cpuTensor([m], p0), mm = cpuTensor([m]), v = cpuTensor([m]);
    const [gp, gm, gv] = [up(p), up(mm), up(v)];
    // Step 1: a non-finite gradient, skipped (no update, the scale halves, nothing applied).
    const bad = cpuTensor([m], g.map((x) => x * S));
    bad.data[m - 1] = Infinity;
    flagNonFinite([up(bad)], a.gpu);
    flagNonFiniteCpu([bad], a.cpu);
    // The caller's step count is 1 here, then 2: with a scaler Adam uses the applied count.
    adamStep(gp, up(bad), gm, gv, { lr, step: 1 }, a.gpu);
    adamStepCpu(p, bad, mm, v, { lr, step: 1 }, a.cpu);
    updateLossScale(a.gpu, o);
    updateLossScaleCpu(a.cpu, o);
    const words = async () => [...new Uint32Array((await a.gpu.flags.read()).buffer)];
    assertEquals(await words(), [0, 0, 1, 0]);
    assertEquals([...ampWords(a.cpu.flags)], [0, 0, 1, 0]);
    // Step 2: the first applied step, its gradient at the halved scale.
    const good = cpuTensor([m], g.map((x) => x * (S / 2)));
    adamStep(gp, up(good), gm, gv, { lr, step: 2 }, a.gpu);
    adamStepCpu(p, good, mm, v, { lr, step: 2 }, a.cpu);
    updateLossScale(a.gpu, o);
    updateLossScaleCpu(a.cpu, o);
    assertEquals(await words(), [0, 1, 1, 1]);
    assertEquals([...ampWords(a.cpu.flags)], [0, 1, 1, 1]);
    const got = await gp.read();
    assertClose(got, p.data, { atol: 1e-7, rtol: 1e-6, label: "GPU vs CPU" });
    // torch's first Adam step (bias-corrected m̂ = g, v̂ = g²): each weight moves by
    // lr·g/(|g| + eps), ≈ lr; counting the skipped step made it 0.744·lr.
    for (const [name, q] of [["CPU", p.data], ["GPU", got]] as const) {
      const moved = q.map((x, i) => (p0[i] - x) / (lr * g[i] / (Math.abs(g[i]) + 1e-8)));
      const worst = moved.reduce((w, r) => Math.max(w, Math.abs(r - 1)), 0);
      assert(worst < 1e-3, `${name}: the first applied step moved ${worst} from lr·g/|g|`);
    }
  });
}

// The key encoder's EMA over a model's parameters, 4 pairs a dispatch where grouped (hardware
// adapters; forced here), vec4 pairs and scalar pairs apart, else one a pair: the bits of one
// emaUpdate per pair (and of the CPU), every pair updated (6 vec4 sizes, 5 others, so full and
// partial groups of both), in ⌈6/4⌉ + ⌈5/4⌉ dispatches. Reading a pair's length from the wrong
// slot or dropping a pair's case fails it.
for (const [grouped, want] of [[true, 4], [false, 11]] as const) {
  Deno.test(`emaUpdateMany: the bits of emaUpdate per pair (grouped ${grouped})`, async () => {
    const sizes = [64, 4096, 3, 36864, 5, 128, 1, 7, 1000, 9, 20000];
    const ks = sizes.map((n, t) => randn(n, 60 + t)), qs = sizes.map((n, t) => randn(n, 80 + t));
    const one = sizes.map((n, t) => up(cpuTensor([n], ks[t])));
    const many = sizes.map((n, t) => up(cpuTensor([n], ks[t])));
    const q = sizes.map((n, t) => up(cpuTensor([n], qs[t])));
    one.forEach((k, t) => emaUpdate(k, q[t], 0.999));
    setGroupedOptim(grouped);
    try {
      const d0 = gpu.stats.dispatches;
      emaUpdateMany(many, q, 0.999);
      assertEquals(gpu.stats.dispatches - d0, want);
    } finally {
      setGroupedOptim("auto");
    }
    for (let t = 0; t < sizes.length; t++) {
      const want = await one[t].read(), got = await many[t].read();
      const cpu = cpuTensor([sizes[t]], ks[t]);
      emaUpdateCpu(cpu, cpuTensor([sizes[t]], qs[t]), 0.999);
      assertEquals(got, want, `pair ${t}`);
      assertEquals(got, cpu.data, `pair ${t} (CPU)`);
    }
  });
}

// The optimizer over a model's parameters at once (train/optimizer.ts): grouped on hardware
// adapters (forced here), as many tensors a dispatch as fit 8 bindings with amp's, vec4 and
// scalar tensors apart; else one a tensor. Against one sgdStep/adamStep a tensor, bit for bit:
// SGD plain, with momentum (first step and later, Nesterov), Adam, AdamW; without loss scaling,
// with it, and with a flagged (skipped) step. Dropping a row's case, or unscaling another row's
// gradient, fails it.
const MANY_SIZES = [64, 4096, 3, 36864, 5, 128, 1, 7, 1000];
const manyCases: Array<[string, number, number]> = [ // name, tensors a dispatch (no amp, amp)
  ["sgd", 4, 3],
  ["sgd momentum first", 2, 2],
  ["sgd nesterov", 2, 2],
  ["adam", 2, 1],
  ["adamw", 2, 1],
];
for (const grouped of [true, false]) {
  for (const [name, per, perAmp] of manyCases) {
    Deno.test(`${name} over many tensors: the bits of one step a tensor (grouped ${grouped})`, async () => {
      for (const [scale, found] of [[0, false], [1024, false], [1024, true]] as const) {
        const t = (seed: number, abs = false) =>
          MANY_SIZES.map((n, i) => randn(n, seed + i).map((v) => abs ? Math.abs(v) : v));
        const [p0, g0, b0, v0] = [t(100), t(200), t(300), t(400, true)];
        const make = (vals: Float32Array[]) =>
          vals.map((v, i) => up(cpuTensor([MANY_SIZES[i]], v)));
        const one = [make(p0), make(g0), make(b0), make(v0)];
        const many = [make(p0), make(g0), make(b0), make(v0)];
        const ampOne = scale ? ampPair(scale, found, 41).gpu : null;
        const ampMany = scale ? ampPair(scale, found, 41).gpu : null;
        const sgd = { lr: 0.1, momentum: name === "sgd" ? 0 : 0.9, weightDecay: 1e-4 };
        const so = {
          ...sgd,
          nesterov: name === "sgd nesterov",
          first: name === "sgd momentum first",
        };
        const ao = { lr: 1e-3, weightDecay: 0.01, decoupled: name === "adamw", step: 3 };
        const adam = name.startsWith("adam");
        MANY_SIZES.forEach((_, i) =>
          adam
            ? adamStep(one[0][i], one[1][i], one[2][i], one[3][i], ao, ampOne)
            : sgdStep(one[0][i], one[1][i], sgd.momentum ? one[2][i] : null, so, ampOne)
        );
        setGroupedOptim(grouped);
        try {
          const d0 = gpu.stats.dispatches;
          if (adam) adamStepMany(many[0], many[1], many[2], many[3], ao, ampMany);
          else {sgdStepMany(
              many[0],
              many[1],
              many[2].map((b) => sgd.momentum ? b : null),
              so,
              ampMany,
            );}
          const k = grouped ? (scale ? perAmp : per) : 1;
          assertEquals(gpu.stats.dispatches - d0, Math.ceil(5 / k) + Math.ceil(4 / k)); // 5 vec4
        } finally {
          setGroupedOptim("auto");
        }
        for (let j = 0; j < 4; j++) {
          for (let i = 0; i < MANY_SIZES.length; i++) {
            assertEquals(
              await many[j][i].read(),
              await one[j][i].read(),
              `${name} ${scale} ${found} ${j}:${i}`,
            );
          }
        }
      }
    });
  }
}
