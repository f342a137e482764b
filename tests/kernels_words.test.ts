/**
 * Word moves (kernels/words.ts), the step scalars' ring write: each word lands bit for bit (a NaN
 * payload and a u32 counter included), no other word of the destination changes, it is one
 * dispatch with no buffer copy (a copy ends the compute pass), and a word outside its buffer is a
 * clear error. A kernel that moved words as f32 (quieting the NaN), used the wrong index field, or
 * wrote a whole vec4 would fail it.
 */
import { Tensor } from "../kernels/tensor.ts";
import { MAX_WORD_MOVES, moveWords } from "../kernels/words.ts";
import { assertEquals, assertThrows } from "./helpers.ts";
import { gpu } from "./gpu.ts";

const bitsTensor = (words: number[]) => {
  const t = Tensor.empty(gpu, [words.length]);
  gpu.write(t.buffer, Uint32Array.from(words));
  return t;
};
const readBits = async (t: Tensor) => [...new Uint32Array(await gpu.read(t.buffer, 4 * t.size))];

Deno.test("moveWords: 1 to 4 words land bit for bit in one dispatch, nothing else changes", async () => {
  const srcs = [
    bitsTensor([0x7fc00001, 0x3f800000]), // a NaN with a payload, 1.0
    bitsTensor([11, 22, 7]), // counters stored in f32 words
    bitsTensor([0x80000000]), // -0
    bitsTensor([0xdeadbeef, 0x00000001]), // a subnormal
  ];
  for (let n = 1; n <= MAX_WORD_MOVES; n++) {
    const dst = bitsTensor(Array(12).fill(0xaaaaaaaa));
    const moves = [
      { src: srcs[0].buffer, from: 0, to: 5 },
      { src: srcs[1].buffer, from: 2, to: 0 },
      { src: srcs[2].buffer, from: 0, to: 11 },
      { src: srcs[3].buffer, from: 1, to: 6 },
    ].slice(0, n);
    const before = { ...gpu.stats };
    moveWords(gpu, moves, dst.buffer);
    assertEquals(gpu.stats.copies - before.copies, 0);
    assertEquals(gpu.stats.dispatches - before.dispatches, 1);
    const want = Array(12).fill(0xaaaaaaaa);
    const words = [[0x7fc00001, 0x3f800000], [11, 22, 7], [0x80000000], [0xdeadbeef, 1]];
    moves.forEach((m, i) => (want[m.to] = words[i][m.from]));
    assertEquals(await readBits(dst), want, `${n} moves`);
    dst.dispose();
  }
  const dst = Tensor.empty(gpu, [4]);
  assertThrows(() => moveWords(gpu, [], dst.buffer), /1 to 4 moves, got 0/);
  assertThrows(
    () =>
      moveWords(gpu, [{ src: srcs[2].buffer, from: srcs[2].buffer.size / 4, to: 0 }], dst.buffer),
    /source word \d+ is outside/,
  );
  assertThrows(
    () => moveWords(gpu, [{ src: srcs[0].buffer, from: 0, to: dst.buffer.size / 4 }], dst.buffer),
    /destination word \d+ is outside/,
  );
  assertThrows(
    () => moveWords(gpu, [{ src: dst.buffer, from: 0, to: 1 }], dst.buffer),
    /same buffer/,
  );
  dst.dispose();
  srcs.forEach((t) => t.dispose());
});
