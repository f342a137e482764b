/**
 * One MoCo step on the GPU against the same step on the CPU references:
 * loss, top-1 count, query-encoder gradients, the EMA-updated key encoder and
 * the queue after enqueue (with wrap-around). Both run the same MoCo code, so a wrong pairing or
 * shuffle passes here: tests/train_moco_literal.test.ts checks the step against MoCo written out.
 */
import { gpuBackend } from "../model/backend_gpu.ts";
import { TinyNet } from "./tiny_net.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import type { Backend } from "../model/backend.ts";
import { Moco, type MocoConfig } from "../train/moco.ts";
import { cpuTrainOps, gpuTrainOps, type TrainOps } from "../train/train_ops.ts";
import { Optimizer } from "../train/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertClose, assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

const cfg: MocoConfig = {
  backbone: "resnet18",
  inChannels: 1,
  dim: 16,
  queueSize: 20, // 8 keys a step: the third step wraps around
  temperature: 0.2,
  momentum: 0.9,
  bnGroups: 2,
};
const N = 8, S = 16;

async function runSteps(B: Backend, ops: TrainOps, steps: number, withOpt: boolean) {
  const moco = await Moco.create(B, ops, cfg, 7, (o) => new TinyNet(B, o));
  const opt = withOpt
    ? new Optimizer(B, ops, moco.encQ.namedParameters(), { kind: "adam", weightDecay: 1e-4 })
    : null;
  const losses: number[] = [], correct: number[] = [];
  for (let s = 0; s < steps; s++) {
    const perm = new Rng(s).shuffle([...Array(N).keys()]);
    const inv = new Float32Array(N);
    perm.forEach((p, j) => (inv[p] = j));
    const xq = B.fromArray(randn(N * S * S, 100 + s), [N, 1, S, S]);
    const views = randn(N * S * S, 200 + s);
    const xk = new Float32Array(N * S * S);
    perm.forEach((p, j) => xk.set(views.subarray(p * S * S, (p + 1) * S * S), j * S * S));
    const r = moco.step(xq, B.fromArray(xk, [N, 1, S, S]), B.fromArray(inv, [N]));
    opt?.update(1e-3);
    losses.push((await B.read(r.loss))[0]);
    correct.push((await B.read(r.correct))[0]);
  }
  return { moco, losses, correct };
}

Deno.test("MoCo step: GPU matches the CPU reference (loss, grads, EMA, queue)", async () => {
  const g = await runSteps(gpuBackend(gpu), gpuTrainOps, 1, false);
  const c = await runSteps(cpuBackend, cpuTrainOps, 1, false);
  assertClose(g.losses, c.losses, { atol: 1e-4, rtol: 1e-4, label: "loss" });
  assertEquals(g.correct, c.correct);
  const gp = g.moco.encQ.namedParameters(), cp = c.moco.encQ.namedParameters();
  for (const i of [0, 1, gp.length - 2, gp.length - 1]) {
    const [name, p] = gp[i];
    const gg = await g.moco.B.read(p.grad!), cg = await c.moco.B.read(cp[i][1].grad!);
    const scale = Math.max(...cg.map(Math.abs));
    assertClose(gg, cg, { atol: 2e-3 * scale, rtol: 1e-2, label: `grad ${name}` });
  }
  const gk = g.moco.encK.namedParameters(), ck = c.moco.encK.namedParameters();
  for (const i of [0, gk.length - 1]) {
    assertClose(await g.moco.B.read(gk[i][1].value), await c.moco.B.read(ck[i][1].value), {
      atol: 1e-5,
      label: `key ${gk[i][0]}`,
    });
  }
  assertClose(await g.moco.B.read(g.moco.queue), await c.moco.B.read(c.moco.queue), {
    atol: 1e-4,
    label: "queue",
  });
  assertEquals(g.moco.ptr, N);
});

Deno.test("MoCo queue wraps around and stays unit-norm; key encoder moves by EMA", async () => {
  const B = gpuBackend(gpu);
  const { moco, losses } = await runSteps(B, gpuTrainOps, 3, true);
  assertEquals(moco.ptr, (3 * N) % cfg.queueSize);
  const q = await B.read(moco.queue);
  for (let r = 0; r < cfg.queueSize; r++) {
    let s = 0;
    for (let d = 0; d < cfg.dim; d++) s += q[r * cfg.dim + d] ** 2;
    assertClose([s], [1], { atol: 1e-4, label: `queue row ${r} norm²` });
  }
  assert(losses.every(Number.isFinite));
  const qp = await B.read(moco.encQ.parameters()[0].value);
  const kp = await B.read(moco.encK.parameters()[0].value);
  assert(qp.some((v, i) => v !== kp[i]), "key encoder lags the query encoder");
  moco.dispose();
});
