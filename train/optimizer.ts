/**
 * Optimizers over a model's named parameters: per-parameter state tensors on
 * the backend, updated in place by the optimizer kernels; `namedState()` lists
 * them under torch-like names for checkpoints. Frozen parameters (no gradient)
 * are skipped and get no state.
 */
import type { Backend, BTensor } from "../model/backend.ts";
import type { Parameter } from "../model/nn.ts";
import type { TrainOps } from "./train_ops.ts";
import type { LossScaler } from "./loss_scale.ts";

/** Adam/AdamW or SGD with momentum, as torch.optim defines them. */
export type OptimConfig =
  | { kind: "adam" | "adamw"; beta1?: number; beta2?: number; eps?: number; weightDecay: number }
  | { kind: "sgd"; momentum: number; nesterov?: boolean; weightDecay: number };

/** An optimizer over named parameters, its state on the backend. */
export class Optimizer {
  /**
   * Number of updates asked for (`apply` calls), torch's per-parameter `step` without a loss
   * scaler. With one, Adam's step count is the scaler's applied steps instead, on the device
   * (skipped steps do not count, as with torch's GradScaler).
   */
  step = 0;
  private state = new Map<string, BTensor[]>();

  /** State for every parameter that takes a gradient. */
  constructor(
    private B: Backend,
    private ops: TrainOps,
    readonly params: [string, Parameter][],
    readonly cfg: OptimConfig,
    /** f16 steps: gradients arrive multiplied by its scale (train/loss_scale.ts). */
    readonly scaler: LossScaler | null = null,
  ) {
    for (const [name, p] of params) {
      if (!p.requiresGrad) continue;
      const n = cfg.kind === "sgd" ? (cfg.momentum ? 1 : 0) : 2;
      this.state.set(name, Array.from({ length: n }, () => B.zeros(p.shape)));
    }
  }

  /**
   * Applies one update with learning rate lr to every parameter that has a gradient. With a
   * loss scaler, the gradients are unscaled, and the step is skipped on the device when one of
   * them is not finite; Adam's bias correction then counts only the steps applied, which the
   * scaler counts on the device (kernels/optim.ts), as torch's GradScaler leaves state['step']
   * alone on a skipped step. `step` counts every call.
   */
  apply(lr: number): void {
    this.step++;
    const c = this.cfg;
    const amp = this.scaler?.amp ?? null;
    if (this.scaler) {
      this.scaler.check(
        this.params.flatMap(([name, p]) => p.grad && this.state.has(name) ? [p.grad] : []),
      );
    }
    // every parameter with a gradient, at once: a GPU groups several a dispatch
    const live = this.params.flatMap(([name, p]) => {
      const s = this.state.get(name);
      return p.grad && s ? [{ p: p.value, g: p.grad, s }] : [];
    });
    const [ps, gs] = [live.map((l) => l.p), live.map((l) => l.g)];
    if (c.kind === "sgd") {
      this.ops.sgdStepMany(ps, gs, live.map((l) => l.s[0] ?? null), {
        lr,
        momentum: c.momentum,
        nesterov: c.nesterov,
        weightDecay: c.weightDecay,
        first: this.step === 1,
      }, amp);
    } else {
      this.ops.adamStepMany(ps, gs, live.map((l) => l.s[0]), live.map((l) => l.s[1]), {
        lr,
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weightDecay: c.weightDecay,
        decoupled: c.kind === "adamw",
        step: this.step,
      }, amp);
    }
    this.scaler?.update();
  }

  /** One training update: `apply(lr)`, then the parameters' gradients are cleared. */
  update(lr: number): void {
    this.apply(lr);
    for (const [, p] of this.params) p.zeroGrad();
  }

  /** State tensors as [name, tensor]: `<param>.exp_avg`/`.exp_avg_sq` or `.momentum_buffer`. */
  namedState(): [string, BTensor][] {
    const names = this.cfg.kind === "sgd" ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"];
    const out: [string, BTensor][] = [];
    for (const [p, ts] of this.state) ts.forEach((t, i) => out.push([`${p}.${names[i]}`, t]));
    return out;
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const ts of this.state.values()) for (const t of ts) this.B.dispose(t);
    this.state.clear();
  }
}
