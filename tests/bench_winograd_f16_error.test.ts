/**
 * bench/winograd_f16_error.ts: its Winograd transforms are the convolution (unrounded, each
 * output is the direct convolution's rounded to f16), and each f16 rounding it models adds error.
 * A wrong transform coefficient fails the first; a rounding that does nothing fails the second.
 */
import { direct, F2, F4, h16, relErr, ROUNDINGS, winograd } from "../bench/winograd_f16_error.ts";
import { Rng } from "../util/rng.ts";
import { assert } from "./helpers.ts";

Deno.test("winograd_f16_error: unrounded transforms are the convolution; each f16 rounding adds error", () => {
  const C = 20, O = 3, S = 8, P = S + 2, rng = new Rng(7);
  const x = new Float64Array(C * P * P);
  for (let c = 0; c < C; c++) {
    for (let u = 1; u <= S; u++) {
      for (let v = 1; v <= S; v++) x[(c * P + u) * P + v] = h16(rng.normal());
    }
  }
  const w = Float64Array.from({ length: O * C * 9 }, () => h16(rng.normal() * 0.2));
  const ref = direct(x, w, C, O, S);
  const stored = relErr(Float64Array.from(ref, h16), ref)[0];
  for (const f of [F2, F4]) {
    const errs = ROUNDINGS.map((r) => relErr(winograd(f, x, w, C, O, S, r), ref)[0]);
    assert(Math.abs(errs[0] - stored) < 1e-9, `F(${f.m}) unrounded: ${errs[0]} vs ${stored}`);
    for (let i = 1; i < errs.length; i++) {
      assert(errs[i] > errs[i - 1], `F(${f.m}) ${ROUNDINGS[i].label}: ${errs}`);
    }
  }
});
