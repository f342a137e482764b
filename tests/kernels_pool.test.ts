import { Tensor } from "../kernels/tensor.ts";
import {
  avgPool2d,
  avgPool2dBackward,
  globalAvgPool,
  globalAvgPoolBackward,
  maxPool2d,
  maxPool2dBackward,
} from "../kernels/pool.ts";
import { setPerGeometry } from "../kernels/wgsl.ts";
import {
  avgPool2dBackwardCpu,
  avgPool2dCpu,
  globalAvgPoolBackwardCpu,
  globalAvgPoolCpu,
  maxPool2dBackwardCpu,
  maxPool2dCpu,
} from "../kernels/cpu/pool.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck, weightedSum } from "./gradcheck.ts";
import { Rng } from "../util/rng.ts";
import { assertHalfClose, half, hasF16 } from "./f16.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const rand = (shape: number[], seed: number) => cpuTensor(shape, randn(numel(shape), seed));
/** Distinct values 0.01 apart, shuffled: no near-ties, so max-pool finite differences are exact. */
const distinct = (shape: number[], seed: number) =>
  cpuTensor(shape, new Rng(seed).shuffle([...Array(numel(shape)).keys()]).map((i) => i * 0.01 - 1));

const maxCases = [
  { shape: [2, 3, 9, 11], k: 3, stride: 2, pad: 1 },
  { shape: [1, 1, 1, 1], k: 3, stride: 2, pad: 1 },
  { shape: [1, 2, 7, 6], k: 2, stride: 2, pad: 0 },
  { shape: [3, 4, 8, 8], k: 3, stride: 1, pad: 1 },
  { shape: [2, 65, 5, 4], k: 4, stride: 3, pad: 2 },
];
/**
 * Runs `fn` with the pooling kernels compiled per geometry (what hardware adapters run) or with
 * the uniform-driven ones (software adapters), whichever this adapter would not pick by itself
 * too: every case is checked both ways.
 */
async function bothWays(fn: () => Promise<void>): Promise<void> {
  for (const baked of [false, true]) {
    setPerGeometry(baked);
    try {
      await fn();
    } finally {
      setPerGeometry("auto");
    }
  }
}

for (const c of maxCases) {
  const o = { k: c.k, stride: c.stride, pad: c.pad };
  Deno.test(`maxPool2d fwd/bwd match CPU [${c.shape}] k${c.k}/s${c.stride}/p${c.pad}, both kernel forms`, () =>
    bothWays(async () => {
      const x = rand(c.shape, 3);
      // Ties: duplicate one row so equal maxima exist, first-in-window must win.
      x.data.copyWithin(c.shape[3], 0, c.shape[3]);
      const y = maxPool2d(up(x), o), yr = maxPool2dCpu(x, o);
      assertEquals(y.shape, yr.shape);
      assertEquals(await y.read(), yr.data);
      const dy = rand(yr.shape, 4);
      assertClose(
        await maxPool2dBackward(up(dy), up(x), o).read(),
        maxPool2dBackwardCpu(dy, x, o).data,
        {
          atol: 1e-6,
        },
      );
    }));
}

// NaN as torch's max pool treats it here: a NaN that comes first in its window is the output (and
// gets the gradient); a later one loses every comparison; a window of -∞ gives -∞
Deno.test("maxPool2d: NaN first in a window wins, a later NaN is passed over, both kernel forms", () =>
  bothWays(async () => {
    const x = cpuTensor([1, 1, 2, 4], [NaN, 1, 2, NaN, 0, 0.5, -Infinity, -Infinity]);
    const o = { k: 2, stride: 2, pad: 0 };
    const y = await maxPool2d(up(x), o).read();
    assertEquals(Array.from(y), [NaN, 2]);
    assertEquals(Array.from(y), Array.from(maxPool2dCpu(x, o).data));
    const dy = cpuTensor([1, 1, 1, 2], [3, 4]);
    const dx = await maxPool2dBackward(up(dy), up(x), o).read();
    assertEquals(Array.from(dx), Array.from(maxPool2dBackwardCpu(dy, x, o).data));
    assertEquals(Array.from(dx), [3, 0, 4, 0, 0, 0, 0, 0]);
    const ninf = cpuTensor([1, 1, 2, 2], [-Infinity, -Infinity, -Infinity, -Infinity]);
    assertEquals(Array.from(await maxPool2d(up(ninf), o).read()), [-Infinity]);
  }));

const avgCases = [
  { shape: [2, 3, 8, 6], k: 2, stride: 2 },
  { shape: [1, 5, 7, 9], k: 2, stride: 2 },
  { shape: [2, 2, 9, 9], k: 3, stride: 3 },
  { shape: [1, 2, 6, 7], k: 3, stride: 2 },
];
for (const c of avgCases) {
  const o = { k: c.k, stride: c.stride };
  Deno.test(`avgPool2d fwd/bwd match CPU [${c.shape}] k${c.k}/s${c.stride}, both kernel forms`, () =>
    bothWays(async () => {
      const x = rand(c.shape, 5);
      const yr = avgPool2dCpu(x, o);
      const y = avgPool2d(up(x), o);
      assertEquals(y.shape, yr.shape);
      assertClose(await y.read(), yr.data, { atol: 1e-6 });
      const dy = rand(yr.shape, 6);
      assertClose(
        await avgPool2dBackward(up(dy), c.shape, o).read(),
        avgPool2dBackwardCpu(dy, c.shape, o).data,
        {
          atol: 1e-6,
        },
      );
    }));
}

for (const shape of [[2, 3, 7, 7], [1, 1024, 2, 2], [3, 70, 1, 1]]) {
  Deno.test(`globalAvgPool fwd/bwd match CPU [${shape}], both kernel forms`, () =>
    bothWays(async () => {
      const x = rand(shape, 7);
      const y = globalAvgPool(up(x));
      assertEquals(y.shape, [shape[0], shape[1]]);
      assertClose(await y.read(), globalAvgPoolCpu(x).data, { atol: 1e-6 });
      const dy = rand([shape[0], shape[1]], 8);
      assertClose(
        await globalAvgPoolBackward(up(dy), shape).read(),
        globalAvgPoolBackwardCpu(dy, shape).data,
        {
          atol: 1e-7,
        },
      );
    }));
}

// f16 storage: the f16 kernels on halves against the f32 references on the same values (max
// pool's forward is a copy: exact; the sums round once). Outputs take the input's dtype.
const h = (t: CpuTensor) => cpuTensor(t.shape, half(t.data));
const up16 = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape, "f16");
for (const c of [maxCases[0], maxCases[3], maxCases[4]]) {
  const o = { k: c.k, stride: c.stride, pad: c.pad };
  Deno.test({
    name: `maxPool2d fwd/bwd on f16 storage match CPU [${c.shape}] k${c.k}/s${c.stride}/p${c.pad}`,
    ignore: !hasF16,
    async fn() {
      const x = h(rand(c.shape, 3));
      x.data.copyWithin(c.shape[3], 0, c.shape[3]); // ties: the first maximum wins
      const y = maxPool2d(up16(x), o), yr = maxPool2dCpu(x, o);
      assertEquals([y.shape, y.dtype], [yr.shape, "f16"]);
      assertEquals(await y.read(), yr.data);
      const dy = h(rand(yr.shape, 4));
      const dx = maxPool2dBackward(up16(dy), up16(x), o);
      assertEquals(dx.dtype, "f16");
      assertHalfClose(await dx.read(), maxPool2dBackwardCpu(dy, x, o).data, { label: "dx" });
    },
  });
}

for (const c of [avgCases[0], avgCases[3]]) {
  const o = { k: c.k, stride: c.stride };
  Deno.test({
    name: `avgPool2d fwd/bwd on f16 storage match CPU [${c.shape}] k${c.k}/s${c.stride}`,
    ignore: !hasF16,
    async fn() {
      const x = h(rand(c.shape, 5));
      const y = avgPool2d(up16(x), o), yr = avgPool2dCpu(x, o);
      assertEquals([y.shape, y.dtype], [yr.shape, "f16"]);
      assertHalfClose(await y.read(), yr.data, { label: "y" });
      const dy = h(rand(yr.shape, 6));
      const dx = avgPool2dBackward(up16(dy), c.shape, o);
      assertEquals(dx.dtype, "f16");
      assertHalfClose(await dx.read(), avgPool2dBackwardCpu(dy, c.shape, o).data, { label: "dx" });
    },
  });
}

// 16×16 planes: long enough sums that accumulating in f16 instead of f32 would show.
for (const shape of [[2, 3, 7, 7], [1, 3, 16, 16], [3, 70, 1, 1]]) {
  Deno.test({
    name: `globalAvgPool fwd/bwd on f16 storage match CPU [${shape}]`,
    ignore: !hasF16,
    async fn() {
      const x = h(rand(shape, 7));
      const y = globalAvgPool(up16(x));
      assertEquals([y.shape, y.dtype], [[shape[0], shape[1]], "f16"]);
      assertHalfClose(await y.read(), globalAvgPoolCpu(x).data, { label: "y" });
      const dy = h(rand([shape[0], shape[1]], 8));
      const dx = globalAvgPoolBackward(up16(dy), shape);
      assertEquals(dx.dtype, "f16");
      assertHalfClose(await dx.read(), globalAvgPoolBackwardCpu(dy, shape).data, { label: "dx" });
    },
  });
}

Deno.test({
  name: "maxPool2dBackward rejects mixed f32/f16 dy and x",
  ignore: !hasF16,
  fn() {
    const o = { k: 2, stride: 2, pad: 0 };
    const x = up16(h(rand([1, 1, 4, 4], 1))), dy = up(rand([1, 1, 2, 2], 2));
    assertThrows(() => maxPool2dBackward(dy, x, o), /maxPool2dBackward: operands mix f32 and f16/);
  },
});

Deno.test("pooling rejects bad options and shapes", () => {
  const x = up(rand([1, 1, 4, 4], 1));
  assertThrows(() => maxPool2d(x, { k: 3, stride: 2, pad: 2 }), /pad=2/);
  assertThrows(() => maxPool2d(x, { k: 0, stride: 1, pad: 0 }), /k=0/);
  assertThrows(() => avgPool2d(x, { k: 5, stride: 5 }), /smaller than/);
  assertThrows(() => maxPool2dBackward(x, x, { k: 3, stride: 2, pad: 1 }), /dy is \[1,1,4,4\]/);
  assertThrows(() => globalAvgPool(up(rand([2, 3], 1))), /\[N,C,H,W\]/);
});

Deno.test("pool CPU backwards vs finite differences", () => {
  const shape = [2, 2, 7, 6];
  const x = distinct(shape, 9);
  const cases: Array<[string, (x: CpuTensor) => CpuTensor, (dy: CpuTensor) => CpuTensor]> = [
    [
      "max 3/2/1",
      (t) => maxPool2dCpu(t, { k: 3, stride: 2, pad: 1 }),
      (d) => maxPool2dBackwardCpu(d, x, { k: 3, stride: 2, pad: 1 }),
    ],
    [
      "max 2/1/0",
      (t) => maxPool2dCpu(t, { k: 2, stride: 1, pad: 0 }),
      (d) => maxPool2dBackwardCpu(d, x, { k: 2, stride: 1, pad: 0 }),
    ],
    [
      "avg 2/2",
      (t) => avgPool2dCpu(t, { k: 2, stride: 2 }),
      (d) => avgPool2dBackwardCpu(d, shape, { k: 2, stride: 2 }),
    ],
    [
      "avg 3/2",
      (t) => avgPool2dCpu(t, { k: 3, stride: 2 }),
      (d) => avgPool2dBackwardCpu(d, shape, { k: 3, stride: 2 }),
    ],
    ["gap", (t) => globalAvgPoolCpu(t), (d) => globalAvgPoolBackwardCpu(d, shape)],
  ];
  for (const [name, fwd, bwd] of cases) {
    const yShape = fwd(x).shape;
    const w = randn(numel(yShape), 10);
    const L = weightedSum(w);
    gradCheck((xs) => L(fwd(cpuTensor(shape, xs[0])).data), [x.data], [
      bwd(cpuTensor(yShape, w)).data,
    ], {
      label: name,
      eps: 1e-3,
    });
  }
});
