import { ChannelPrefix, ChannelStore, readTensors, Tensor } from "../kernels/tensor.ts";
import {
  addChannelsInto,
  concatChannels,
  copyChannelsInto,
  sliceChannels,
} from "../kernels/concat.ts";
import { addInPlace } from "../kernels/elementwise.ts";
import { concatChannelsCpu, copyChannelsIntoCpu, sliceChannelsCpu } from "../kernels/cpu/concat.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck, weightedSum } from "./gradcheck.ts";
import { half, hasF16 } from "./f16.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const rand = (shape: number[], seed: number) => cpuTensor(shape, randn(numel(shape), seed));

// [4, 6]: planes of 24, copied as vec4 runs; the others as scalars
for (const sp of [[3, 5], [1, 1], [], [4, 6]]) {
  Deno.test(`concat/slice/copyInto match CPU, spatial [${sp}]`, async () => {
    const xs = [rand([2, 3, ...sp], 1), rand([2, 1, ...sp], 2), rand([2, 70, ...sp], 3)];
    const y = concatChannels(xs.map(up));
    const yr = concatChannelsCpu(xs);
    assertEquals(y.shape, yr.shape);
    assertEquals(await y.read(), yr.data);
    // slice is the inverse of concat
    assertEquals(await sliceChannels(y, 3, 1).read(), xs[1].data);
    assertEquals(await sliceChannels(y, 4, 70).read(), xs[2].data);
    assertEquals(await sliceChannels(y, 2, 5).read(), sliceChannelsCpu(yr, 2, 5).data);
    // copy into a preallocated buffer leaves the other channels alone
    const dst = rand([2, 80, ...sp], 4);
    const gd = up(dst);
    copyChannelsInto(gd, up(xs[2]), 9);
    copyChannelsIntoCpu(dst, xs[2], 9);
    assertEquals(await gd.read(), dst.data);
  });
}

// f16 storage: a copy, so the f16 kernels give the CPU result on halves exactly. Odd channel and
// plane sizes put neighbouring halves of one 4-byte word in different channels.
for (const sp of [[3, 5], [], [4, 6]]) {
  Deno.test({
    name: `concat/slice/copyInto on f16 storage match CPU exactly, spatial [${sp}]`,
    ignore: !hasF16,
    async fn() {
      const h = (t: CpuTensor) => cpuTensor(t.shape, half(t.data));
      const up16 = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape, "f16");
      const xs = [rand([2, 3, ...sp], 1), rand([2, 1, ...sp], 2), rand([2, 70, ...sp], 3)].map(h);
      const y = concatChannels(xs.map(up16));
      const yr = concatChannelsCpu(xs);
      assertEquals([y.shape, y.dtype], [yr.shape, "f16"]);
      assertEquals(await y.read(), yr.data);
      const s = sliceChannels(y, 2, 5);
      assertEquals(s.dtype, "f16");
      assertEquals(await s.read(), sliceChannelsCpu(yr, 2, 5).data);
      assertEquals(await sliceChannels(y, 3, 1).read(), xs[1].data);
      const dst = h(rand([2, 80, ...sp], 4));
      const gd = up16(dst);
      copyChannelsInto(gd, up16(xs[2]), 9);
      copyChannelsIntoCpu(dst, xs[2], 9);
      assertEquals(await gd.read(), dst.data);
    },
  });
}

Deno.test({
  name: "concat/copyInto reject mixed f32/f16 operands",
  ignore: !hasF16,
  fn() {
    const a = up(rand([2, 3, 4], 1)),
      b = Tensor.from(gpu, half(rand([2, 3, 4], 2).data), [2, 3, 4], "f16");
    assertThrows(() => concatChannels([a, b]), /concatChannels: operands mix f32 and f16/);
    assertThrows(() => copyChannelsInto(b, a, 0), /copyChannelsInto: operands mix f32 and f16/);
  },
});

Deno.test("concat/slice reject bad shapes", () => {
  const a = up(rand([2, 3, 4, 4], 1));
  assertThrows(() => concatChannels([a, up(rand([2, 3, 4, 5], 1))]), /input 1 is \[2,3,4,5\]/);
  assertThrows(() => concatChannels([a, up(rand([1, 3, 4, 4], 1))]), /incompatible/);
  assertThrows(() => concatChannels([]), /no inputs/);
  assertThrows(() => sliceChannels(a, 2, 2), /outside 3 channels/);
  assertThrows(() => copyChannelsInto(a, up(rand([2, 2, 4, 4], 1)), 2), /does not fit/);
});

Deno.test("concat/slice CPU gradients vs finite differences", () => {
  const shapes = [[2, 2, 3], [2, 3, 3]];
  const xs = shapes.map((s, i) => rand(s, 10 + i));
  const yShape = [2, 5, 3];
  const w = randn(numel(yShape), 12);
  const L = weightedSum(w);
  // d(concat)/dx_i = slice of the upstream gradient
  const dys = [
    sliceChannelsCpu(cpuTensor(yShape, w), 0, 2),
    sliceChannelsCpu(cpuTensor(yShape, w), 2, 3),
  ];
  gradCheck(
    (ins) => L(concatChannelsCpu(ins.map((d, i) => cpuTensor(shapes[i], d))).data),
    xs.map((x) => x.data),
    dys.map((d) => d.data),
    { label: "concat" },
  );
  // d(slice)/dx = the upstream gradient placed into zeros
  const x = rand(yShape, 13);
  const ws = randn(2 * 3 * 3, 14);
  const dx = cpuTensor(yShape);
  copyChannelsIntoCpu(dx, cpuTensor([2, 3, 3], ws), 1);
  gradCheck((ins) => weightedSum(ws)(sliceChannelsCpu(cpuTensor(yShape, ins[0]), 1, 3).data), [
    x.data,
  ], [
    dx.data,
  ], { label: "slice" });
});

// addChannelsInto (a concat's backward accumulating in place): the bits of sliceChannels then
// addInPlace, f32 and f16, vec4 and scalar planes, and a range outside x is a clear error.
Deno.test("addChannelsInto == slice then addInPlace, bit for bit", async () => {
  for (const sp of [[3, 5], [4, 6]]) {
    for (const d of hasF16 ? ["f32", "f16"] as const : ["f32"] as const) {
      const r = (s: number[], seed: number) => {
        const v = rand(s, seed).data;
        return Tensor.from(gpu, d === "f16" ? half(v) : v, s, d);
      };
      const x = r([2, 9, ...sp], 21), acc = r([2, 4, ...sp], 22), ref = r([2, 4, ...sp], 22);
      addChannelsInto(acc, x, 3);
      const part = sliceChannels(x, 3, 4);
      addInPlace(ref, part);
      assertEquals(await acc.read(), await ref.read(), `${d} [${sp}]`);
      assertThrows(
        () => addChannelsInto(acc, x, 6),
        /addChannelsInto: \[2,4,.*\] does not fit \[2,9,.*\]'s channels from 6/,
      );
      for (const t of [x, acc, ref, part]) t.dispose();
    }
  }
});

// A dense block's feature store and its channel-prefix views (tensor.ts): what a view reads,
// which kernels may take one, and when the store's memory goes back to the pool.
Deno.test("a channel prefix reads its store's first channels; only a whole one is contiguous", async () => {
  const all = rand([2, 5, 3, 4], 7);
  const store = new ChannelStore(gpu, all.shape);
  store.write(all.data);
  const p = new ChannelPrefix(store, 3), w = new ChannelPrefix(store, 5);
  assertEquals(p.shape, [2, 3, 3, 4]);
  assertEquals([p.imageChannels, w.imageChannels], [5, 5]);
  assertEquals(await p.read(), sliceChannelsCpu(all, 0, 3).data);
  assertEquals(await readTensors([p, w]), [sliceChannelsCpu(all, 0, 3).data, all.data]);
  // the whole store is an ordinary operand; a strict prefix is refused by every kernel but
  // batch norm's, with a message that says so (not silently read as if contiguous)
  assertEquals(await sliceChannels(w, 1, 2).read(), sliceChannelsCpu(all, 1, 2).data);
  assertThrows(() => sliceChannels(p, 0, 1), /read in place only by batch norm/);
  assertThrows(() => p.view([6, 12]), /cannot reshape a strided channel prefix/);
  assertThrows(() => new ChannelPrefix(store, 6), /6 channels of a store \[2,5,3,4\]/);
  for (const t of [p, w]) t.dispose();
  store.dispose();
});

Deno.test("a channel store's memory lives while its maker or a view holds it", () => {
  const store = new ChannelStore(gpu, [2, 4, 2, 2]);
  const p = new ChannelPrefix(store, 2), q = new ChannelPrefix(store, 4);
  store.dispose(); // the maker lets go first, as a dense block does
  assertEquals([store.disposed, p.disposed], [false, false]);
  p.dispose();
  p.dispose(); // twice is once
  assertEquals(store.disposed, false);
  q.dispose();
  assertEquals(store.disposed, true);
  assertThrows(() => new ChannelPrefix(store, 1), /disposed/);
  assertThrows(() => p.storage, /disposed channel prefix/);
});
