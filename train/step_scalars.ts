/**
 * A training step's scalars (loss, correct count) kept on the GPU until they are read: each
 * step moves its two values into its slot of a small ring tensor (one small dispatch, no buffer
 * copy: a copy would end the step's compute pass; no sync), and every `every` steps one read of
 * the ring is started. Two rings take
 * turns, so a ring is written again only after its read was awaited (a read records its copy
 * after an await: writes to the same ring in between would race it). A block's read is awaited
 * only when the next block's starts (with every = 1: step k's values once step k + 1 is
 * submitted), so the host stays up to two blocks ahead of the GPU and never waits on a step it
 * just submitted: the GPU never idles for a readback, which on an H200 cost 8-12 ms a step and
 * let its clock fall (session 11). `collect(true)` (before a checkpoint, the monitor or the end)
 * reads everything outstanding. On the CPU backend the values are read directly.
 * f16 steps also move the loss scaler's scale and skipped-step count (train/loss_scale.ts) into
 * the same ring, after the step's update, in the same dispatch: the same read carries them.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import { Tensor } from "../kernels/tensor.ts";
import type { AmpTensors } from "./train_ops.ts";
import { moveWords, type WordMove } from "../kernels/words.ts";

export interface StepValues {
  loss: number;
  correct: number;
  /** f16 steps: the loss scale after the step's update, and the steps skipped so far. */
  amp?: { scale: number; skipped: number };
}

/** Words of a step in the ring: loss, correct, and with a scaler its scale and skipped count. */
const SKIPPED_WORD = 2; // flags = [found, good steps, skipped steps] (kernels/optim.ts)

export class StepScalars {
  private rings: (Tensor | null)[] = [null, null];
  private cur = 0;
  private fill = 0;
  private inflight: { read: Promise<ArrayBuffer>; count: number }[] = [];
  /** CPU backend (or a backend whose tensors are not GPU tensors): values as read. */
  private direct: Promise<StepValues>[] = [];

  private readonly fields: number;

  /** `amp`: the loss scaler of f16 steps, whose scale and skipped count each step also records. */
  constructor(
    readonly B: Backend,
    readonly every: number,
    readonly amp: AmpTensors | null = null,
  ) {
    if (!(Number.isInteger(every) && every >= 1)) throw new Error(`log every ${every} steps?`);
    this.fields = amp ? 4 : 2;
  }

  /** Records a step's loss and correct count (1-element tensors), and disposes them. */
  push(loss: BTensor, correct: BTensor): void {
    const { amp } = this;
    if (!(loss instanceof Tensor && correct instanceof Tensor)) {
      const { B } = this;
      const reads = [loss, correct, ...(amp ? [amp.scale, amp.flags] : [])].map((t) => B.read(t));
      this.direct.push(
        Promise.all(reads).then(([l, c, scale, flags]) => {
          B.dispose(loss);
          B.dispose(correct);
          return {
            loss: l[0],
            correct: c[0],
            ...(amp ? { amp: { scale: scale[0], skipped: wordOf(flags, SKIPPED_WORD) } } : {}),
          };
        }),
      );
      return;
    }
    const gpu = loss.gpu, L = this.every, at = this.fill;
    const ring = this.rings[this.cur] ??= Tensor.empty(gpu, [this.fields * L]);
    const moves: WordMove[] = [
      { src: loss.buffer, from: 0, to: at },
      { src: correct.buffer, from: 0, to: L + at },
    ];
    if (amp) {
      moves.push({ src: (amp.scale as Tensor).buffer, from: 0, to: 2 * L + at });
      moves.push({ src: (amp.flags as Tensor).buffer, from: SKIPPED_WORD, to: 3 * L + at });
    }
    moveWords(gpu, moves, ring.buffer);
    loss.dispose();
    correct.dispose();
    if (++this.fill === L) this.startRead();
  }

  private startRead(): void {
    const ring = this.rings[this.cur];
    if (!ring || this.fill === 0) return;
    const bytes = 4 * this.fields * this.every;
    this.inflight.push({ read: ring.gpu.read(ring.buffer, bytes), count: this.fill });
    this.fill = 0;
    this.cur ^= 1;
  }

  /**
   * The values of the steps that are due, oldest first: every outstanding step when `all`,
   * else the blocks before the newest one started (with every = 1: the step before the last).
   */
  async collect(all: boolean): Promise<StepValues[]> {
    const out: StepValues[] = [];
    for (const d of this.direct.splice(0)) out.push(await d);
    if (all) this.startRead();
    const keep = all ? 0 : 1;
    while (this.inflight.length > keep) {
      const { read, count } = this.inflight.shift()!;
      const buf = await read, v = new Float32Array(buf), L = this.every;
      for (let i = 0; i < count; i++) {
        out.push({
          loss: v[i],
          correct: v[L + i],
          ...(this.amp ? { amp: { scale: v[2 * L + i], skipped: wordOf(v, 3 * L + i) } } : {}),
        });
      }
    }
    return out;
  }

  /** Returns the rings to the pool (after collect(true); outstanding values are dropped). */
  dispose(): void {
    // A run that stopped early leaves reads nobody will await: they must not reject unheard.
    for (const r of this.inflight) r.read.catch(() => {});
    for (const d of this.direct) d.catch(() => {});
    this.inflight = [];
    this.direct = [];
    this.fill = 0;
    for (const r of this.rings) r?.dispose();
    this.rings = [null, null];
  }
}

/** Word i of f32 storage read as the u32 it holds (the scaler's counters). */
function wordOf(v: Float32Array, i: number): number {
  return new Uint32Array(v.buffer, v.byteOffset, v.length)[i];
}
