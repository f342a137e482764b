import { Tensor } from "../kernels/tensor.ts";
import { gatherRows } from "../kernels/gather.ts";
import { gatherRowsCpu } from "../kernels/cpu/gather.ts";
import { cpuTensor } from "../kernels/cpu/tensor.ts";
import { Rng } from "../util/rng.ts";
import { assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

for (const [rows, cols] of [[1, 1], [7, 128], [256, 129]]) {
  Deno.test(`gatherRows permutes rows exactly, ${rows}x${cols}`, async () => {
    const x = cpuTensor([rows, cols], randn(rows * cols, rows));
    const perm = new Rng(cols).shuffle(Array.from({ length: rows }, (_, i) => i));
    const idx = cpuTensor([rows], perm);
    const got = gatherRows(Tensor.from(gpu, x.data, x.shape), Tensor.from(gpu, idx.data));
    assertEquals(await got.read(), gatherRowsCpu(x, idx).data);
  });
}
