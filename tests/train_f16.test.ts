/**
 * f16 storage in training (--precision f16): the MoCo step with f16 backbones and loss scaling,
 * against the f32 step (CPU references: within f16 rounding) and against the CPU's emulation of
 * f16 storage (GPU: the same roundings), and a short pretraining run whose loss curve stays with
 * the f32 run's and which resumes bit for bit with its loss scale.
 */
import { join } from "node:path";
import { gpuBackend } from "../model/backend_gpu.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import type { Backend } from "../model/backend.ts";
import { Moco } from "../train/moco.ts";
import { cpuTrainOps, gpuTrainOps, type TrainOps } from "../train/train_ops.ts";
import { Optimizer } from "../train/optimizer.ts";
import { DEFAULT_LOSS_SCALE, LossScaler } from "../train/loss_scale.ts";
import { Parameter } from "../model/nn.ts";
import { pretrain } from "../train/pretrain.ts";
import { readMetrics } from "../train/metrics.ts";
import { readSafetensors, type TensorData, writeSafetensors } from "../model/safetensors.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals, assertRejects, relErr } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { hasF16 } from "./f16.ts";
import { TINY_MOCO, TinyNet, tinyPretrainConfig } from "./tiny_net.ts";
import { discSource } from "./image_source.ts";

const base = TINY_MOCO;
const N = 8, S = 16;

/** One MoCo step (no optimizer): loss and the query encoder's gradients, unscaled. */
async function oneStep(B: Backend, ops: TrainOps, precision: "f32" | "f16") {
  const moco = await Moco.create(B, ops, { ...base, precision }, 7, (o) => new TinyNet(B, o));
  const perm = new Rng(1).shuffle([...Array(N).keys()]);
  const inv = new Float32Array(N);
  perm.forEach((p, j) => (inv[p] = j));
  const views = randn(N * S * S, 200);
  const xk = new Float32Array(N * S * S);
  perm.forEach((p, j) => xk.set(views.subarray(p * S * S, (p + 1) * S * S), j * S * S));
  const r = moco.step(
    B.fromArray(randn(N * S * S, 100), [N, 1, S, S]),
    B.fromArray(xk, [N, 1, S, S]),
    B.fromArray(inv, [N]),
  );
  const scale = moco.scaler ? (await moco.scaler.read()).scale : 1;
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of moco.encQ.namedParameters()) {
    grads.set(name, (await B.read(p.grad!)).map((g) => g / scale));
  }
  const loss = (await B.read(r.loss))[0];
  moco.dispose();
  return { loss, grads, scale };
}

Deno.test("f16 MoCo step (CPU references): loss and unscaled gradients within f16 rounding of f32", async () => {
  const h = await oneStep(cpuBackend, cpuTrainOps, "f16");
  const f = await oneStep(cpuBackend, cpuTrainOps, "f32");
  assertEquals(h.scale, DEFAULT_LOSS_SCALE.init);
  assertClose([h.loss], [f.loss], { atol: 5e-3, rtol: 0, label: "loss" });
  for (const [name, g] of f.grads) {
    const e = relErr(h.grads.get(name)!, g);
    // f16 rounds activations and gradients at 2^-11 relative; sums that nearly cancel (the first
    // BN's bias, the first conv's weight: 3–4% here) amplify it. A missing unscale, a wrong cast
    // or a lost seed is off by factors.
    assert(e < 0.06, `${name}: f16 gradient ${e.toFixed(4)} away from f32 (relative)`);
  }
});

Deno.test({
  name: "f16 MoCo step: GPU kernels match the CPU's f16 emulation (loss, gradients)",
  ignore: !hasF16,
  async fn() {
    const g = await oneStep(gpuBackend(gpu), gpuTrainOps, "f16");
    const c = await oneStep(cpuBackend, cpuTrainOps, "f16");
    assertClose([g.loss], [c.loss], { atol: 1e-3, rtol: 0, label: "loss" });
    for (const [name, cg] of c.grads) {
      const e = relErr(g.grads.get(name)!, cg);
      assert(e < 5e-3, `${name}: GPU f16 gradient ${e.toExponential(2)} away from the CPU's`);
    }
  },
});

Deno.test({
  name: "f16 optimizer step: a non-finite gradient skips the step and halves the scale",
  ignore: !hasF16,
  async fn() {
    const B = gpuBackend(gpu);
    const moco = await Moco.create(
      B,
      gpuTrainOps,
      { ...base, precision: "f16" },
      7,
      (o) => new TinyNet(B, o),
    );
    const params = moco.encQ.namedParameters();
    const opt = new Optimizer(B, gpuTrainOps, params, {
      kind: "sgd",
      momentum: 0.9,
      weightDecay: 0,
    }, moco.scaler);
    const before = await Promise.all(params.map(([, p]) => p.read()));
    for (const [i, [, p]] of params.entries()) {
      const g = new Float32Array(before[i].length).fill(1);
      if (i === params.length - 1) g[0] = Infinity;
      p.grad = B.fromArray(g, p.shape);
    }
    opt.update(0.1);
    const after = await Promise.all(params.map(([, p]) => p.read()));
    after.forEach((a, i) => assertEquals(a, before[i], `${params[i][0]} moved on a skipped step`));
    assertEquals(await moco.scaler!.read(), { scale: DEFAULT_LOSS_SCALE.init / 2, skipped: 1 });
    for (const [, p] of params) {
      p.grad = B.fromArray(
        new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(DEFAULT_LOSS_SCALE.init / 2),
        p.shape,
      );
    }
    opt.update(0.1);
    const moved = await params[0][1].read();
    // init/2 over the halved scale = 1: SGD's first effective step moves each weight by lr · 1
    assertClose(moved, before[0].map((w) => w - 0.1), { atol: 1e-6, rtol: 0 });
    opt.dispose();
    moco.dispose();
  },
});

const cfg = tinyPretrainConfig;

Deno.test({
  name: "f16 pretraining: the loss curve stays with f32's; a killed run resumes bit for bit",
  ignore: !hasF16,
  async fn() {
    const B = gpuBackend(gpu);
    const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => Deno.makeTempDir()));
    const s16 = await pretrain(B, gpuTrainOps, cfg(10, "f16"), discSource(64), a, opts);
    await pretrain(B, gpuTrainOps, cfg(10), discSource(64), b, opts);
    const m16 = await readMetrics(join(a, "metrics.jsonl"));
    const m32 = await readMetrics(join(b, "metrics.jsonl"));
    assertEquals(m16.length, 40);
    // Same seed, same batches: the curves part only by rounding. Mean |difference| of the loss,
    // and the mean over the last 8 steps, against the f32 curve's own fall.
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const diff = mean(m16.map((r, i) => Math.abs((r.loss as number) - (m32[i].loss as number))));
    // From step 3 on the queue holds real keys (tests/train_pretrain.test.ts).
    const fall = mean(m32.slice(2, 10).map((r) => r.loss as number)) -
      mean(m32.slice(-8).map((r) => r.loss as number));
    assert(fall > 0.05, `f32 loss fell by ${fall}`);
    assert(
      diff < 0.25 * fall,
      `f16 curve ${diff.toFixed(4)} away from f32 (fall ${fall.toFixed(4)})`,
    );
    assertEquals(s16.lossScale, { scale: DEFAULT_LOSS_SCALE.init, skipped: 0 });
    assertEquals(m16.at(-1)!.loss_scale, DEFAULT_LOSS_SCALE.init);
    // The scaler's state is in the checkpoint (a resume restores it with the weights).
    const ck = await readSafetensors(join(a, "checkpoint.safetensors"));
    assertEquals([...ck.tensors.get("loss_scale.scale")!.data], [DEFAULT_LOSS_SCALE.init]);
    assertEquals(ck.tensors.get("loss_scale.flags")!.shape, [4]);
    // Killed after step 7 and resumed: the same losses and weights as the uninterrupted run.
    await assertRejects(
      () =>
        pretrain(B, gpuTrainOps, cfg(10, "f16"), discSource(64), c, {
          ...opts,
          afterStep: (s) => {
            if (s === 7) throw new Error("killed");
          },
        }),
      /killed/,
    );
    await pretrain(B, gpuTrainOps, cfg(10, "f16"), discSource(64), c, { ...opts, resume: true });
    const mc = await readMetrics(join(c, "metrics.jsonl"));
    assertEquals(mc.map((r) => r.loss), m16.map((r) => r.loss));
    assertEquals(
      await Deno.readFile(join(c, "backbone.safetensors")),
      await Deno.readFile(join(a, "backbone.safetensors")),
    );
    for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
  },
});

// Adam under the loss scaler counts only the steps it applied, as torch's state['step'] under
// GradScaler (a skipped step never calls optimizer.step()): a skipped first step leaves the next
// two updates the bits of a run without it (gradients at each step's scale, a power of two, so
// the unscaled values are the same). Counting the skip made the first real update 0.744 of it.
for (
  const [name, B, ops] of [
    ["CPU", cpuBackend, cpuTrainOps],
    ["GPU", gpuBackend(gpu), gpuTrainOps],
  ] as const
) {
  Deno.test(`f16 optimizer (${name}): a skipped step does not count in Adam's bias correction`, async () => {
    const sizes = [37, 64];
    const run = async (skipFirst: boolean) => {
      const ps: [string, Parameter][] = sizes.map((n, i) => [
        `w${i}`,
        new Parameter(B, B.fromArray(randn(n, 10 + i), [n])),
      ]);
      const scaler = new LossScaler(B, ops);
      const opt = new Optimizer(B, ops, ps, { kind: "adam", weightDecay: 1e-4 }, scaler);
      const step = async (k: number, bad = false) => {
        const S = (await scaler.read()).scale;
        ps.forEach(([, p], i) => {
          const g = randn(sizes[i], 20 + 2 * k + i).map((x) => x * S);
          if (bad) g[3] = Infinity;
          p.grad = B.fromArray(g, [sizes[i]]);
        });
        opt.update(1e-3);
      };
      if (skipFirst) await step(0, true);
      await step(1);
      await step(2);
      const out = {
        values: await Promise.all(ps.map(([, p]) => B.read(p.value))),
        skipped: (await scaler.read()).skipped,
        applied: await scaler.applied(),
        calls: opt.step,
      };
      opt.dispose();
      scaler.dispose();
      return out;
    };
    const a = await run(true), b = await run(false);
    assertEquals([a.skipped, a.applied, a.calls], [1, 2, 3]);
    assertEquals([b.skipped, b.applied, b.calls], [0, 2, 2]);
    a.values.forEach((v, i) => assertEquals(v, b.values[i], `w${i}`));
  });
}

Deno.test({
  name: "f16 pretraining with skipped steps: a killed run resumes bit for bit; an older " +
    "checkpoint (3 flag words) resumes with Adam's count at its optimizer step",
  ignore: !hasF16,
  async fn() {
    const B = gpuBackend(gpu);
    const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };
    const killedAt7 = (dir: string) =>
      assertRejects(
        () =>
          pretrain(B, gpuTrainOps, cfg(3, "f16"), discSource(64), dir, {
            ...opts,
            afterStep: (s) => {
              if (s === 7) throw new Error("killed");
            },
          }),
        /killed/,
      );
    const flagsOf = async (dir: string) => {
      const t = (await readSafetensors(join(dir, "checkpoint.safetensors"))).tensors
        .get("loss_scale.flags")!;
      return [...new Uint32Array((t.data as Float32Array).slice().buffer)];
    };
    /** Rewrites a run's checkpoint with only the first `words` flag words; returns its meta. */
    const keepFlagWords = async (dir: string, words: number) => {
      const path = join(dir, "checkpoint.safetensors");
      const file = await readSafetensors(path);
      const tensors = [...file.tensors].map(([k, t]): [string, TensorData] => [
        k,
        k === "loss_scale.flags" ? { ...t, shape: [words], data: t.data.slice(0, words) } : t,
      ]);
      // as the code before the data hash wrote it, too (a hash would refuse the changed flags)
      const { data_sha256: _, ...metadata } = file.metadata;
      await writeSafetensors(path, tensors, metadata);
      return JSON.parse(file.metadata.meta!);
    };
    // A first scale of 2^23 overflows f16 on this run's first three steps, halving each time.
    const init = DEFAULT_LOSS_SCALE.init;
    DEFAULT_LOSS_SCALE.init = 2 ** 23;
    const [a, c, d, e] = await Promise.all([0, 1, 2, 3].map(() => Deno.makeTempDir()));
    try {
      const s = await pretrain(B, gpuTrainOps, cfg(3, "f16"), discSource(64), a, opts);
      assertEquals([s.steps, s.lossScale], [12, { scale: 2 ** 20, skipped: 3 }]);
      // found, good steps, skipped, applied
      assertEquals(await flagsOf(a), [0, 9, 3, 9]);
      const ma = await readMetrics(join(a, "metrics.jsonl"));
      // Killed after step 7 (the checkpoint is step 6's, the skips before it) and resumed.
      await killedAt7(c);
      assertEquals(await flagsOf(c), [0, 3, 3, 3]);
      await pretrain(B, gpuTrainOps, cfg(3, "f16"), discSource(64), c, { ...opts, resume: true });
      const mc = await readMetrics(join(c, "metrics.jsonl"));
      assertEquals(mc.map((r) => r.loss), ma.map((r) => r.loss));
      assertEquals(
        await Deno.readFile(join(c, "backbone.safetensors")),
        await Deno.readFile(join(a, "backbone.safetensors")),
      );
      // The same checkpoint as the code before the applied count wrote it: 3 flag words. It
      // resumes with Adam's count at its optimizer step (6, skips included, as that code counted),
      // and only the steps applied after it add to it: 6 + 6 at the end, not the true 9.
      await killedAt7(d);
      assertEquals((await keepFlagWords(d, 3)).optimizerStep, 6);
      await pretrain(B, gpuTrainOps, cfg(3, "f16"), discSource(64), d, { ...opts, resume: true });
      assertEquals(await flagsOf(d), [0, 9, 3, 12]);
      // Flags of another length are refused, naming the tensor.
      await killedAt7(e);
      await keepFlagWords(e, 2);
      await assertRejects(
        () => pretrain(B, gpuTrainOps, cfg(3, "f16"), discSource(64), e, { ...opts, resume: true }),
        /"loss_scale.flags" has shape \[2\], this run expects \[4\]/,
      );
    } finally {
      DEFAULT_LOSS_SCALE.init = init;
      for (const dir of [a, c, d, e]) await Deno.remove(dir, { recursive: true });
    }
  },
});
