/**
 * bench/f16_accumulate.ts: a row times the three ways at their fastest tiles and measures f16
 * sums' error against f32 sums (nonzero: the f16 sums are real; within 16 · 2⁻¹¹ of the terms'
 * magnitude); its tiles leave out in-workgroup split-K (which f16 sums refuse) and offer the
 * one-slab tiles only for short K. A row that timed the wrong operands or compared f16 sums
 * with themselves fails it.
 */
import { accRow, accTiles } from "../bench/f16_accumulate.ts";
import { reg, SHORT_K_CANDIDATES, variantKey } from "../kernels/gemm/variants.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu, onGl } from "./gpu.ts";

Deno.test("f16acc tiles: no in-workgroup split-K; one-slab tiles for short K only", () => {
  const keys = (k: number) => accTiles(k).map(variantKey);
  assert(keys(64).every((k) => !/ks\d/.test(k)), keys(64).join(" "));
  for (const v of SHORT_K_CANDIDATES) {
    assertEquals([keys(256).includes(variantKey(v)), keys(257).includes(variantKey(v))], [
      true,
      false,
    ]);
  }
});

Deno.test({
  name: "f16acc row: three timings, f16 sums' error nonzero and within its bound",
  ignore: !gpu.hasF16 || onGl,
  fn: async () => {
    const s = { label: "t", batch: 2, m: 40, k: 96, n: 36, transA: true };
    const r = await accRow(gpu, s, [reg(32, 32, 16, 4, 4), reg(64, 64, 16, 8, 8)], 1);
    for (const x of [r.f32, r.f16, r.acc16]) {
      assert(Number.isFinite(x.ms) && x.ms > 0 && x.tile !== "-", JSON.stringify(x));
    }
    assert(r.error > 0 && r.error <= 16 * 2 ** -11, `error ${r.error}`);
  },
});
