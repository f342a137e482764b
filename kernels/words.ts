/**
 * Word moves: `dst[to[i]] = src_i[from[i]]` for up to four (source buffer, word) pairs, as one
 * dispatch — a training step's scalars (loss, correct count, the loss scaler's words) gathered
 * into their slot of a read-back ring (train/step_scalars.ts).
 *
 * Why a dispatch and not buffer copies: on a GPU each `copyBufferToBuffer` ends the open compute
 * pass, and the pass boundary costs more than the copy; a dispatch stays in the step's one pass.
 * The word indices travel in the uniform block, not as binding offsets, so a ring slot that moves
 * every step reuses the same bind group.
 *
 * Mapping: one invocation moves every word (workgroup 1, dispatch 1). Words are moved as u32, so
 * the bits are kept exactly: NaN payloads, and counters stored in f32 tensors.
 */
import { type Gpu, GpuError, type Kernel, kernelFamily, params } from "./device.ts";

/** Most pairs one dispatch moves. */
export const MAX_WORD_MOVES = 4;

const kernel = kernelFamily((n: number): Kernel => {
  const srcs = [...Array(n).keys()];
  return {
    name: `move_words:${n}`,
    code: `struct P { src_word: vec4u, dst_word: vec4u }
@group(0) @binding(0) var<uniform> p: P;
${srcs.map((i) => `@group(0) @binding(${i + 1}) var<storage, read> s${i}: array<u32>;`).join("\n")}
@group(0) @binding(${n + 1}) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(1)
fn main() {
${srcs.map((i) => `  dst[p.dst_word[${i}]] = s${i}[p.src_word[${i}]];`).join("\n")}
}`,
  };
});

/** One word to move: `src`'s word `from` into the destination's word `to`. */
export interface WordMove {
  src: GPUBuffer;
  from: number;
  to: number;
}

/**
 * Records `dst[m.to] = m.src[m.from]` for each move (1 to 4 of them), bit for bit, in one
 * dispatch. A word outside its buffer is an error here, not a silent no-op on the GPU.
 */
export function moveWords(gpu: Gpu, moves: WordMove[], dst: GPUBuffer): void {
  if (moves.length < 1 || moves.length > MAX_WORD_MOVES) {
    throw new GpuError(`moveWords: 1 to ${MAX_WORD_MOVES} moves, got ${moves.length}`);
  }
  for (const m of moves) {
    for (const [buf, w, what] of [[m.src, m.from, "source"], [dst, m.to, "destination"]] as const) {
      if (!(Number.isInteger(w) && w >= 0 && 4 * (w + 1) <= buf.size)) {
        throw new GpuError(`moveWords: ${what} word ${w} is outside its ${buf.size}-byte buffer`);
      }
    }
  }
  const pad = (f: (m: WordMove) => number) =>
    [...Array(MAX_WORD_MOVES).keys()].map((i) => i < moves.length ? f(moves[i]) : 0);
  gpu.dispatch(
    kernel(moves.length),
    [...moves.map((m) => m.src), dst],
    params([...pad((m) => m.from), ...pad((m) => m.to)]),
    [1],
  );
}
