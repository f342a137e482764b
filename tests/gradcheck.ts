/**
 * Central finite-difference gradient checker for the CPU references (f64).
 *
 * `gradCheck(f, inputs, analytic, opts)`: f maps the inputs to a scalar; for
 * every element i of every input it compares (f(x+eps·eᵢ) − f(x−eps·eᵢ)) / 2eps
 * with analytic[k][i] and throws an error naming the input, index and both
 * values on mismatch (|a−n| > atol + rtol·|n|). The f32 CPU references round
 * their inputs, so keep eps around 1e-3 and tolerances around 1e-3.
 * `weightedSum(weights)` builds the usual scalar probe L = Σ wᵢ·outᵢ, whose
 * gradient wrt the output is exactly `weights` (pass it as dy).
 */
export interface GradCheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  label?: string;
  /** Check only these element indices of each input (default: all). */
  indices?: (input: number, length: number) => Iterable<number>;
}

export function gradCheck(
  f: (inputs: Float64Array[]) => number,
  inputs: ArrayLike<number>[],
  analytic: ArrayLike<number>[],
  opts: GradCheckOptions = {},
): { maxAbsErr: number; checked: number } {
  const { eps = 1e-3, atol = 1e-3, rtol = 1e-3, label = "gradCheck" } = opts;
  if (analytic.length !== inputs.length) {
    throw new Error(`${label}: ${analytic.length} gradients for ${inputs.length} inputs`);
  }
  const xs = inputs.map((a) => Float64Array.from(a));
  let maxAbsErr = 0, checked = 0;
  xs.forEach((x, k) => {
    if (analytic[k].length !== x.length) {
      throw new Error(`${label}: gradient ${k} has ${analytic[k].length} values for ${x.length}`);
    }
    const idx = opts.indices ? opts.indices(k, x.length) : x.keys();
    for (const i of idx) {
      const orig = x[i];
      x[i] = orig + eps;
      const fp = f(xs);
      x[i] = orig - eps;
      const fm = f(xs);
      x[i] = orig;
      const num = (fp - fm) / (2 * eps), ana = analytic[k][i];
      const err = Math.abs(num - ana);
      maxAbsErr = Math.max(maxAbsErr, err);
      checked++;
      if (!(err <= atol + rtol * Math.abs(num))) {
        throw new Error(
          `${label}: input ${k} [${i}]: analytic ${ana} vs numeric ${num} (|diff| ${err})`,
        );
      }
    }
  });
  return { maxAbsErr, checked };
}

/** L = Σ wᵢ·outᵢ in f64; its gradient wrt `out` is `w`. */
export function weightedSum(w: ArrayLike<number>): (out: ArrayLike<number>) => number {
  return (out) => {
    if (out.length !== w.length) throw new Error(`weightedSum: ${out.length} vs ${w.length}`);
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i] * out[i];
    return s;
  };
}
