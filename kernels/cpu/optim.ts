/**
 * CPU references for kernels/optim.ts: torch.optim.SGD / Adam / AdamW
 * (single-tensor code path) and the MoCo EMA, one f32 rounding per torch op.
 */
import type { CpuTensor } from "./tensor.ts";

/** One SGD update's settings (torch.optim.SGD). */
export interface SgdOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum. */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** First step for this parameter: torch initialises buf = d_p instead of the momentum update. */
  first?: boolean;
}

/** One Adam / AdamW update's settings (torch.optim.Adam / AdamW). */
export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0): L2 in the gradient, or decoupled for AdamW. */
  weightDecay?: number;
  /** AdamW: decoupled weight decay p ← p·(1 − lr·wd) instead of g += wd·p. */
  decoupled?: boolean;
  /**
   * 1-based step count (after torch's increment) for the bias correction. With a loss scaler
   * (`amp`) it is not used: the count is the scaler's applied steps (AMP_APPLIED) + 1, as torch's
   * state['step'], which a step GradScaler skips never advances.
   */
  step: number;
}

const f = Math.fround;

export function checkOptimShapes(
  what: string,
  p: { size?: number; shape: readonly number[] },
  others: Array<[string, { shape: readonly number[] } | null]>,
): number {
  const n = p.shape.reduce((a, b) => a * b, 1);
  for (const [name, t] of others) {
    if (!t) continue;
    const m = t.shape.reduce((a, b) => a * b, 1);
    if (m !== n) throw new Error(`${what}: ${name} has ${m} values, param has ${n}`);
  }
  return n;
}

/** Host-side scalars shared with the GPU: step size lr/(1−β1ᵗ) and √(1−β2ᵗ), in f64. */
export function adamScalars(o: AdamOptions): { stepSize: number; bc2Sqrt: number } {
  if (!(Number.isInteger(o.step) && o.step >= 1)) {
    throw new Error(`adamStep: step ${o.step} must be a 1-based integer`);
  }
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999;
  return { stepSize: o.lr / (1 - b1 ** o.step), bc2Sqrt: Math.sqrt(1 - b2 ** o.step) };
}

/** GradScaler's growth/backoff rule (kernels/optim.ts `updateLossScale`). */
export interface LossScaleOptions {
  /** Good steps before the scale grows (torch: 2000). */
  interval: number;
  /** Growth factor (2). */
  growth: number;
  /** Factor after a non-finite gradient (0.5). */
  backoff: number;
  /** Upper bound of the scale. */
  maxScale: number;
}

/**
 * A loss scaler's state (kernels/optim.ts): scale [1]; flags [AMP_WORDS] u32 words: found, good,
 * skipped, applied.
 */
export interface AmpStateCpu {
  scale: CpuTensor;
  flags: CpuTensor;
}

/** The flags' u32 words: found (this step), good steps in a row, skipped steps, applied steps. */
export const AMP_WORDS = 4;
/** The flags' word counting the steps applied (not skipped): Adam's step count with a scaler. */
export const AMP_APPLIED = 3;

/** The flags' u32 words. */
export const ampWords = (flags: CpuTensor): Uint32Array =>
  new Uint32Array(flags.data.buffer, flags.data.byteOffset, AMP_WORDS);

/**
 * Adam's bias correction 1 − β^t from c = 1 − β (as f32) in f32 operations, as the GPU computes it
 * with a loss scaler (kernels/optim.ts `biasCorrection`): square-and-multiply on the complements,
 * u ← u·(2 − u) for 1 − β^(2^k) and r ← r + u·(1 − r) to combine, so no 1 − β^t cancels (within
 * a few f32 roundings of the f64 value at every t, where β^t from f32(β) drifts by t·1e-8).
 */
export function biasCorrectionF32(c: number, t: number): number {
  let r = 0, u = f(c), e = t >>> 0;
  for (;;) {
    if (e & 1) r = f(r + f(u * f(1 - r)));
    e >>>= 1;
    if (e === 0) return r;
    u = f(u * f(2 - u));
  }
}

/**
 * The step size lr/(1−β1ᵗ) and √(1−β2ᵗ) in f32 for t = applied + 1, as the GPU computes them with
 * a loss scaler from the applied-step count it holds (no readback).
 */
export function adamDeviceScalars(
  o: Omit<AdamOptions, "step">,
  applied: number,
): { stepSize: number; bc2Sqrt: number } {
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, t = applied + 1;
  return {
    stepSize: f(f(o.lr) / biasCorrectionF32(f(1 - b1), t)),
    bc2Sqrt: f(Math.sqrt(biasCorrectionF32(f(1 - b2), t))),
  };
}

/** The gradient unscaled by amp's scale (or null: the step is skipped), as the GPU reads it. */
function unscaled(grad: CpuTensor, amp: AmpStateCpu | null): Float32Array | null {
  if (!amp) return grad.data;
  if (ampWords(amp.flags)[0] !== 0) return null;
  const inv = f(1 / amp.scale.data[0]);
  return grad.data.map((g) => f(g * inv));
}

export function sgdStepCpu(
  param: CpuTensor,
  grad: CpuTensor,
  buf: CpuTensor | null,
  o: SgdOptions,
  amp: AmpStateCpu | null = null,
): void {
  const mom = o.momentum ?? 0, damp = o.dampening ?? 0, wd = o.weightDecay ?? 0;
  checkOptimShapes("sgdStep", param, [["grad", grad], ["buf", buf]]);
  if (mom !== 0 && !buf) throw new Error("sgdStep: momentum needs a buffer");
  const p = param.data, g = unscaled(grad, amp);
  if (!g) return;
  const lr = f(o.lr), m = f(mom), d1 = f(1 - damp), w = f(wd);
  for (let i = 0; i < p.length; i++) {
    let dp = wd !== 0 ? f(g[i] + f(w * p[i])) : g[i];
    if (mom !== 0) {
      const b = o.first ? dp : f(f(buf!.data[i] * m) + f(d1 * dp));
      buf!.data[i] = b;
      dp = o.nesterov ? f(dp + f(m * b)) : b;
    }
    p[i] = f(p[i] - f(lr * dp));
  }
}

export function adamStepCpu(
  param: CpuTensor,
  grad: CpuTensor,
  m: CpuTensor,
  v: CpuTensor,
  o: AdamOptions,
  amp: AmpStateCpu | null = null,
): void {
  checkOptimShapes("adamStep", param, [["grad", grad], ["m", m], ["v", v]]);
  const gd = unscaled(grad, amp);
  if (!gd) return;
  // With a scaler the step counts only applied steps, held with the scaler's flags.
  const { stepSize, bc2Sqrt } = amp
    ? adamDeviceScalars(o, ampWords(amp.flags)[AMP_APPLIED])
    : adamScalars(o);
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = f(o.eps ?? 1e-8), wd = o.weightDecay ?? 0;
  const p = param.data;
  const decay = f(1 - o.lr * wd), w = f(wd), one1 = f(1 - b1), one2 = f(1 - b2), fb2 = f(b2);
  const ss = f(stepSize), bc = f(bc2Sqrt);
  for (let i = 0; i < p.length; i++) {
    let g = gd[i];
    if (wd !== 0) {
      if (o.decoupled) p[i] = f(p[i] * decay);
      else g = f(g + f(w * p[i]));
    }
    const mi = f(m.data[i] + f(one1 * f(g - m.data[i]))); // torch: exp_avg.lerp_(grad, 1 − β1)
    const vi = f(f(v.data[i] * fb2) + f(one2 * f(g * g)));
    m.data[i] = mi;
    v.data[i] = vi;
    const denom = f(f(Math.sqrt(vi) / bc) + eps);
    p[i] = f(p[i] - f(ss * f(mi / denom)));
  }
}

/** MoCo momentum encoder: k ← m·k + (1 − m)·q. */
export function emaUpdateCpu(k: CpuTensor, q: CpuTensor, m: number): void {
  checkOptimShapes("emaUpdate", k, [["q", q]]);
  const a = f(m), b = f(1 - m);
  for (let i = 0; i < k.data.length; i++) k.data[i] = f(f(k.data[i] * a) + f(q.data[i] * b));
}

/** Sets amp's found flag when any of the gradients holds ±inf or NaN. */
export function flagNonFiniteCpu(gs: readonly CpuTensor[], amp: AmpStateCpu): void {
  if (!gs.every((g) => g.data.every(Number.isFinite))) ampWords(amp.flags)[0] |= 1;
}

/**
 * GradScaler's update: back off and count a skip after a non-finite step, else count the applied
 * step and grow on schedule.
 */
export function updateLossScaleCpu(amp: AmpStateCpu, o: LossScaleOptions): void {
  const w = ampWords(amp.flags), s = amp.scale.data;
  if (w[0] !== 0) {
    s[0] = f(s[0] * f(o.backoff));
    w[1] = 0;
    w[2] += 1;
  } else {
    w[AMP_APPLIED] += 1;
    if (++w[1] >= o.interval) {
      s[0] = Math.min(f(s[0] * f(o.growth)), f(o.maxScale));
      w[1] = 0;
    }
  }
  w[0] = 0;
}
