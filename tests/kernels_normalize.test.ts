/**
 * l2Normalize past 65,535 rows (MoCo v2's queue of 65,536 and more): the rows fold into a 2-D
 * grid, and every row gets the bits it gets alone in a 1-D dispatch; the MoCo queue of 65,536
 * starts as unit rows equal to the CPU's.
 */
import { Tensor } from "../kernels/tensor.ts";
import { l2Normalize, l2NormalizeBackward, rowGrid } from "../kernels/normalize.ts";
import { l2NormalizeCpu } from "../kernels/cpu/normalize.ts";
import { cpuTensor } from "../kernels/cpu/tensor.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import type { Backend } from "../model/backend.ts";
import { Moco } from "../train/moco.ts";
import { cpuTrainOps, gpuTrainOps, type TrainOps } from "../train/train_ops.ts";
import { assert, assertClose, assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { TINY_MOCO, TinyNet } from "./tiny_net.ts";

Deno.test("rowGrid: one dimension up to 65,535 rows, then a 2-D grid that covers every row", () => {
  assertEquals(rowGrid(1), [1, 1]);
  assertEquals(rowGrid(65535), [65535, 1]);
  for (const n of [65536, 70001, 131071, 1_048_576]) {
    const [x, y] = rowGrid(n);
    assert(x <= 65535 && y <= 65535 && x * y >= n && x * (y - 1) < n, `${n}: ${x}x${y}`);
  }
});

// Rows of 3 (D not a multiple of anything), some zero (the clamped norm), 70,001 of them: each
// row's y, norm and dx are those of the same row normalised alone (a 1-row dispatch, the kernel's
// 1-D path), bit for bit. A grid that read another row, skipped the spare workgroups' return or
// wrote row wid.x only fails it.
Deno.test("l2Normalize over 70,001 rows (a 2-D grid): each row's bits as alone", async () => {
  const N = 70_001, D = 3;
  const x = randn(N * D, 11), dy = randn(N * D, 12);
  for (const r of [0, 65535, 70_000]) x.fill(0, r * D, (r + 1) * D);
  const xs = Tensor.from(gpu, x, [N, D]);
  const { y, norm } = l2Normalize(xs);
  const dx = l2NormalizeBackward(Tensor.from(gpu, dy, [N, D]), y, norm);
  const [Y, NR, DX] = [await y.read(), await norm.read(), await dx.read()];
  // every row against the CPU (f64 sums), then a sample of rows, either side of the fold, bit
  // for bit against its own 1-row dispatch
  const cpu = l2NormalizeCpu(cpuTensor([N, D], x));
  assertClose(Y, cpu.y.data, { atol: 1e-6, label: "y" });
  assertClose(NR, cpu.norm.data, { rtol: 1e-5, label: "norm" });
  for (const r of [0, 1, 65534, 65535, 65536, 67000, 70_000]) {
    const one = l2Normalize(Tensor.from(gpu, x.slice(r * D, (r + 1) * D), [1, D]));
    const odx = l2NormalizeBackward(
      Tensor.from(gpu, dy.slice(r * D, (r + 1) * D), [1, D]),
      one.y,
      one.norm,
    );
    assertEquals(Y.slice(r * D, (r + 1) * D), await one.y.read(), `y row ${r}`);
    assertEquals(NR.slice(r, r + 1), await one.norm.read(), `norm row ${r}`);
    assertEquals(DX.slice(r * D, (r + 1) * D), await odx.read(), `dx row ${r}`);
  }
});

Deno.test("MoCo with a queue of 65,536 (MoCo v2's): the queue starts as the CPU's unit rows; a step runs", async () => {
  const cfg = { ...TINY_MOCO, dim: 4, queueSize: 65536 };
  const N = 8, S = 16;
  const make = async (B: Backend, ops: TrainOps) => {
    const m = await Moco.create(B, ops, cfg, 5, (o) => new TinyNet(B, o));
    const queue = await B.read(m.queue);
    // one step on random views (the identity shuffle): a finite loss, the keys enqueued
    const xq = B.fromArray(randn(N * S * S, 1), [N, 1, S, S]);
    const xk = B.fromArray(randn(N * S * S, 2), [N, 1, S, S]);
    const r = m.step(xq, xk, B.fromArray(Float32Array.from({ length: N }, (_, i) => i), [N]));
    const loss = (await B.read(r.loss))[0], ptr = m.ptr;
    m.dispose();
    return { queue, loss, ptr };
  };
  const g = await make(gpuBackend(gpu), gpuTrainOps), c = await make(cpuBackend, cpuTrainOps);
  assertEquals(g.queue.length, 65536 * 4);
  assertClose(g.queue, c.queue, { atol: 1e-6, label: "queue" });
  for (const r of [0, 65535]) {
    const n = Math.hypot(...g.queue.slice(r * 4, r * 4 + 4));
    assert(Math.abs(n - 1) < 1e-6, `row ${r}: norm ${n}`);
  }
  assert(Number.isFinite(g.loss), `loss ${g.loss}`);
  assertClose([g.loss], [c.loss], { atol: 1e-3, rtol: 0, label: "loss" });
  assertEquals([g.ptr, c.ptr], [N, N]);
});
