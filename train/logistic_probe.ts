/**
 * The linear protocol's probe: L2-regularised logistic regression on cached, standardised frozen
 * features, fitted to convergence by full-batch L-BFGS (deterministic float64 on the CPU; the
 * features are small), along a path of penalties C chosen by validation AUC.
 *
 * Objective for one task (scikit-learn's LogisticRegression, penalty "l2", intercept not
 * penalised), divided by n so that one tolerance fits every subset size:
 *
 *   J(w, b) = (1/n) Σᵢ [softplus(sᵢ) − yᵢ sᵢ] + ‖w‖² / (2 C n),   sᵢ = w·xᵢ + b.
 *
 * The path runs from the strongest penalty to the weakest, each fit warm-started from the last;
 * the chosen C is the one with the highest validation AUC (ties: the stronger penalty).
 */
import { auc } from "../eval/auc.ts";

/** Inverse penalties tried by default: 10^-4 … 10^1 in half decades (scikit-learn's C). */
export const DEFAULT_C_GRID: number[] = Array.from({ length: 11 }, (_, k) => 10 ** (-4 + k / 2));

/** Rows of a feature matrix with one task's labels: x is [rows, F] row-major. */
export interface ProbeRows {
  x: Float64Array;
  y: Float64Array;
}

export interface LogisticFit {
  w: Float64Array;
  b: number;
  /** J at the solution (mean log-loss + penalty / n). */
  objective: number;
  /** Mean training log-loss at the solution (without the penalty). */
  loss: number;
  iterations: number;
  /** ‖∇J‖∞ ≤ tol was reached within maxIter. */
  converged: boolean;
}

export interface FitOptions {
  init?: { w: Float64Array; b: number };
  /** Stop when ‖∇J‖∞ ≤ tol (default 1e-7). */
  tol?: number;
  /** Default 5000. */
  maxIter?: number;
  /** L-BFGS memory (default 10). */
  memory?: number;
}

function softplus(s: number): number {
  return Math.max(s, 0) + Math.log1p(Math.exp(-Math.abs(s)));
}

function sigmoid(s: number): number {
  return s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
}

/** Logits x·w + b of every row of x ([rows, F]). */
export function logits(x: Float64Array, F: number, w: Float64Array, b: number): Float64Array {
  const n = x.length / F, out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b;
    const o = i * F;
    for (let j = 0; j < F; j++) s += x[o + j] * w[j];
    out[i] = s;
  }
  return out;
}

/** J and its gradient at theta = [w (F), b]; grad is written in place. */
function objective(
  rows: ProbeRows,
  F: number,
  C: number,
  theta: Float64Array,
  grad: Float64Array,
): { value: number; loss: number } {
  const { x, y } = rows, n = y.length;
  const w = theta.subarray(0, F), b = theta[F];
  grad.fill(0);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const o = i * F;
    let s = b;
    for (let j = 0; j < F; j++) s += x[o + j] * w[j];
    loss += softplus(s) - y[i] * s;
    const e = sigmoid(s) - y[i];
    for (let j = 0; j < F; j++) grad[j] += e * x[o + j];
    grad[F] += e;
  }
  const lam = 1 / (C * n);
  let reg = 0;
  for (let j = 0; j < F; j++) {
    reg += w[j] * w[j];
    grad[j] = grad[j] / n + lam * w[j];
  }
  grad[F] /= n;
  return { value: loss / n + (lam * reg) / 2, loss: loss / n };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Minimises J by L-BFGS with a backtracking (Armijo) line search. J is strictly convex (C > 0),
 * so every accepted step has sᵀy > 0 and the two-loop recursion stays positive definite.
 */
export function fitLogistic(
  rows: ProbeRows,
  F: number,
  C: number,
  o: FitOptions = {},
): LogisticFit {
  if (!(C > 0)) throw new Error(`the inverse penalty C must be > 0, got ${C}`);
  const n = rows.y.length;
  if (n === 0 || rows.x.length !== n * F) throw new Error("fitLogistic: rows and labels differ");
  const tol = o.tol ?? 1e-7, maxIter = o.maxIter ?? 5000, m = o.memory ?? 10;
  const D = F + 1;
  let theta = new Float64Array(D);
  if (o.init) {
    theta.set(o.init.w);
    theta[F] = o.init.b;
  }
  let g = new Float64Array(D);
  let f = objective(rows, F, C, theta, g);
  const S: Float64Array[] = [], Y: Float64Array[] = [], RHO: number[] = [];
  const alpha = new Float64Array(m);
  const dir = new Float64Array(D);
  let it = 0;
  let converged = maxAbs(g) <= tol;
  while (!converged && it < maxIter) {
    it++;
    // Two-loop recursion: dir = −H·g.
    dir.set(g);
    for (let k = S.length - 1; k >= 0; k--) {
      alpha[k] = RHO[k] * dot(S[k], dir);
      for (let i = 0; i < D; i++) dir[i] -= alpha[k] * Y[k][i];
    }
    const gamma = S.length
      ? dot(S[S.length - 1], Y[Y.length - 1]) / dot(Y[Y.length - 1], Y[Y.length - 1])
      : 1 / Math.max(1, maxAbs(g));
    for (let i = 0; i < D; i++) dir[i] *= gamma;
    for (let k = 0; k < S.length; k++) {
      const beta = RHO[k] * dot(Y[k], dir);
      for (let i = 0; i < D; i++) dir[i] += S[k][i] * (alpha[k] - beta);
    }
    for (let i = 0; i < D; i++) dir[i] = -dir[i];
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): restart from steepest descent.
      S.length = Y.length = RHO.length = 0;
      for (let i = 0; i < D; i++) dir[i] = -g[i] / Math.max(1, maxAbs(g));
      slope = dot(g, dir);
    }
    let step = 1, accepted = false;
    const next = new Float64Array(D), gNext = new Float64Array(D);
    let fNext = f;
    for (let ls = 0; ls < 50; ls++) {
      for (let i = 0; i < D; i++) next[i] = theta[i] + step * dir[i];
      fNext = objective(rows, F, C, next, gNext);
      if (fNext.value <= f.value + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break; // no decrease representable in float64: as converged as it gets
    const s = new Float64Array(D), yv = new Float64Array(D);
    for (let i = 0; i < D; i++) {
      s[i] = next[i] - theta[i];
      yv[i] = gNext[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-16) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        RHO.shift();
      }
      S.push(s);
      Y.push(yv);
      RHO.push(1 / sy);
    }
    const decrease = f.value - fNext.value;
    theta = next;
    g = gNext;
    f = fNext;
    converged = maxAbs(g) <= tol;
    if (!converged && decrease <= 1e-16 * Math.max(1, Math.abs(f.value))) break;
  }
  return {
    w: theta.slice(0, F),
    b: theta[F],
    objective: f.value,
    loss: f.loss,
    iterations: it,
    converged,
  };
}

/** One point of the penalty path. */
export interface PathPoint {
  C: number;
  /** Validation AUC (NaN when the validation rows lack a class). */
  valAuc: number;
  /** Mean training log-loss at the solution. */
  loss: number;
  iterations: number;
  converged: boolean;
}

export interface ProbeResult {
  /** The chosen inverse penalty (NaN when the training rows hold fewer than two classes). */
  C: number;
  w: Float64Array;
  b: number;
  /** Validation AUC at the chosen C (NaN when validation cannot rank). */
  valAuc: number;
  path: PathPoint[];
  /**
   * "validation-auc"; "default" (C = 1) when no point had a validation AUC; "one-class" when the
   * training rows hold fewer than two classes (nothing to fit: w = 0, b = 0, constant scores).
   */
  chosenBy: "validation-auc" | "default" | "one-class";
}

/**
 * Fits the path on `train`, scores `val` at each C, keeps the C with the highest validation AUC
 * (the first, i.e. strongest penalty, among ties).
 */
export function fitProbePath(
  train: ProbeRows,
  val: ProbeRows,
  F: number,
  grid: number[] = DEFAULT_C_GRID,
  o: Omit<FitOptions, "init"> = {},
): ProbeResult {
  if (grid.length === 0) throw new Error("the penalty grid is empty");
  const ys = Array.from(train.y);
  if (!(ys.some((v) => v > 0) && ys.some((v) => v === 0))) {
    return { C: NaN, w: new Float64Array(F), b: 0, valAuc: NaN, path: [], chosenBy: "one-class" };
  }
  const Cs = [...grid].sort((a, b) => a - b);
  const valY = Array.from(val.y);
  const valRanks = valY.some((v) => v > 0) && valY.some((v) => v === 0);
  const path: PathPoint[] = [];
  const fits: LogisticFit[] = [];
  let prev: LogisticFit | undefined;
  for (const C of Cs) {
    const fit = fitLogistic(train, F, C, { ...o, init: prev });
    const valAuc = valRanks ? auc(valY, Array.from(logits(val.x, F, fit.w, fit.b))) : NaN;
    path.push({ C, valAuc, loss: fit.loss, iterations: fit.iterations, converged: fit.converged });
    fits.push(fit);
    prev = fit;
  }
  let best = -1;
  path.forEach((p, k) => {
    if (!Number.isNaN(p.valAuc) && (best < 0 || p.valAuc > path[best].valAuc)) best = k;
  });
  if (best < 0) {
    const fit = fitLogistic(train, F, 1, o);
    return { C: 1, w: fit.w, b: fit.b, valAuc: NaN, path, chosenBy: "default" };
  }
  const f = fits[best];
  return {
    C: path[best].C,
    w: f.w,
    b: f.b,
    valAuc: path[best].valAuc,
    path,
    chosenBy: "validation-auc",
  };
}
