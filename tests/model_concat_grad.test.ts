/**
 * The concat op's backward (model/ops.ts): an input that already holds a gradient has its channel
 * range added into it in place (addChannelsInto), one that does not gets the slice; the gradients
 * are the bits of slicing every range and letting the engine add them, in the engine's order, on
 * the GPU and CPU backends alike (inputs used twice in one concat, and in two concats). A backward
 * that always sliced would pass the values but fail the count of in-place adds; one that added
 * into a gradient the engine had not yet made, or in another order, fails the bits.
 */
import { backward, Var } from "../model/autograd.ts";
import * as ops from "../model/ops.ts";
import type { Backend } from "../model/backend.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

const N = 2, S = 4, CA = 3, CB = 2, CY = CA + CB + CB + CA + CB; // root = [a b | b a b]

async function grads(B: Backend) {
  const calls = { slice: 0, add: 0 };
  const spy: Backend = {
    ...B,
    sliceChannels: (x, s, n) => (calls.slice++, B.sliceChannels(x, s, n)),
    addChannelsInto: (acc, x, s) => (calls.add++, B.addChannelsInto(acc, x, s)),
  };
  const a = new Var(spy, spy.fromArray(randn(N * CA * S, 1), [N, CA, S]), { requiresGrad: true });
  const b = new Var(spy, spy.fromArray(randn(N * CB * S, 2), [N, CB, S]), { requiresGrad: true });
  const y1 = ops.concat([a, b]), y2 = ops.concat([b, a, b]);
  const root = ops.concat([y1, y2]);
  backward(root, spy.fromArray(randn(N * CY * S, 3), [N, CY, S]));
  const out = { a: await B.read(a.grad!), b: await B.read(b.grad!), calls };
  for (const v of [a, b]) {
    B.dispose(v.value);
    B.dispose(v.grad!);
  }
  return out;
}

/** The seed's channels [c0, c0 + n) of each image, as f32. */
function range(w: Float32Array, c0: number, n: number): Float32Array {
  const out = new Float32Array(N * n * S);
  for (let i = 0; i < N; i++) {
    out.set(w.subarray((i * CY + c0) * S, (i * CY + c0 + n) * S), i * n * S);
  }
  return out;
}
const sum = (...xs: Float32Array[]) =>
  xs.reduce((acc, x) => acc.map((v, i) => Math.fround(v + x[i])));

Deno.test("concat's backward adds into an existing gradient in place, the bits of slice + add", async () => {
  const w = randn(N * CY * S, 3);
  // the engine's order: the root's slices, then y2's (b's two occurrences sliced: b has no
  // gradient yet while y2's record runs), then y1's, whose a and b now hold one: added in place
  const want = {
    a: sum(range(w, 7, CA), range(w, 0, CA)),
    b: sum(range(w, 5, CB), range(w, 10, CB), range(w, 3, CB)),
  };
  for (const B of [gpuBackend(gpu), cpuBackend]) {
    const g = await grads(B);
    assertEquals({ a: g.a, b: g.b }, want);
    assertEquals(g.calls, { slice: 5, add: 2 });
  }
});
