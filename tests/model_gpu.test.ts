/**
 * Whole networks on the GPU backend against the CPU backend (same weights,
 * same input): ResNet-18 and DenseNet-121 eval outputs, training-mode
 * outputs, every parameter gradient and the BN running statistics after the
 * step; and flat memory over a training loop (no new GPU buffers after the
 * first two steps).
 *
 * Both sides compute in f32 with different summation orders. Batch 4 at
 * 32×32: the deepest BN layers normalise 4 values per channel. Eval outputs
 * and running statistics must agree within 1e-3 of the largest magnitude,
 * training outputs within 1e-2, gradients within 5e-3 relative L2 error.
 * ResNet-18's gradients come from the training-mode step (measured ≤ 1e-3).
 * DenseNet-121's come from an eval-mode backward: its block-4 BNs over 1×1
 * maps make training-mode gradients ill-conditioned at this size (10% apart
 * between two correct f32 computations; torch's own f32-vs-f64 error is of
 * that order too), while the eval-mode backward exercises the same conv,
 * concat/slice, pooling and BN-backward kernels with a well-conditioned
 * result. Training-mode DenseNet gradients are checked against torch in
 * model_torch.test.ts with a conditioning-aware tolerance.
 */
import { assert, assertClose, assertEquals, relErr } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import type { Backend } from "../model/backend.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { backward, clearTape, noGrad, tapeLength, Var } from "../model/autograd.ts";
import { type ClassifierNet, linearHead, type NetOptions } from "../model/classifier.ts";
import { BasicBlock, resnet18 } from "../model/resnet.ts";
import { DenseBlock, densenet121, Transition } from "../model/densenet.ts";
import { BatchNorm2d, Conv2d, GlobalAvgPool, MaxPool2d, ReLU, Sequential } from "../model/nn.ts";
import { kaimingNormal } from "../model/init.ts";
import { Rng } from "../util/rng.ts";

const G = gpuBackend(gpu);

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
const near = (got: ArrayLike<number>, want: ArrayLike<number>, label: string, tol = 1e-3) =>
  assertClose(got, want, { atol: tol * maxAbs(want) + 1e-6, rtol: tol, label });

/** Same random BN affine parameters and running statistics on both models. */
function randomiseBn(models: ClassifierNet[], seed: number): void {
  const entries = models.map((m) => m.stateDict());
  const r = new Rng(seed);
  entries[0].forEach((e, i) => {
    if (e.dtype !== "F32" || !/(norm\d?|bn\d|downsample\.1)\.|running_/.test(e.name)) return;
    const n = e.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      d[j] = e.name.endsWith("weight") || e.name.endsWith("running_var")
        ? 0.5 + r.uniform()
        : 0.1 * r.normal();
    }
    for (const es of entries) es[i].write(d);
  });
}

async function compare(
  build: (B: Backend, o: NetOptions) => ClassifierNet,
  xShape: number[],
  label: string,
  gradMode: "train" | "eval",
): Promise<void> {
  const [cpu, gpuNet] = [cpuBackend, G].map((B) => build(B, { numClasses: 5, seed: 3 }));
  randomiseBn([cpu, gpuNet], 4);
  const xd = randn(xShape.reduce((a, b) => a * b, 1), 5);
  const seed = randn(xShape[0] * 5, 6);
  const results = [];
  for (const [B, m] of [[cpuBackend, cpu], [G, gpuNet]] as const) {
    const x = new Var(B, B.fromArray(xd, xShape));
    m.eval();
    const e = m.forward(x);
    const evalOut = await e.read();
    if (gradMode === "eval") backward(e, B.fromArray(seed, e.shape));
    else clearTape(); // this forward's gradient is not wanted (backward refuses stray records)
    e.release();
    m.train();
    const out = m.forward(x);
    const trainOut = await out.read();
    if (gradMode === "train") backward(out, B.fromArray(seed, out.shape));
    else clearTape();
    out.release();
    assertEquals(tapeLength(), 0);
    const grads = new Map<string, Float32Array>();
    for (const [n, p] of m.namedParameters()) grads.set(n, await B.read(p.grad!));
    const state = new Map<string, Float32Array>();
    for (const s of m.stateDict()) {
      if (s.kind === "buffer" && s.dtype === "F32") {
        state.set(s.name, (await s.read()) as Float32Array);
      }
    }
    results.push({ evalOut, trainOut, grads, state });
    x.dispose();
    m.dispose();
  }
  const [c, g] = results;
  near(g.evalOut, c.evalOut, `${label} eval out`);
  near(g.trainOut, c.trainOut, `${label} train out`, 1e-2);
  for (const [n, want] of c.grads) {
    const e = relErr(g.grads.get(n)!, want);
    assert(e <= 5e-3, `${label} grad ${n}: relative error ${e}`);
  }
  for (const [n, want] of c.state) near(g.state.get(n)!, want, `${label} ${n}`);
}

Deno.test("ResNet-18: GPU backend equals CPU backend (eval, train step, grads, BN stats)", () =>
  compare((B, o) => resnet18(B, o), [4, 3, 32, 32], "resnet18", "train"));

Deno.test("DenseNet-121: GPU backend equals CPU backend (eval + grads, train step, BN stats)", () =>
  compare((B, o) => densenet121(B, o), [4, 3, 32, 32], "densenet121", "eval"));

Deno.test("GPU memory stays flat over training steps (activations and grads released)", async () => {
  // A small net with every kind of op the architectures use (the bookkeeping is the same).
  const init = kaimingNormal(new Rng(7), "fan_out");
  const m = new Sequential(G, [
    new Conv2d(G, 3, 8, 3, { stride: 2, pad: 1, init }),
    new BatchNorm2d(G, 8),
    new ReLU(G),
    new MaxPool2d(G, 3, 2, 1),
    new BasicBlock(G, init, 8, 8, 1),
    new DenseBlock(G, init, 2, 8, 4, 2),
    new Transition(G, init, 16, 8),
    new GlobalAvgPool(G),
    linearHead(G, 8, 3, new Rng(8)),
  ]);
  const x = new Var(G, G.fromArray(randn(2 * 3 * 32 * 32, 8), [2, 3, 32, 32]));
  const counts: number[] = [];
  for (let step = 0; step < 5; step++) {
    m.zeroGrad();
    const out = m.forward(x);
    backward(out, G.fromArray(randn(6, 9 + step), out.shape));
    out.release();
    await G.read(m.parameters()[0].grad!);
    counts.push(gpu.stats.buffersCreated);
  }
  assertEquals(counts[4], counts[1], `buffers created after each step: ${counts}`);
  // Inference without a tape also releases as it goes (the first pass may warm the pool).
  const infer = async () => {
    const y = noGrad(() => m.eval().forward(x));
    await y.read();
    y.release();
  };
  await infer();
  const before = gpu.stats.buffersCreated;
  for (let i = 0; i < 3; i++) await infer();
  assertEquals(gpu.stats.buffersCreated, before);
  x.dispose();
  m.dispose();
});
