/**
 * A training step's scalars (loss, correct count) kept on the GPU until they are read: each
 * step copies its two values into its slot of a small ring tensor (two buffer copies, no
 * dispatch, no sync), and every `every` steps one read of the ring is started. Two rings take
 * turns, so a ring is written again only after its read was awaited (a read records its copy
 * after an await: writes to the same ring in between would race it). With every = 1 the
 * read is awaited at once (one sync a step, as before); with every > 1 a block's read is awaited
 * only when the next block's starts, so the host stays up to two blocks ahead of the GPU and
 * never waits on a step it just submitted. `collect(true)` (before a checkpoint, the monitor or
 * the end) reads everything outstanding. On the CPU backend the values are read directly.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import { Tensor } from "../kernels/tensor.ts";

export interface StepValues {
  loss: number;
  correct: number;
}

export class StepScalars {
  private rings: (Tensor | null)[] = [null, null];
  private cur = 0;
  private fill = 0;
  private inflight: { read: Promise<ArrayBuffer>; count: number }[] = [];
  /** CPU backend (or a backend whose tensors are not GPU tensors): values as read. */
  private direct: Promise<StepValues>[] = [];

  constructor(readonly B: Backend, readonly every: number) {
    if (!(Number.isInteger(every) && every >= 1)) throw new Error(`log every ${every} steps?`);
  }

  /** Records a step's loss and correct count (1-element tensors), and disposes them. */
  push(loss: BTensor, correct: BTensor): void {
    if (!(loss instanceof Tensor && correct instanceof Tensor)) {
      const { B } = this;
      this.direct.push(
        Promise.all([B.read(loss), B.read(correct)]).then(([l, c]) => {
          B.dispose(loss);
          B.dispose(correct);
          return { loss: l[0], correct: c[0] };
        }),
      );
      return;
    }
    const gpu = loss.gpu, L = this.every;
    const ring = this.rings[this.cur] ??= Tensor.empty(gpu, [2 * L]);
    gpu.copy(loss.buffer, 0, ring.buffer, 4 * this.fill, 4);
    gpu.copy(correct.buffer, 0, ring.buffer, 4 * (L + this.fill), 4);
    loss.dispose();
    correct.dispose();
    if (++this.fill === L) this.startRead();
  }

  private startRead(): void {
    const ring = this.rings[this.cur];
    if (!ring || this.fill === 0) return;
    this.inflight.push({ read: ring.gpu.read(ring.buffer, 8 * this.every), count: this.fill });
    this.fill = 0;
    this.cur ^= 1;
  }

  /**
   * The values of the steps that are due, oldest first: every outstanding step when `all`,
   * else the blocks before the newest one started (with every = 1: each step at once).
   */
  async collect(all: boolean): Promise<StepValues[]> {
    const out: StepValues[] = [];
    for (const d of this.direct.splice(0)) out.push(await d);
    if (all) this.startRead();
    const keep = all || this.every === 1 ? 0 : 1;
    while (this.inflight.length > keep) {
      const { read, count } = this.inflight.shift()!;
      const v = new Float32Array(await read);
      for (let i = 0; i < count; i++) out.push({ loss: v[i], correct: v[this.every + i] });
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
