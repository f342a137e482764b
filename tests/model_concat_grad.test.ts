/**
 * The concat op's backward (model/ops.ts): an input that already holds a gradient has its channel
 * range added into it in place (addChannelsInto), one that does not gets the slice; the gradients
 * are the bits of slicing every range and letting the engine add them, in the engine's order, on
 * the GPU and CPU backends alike (inputs used twice in one concat, and in two concats). A backward
 * that always sliced would pass the values but fail the count of in-place adds; one that added
 * into a gradient the engine had not yet made, or in another order, fails the bits.
 */
import { backward, noGrad, Var } from "../model/autograd.ts";
import * as ops from "../model/ops.ts";
import type { Backend } from "../model/backend.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { DenseBlock } from "../model/densenet.ts";
import { Buffer } from "../model/nn.ts";
import { kaimingNormal } from "../model/init.ts";
import { setBatchNormPath } from "../kernels/batchnorm.ts";
import { setPerGeometry } from "../kernels/wgsl.ts";
import { Rng } from "../util/rng.ts";
import { assertBits, assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { hasF16 } from "./f16.ts";

const N = 2, S = 4, CA = 3, CB = 2, CY = CA + CB + CB + CA + CB; // root = [a b | b a b]

async function grads(B: Backend) {
  const calls = { slice: 0, add: 0 };
  const spy: Backend = {
    ...B,
    sliceChannels: (x, s, n) => (calls.slice++, B.sliceChannels(x, s, n)),
    addChannelsInto: (acc, x, s) => (calls.add++, B.addChannelsInto(acc, x, s)),
  };
  const a = new Var(spy, spy.fromArray(randn(N * CA * S, 1), [N, CA, S]), { requiresGrad: true });
  const b = new Var(spy, spy.fromArray(randn(N * CB * S, 2), [N, CB, S]), { requiresGrad: true });
  const y1 = ops.concat([a, b]), y2 = ops.concat([b, a, b]);
  const root = ops.concat([y1, y2]);
  backward(root, spy.fromArray(randn(N * CY * S, 3), [N, CY, S]));
  const out = { a: await B.read(a.grad!), b: await B.read(b.grad!), calls };
  for (const v of [a, b]) {
    B.dispose(v.value);
    B.dispose(v.grad!);
  }
  return out;
}

/** The seed's channels [c0, c0 + n) of each image, as f32. */
function range(w: Float32Array, c0: number, n: number): Float32Array {
  const out = new Float32Array(N * n * S);
  for (let i = 0; i < N; i++) {
    out.set(w.subarray((i * CY + c0) * S, (i * CY + c0 + n) * S), i * n * S);
  }
  return out;
}
const sum = (...xs: Float32Array[]) =>
  xs.reduce((acc, x) => acc.map((v, i) => Math.fround(v + x[i])));

Deno.test("concat's backward adds into an existing gradient in place, the bits of slice + add", async () => {
  const w = randn(N * CY * S, 3);
  // the engine's order: the root's slices, then y2's (b's two occurrences sliced: b has no
  // gradient yet while y2's record runs), then y1's, whose a and b now hold one: added in place
  const want = {
    a: sum(range(w, 7, CA), range(w, 0, CA)),
    b: sum(range(w, 5, CB), range(w, 10, CB), range(w, 3, CB)),
  };
  for (const B of [gpuBackend(gpu), cpuBackend]) {
    const g = await grads(B);
    assertEquals({ a: g.a, b: g.b }, want);
    assertEquals(g.calls, { slice: 5, add: 2 });
  }
});

// A dense block writes each feature once into its feature store and feeds every layer the
// store's channel prefix in place (model/densenet.ts). Against the same block fed a fresh
// concat of its features per layer (torchvision's layout, the block's code before), on the GPU:
// the same bits in the output, the input's and every parameter's gradient and the running
// statistics (the gradient store sums each feature's gradient in concat's order), on both batch-norm layouts (the grid one with its kernels compiled per shape, as on
// a hardware GPU), f32 and f16, vec4 and scalar planes; and the store's one copy a feature.
function concatBlockForward(block: DenseBlock, x: Var): Var {
  const feats: Var[] = [x];
  let input = x;
  for (const layer of block.layers) {
    feats.push(layer.forward(input));
    const next = ops.concat(feats);
    if (input !== x) input.release();
    input = next;
  }
  for (const f of feats.slice(1)) f.release();
  return input;
}

async function blockRun(
  B: Backend,
  how: "store" | "concat",
  shape: number[],
  dtype: "f32" | "f16",
) {
  const calls = { copyInto: 0, concat: 0, addTo: 0, addInto: 0 };
  const spy: Backend = {
    ...B,
    copyChannelsInto: (d, x, s) => (calls.copyInto++, B.copyChannelsInto(d, x, s)),
    concatChannels: (xs) => (calls.concat++, B.concatChannels(xs)),
    addToChannels: (d, x, s) => (calls.addTo++, B.addToChannels(d, x, s)),
    addChannelsInto: (d, x, s) => (calls.addInto++, B.addChannelsInto(d, x, s)),
  };
  const block = new DenseBlock(spy, kaimingNormal(new Rng(5), "fan_in"), 3, shape[1], 3, 2);
  const n = shape.reduce((a, b) => a * b, 1);
  const x32 = spy.fromArray(randn(n, 6), shape);
  const x = new Var(spy, spy.cast(x32, dtype), { requiresGrad: true });
  spy.dispose(x32);
  const y = how === "store" ? block.forward(x) : concatBlockForward(block, x);
  const seed = spy.fromArray(randn(y.shape.reduce((a, b) => a * b, 1), 7), y.shape);
  const out = await spy.read(y.value);
  backward(y, spy.cast(seed, dtype));
  spy.dispose(seed);
  const grads = await spy.readMany([x.grad!, ...block.parameters().map((p) => p.grad!)]);
  const stats = await spy.readMany(
    block.namedBuffers().flatMap(([, b]) => b instanceof Buffer ? [b.value] : []),
  );
  y.release();
  x.dispose();
  return { out, grads, stats, calls };
}

const blockVariants = [
  { label: "channel layout", path: "channel" as const, perShape: false },
  { label: "grid layout, per-shape kernels", path: "grid" as const, perShape: true },
];
for (const v of blockVariants) {
  for (const dtype of ["f32", "f16"] as const) {
    Deno.test({
      name: `a dense block's stored concat gives the bits of a concat per layer (${v.label}, ` +
        `${dtype})`,
      ignore: dtype === "f16" && !hasF16,
      fn: async () => {
        setBatchNormPath(v.path, { chunkItems: v.path === "grid" ? 7 : undefined });
        setPerGeometry(v.perShape);
        try {
          for (const shape of [[2, 4, 6, 6], [3, 5, 5, 3]]) {
            const B = gpuBackend(gpu);
            const [a, b] = [
              await blockRun(B, "store", shape, dtype),
              await blockRun(B, "concat", shape, dtype),
            ];
            assertBits(a.out, b.out, `output [${shape}]`);
            a.grads.forEach((g, i) => assertBits(g, b.grads[i], `gradient ${i} [${shape}]`));
            a.stats.forEach((s, i) => assertBits(s, b.stats[i], `statistic ${i} [${shape}]`));
            // the store: x and each layer's feature copied in once; one add per layer's input
            // gradient (the output's is the gradient store's first value). A concat per layer:
            // an add per feature already holding a gradient, 2 + 3 for three layers.
            assertEquals(a.calls, { copyInto: 4, concat: 0, addTo: 3, addInto: 0 });
            assertEquals(b.calls, { copyInto: 0, concat: 3, addTo: 0, addInto: 5 });
          }
        } finally {
          setBatchNormPath("auto");
          setPerGeometry("auto");
        }
      },
    });
  }
}

Deno.test("a dense block frees its stores every step: input needing no gradient, and no grad at all", async () => {
  // a frozen stem: the block records from its first feature on, and its reverse pass ends at the
  // first recorded concat, not at the input's; a store kept past it would cost a buffer a step
  const B = gpuBackend(gpu);
  const block = new DenseBlock(B, kaimingNormal(new Rng(8), "fan_in"), 3, 4, 3, 2);
  const x = new Var(B, B.fromArray(randn(2 * 4 * 6 * 6, 9), [2, 4, 6, 6]));
  const created: number[] = [];
  for (let step = 0; step < 4; step++) {
    const y = block.forward(x);
    const n = y.shape.reduce((a, b) => a * b, 1);
    backward(y, B.fromArray(randn(n, 10), y.shape));
    y.release();
    await B.readMany(block.parameters().map((p) => p.grad!));
    block.zeroGrad();
    created.push(gpu.stats.buffersCreated);
  }
  assertEquals(created[3], created[1]);
  // the key encoder's forward: nothing recorded, the store goes back with the output's view
  for (let step = 0; step < 4; step++) {
    noGrad(() => block.forward(x)).release();
    created.push(gpu.stats.buffersCreated);
  }
  assertEquals(created[7], created[5]);
  B.dispose(x.value);
});
