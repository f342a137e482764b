/**
 * Conv2d (forward, grad-input, grad-weight) on a ResNet-18 3×3 layer and a
 * 1024³ matmul: ours against TF.js's WebGPU backend on the same adapter.
 * TF.js runs NHWC (its native layout) with the same FLOP count; grad-input and
 * grad-weight call its Conv2DBackpropInput / Conv2DBackpropFilter kernels.
 */
import { Tensor } from "../kernels/tensor.ts";
import {
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  convAlgorithm,
} from "../kernels/conv/conv2d.ts";
import { matmul } from "../kernels/gemm/matmul.ts";
import { Rng } from "../util/rng.ts";
import type { BenchContext, BenchEntry, Timing } from "./harness.ts";
import { timeBest, timeThroughput } from "./harness.ts";
import { tunerOf } from "../kernels/tuner.ts";
import { loadTf, tfSync } from "./tfjs.ts";

function rand(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.uniform() * 2 - 1;
  return a;
}

const reps = (ctx: BenchContext, n: number) => Math.max(1, Math.round(n * ctx.opts.repScale));

/**
 * One call (which files its shape with the tuner), the tuner's timing of the
 * pending candidates (hardware adapters), then latency: best single call.
 */
async function ours(ctx: BenchContext, fn: () => Tensor, n: number): Promise<Timing> {
  fn().dispose();
  await ctx.gpu.sync();
  await tunerOf(ctx.gpu).tunePending();
  return await timeBest(() => fn().dispose(), () => ctx.gpu.sync(), reps(ctx, n));
}

/** Throughput: ms per call with `calls` calls in one submit (after `ours` has tuned the shape). */
async function oursThroughput(ctx: BenchContext, fn: () => Tensor, calls: number): Promise<Timing> {
  return await timeThroughput(ctx.gpu, () => fn().dispose(), calls);
}

export const convBench: BenchEntry = {
  name: "conv",
  description: "ResNet-18 3x3 conv: x 16x64x56x56, w 64x64x3x3, stride 1, pad 1",
  async run(ctx) {
    const [N, C, H, W, O, K] = [16, 64, 56, 56, 64, 3];
    const o = { stride: 1, pad: 1, variant: ctx.opts.variant };
    const flops = 2 * N * O * H * W * C * K * K;
    const gpu = ctx.gpu;
    const x = Tensor.from(gpu, rand(N * C * H * W, 1), [N, C, H, W]);
    const w = Tensor.from(gpu, rand(O * C * K * K, 2), [O, C, K, K]);
    const dy = Tensor.from(gpu, rand(N * O * H * W, 3), [N, O, H, W]);
    // The default algorithm (compared with TF.js), then the other two. GFLOP/s always count the
    // direct convolution's FLOPs (Winograd's are "effective").
    const algo = convAlgorithm(gpu, x.shape, w.shape, o);
    const TAGS = { gemm: "implicit GEMM", winograd: "Winograd", winograd4: "Winograd F(4×4)" };
    const rowsFor = (a: keyof typeof TAGS): Array<[string, () => Tensor, number]> => {
      const oa = { ...o, algo: a }, tag = TAGS[a];
      return [
        [`conv2d forward (${tag})`, () => conv2d(x, w, null, oa), 5],
        [`conv2d grad-input (${tag})`, () => conv2dBackwardInput(dy, w, x.shape, oa), 5],
        [`conv2d grad-weight (${tag})`, () => conv2dBackwardWeight(dy, x, w.shape, oa), 5],
      ];
    };
    const others = (["gemm", "winograd", "winograd4"] as const).filter((a) => a !== algo);
    const rows = [algo, ...others].flatMap(rowsFor);
    const timings = [];
    for (const [name, fn, n] of rows) {
      const t = await ours(ctx, fn, n);
      const thr = ctx.gpu.isSoftware ? undefined : await oursThroughput(ctx, fn, 40);
      timings.push({ name, t, thr });
    }
    x.dispose();
    w.dispose();
    dy.dispose();

    let refs: Timing[] = [];
    if (!ctx.opts.noTf) {
      const tf = await loadTf();
      const tx = tf.randomUniform([N, H, W, C], -1, 1) as import("@tensorflow/tfjs").Tensor4D;
      const tw = tf.randomUniform([K, K, C, O], -1, 1) as import("@tensorflow/tfjs").Tensor4D;
      const tdy = tf.randomUniform([N, H, W, O], -1, 1) as import("@tensorflow/tfjs").Tensor4D;
      const common = { strides: [1, 1], pad: 1, dataFormat: "NHWC", dilations: [1, 1] };
      const tfRows: Array<[() => import("@tensorflow/tfjs").Tensor, number]> = [
        [() => tf.conv2d(tx, tw, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]), 2],
        [() =>
          tf.engine().runKernel("Conv2DBackpropInput", { dy: tdy, filter: tw }, {
            ...common,
            inputShape: [N, H, W, C],
          }) as import("@tensorflow/tfjs").Tensor, 2],
        [() =>
          tf.engine().runKernel("Conv2DBackpropFilter", { x: tx, dy: tdy }, {
            ...common,
            filterShape: [K, K, C, O],
          }) as import("@tensorflow/tfjs").Tensor, 1],
      ];
      refs = [];
      for (const [fn, n] of tfRows) {
        refs.push(await timeBest(() => fn().dispose(), () => tfSync(tf), reps(ctx, n)));
      }
      tf.dispose([tx, tw, tdy]);
    }
    timings.forEach(({ name, t, thr }, i) =>
      ctx.report({ name, flops, ours: t, thr, ref: refs[i] })
    );
  },
};

export const matmulBench: BenchEntry = {
  name: "matmul",
  description: "matmul 1024x1024 · 1024x1024",
  async run(ctx) {
    const n = 1024, flops = 2 * n ** 3;
    const a = Tensor.from(ctx.gpu, rand(n * n, 4), [n, n]);
    const b = Tensor.from(ctx.gpu, rand(n * n, 5), [n, n]);
    const fn = () => matmul(a, b, { variant: ctx.opts.variant });
    const t = await ours(ctx, fn, 5);
    const thr = ctx.gpu.isSoftware ? undefined : await oursThroughput(ctx, fn, 40);
    a.dispose();
    b.dispose();
    let ref: Timing | undefined;
    if (!ctx.opts.noTf) {
      const tf = await loadTf();
      const ta = tf.randomUniform([n, n], -1, 1), tb = tf.randomUniform([n, n], -1, 1);
      ref = await timeBest(() => tf.matMul(ta, tb).dispose(), () => tfSync(tf), reps(ctx, 3));
      tf.dispose([ta, tb]);
    }
    ctx.report({ name: "matmul 1024^3", flops, ours: t, thr, ref });
  },
};

/**
 * The GPU-scale shapes of the kernels issue: ResNet-18's four 3×3 stages at
 * batch 64 (224-px input: 56², 28², 14², 7² maps) forward and both gradients,
 * and square matmuls 1024³–4096³, each tuned first, then timed for latency and
 * throughput. Minutes per row on a software adapter: run there only by name.
 */
export const gpuShapesBench: BenchEntry = {
  name: "gpu",
  description: "ResNet-18 3x3 convs at batch 64 (56..7 px maps) and matmul 1024..4096, tuned",
  async run(ctx) {
    const gpu = ctx.gpu;
    for (const [C, H] of [[64, 56], [128, 28], [256, 14], [512, 7]]) {
      const N = 64, o = { stride: 1, pad: 1, variant: ctx.opts.variant };
      const flops = 2 * N * C * H * H * C * 9;
      const x = Tensor.from(gpu, rand(N * C * H * H, 1), [N, C, H, H]);
      const w = Tensor.from(gpu, rand(C * C * 9, 2), [C, C, 3, 3]);
      const dy = Tensor.from(gpu, rand(N * C * H * H, 3), [N, C, H, H]);
      const rows: Array<[string, () => Tensor]> = [
        [`conv fwd 64x${C}x${H}x${H}`, () => conv2d(x, w, null, o)],
        [`conv grad-input 64x${C}x${H}x${H}`, () => conv2dBackwardInput(dy, w, x.shape, o)],
        [`conv grad-weight 64x${C}x${H}x${H}`, () => conv2dBackwardWeight(dy, x, w.shape, o)],
      ];
      for (const [name, fn] of rows) {
        const t = await ours(ctx, fn, 3);
        const thr = await oursThroughput(ctx, fn, gpu.isSoftware ? 1 : 40);
        ctx.report({ name, flops, ours: t, thr });
      }
      [x, w, dy].forEach((t) => t.dispose());
    }
    for (const n of [1024, 2048, 4096]) {
      const a = Tensor.from(gpu, rand(n * n, 4), [n, n]);
      const b = Tensor.from(gpu, rand(n * n, 5), [n, n]);
      const fn = () => matmul(a, b, { variant: ctx.opts.variant });
      const t = await ours(ctx, fn, 3);
      const thr = await oursThroughput(ctx, fn, gpu.isSoftware ? 1 : 40);
      ctx.report({ name: `matmul ${n}^3`, flops: 2 * n ** 3, ours: t, thr });
      a.dispose();
      b.dispose();
    }
  },
};
