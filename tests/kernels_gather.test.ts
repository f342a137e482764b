import { Tensor } from "../kernels/tensor.ts";
import { gatherRows } from "../kernels/gather.ts";
import { gatherRowsCpu } from "../kernels/cpu/gather.ts";
import { cpuTensor } from "../kernels/cpu/tensor.ts";
import { Rng } from "../util/rng.ts";
import { assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { half, hasF16 } from "./f16.ts";

for (const [rows, cols] of [[1, 1], [7, 128], [256, 129]]) {
  Deno.test(`gatherRows permutes rows exactly, ${rows}x${cols}`, async () => {
    const x = cpuTensor([rows, cols], randn(rows * cols, rows));
    const perm = new Rng(cols).shuffle(Array.from({ length: rows }, (_, i) => i));
    const idx = cpuTensor([rows], perm);
    const got = gatherRows(Tensor.from(gpu, x.data, x.shape), Tensor.from(gpu, idx.data));
    assertEquals(await got.read(), gatherRowsCpu(x, idx).data);
  });
}

// f16 storage: a copy, exact on halves; odd widths put a row's last half mid-word.
for (const [rows, cols] of [[7, 129], [256, 3]]) {
  Deno.test({
    name: `gatherRows on f16 storage permutes rows exactly, ${rows}x${cols}`,
    ignore: !hasF16,
    async fn() {
      const x = cpuTensor([rows, cols], half(randn(rows * cols, rows)));
      const perm = new Rng(cols).shuffle(Array.from({ length: rows }, (_, i) => i));
      const idx = cpuTensor([rows], perm);
      const got = gatherRows(Tensor.from(gpu, x.data, x.shape, "f16"), Tensor.from(gpu, idx.data));
      assertEquals([got.shape, got.dtype], [[rows, cols], "f16"]);
      assertEquals(await got.read(), gatherRowsCpu(x, idx).data);
    },
  });
}

Deno.test({
  name: "gatherRows wants f32 indices",
  ignore: !hasF16,
  fn() {
    const x = Tensor.zeros(gpu, [2, 2], "f16"), idx = Tensor.zeros(gpu, [2], "f16");
    assertThrows(() => gatherRows(x, idx), /idx must be f32, got f16/);
  },
});
