/**
 * The losses as recorded ops (model/ops.ts): the MoCo chain q → l2Normalize →
 * mocoLogits → infoNce and BCE-with-logits differentiate through `backward`
 * from the loss alone, checked against finite differences of the same forward
 * (CPU backend); and `backward` refuses a tape that holds ops unrelated to its root.
 */
import { cpuBackend as B } from "../model/backend_cpu.ts";
import { backward, clearTape, noGrad, tapeLength, Var } from "../model/autograd.ts";
import { bceWithLogits, infoNce, l2Normalize, linear, mocoLogits } from "../model/ops.ts";
import { Rng } from "../util/rng.ts";
import type { CpuTensor } from "../kernels/cpu/tensor.ts";
import { gradCheck } from "./gradcheck.ts";
import { assert, assertEquals, assertThrows } from "./helpers.ts";

const rand = (n: number, seed: number, s = 1) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * s);
};
/** A one-value CPU Var's value (the CPU backend's tensors hold their data). */
const scalar = (v: Var) => (v.value as CpuTensor).data[0];
const N = 3, D = 5, K = 7, T = 0.2;
const k = B.l2Normalize(B.fromArray(rand(N * D, 2), [N, D])).y;
const queue = B.l2Normalize(B.fromArray(rand(K * D, 3), [K, D])).y;

function mocoLoss(qData: Float32Array, grad: boolean) {
  const q = new Var(B, B.fromArray(qData, [N, D]), { requiresGrad: grad });
  const qn = l2Normalize(q);
  const logits = mocoLogits(qn, k, queue, T);
  const { loss, correct } = infoNce(logits);
  return { q, loss, correct };
}

Deno.test("InfoNCE through l2Normalize and the MoCo logits: backward(loss) = finite differences", async () => {
  const q0 = rand(N * D, 1);
  const { q, loss } = mocoLoss(q0, true);
  backward(loss);
  const analytic = await B.read(q.grad!);
  assertEquals(tapeLength(), 0);
  const value = (xs: Float64Array[]) =>
    noGrad(() => scalar(mocoLoss(Float32Array.from(xs[0]), false).loss));
  gradCheck(value, [q0], [analytic], { eps: 1e-2, atol: 2e-3, rtol: 2e-2, label: "dq" });
  assert(analytic.some((v) => Math.abs(v) > 1e-3), "the gradient is not trivially zero");
});

Deno.test("BCE-with-logits through a linear layer: backward(loss) = finite differences", async () => {
  const x = B.fromArray(rand(4 * 3, 5), [4, 3]);
  const t = B.fromArray(Float32Array.from([1, 0, 1, 1, 0, 0, 1, 0]), [4, 2]);
  const m = B.fromArray(Float32Array.from([1, 1, 0, 1, 1, 1, 1, 0]), [4, 2]);
  const w0 = rand(2 * 3, 6);
  const run = (wData: Float32Array, grad: boolean) => {
    const w = new Var(B, B.fromArray(wData, [2, 3]), { requiresGrad: grad });
    return { w, loss: bceWithLogits(linear(new Var(B, x), w, null), t, m) };
  };
  const { w, loss } = run(w0, true);
  backward(loss);
  const analytic = await B.read(w.grad!);
  const value = (xs: Float64Array[]) =>
    noGrad(() =>
      (run(Float32Array.from(xs[0]), false).loss.value as unknown as { data: Float32Array }).data[0]
    );
  gradCheck(value, [w0], [analytic], { eps: 1e-2, atol: 1e-3, rtol: 1e-2, label: "dw" });
});

Deno.test("backward refuses a tape with ops that do not lead to its root, and clears it", () => {
  const a = new Var(B, B.fromArray(rand(N * D, 8), [N, D]), { requiresGrad: true });
  const stray = l2Normalize(a); // recorded, never used by the loss below
  const { loss } = mocoLoss(rand(N * D, 9), true);
  assertThrows(() => backward(loss), /1 recorded op\(s\) do not lead to the root/);
  assertEquals(tapeLength(), 0);
  stray.dispose();
  clearTape();
});
