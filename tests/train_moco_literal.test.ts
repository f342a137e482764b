/**
 * One MoCo step of train/moco.ts against a literal MoCo step written out here, independent of the
 * project's ops: a tiny network (1×1 conv → split BN + ReLU → average pool → MLP head) evaluated
 * in float64 by plain loops, the key encoder's EMA, an explicit shuffle of the key batch before
 * its forward pass and unshuffle after, logits [q·k₊, q·queue]/T with the positive at index 0,
 * InfoNCE by hand, the query encoder's gradients by central differences (keys held fixed: no
 * gradient through them), and the enqueue with wrap-around.
 *
 * tests/train_moco_step.test.ts compares the GPU with the CPU running the same MoCo code, so a
 * wrong positive pairing or shuffle would pass there; here it fails. The mutation test shows it:
 * the literal step with the positive at index 1, without the unshuffle, with the keys forwarded
 * unshuffled, or with the EMA after the key forward, does not match train/moco.ts.
 * CPU only (no GPU), a few hundred milliseconds.
 */
import type { Var } from "../model/autograd.ts";
import type { BTensor } from "../model/backend.ts";
import { cpuBackend as B } from "../model/backend_cpu.ts";
import { ClassifierNet, type NetOptions, rngOf } from "../model/classifier.ts";
import { kaimingNormal, zerosInit } from "../model/init.ts";
import { BatchNorm2d, Conv2d, type Ctx, Identity } from "../model/nn.ts";
import { Moco, type MocoConfig } from "../train/moco.ts";
import { cpuTrainOps } from "../train/train_ops.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertEquals } from "./helpers.ts";

const N = 8, S = 4, HW = S * S, C = 4, D = 6, K = 10, T = 0.2, M = 0.9, G = 2, EPS = 1e-5;
/** xkShuffled[j] is the key view of image PERM[j]; PERM moves images across the two BN halves. */
const PERM = [5, 2, 7, 0, 3, 6, 1, 4];
const START_PTR = 6; // 8 keys from row 6 of 10: the enqueue wraps around

const cfg: MocoConfig = {
  backbone: "resnet18", // unused: the backbone factory below builds the network
  inChannels: 1,
  dim: D,
  queueSize: K,
  temperature: T,
  momentum: M,
  bnGroups: G,
};

/** The network written out in `encode`: 1×1 conv (1→C, no bias), then BN with ReLU. */
class PixelNet extends ClassifierNet {
  readonly featureDim = C;
  readonly headName = "fc";
  readonly stemKey = "conv1.weight";
  private conv: Conv2d;
  private bn: BatchNorm2d;
  constructor(o: NetOptions) {
    super(B);
    const r = rngOf(o);
    this.conv = this.child(
      "conv1",
      new Conv2d(B, 1, C, 1, { init: r ? kaimingNormal(r, "fan_out") : zerosInit }),
    );
    this.bn = this.child("bn1", new BatchNorm2d(B, C));
    this.child("fc", new Identity(B));
  }
  featureMap(x: Var, ctx: Ctx = {}): Var {
    const c = this.conv.forward(x);
    const h = this.bn.forward(c, ctx, true);
    c.release();
    return h;
  }
}

type Params = Map<string, Float64Array>;

/** The encoder, literally: x [N, 1, S, S] → [N, D] (BN over contiguous groups of N/G images). */
function encode(P: Params, x: Float64Array): Float64Array {
  const w = P.get("conv1.weight")!, gamma = P.get("bn1.weight")!, beta = P.get("bn1.bias")!;
  const pooled = new Float64Array(N * C);
  const per = N / G;
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < C; c++) {
      const h: number[] = [];
      for (let n = g * per; n < (g + 1) * per; n++) {
        for (let p = 0; p < HW; p++) h.push(w[c] * x[n * HW + p]);
      }
      const mean = h.reduce((a, b) => a + b, 0) / h.length;
      const variance = h.reduce((a, b) => a + (b - mean) ** 2, 0) / h.length; // biased, as BN
      h.forEach((v, i) => {
        const y = Math.max(0, ((v - mean) / Math.sqrt(variance + EPS)) * gamma[c] + beta[c]);
        pooled[(g * per + Math.floor(i / HW)) * C + c] += y / HW;
      });
    }
  }
  const linear = (inp: Float64Array, W: Float64Array, b: Float64Array, I: number, O: number) => {
    const out = new Float64Array(N * O);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        let s = b[o];
        for (let i = 0; i < I; i++) s += W[o * I + i] * inp[n * I + i];
        out[n * O + o] = s;
      }
    }
    return out;
  };
  const hidden = linear(pooled, P.get("fc.0.weight")!, P.get("fc.0.bias")!, C, C).map((v) =>
    Math.max(0, v)
  );
  return linear(hidden, P.get("fc.2.weight")!, P.get("fc.2.bias")!, C, D);
}

function normalizeRows(x: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let n = 0; n < x.length / D; n++) {
    const row = x.subarray(n * D, (n + 1) * D);
    const norm = Math.sqrt(row.reduce((a, v) => a + v * v, 0));
    for (let d = 0; d < D; d++) y[n * D + d] = row[d] / norm;
  }
  return y;
}

const dot = (a: Float64Array, i: number, b: Float64Array, j: number) => {
  let s = 0;
  for (let d = 0; d < D; d++) s += a[i * D + d] * b[j * D + d];
  return s;
};

/** How a literal step may be made wrong, to show the comparison catches it. */
type Mutation = "none" | "positive at 1" | "no unshuffle" | "keys not shuffled" | "EMA after";

interface StepInput {
  q: Params;
  k: Params;
  queue: Float64Array;
  xq: Float64Array;
  /** Key views in image order (views[i] belongs to image i). */
  views: Float64Array;
}

interface StepOutput {
  loss: number;
  correct: number;
  grads: Params;
  keyParams: Params;
  queue: Float64Array;
  ptr: number;
}

/** One MoCo step, literally (see the file header); `mutation` breaks one part of it. */
function literalStep(inp: StepInput, mutation: Mutation = "none"): StepOutput {
  // Key encoder: EMA of the query encoder, before the key forward pass.
  const keyParams: Params = new Map();
  for (const [name, k] of inp.k) {
    const q = inp.q.get(name)!;
    keyParams.set(name, k.map((v, i) => M * v + (1 - M) * q[i]));
  }
  const forwardKeys = mutation === "EMA after" ? inp.k : keyParams;
  // Shuffle the key batch, forward it (split BN sees other images than the query's), unshuffle.
  const shuffled = new Float64Array(N * HW);
  PERM.forEach((p, j) => shuffled.set(inp.views.subarray(p * HW, (p + 1) * HW), j * HW));
  let keys: Float64Array;
  if (mutation === "keys not shuffled") keys = encode(forwardKeys, inp.views);
  else {
    const out = encode(forwardKeys, shuffled); // row j: the key of image PERM[j]
    if (mutation === "no unshuffle") keys = out;
    else {
      keys = new Float64Array(N * D);
      PERM.forEach((p, j) => keys.set(out.subarray(j * D, (j + 1) * D), p * D));
    }
  }
  const kn = normalizeRows(keys); // a constant for the query's gradient

  const pos = mutation === "positive at 1" ? 1 : 0;
  const lossOf = (qParams: Params) => {
    const qn = normalizeRows(encode(qParams, inp.xq));
    let loss = 0, correct = 0;
    for (let n = 0; n < N; n++) {
      const logits = [dot(qn, n, kn, n) / T];
      for (let j = 0; j < K; j++) logits.push(dot(qn, n, inp.queue, j) / T);
      const top = Math.max(...logits);
      const logSum = top + Math.log(logits.reduce((a, l) => a + Math.exp(l - top), 0));
      loss += (logSum - logits[pos]) / N;
      if (logits.indexOf(top) === pos) correct++;
    }
    return { loss, correct };
  };
  const { loss, correct } = lossOf(inp.q);

  // dL/dθ of the query encoder by central differences.
  const grads: Params = new Map();
  const h = 1e-6;
  for (const [name, p] of inp.q) {
    const g = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const v = p[i];
      p[i] = v + h;
      const up = lossOf(inp.q).loss;
      p[i] = v - h;
      const down = lossOf(inp.q).loss;
      p[i] = v;
      g[i] = (up - down) / (2 * h);
    }
    grads.set(name, g);
  }

  // Enqueue this batch's keys at the pointer, wrapping around.
  const queue = inp.queue.slice();
  for (let n = 0; n < N; n++) queue.set(kn.subarray(n * D, (n + 1) * D), ((START_PTR + n) % K) * D);
  return { loss, correct, grads, keyParams, queue, ptr: (START_PTR + N) % K };
}

const close = (a: ArrayLike<number>, e: ArrayLike<number>, atol: number, rtol: number) =>
  Array.from(a).every((v, i) => Math.abs(v - e[i]) <= atol + rtol * Math.abs(e[i]));

/** What differs between two steps beyond float32 rounding (empty: they match). */
function differences(got: StepOutput, want: StepOutput): string[] {
  const out: string[] = [];
  if (!close([got.loss], [want.loss], 1e-5, 1e-5)) out.push(`loss ${got.loss} vs ${want.loss}`);
  if (got.correct !== want.correct) out.push(`correct ${got.correct} vs ${want.correct}`);
  // The conv's gradient is ~1e-6 (BN undoes the conv's scale but for eps): each parameter is
  // held to its own scale, plus float32 rounding of the largest gradient.
  const top = Math.max(...[...want.grads.values()].flatMap((g) => Array.from(g, Math.abs)));
  for (const [name, g] of want.grads) {
    const scale = Math.max(...g.map(Math.abs));
    if (!close(got.grads.get(name)!, g, 1e-3 * scale + 1e-6 * top, 1e-3)) out.push(`grad ${name}`);
  }
  for (const [name, k] of want.keyParams) {
    if (!close(got.keyParams.get(name)!, k, 1e-6, 1e-5)) out.push(`key ${name}`);
  }
  if (!close(got.queue, want.queue, 1e-5, 1e-5)) out.push("queue");
  if (got.ptr !== want.ptr) out.push(`ptr ${got.ptr} vs ${want.ptr}`);
  return out;
}

/** The same step through train/moco.ts on the CPU backend, from the same parameters. */
async function mocoStep(): Promise<{ input: StepInput; output: StepOutput }> {
  const moco = await Moco.create(B, cpuTrainOps, cfg, 3, (o) => new PixelNet(o));
  const rng = new Rng(11);
  const randn = (n: number, scale = 1) =>
    Float32Array.from({ length: n }, () => scale * rng.normal());
  // Every parameter random (BN's affine too), the key encoder apart from the query's, so the
  // EMA and its order show.
  const read = async (entries: [string, { value: BTensor }][]): Promise<Params> => {
    const out: Params = new Map();
    for (const [name, p] of entries) out.set(name, Float64Array.from(await B.read(p.value)));
    return out;
  };
  for (const enc of [moco.encQ, moco.encK]) {
    for (const [, p] of enc.namedParameters()) {
      B.write(p.value, randn(p.value.shape.reduce((a, b) => a * b, 1), 0.7));
    }
  }
  const q = await read(moco.encQ.namedParameters());
  const k = await read(moco.encK.namedParameters());
  const queue = Float64Array.from(await B.read(moco.queue));
  moco.ptr = START_PTR;
  // Images that differ in brightness and contrast (so their features do), two views of each:
  // the key view is the query view plus noise.
  const level = randn(N, 1.5), contrast = randn(N, 0.5).map((v) => 1 + Math.abs(v));
  const xq = randn(N * HW).map((v, i) =>
    level[Math.floor(i / HW)] + contrast[Math.floor(i / HW)] * v
  );
  const views = randn(N * HW, 0.3).map((v, i) => v + xq[i]);
  const shuffled = new Float32Array(N * HW), unshuffle = new Float32Array(N);
  PERM.forEach((p, j) => {
    shuffled.set(views.subarray(p * HW, (p + 1) * HW), j * HW);
    unshuffle[p] = j;
  });
  const r = moco.step(
    B.fromArray(xq, [N, 1, S, S]),
    B.fromArray(shuffled, [N, 1, S, S]),
    B.fromArray(unshuffle, [N]),
  );
  const grads: Params = new Map();
  for (const [name, p] of moco.encQ.namedParameters()) {
    grads.set(name, Float64Array.from(await B.read(p.grad!)));
  }
  const output: StepOutput = {
    loss: (await B.read(r.loss))[0],
    correct: (await B.read(r.correct))[0],
    grads,
    keyParams: await read(moco.encK.namedParameters()),
    queue: Float64Array.from(await B.read(moco.queue)),
    ptr: moco.ptr,
  };
  moco.dispose();
  const input = { q, k, queue, xq: Float64Array.from(xq), views: Float64Array.from(views) };
  return { input, output };
}

const step = mocoStep();

Deno.test("MoCo step: train/moco.ts matches a literal MoCo step (loss, top-1, grads, EMA, queue)", async () => {
  const { input, output } = await step;
  assertEquals(
    [...input.q.keys()],
    [
      "conv1.weight",
      "bn1.weight",
      "bn1.bias",
      "fc.0.weight",
      "fc.0.bias",
      "fc.2.weight",
      "fc.2.bias",
    ],
  );
  const want = literalStep(input);
  assertEquals(differences(output, want), []);
  // Not a vacuous match: the loss is not at its floor, the EMA moved the keys.
  assert(want.loss > 0.1, `loss ${want.loss}`);
  assert(!close(want.keyParams.get("fc.2.weight")!, input.k.get("fc.2.weight")!, 1e-3, 0));
});

Deno.test("MoCo step: the literal check fails a wrong positive index, unshuffle, shuffle or EMA order", async () => {
  const { input, output } = await step;
  for (const m of ["positive at 1", "no unshuffle", "keys not shuffled", "EMA after"] as const) {
    const diff = differences(output, literalStep(input, m));
    assert(
      diff.some((d) => d.startsWith("loss")),
      `${m}: only ${diff.join(", ") || "nothing"} differs`,
    );
  }
});
