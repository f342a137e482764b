/**
 * A training step in steady state creates nothing on the device: after the
 * warm-up steps, a MoCo step (with Adam) allocates no buffer, compiles no
 * pipeline and creates no bind group, and reaches the queue in one submit
 * (plus the loss readback's), in f32 and with f16 storage (casts, loss
 * scaling and its flag included). The same for the pretraining loop with the views
 * made on the GPU and the loss read every 2 steps: one command buffer a step
 * (augmentation and step), one read every 2 steps. A kernel that allocates per call, a pool that
 * hands buffers out in a different order each step, or a kernel source that
 * changes per call fails it.
 */
import { gpuBackend } from "../model/backend_gpu.ts";
import { TINY_MOCO, TinyNet } from "./tiny_net.ts";
import { Moco } from "../train/moco.ts";
import { gpuTrainOps } from "../train/train_ops.ts";
import { Optimizer } from "../train/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { imageSource, twoViewImages } from "./image_source.ts";
import { pretrain } from "../train/pretrain.ts";
import { pretrainAugment } from "../train/cache_sources.ts";
import { setBatchNormPath } from "../kernels/batchnorm.ts";

const cfg = TINY_MOCO;
const N = 8, S = 16;

for (const precision of ["f32", "f16"] as const) {
  Deno.test({
    name: `a steady-state MoCo step creates no buffer, pipeline or bind group (${precision})`,
    ignore: precision === "f16" && !gpu.hasF16,
    fn: async () => {
      const B = gpuBackend(gpu);
      const moco = await Moco.create(
        B,
        gpuTrainOps,
        { ...cfg, precision },
        3,
        (o) => new TinyNet(B, o),
      );
      const opt = new Optimizer(B, gpuTrainOps, moco.encQ.namedParameters(), {
        kind: "adam",
        weightDecay: 1e-4,
      }, moco.scaler);
      const step = async (s: number) => {
        const perm = new Rng(s).shuffle([...Array(N).keys()]);
        const inv = new Float32Array(N);
        perm.forEach((p, j) => (inv[p] = j));
        const xq = B.fromArray(randn(N * S * S, 10 + s), [N, 1, S, S]);
        const xk = B.fromArray(randn(N * S * S, 20 + s), [N, 1, S, S]);
        const un = B.fromArray(inv, [N]);
        const r = moco.step(xq, xk, un);
        opt.update(1e-3);
        const loss = (await B.read(r.loss))[0];
        for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
        return loss;
      };
      try {
        for (let s = 0; s < 3; s++) await step(s);
        const before = { ...gpu.stats };
        const losses = [];
        for (let s = 3; s < 6; s++) losses.push(await step(s));
        const d = (k: keyof typeof before) => gpu.stats[k] - before[k];
        assertEquals(
          {
            buffers: d("buffersCreated"),
            bytes: d("bytesAllocated"),
            pipelines: d("pipelinesCreated"),
          },
          { buffers: 0, bytes: 0, pipelines: 0 },
        );
        assertEquals(d("bindGroupsCreated"), 0);
        // uploads flush what is recorded; the step itself and its readback: at most 3 submits a step
        assertEquals(d("submits") <= 3 * 3, true, `submits ${d("submits")}`);
        assertEquals(losses.every(Number.isFinite), true);
      } finally {
        opt.dispose();
        moco.dispose();
      }
    },
  });
}

Deno.test("the pretraining loop's steady steps (GPU views, log every 2): nothing created, one submit and one compute pass a step", async () => {
  const B = gpuBackend(gpu);
  setBatchNormPath("grid"); // a hardware GPU's layout: the channel layout splits its sums by copies
  const S = 16, N = 8, steps = 12;
  const source = twoViewImages(imageSource(20, N * steps), pretrainAugment("mococxr", S, 1));
  const dir = await Deno.makeTempDir();
  const seen: (typeof gpu.stats)[] = [];
  try {
    await pretrain(
      B,
      gpuTrainOps,
      {
        moco: cfg,
        imageSize: S,
        batchSize: N,
        epochs: 1,
        optimizer: { kind: "adam", weightDecay: 1e-4 },
        lr: 1e-3,
        schedule: { kind: "constant" },
        seed: 1,
        ckptEvery: 1000,
        monitorEvery: 0,
        init: "random",
        augment: "mococxr",
      },
      source,
      dir,
      {
        quiet: true,
        log: () => {},
        backbone: (o) => new TinyNet(B, o),
        logEvery: 2,
        deviceViews: source.onDevice!(gpu),
        betweenSteps: () => Promise.resolve(void seen.push({ ...gpu.stats })),
      },
    );
    const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n");
    assertEquals(lines.map((l) => JSON.parse(l).step), [...Array(steps).keys()].map((s) => s + 1));
    // seen[i]: after step i + 1 (and the next step's inputs). The pattern repeats every 4 steps
    // (2 rings of the step scalars, read every 2 steps; a read submits the next step's
    // augmentation with its copy; the ring write's uniform slot follows the reads): steps 9-12
    // have met every variant before (the pool settles by step 4).
    const a = seen[7], b = seen[11], d = (k: keyof typeof a) => b[k] - a[k];
    assertEquals(
      {
        buffers: d("buffersCreated"),
        bytes: d("bytesAllocated"),
        pipelines: d("pipelinesCreated"),
        bindGroups: d("bindGroupsCreated"),
      },
      { buffers: 0, bytes: 0, pipelines: 0, bindGroups: 0 },
    );
    // 4 steps: one command buffer each (augmentation and step together), plus 2 reads (each
    // submits the next step's augmentation, its pass ended by the read's copy). No pass ends
    // inside a command buffer but at a read: the step scalars' ring write is a dispatch, where
    // copies ended the step's pass (on a GPU a pass break costs ~0.7 ms: bench/RESULTS.md).
    assertEquals({ submits: d("submits"), copies: d("copies"), clears: d("clears") }, {
      submits: 4 + 2,
      copies: 2,
      clears: 0,
    });
    assertEquals(d("passes") <= d("submits"), true, `${d("passes")} passes`);
  } finally {
    setBatchNormPath("auto");
    await Deno.remove(dir, { recursive: true });
  }
});
