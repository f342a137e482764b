import { Tensor } from "../kernels/tensor.ts";
import {
  add,
  addInPlace,
  addRelu,
  axpby,
  fill,
  relu,
  reluBackward,
  scale,
  scaleBy,
  sigmoid,
} from "../kernels/elementwise.ts";
import {
  addCpu,
  axpbyCpu,
  reluBackwardCpu,
  reluCpu,
  scaleByCpu,
  scaleCpu,
  sigmoidCpu,
} from "../kernels/cpu/elementwise.ts";
import { cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { assertHalfClose, half, hasF16 } from "./f16.ts";

// Sizes: 1, a lane short of a workgroup, and past the grid-stride cap (4096·64).
for (const n of [1, 63, 300_001]) {
  Deno.test(`elementwise ops match CPU, n=${n}`, async () => {
    const a = cpuTensor([n], randn(n, 1)), b = cpuTensor([n], randn(n, 2));
    const ta = Tensor.from(gpu, a.data), tb = Tensor.from(gpu, b.data);
    const y = relu(ta);
    assertEquals(await y.read(), reluCpu(a).data);
    assertEquals(await reluBackward(tb, y).read(), reluBackwardCpu(b, reluCpu(a)).data);
    assertClose(await add(ta, tb).read(), addCpu(a, b).data, { atol: 0, rtol: 0 });
    assertClose(await axpby(0.5, ta, -2, tb).read(), axpbyCpu(0.5, a, -2, b).data, { atol: 1e-6 });
    assertEquals(await scale(ta, -1.5).read(), scaleCpu(a, -1.5).data);
    const s = cpuTensor([1], [0.3]);
    assertEquals(await scaleBy(ta, Tensor.from(gpu, s.data)).read(), scaleByCpu(a, s).data);
    const f = fill(Tensor.empty(gpu, [n]), 3.5);
    assertEquals((await f.read()).every((v) => v === 3.5), true);
  });
}

// addInPlace (the autograd's gradient accumulation where branches meet): the bits of add(acc, d),
// in acc itself, with no copy (a copy ends the compute pass) and no new buffer; scalar and vec4
// paths, f32 and f16 storage; the accumulator bound as its own addend is a clear error
for (const n of [63, 1024]) {
  Deno.test(`addInPlace == add, in the accumulator itself, n=${n}`, async () => {
    for (const d of hasF16 ? ["f32", "f16"] as const : ["f32"] as const) {
      const a = randn(n, 5), b = randn(n, 6);
      const acc = Tensor.from(gpu, a, [n], d), x = Tensor.from(gpu, b, [n], d);
      const want = await add(acc, x).read(), addend = await x.read();
      const before = { ...gpu.stats };
      assertEquals(addInPlace(acc, x), acc);
      assertEquals(gpu.stats.copies - before.copies, 0);
      assertEquals(gpu.stats.buffersCreated - before.buffersCreated, 0);
      assertEquals(await acc.read(), want, `${d}`);
      assertEquals(await x.read(), addend);
      assertThrows(() => addInPlace(acc, acc), /same buffer/);
      acc.dispose();
      x.dispose();
    }
  });
}

// scale (the autograd's gradient copy and scaling): scalar (n % 4 ≠ 0) and vec4 paths, a factor
// exact in f32 (bit-equal) and one that is not (the GPU rounds a to f32 first: within an ulp).
for (const n of [63, 1024]) {
  Deno.test(`scale matches CPU, n=${n}`, async () => {
    const x = cpuTensor([n], randn(n, 4)), tx = Tensor.from(gpu, x.data);
    assertEquals(await scale(tx, -0.75).read(), scaleCpu(x, -0.75).data);
    assertEquals(await scale(tx, 1).read(), x.data);
    assertClose(await scale(tx, 1 / 3).read(), scaleCpu(x, 1 / 3).data, { atol: 0, rtol: 2e-7 });
    const into = Tensor.empty(gpu, [n]);
    assertEquals(scale(tx, 2, into), into);
    assertEquals(await into.read(), scaleCpu(x, 2).data);
  });
}

Deno.test("pooled buffers are reused: no allocation after warm-up", () => {
  const x = Tensor.from(gpu, randn(1000, 3));
  relu(x).dispose();
  const before = gpu.stats.buffersCreated;
  for (let i = 0; i < 10; i++) relu(x).dispose();
  assertEquals(gpu.stats.buffersCreated, before);
});

Deno.test("the pool hands out the same buffers whatever order they were released in", () => {
  const bytes = 12_345 * 4; // a size no other test uses
  const take = () => [gpu.acquire(bytes), gpu.acquire(bytes), gpu.acquire(bytes)];
  const first = take();
  for (const b of [first[1], first[2], first[0]]) gpu.release(b);
  const second = take();
  for (const b of [second[2], second[0], second[1]]) gpu.release(b);
  const third = take();
  // identity, not deep equality (two GPUBuffers of one size compare deep-equal)
  assertEquals(second.map((b, i) => b === first[i]), [true, true, true]);
  assertEquals(third.map((b, i) => b === first[i]), [true, true, true]);
  for (const b of third) gpu.release(b);
});

Deno.test("bind groups are reused by a repeated step; other buffers get their own", async () => {
  const x = Tensor.from(gpu, [1, -2, 3]), z = Tensor.from(gpu, [-4, 5, -6]);
  const step = async (t: Tensor) => {
    const y = relu(t);
    const out = await y.read(); // a submit: the next step starts at the same uniform slot
    y.dispose();
    return [...out];
  };
  await step(x);
  const before = gpu.stats.bindGroupsCreated;
  assertEquals(await step(x), [1, 0, 3]);
  assertEquals(gpu.stats.bindGroupsCreated, before);
  assertEquals(await step(z), [0, 5, 0]);
  assertEquals(gpu.stats.bindGroupsCreated, before + 1);
});

Deno.test("validation errors surface through gpu.checked", async () => {
  let msg = "";
  try {
    await gpu.checked(() => {
      gpu.dispatch(
        { name: "bad", code: "@compute @workgroup_size(1) fn main() {}" },
        [
          Tensor.empty(gpu, [4]).buffer,
        ],
        null,
        [1],
      );
    });
  } catch (e) {
    msg = String(e);
  }
  assertEquals(/validation/.test(msg), true, msg);
});

Deno.test("relu keeps NaN (a diverged run must not look healthy)", async () => {
  const y = await relu(Tensor.from(gpu, [NaN, -1, 2])).read();
  assertEquals([Number.isNaN(y[0]), y[1], y[2]], [true, 0, 2]);
});

// f16 storage: the f16 kernels on half inputs against the f32 references on the same values.
// Sizes: scalar path (63), vec4 path (1024), vec4 past the grid-stride cap (1024·64·4).
for (const n of [63, 1024, 300_000]) {
  Deno.test({
    name: `elementwise ops on f16 storage match CPU on halves, n=${n}`,
    ignore: !hasF16,
    async fn() {
      const a = cpuTensor([n], half(randn(n, 1, 2))), b = cpuTensor([n], half(randn(n, 2, 2)));
      a.data[0] = NaN; // relu keeps NaN in f16 too
      const ta = Tensor.from(gpu, a.data, [n], "f16"), tb = Tensor.from(gpu, b.data, [n], "f16");
      const s = cpuTensor([1], [0.3]), ts = Tensor.from(gpu, s.data); // the factor stays f32
      const y = relu(ta);
      const outs = {
        relu: y,
        reluBackward: reluBackward(tb, y),
        add: add(ta, tb),
        axpby: axpby(0.5, ta, -2, tb),
        scale: scale(ta, -1.5),
        scaleBy: scaleBy(ta, ts),
        sigmoid: sigmoid(ta),
        fill: fill(Tensor.empty(gpu, [n], "f16"), 0.1),
      };
      for (const [k, t] of Object.entries(outs)) assertEquals([k, t.dtype], [k, "f16"]);
      // exact on halves: relu, its gradient (a copy or 0), fill (rounded once)
      assertEquals(await y.read(), reluCpu(a).data.map((v, i) => i === 0 ? NaN : v));
      assertEquals(await outs.reluBackward.read(), reluBackwardCpu(b, reluCpu(a)).data);
      assertEquals(await outs.fill.read(), half(new Float32Array(n).fill(0.1)));
      const at = (t: Float32Array) => t.subarray(1); // past the NaN
      const check = async (k: keyof typeof outs, want: Float32Array) =>
        assertHalfClose(at(await outs[k].read()), at(want), { label: k });
      await check("add", addCpu(a, b).data);
      await check("axpby", axpbyCpu(0.5, a, -2, b).data);
      await check("scale", scaleCpu(a, -1.5).data);
      await check("scaleBy", scaleByCpu(a, s).data);
      await check("sigmoid", sigmoidCpu(a).data);
      for (const t of [ta, tb, ts, ...Object.values(outs)]) t.dispose();
    },
  });
}

Deno.test({
  name: "elementwise ops reject mixed f32/f16 operands and an f16 factor",
  ignore: !hasF16,
  fn() {
    const f = Tensor.zeros(gpu, [8]), h = Tensor.zeros(gpu, [8], "f16");
    const s16 = Tensor.zeros(gpu, [1], "f16");
    assertThrows(() => add(f, h), /add: operands mix f32 and f16/);
    assertThrows(() => add(h, f), /add: operands mix f16 and f32/);
    assertThrows(() => reluBackward(h, f), /operands mix f16 and f32/);
    assertThrows(() => relu(h, Tensor.empty(gpu, [8])), /operands mix f16 and f32/);
    assertThrows(() => scaleBy(h, s16), /the factor s must be f32/);
    for (const t of [f, h, s16]) t.dispose();
  },
});

// A residual join in one pass: addRelu gives the bits of add then relu, in f32 and f16 storage
// (rounding to a half and ReLU commute), for sums that are negative, −0, tiny (f16 subnormals and
// underflow), ±inf and NaN (kept, as relu keeps it), on vec4 and scalar lengths; and the CPU's
// relu(add) on the same values. Testing the sign on x instead of on the sum, or clamping NaN to
// 0, fails it.
for (const dtype of ["f32", "f16"] as const) {
  for (const n of [4096, 1037]) {
    Deno.test({
      name: `addRelu == relu(add), bit for bit (${dtype}, n=${n})`,
      ignore: dtype === "f16" && !hasF16,
      fn: async () => {
        const a = randn(n, 91, 2), b = randn(n, 92, 2);
        const special: Array<[number, number]> = [
          [1, -1],
          [-1, 1e-8],
          [1e-8, -2e-8],
          [3e-8, 1e-9],
          [Infinity, 1],
          [-Infinity, 1],
          [NaN, 1],
          [1, NaN],
          [Infinity, -Infinity],
          [-0, -0],
          [0, -0],
          [6e4, 6e4],
          [-3, 2],
        ];
        special.forEach(([x, y], i) => {
          a[i] = x;
          b[i] = y;
        });
        const [ta, tb] = [Tensor.from(gpu, a, [n], dtype), Tensor.from(gpu, b, [n], dtype)];
        const fused = await addRelu(ta, tb).read();
        const twoPass = await relu(add(ta, tb)).read();
        const bits = (v: Float32Array) => [...new Uint32Array(v.buffer)];
        assertEquals(bits(fused), bits(twoPass));
        const [ca, cb] = [await ta.read(), await tb.read()];
        const cpu = reluCpu(addCpu(cpuTensor([n], ca), cpuTensor([n], cb))).data;
        const want = dtype === "f16" ? Float32Array.from(new Float16Array(cpu)) : cpu;
        // NaN's payload and sign differ between JS and a GPU: any NaN matches any NaN there
        const canon = (v: Float32Array) => bits(v.map((x) => Number.isNaN(x) ? NaN : x));
        assertEquals(canon(fused), canon(want));
      },
    });
  }
}
