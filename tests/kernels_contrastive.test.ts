import { Tensor } from "../kernels/tensor.ts";
import {
  BWD_SPLIT,
  enqueue,
  infoNce,
  mocoLogits,
  mocoLogitsBackward,
} from "../kernels/contrastive.ts";
import {
  enqueueCpu,
  infoNceCpu,
  mocoLogitsBackwardCpu,
  mocoLogitsCpu,
} from "../kernels/cpu/contrastive.ts";
import { l2NormalizeCpu } from "../kernels/cpu/normalize.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { gradCheck } from "./gradcheck.ts";

const up = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape);
/** Unit rows, as MoCo feeds them. */
const unit = (N: number, D: number, seed: number) =>
  l2NormalizeCpu(cpuTensor([N, D], randn(N * D, seed))).y;

// K not a multiple of 64 / of the backward's 4096-row split; D giving 8, 6 and 1 rows per group.
const cases = [[1, 128, 5], [9, 128, 1000], [3, 7, 70], [5, 600, 130], [17, 128, 4099]];
for (const [N, D, K] of cases) {
  Deno.test(`mocoLogits, backward and infoNce match CPU N=${N} D=${D} K=${K}`, async () => {
    const q = unit(N, D, 1), k = unit(N, D, 2), queue = unit(K, D, 3), T = 0.07;
    const gl = mocoLogits(up(q), up(k), up(queue), T);
    const rl = mocoLogitsCpu(q, k, queue, T);
    assertEquals(gl.shape, [N, K + 1]);
    assertClose(await gl.read(), rl.data, { atol: 1e-4, rtol: 1e-5, label: "logits" });

    const gn = infoNce(gl);
    const rn = infoNceCpu(rl);
    assertClose(await gn.loss.read(), rn.loss.data, { rtol: 1e-5, label: "loss" });
    assertClose(await gn.dlogits.read(), rn.dlogits.data, { atol: 1e-7, rtol: 1e-3, label: "dl" });
    assertEquals([...await gn.correct.read()], [...rn.correct.data]);

    const dl = cpuTensor([N, K + 1], randn(N * (K + 1), 4, 0.01));
    const want = mocoLogitsBackwardCpu(dl, k, queue, T).data;
    // this adapter's split, and both adapters' (the hardware one splits 4099 rows 17 ways)
    for (const split of [undefined, BWD_SPLIT.software, BWD_SPLIT.hardware, 100]) {
      const gq = mocoLogitsBackward(up(dl), up(k), up(queue), T, split);
      assertClose(await gq.read(), want, { atol: 1e-5, rtol: 1e-4, label: `dq, split ${split}` });
    }
  });
}

Deno.test("infoNce counts rows whose first argmax is the positive", async () => {
  const logits = cpuTensor(
    [4, 3],
    [
      [5, 1, 2], // correct
      [1, 5, 2], // wrong
      [3, 3, 1], // tie with the positive first: correct
      [1, 4, 4], // wrong
    ].flat(),
  );
  const g = infoNce(up(logits));
  assertEquals([...await g.correct.read()], [2]);
  assertEquals([...infoNceCpu(logits).correct.data], [2]);
});

Deno.test("enqueue writes a ring buffer with wrap-around", async () => {
  const K = 10, D = 3;
  const queue = cpuTensor([K, D], randn(K * D, 5));
  const gq = up(queue);
  let ptr = 0, ptrCpu = 0;
  for (const [N, seed] of [[4, 6], [4, 7], [4, 8], [10, 9]]) { // 0→4→8→2 (wraps)→2
    const keys = cpuTensor([N, D], randn(N * D, seed));
    ptr = enqueue(gq, up(keys), ptr);
    ptrCpu = enqueueCpu(queue, keys, ptrCpu);
    assertEquals(ptr, ptrCpu);
    assertEquals(await gq.read(), queue.data);
  }
  assertEquals(ptr, 2);
  // explicit wrap check: the last 10 keys start at row 2
  assertEquals(
    queue.data.subarray(2 * D, 3 * D),
    cpuTensor([10, D], randn(10 * D, 9)).data.subarray(0, D),
  );
});

Deno.test("contrastive ops reject bad shapes and arguments", () => {
  const q = up(unit(2, 4, 1)), queue = up(unit(3, 4, 2));
  assertThrows(() => mocoLogits(q, up(unit(2, 5, 1)), queue, 0.07), /must be \[N,D\] and \[K,D\]/);
  assertThrows(() => mocoLogits(up(unit(3, 4, 1)), q, queue, 0.07), /q \[3,4\] must match/);
  assertThrows(() => mocoLogits(q, q, queue, 0), /temperature/);
  assertThrows(() => mocoLogitsBackward(queue, q, queue, 0.07), /dlogits is \[3,4\]/);
  assertThrows(() => enqueue(queue, up(unit(4, 4, 1)), 0), /do not fit/);
  assertThrows(() => enqueue(queue, q, 3), /ptr 3/);
});

Deno.test("moco logits + InfoNCE CPU gradient wrt q vs finite differences", () => {
  const N = 3, D = 5, K = 7, T = 0.2;
  const q = unit(N, D, 10), k = unit(N, D, 11), queue = unit(K, D, 12);
  const L = (qd: ArrayLike<number>) =>
    infoNceCpu(mocoLogitsCpu(cpuTensor([N, D], qd), k, queue, T)).loss.data[0];
  const dl = infoNceCpu(mocoLogitsCpu(q, k, queue, T)).dlogits;
  gradCheck((xs) => L(xs[0]), [q.data], [mocoLogitsBackwardCpu(dl, k, queue, T).data], {
    label: "moco",
  });
});
