/**
 * Finite-difference checks of the autograd through whole blocks on the CPU
 * backend: a residual block with a downsampling shortcut, a bottleneck, a
 * dense block of two layers followed by a transition, in training mode
 * (batch statistics) and in eval mode (running statistics), plus a frozen
 * parameter (no gradient, and the rest unchanged).
 *
 * The CPU references compute in f32, so the central difference uses eps 1e-3
 * with tolerance atol 2e-3, rtol 1e-2 on losses of order 1-10 (f32 rounding
 * of the loss ≈ 1e-6, /2eps ≈ 1e-3); points whose second difference shows a
 * ReLU/max-pool kink within ±eps could explain a miss are skipped (≤ 40%).
 */
import { assert, assertEquals } from "./helpers.ts";
import { weightedSum } from "./gradcheck.ts";
import { randn } from "./gpu.ts";
import { cpuBackend as B } from "../model/backend_cpu.ts";
import { backward, noGrad, Var } from "../model/autograd.ts";
import type { Module, Parameter } from "../model/nn.ts";
import { BatchNorm2d, Conv2d, Sequential } from "../model/nn.ts";
import { BasicBlock, Bottleneck } from "../model/resnet.ts";
import { DenseBlock, Transition } from "../model/densenet.ts";
import { kaimingNormal } from "../model/init.ts";
import type { CpuTensor } from "../kernels/cpu/tensor.ts";
import { Rng } from "../util/rng.ts";

const data = (t: unknown) => (t as CpuTensor).data;
const EPS = 1e-3, ATOL = 2e-3, RTOL = 1e-2;

/** Randomises BN affine parameters and running statistics so every term matters. */
function randomiseBn(m: Module, seed: number): void {
  const r = new Rng(seed);
  for (const e of m.stateDict()) {
    const d = e.dtype === "F32" ? new Float32Array(e.shape.reduce((a, b) => a * b, 1)) : null;
    if (!d) continue;
    if (/(norm\d?|bn\d|downsample\.1)\.weight$/.test(e.name)) {
      d.forEach((_, i) => d[i] = 0.5 + r.uniform());
    } else if (/\.bias$/.test(e.name)) d.forEach((_, i) => d[i] = 0.2 * r.normal());
    else if (e.name.endsWith("running_mean")) d.forEach((_, i) => d[i] = 0.1 * r.normal());
    else if (e.name.endsWith("running_var")) d.forEach((_, i) => d[i] = 0.5 + r.uniform());
    else continue;
    e.write(d);
  }
}

/**
 * Checks d(Σ w·block(x))/d{x, params} against central differences, on a
 * few indices of each tensor.
 */
function check(block: Module, xShape: number[], names: string[], label: string): void {
  const n = xShape.reduce((a, b) => a * b, 1);
  const xData = randn(n, 11);
  const params = new Map(block.namedParameters());
  const targets: Parameter[] = names.map((nm) => {
    const p = params.get(nm);
    if (!p) throw new Error(`${label}: no parameter ${nm}`);
    return p;
  });
  const x = new Var(B, B.fromArray(xData, xShape), { requiresGrad: true });
  const out = block.forward(x);
  const w = randn(out.value.shape.reduce((a, b) => a * b, 1), 12);
  backward(out, B.fromArray(w, out.shape));
  out.release();
  const analytic = [data(x.grad), ...targets.map((p) => data(p.grad))];
  const inputs = [data(x.value), ...targets.map((p) => data(p.value))];
  const loss = weightedSum(w);
  const f = (vals: Float64Array[]) => {
    data(x.value).set(vals[0]);
    targets.forEach((p, i) => data(p.value).set(vals[i + 1]));
    const y = noGrad(() => block.forward(x));
    const l = loss(data(y.value));
    y.release();
    return l;
  };
  const r = new Rng(5);
  const vals = inputs.map((a) => Float64Array.from(a));
  const f0 = f(vals);
  let checked = 0, total = 0;
  vals.forEach((v, k) => {
    for (let j = 0; j < Math.min(v.length, 12); j++) {
      const i = r.int(v.length), orig = v[i];
      v[i] = orig + EPS;
      const fp = f(vals);
      v[i] = orig - EPS;
      const fm = f(vals);
      v[i] = orig;
      total++;
      // A ReLU/max-pool kink inside [x-eps, x+eps] can shift the central
      // difference by up to |f(x+e) - 2f(x) + f(x-e)| / 2e: skip points where
      // that bound exceeds the tolerance.
      const num = (fp - fm) / (2 * EPS), ana = analytic[k][i];
      if (Math.abs(fp - 2 * f0 + fm) / (2 * EPS) > ATOL + RTOL * Math.abs(num)) continue;
      checked++;
      if (!(Math.abs(num - ana) <= ATOL + RTOL * Math.abs(num))) {
        throw new Error(`${label}: ${["x", ...names][k]}[${i}]: analytic ${ana} vs numeric ${num}`);
      }
    }
  });
  assert(checked >= 0.6 * total, `${label}: only ${checked} of ${total} points were smooth`);
  f(inputs.map((a) => Float64Array.from(a))); // restore
  x.dispose();
  block.zeroGrad();
}

Deno.test("gradcheck: residual BasicBlock with downsample, train and eval mode", () => {
  const rng = new Rng(1);
  const block = new BasicBlock(B, kaimingNormal(rng, "fan_out"), 3, 4, 2);
  block.addDownsample(
    new Sequential(B, [
      new Conv2d(B, 3, 4, 1, { stride: 2, init: kaimingNormal(rng, "fan_out") }),
      new BatchNorm2d(B, 4),
    ]),
  );
  randomiseBn(block, 2);
  const names = ["conv1.weight", "bn1.weight", "bn2.bias", "conv2.weight", "downsample.0.weight"];
  check(block, [2, 3, 8, 8], names, "BasicBlock train");
  block.eval();
  check(block, [2, 3, 8, 8], names, "BasicBlock eval");
});

Deno.test("gradcheck: Bottleneck (stride on the 3×3), train mode", () => {
  const block = new Bottleneck(B, kaimingNormal(new Rng(3), "fan_out"), 8, 2, 1);
  randomiseBn(block, 4);
  check(
    block,
    [2, 8, 6, 6],
    ["conv1.weight", "bn2.weight", "conv3.weight", "bn3.bias"],
    "Bottleneck",
  );
});

Deno.test("gradcheck: dense block of two layers + transition, train and eval mode", () => {
  const init = kaimingNormal(new Rng(6), "fan_in");
  const net = new Sequential(B, [
    ["denseblock1", new DenseBlock(B, init, 2, 3, 2, 2)],
    ["transition1", new Transition(B, init, 7, 3)],
  ]);
  randomiseBn(net, 7);
  const names = [
    "denseblock1.denselayer1.conv1.weight",
    "denseblock1.denselayer2.norm1.weight",
    "denseblock1.denselayer2.conv2.weight",
    "transition1.norm.bias",
    "transition1.conv.weight",
  ];
  check(net, [2, 3, 6, 6], names, "DenseBlock train");
  net.eval();
  check(net, [2, 3, 6, 6], names, "DenseBlock eval");
});

Deno.test("frozen parameters get no gradient; the others are unchanged", () => {
  const make = () => {
    const b = new BasicBlock(B, kaimingNormal(new Rng(9), "fan_out"), 2, 2, 1);
    randomiseBn(b, 10);
    return b;
  };
  const a = make(), f = make();
  f.conv1.requiresGrad(false);
  f.bn1.requiresGrad(false);
  const xd = randn(2 * 2 * 4 * 4, 12);
  for (const m of [a, f]) {
    const x = new Var(B, B.fromArray(xd, [2, 2, 4, 4]));
    const y = m.forward(x);
    backward(y, B.fromArray(randn(y.value.shape.reduce((p, q) => p * q, 1), 13), y.shape));
    y.release();
  }
  assertEquals(f.conv1.weight.grad, null);
  assertEquals(f.bn1.weight.grad, null);
  assertEquals(f.trainableParameters().length, a.trainableParameters().length - 3);
  assertEquals([...data(f.conv2.weight.grad)], [...data(a.conv2.weight.grad)]);
});
