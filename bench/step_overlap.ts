/**
 * Where a back-to-back MoCo step loses time against one read every step. On an H200 (session 11)
 * bench/moco_step.ts's fastest read-every-step step ran at 1,250 img/s (ResNet-18, 224 px, batch 64)
 * and four steps back to back at 881, the inverse of what recording ahead should give (session 6
 * saw the same, 274 against 238). This times, on one tuned model:
 *
 *   gpu      the step's compute passes by timestamp queries (the GPU's own time, nothing else)
 *   read     steps each submitted and read: host recording ms, wait ms, whole ms
 *   b2b      steps back to back with a fresh upload each (as moco_step.ts and a training loop
 *            reading every N steps): each step's host ms, then ms a step over the run
 *   b2b-same the same without uploads (one input set reused; holding it changes which pooled
 *            buffers the step gets, so its bind groups are made anew, ~400 a step on the H200:
 *            its host ms include that)
 *   b2b-sync back to back with uploads, waiting for the GPU (no read) after each step
 *
 * and the device's counters (buffers, bind groups, pipelines, submits) over each phase.
 *
 *   deno run -A bench/step_overlap.ts [--size 224] [--batch 64] [--steps 8] [--precision f32|f16]
 *     [--tune-cache PATH]
 */
import { MOCO_FLOPS_PER_IMAGE } from "./moco_step.ts";
import { stepRig } from "./step_rig.ts";

const rig = await stepRig(8);
const { gpu, B, S, N, steps, precision, upload, record, drop } = rig;
const gflop = MOCO_FLOPS_PER_IMAGE(S) * N / 1e9;
console.log(
  `adapter: ${gpu.describe()}; ResNet-18 MoCo step, ${S} px, batch ${N}, ${precision}, SGD`,
);
const counters = () => ({ ...gpu.stats });
function delta(a: typeof gpu.stats) {
  const b = gpu.stats;
  return `buffers +${b.buffersCreated - a.buffersCreated}, bind groups +${
    b.bindGroupsCreated - a.bindGroupsCreated
  }, pipelines +${b.pipelinesCreated - a.pipelinesCreated}, submits +${
    b.submits - a.submits
  }, passes +${b.passes - a.passes}, copies +${b.copies - a.copies}, clears +${
    b.clears - a.clears
  }, dispatches +${b.dispatches - a.dispatches}`;
}
const f1 = (x: number) => x.toFixed(1);
const rate = (ms: number) => `${f1(N / (ms / 1000))} img/s, ${f1(gflop / ms)} TFLOP/s`;

// gpu: the step's compute passes alone
if (gpu.hasTimestamps) {
  const c = counters();
  const u = upload(rig.inputs());
  gpu.flush();
  const ms: number[] = [];
  for (let i = 0; i < 3; i++) {
    let loss = null as ReturnType<typeof record> | null;
    const [t] = await gpu.timePasses([() => void (loss = record(u))]);
    B.dispose(loss!);
    if (t !== null) ms.push(t);
  }
  drop(u);
  console.log(
    `gpu       passes ${ms.map(f1).join(" / ")} ms (best: ${rate(Math.min(...ms))}); ${delta(c)}`,
  );
} else console.log("gpu       no timestamp-query on this adapter");

// read: each step submitted and waited for
{
  const c = counters();
  const rows: string[] = [];
  let best = Infinity;
  for (let i = 0; i < steps; i++) {
    const h = rig.inputs();
    const t0 = performance.now();
    const u = upload(h);
    const loss = record(u);
    const t1 = performance.now();
    await B.read(loss);
    const t2 = performance.now();
    B.dispose(loss);
    drop(u);
    rows.push(`${f1(t1 - t0)}+${f1(t2 - t1)}`);
    best = Math.min(best, t2 - t0);
  }
  console.log(`read      record+wait ms ${rows.join(" ")}; best ${rate(best)}; ${delta(c)}`);
}

/** Back to back: `steps` steps recorded without waiting, the last loss read. */
async function backToBack(name: string, mode: "upload" | "same" | "sync") {
  const hosts = Array.from({ length: steps }, () => rig.inputs());
  const same = mode === "same" ? upload(hosts[0]) : null;
  gpu.flush();
  await gpu.sync();
  const c = counters();
  const host: number[] = [];
  const t0 = performance.now();
  let last = NaN;
  for (let i = 0; i < steps; i++) {
    const h0 = performance.now();
    const u = same ?? upload(hosts[i]);
    const loss = record(u);
    host.push(performance.now() - h0);
    if (i === steps - 1) last = (await B.read(loss))[0];
    else if (mode === "sync") await gpu.sync();
    B.dispose(loss);
    if (!same) drop(u);
  }
  const ms = (performance.now() - t0) / steps;
  if (same) drop(same);
  if (!Number.isFinite(last)) throw new Error(`${name}: loss ${last}`);
  console.log(
    `${name.padEnd(9)} host ms ${host.map(f1).join(" ")}; ${f1(ms)} ms a step (${rate(ms)}); ${
      delta(c)
    }`,
  );
}
await backToBack("b2b", "upload");
await backToBack("b2b-same", "same");
await backToBack("b2b-sync", "sync");
await backToBack("b2b", "upload");
rig.dispose();
