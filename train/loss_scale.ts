/**
 * Dynamic loss scaling for f16 storage (torch.cuda.amp.GradScaler's rule): the
 * backward is seeded with the scale S instead of 1, so f16 activation gradients
 * sit S times above f16's underflow; the optimizer divides each f32 master
 * gradient by S, and skips the whole step when any gradient is ±inf or NaN
 * (f16 overflow), after which S halves; after `interval` good steps it doubles.
 * Scale, flag and counters stay on the device (kernels/optim.ts), so a step
 * needs no readback; `read()` fetches them for the log. The counters include the
 * steps applied (not skipped), Adam's step count under the scaler, as torch's
 * state['step'] that a skipped step never advances.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import type { AmpTensors, LossScaleOptions, TrainOps } from "./train_ops.ts";
import { AMP_APPLIED, AMP_WORDS } from "../kernels/cpu/optim.ts";

/** The scaler's settings: the first scale and GradScaler's growth rule. */
export interface LossScaleConfig extends LossScaleOptions {
  /** Scale of the first step. */
  init: number;
}

/**
 * torch.cuda.amp.GradScaler's defaults (first scale 2^16), and a cap. Measured on the default
 * `deno task pretrain` (ResNet-18, 32 px, batch 32, synthetic set, 1 epoch): 2^16 skips the first
 * 2 steps and settles at 2^14; a fixed-looking 2^10 never overflowed but left the kNN monitor
 * ~0.05 AUC below f32 (early layers' activation gradients in f16's subnormal range), while 2^16's
 * matched f32 (bench/RESULTS.md, session 7).
 */
export const DEFAULT_LOSS_SCALE: LossScaleConfig = {
  init: 2 ** 16,
  interval: 2000,
  growth: 2,
  backoff: 0.5,
  maxScale: 2 ** 24,
};

/** What the scaler did so far. */
export interface LossScaleStats {
  /** Current scale. */
  scale: number;
  /** Steps skipped because a gradient was not finite. */
  skipped: number;
}

/** A loss scaler whose state lives on the backend. */
export class LossScaler {
  /** The state the optimizer kernels read. */
  readonly amp: AmpTensors;

  /** A scaler starting at cfg.init. */
  constructor(
    private B: Backend,
    private ops: TrainOps,
    readonly cfg: LossScaleConfig = DEFAULT_LOSS_SCALE,
  ) {
    this.amp = { scale: B.fromArray(Float32Array.of(cfg.init), [1]), flags: B.zeros([AMP_WORDS]) };
  }

  /** The backward's seed for a one-value loss: the scale (the engine owns it). */
  seed(): BTensor {
    return this.B.scale(this.amp.scale, 1);
  }

  /** Flags the step when any of these f32 gradients is not finite (call before the updates). */
  check(grads: BTensor[]): void {
    this.ops.flagNonFinite(grads, this.amp);
  }

  /** After the updates: back off or grow the scale, clear the flag. */
  update(): void {
    this.ops.updateLossScale(this.amp, this.cfg);
  }

  /** The scale and the skipped-step count (a readback: call it when logging). */
  async read(): Promise<LossScaleStats> {
    const scale = (await this.B.read(this.amp.scale))[0];
    return { scale, skipped: (await this.words())[2] };
  }

  /** The steps applied so far (not skipped): Adam's step count under this scaler (a readback). */
  async applied(): Promise<number> {
    return (await this.words())[AMP_APPLIED];
  }

  /** The scaler's flag words as u32 (a readback). */
  private async words(): Promise<Uint32Array> {
    const flags = await this.B.read(this.amp.flags);
    return new Uint32Array(flags.buffer, flags.byteOffset, AMP_WORDS);
  }

  /** Overwrites the state (resuming a run): `applied` steps so far, of which none is pending. */
  restore(s: LossScaleStats, applied: number): void {
    this.B.write(this.amp.scale, Float32Array.of(s.scale));
    const f = new Float32Array(AMP_WORDS), w = new Uint32Array(f.buffer);
    w[2] = s.skipped;
    w[AMP_APPLIED] = applied;
    this.B.write(this.amp.flags, f);
  }

  /**
   * A checkpoint's flags from before the applied-step count (3 words: found, good, skipped) as
   * this scaler's: `applied` is the run's optimizer step then, which counted every step, so a
   * resumed old run's Adam goes on from the step count it had; later skips no longer count.
   */
  static flagsOfOldCheckpoint(saved: Float32Array, applied: number): Float32Array {
    if (saved.length !== 3 || !(Number.isInteger(applied) && applied >= 0)) {
      throw new Error(`old loss-scale flags: ${saved.length} words, optimizer step ${applied}`);
    }
    const f = new Float32Array(AMP_WORDS);
    f.set(saved);
    new Uint32Array(f.buffer)[AMP_APPLIED] = applied;
    return f;
  }

  /** Frees the state. */
  dispose(): void {
    this.B.dispose(this.amp.scale);
    this.B.dispose(this.amp.flags);
  }
}
