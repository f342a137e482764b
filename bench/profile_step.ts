/**
 * `deno run --allow-read --allow-env bench/profile_step.ts [--batch 32] [--size 64]
 *  [--match regex] [--target-ms 150] [--steps 2] [--conv-algo auto|gemm|winograd|col2im]
 *  [--tune-cache PATH] [--replay] [--precision f32|f16]`
 *
 * Where a MoCo pretraining step (ResNet-18, 1 input channel, split BN with 2
 * groups, queue 4096, dim 128, Adam) spends its time, per op type and shape.
 *
 * Where the device has timestamp-query (and without --replay): one step runs
 * with every op call in a compute pass of its own whose beginning and end
 * write GPU timestamps (Gpu.startTimer), so each call's time is read off the
 * step itself, in its context (caches, the ops before it), in one submit
 * (a copy or a clear inside a call is not counted; its dispatches are).
 * Otherwise, the replay: (1) run one step through wrappers of the
 * Backend and TrainOps that record every call with its argument shapes; (2) replay each
 * distinct (op, shape) in isolation with fresh random tensors of those shapes,
 * r calls as the difference between a submit of 1 + r calls and one of 1
 * (kernels/tuner.ts msPerCall; r chosen so a batch takes about --target-ms),
 * best of 3; (3) print ms per call × calls per step, sorted by total. On
 * hardware adapters the tuner times the step's shapes after the warm-up step.
 * The whole step is also timed (best of --steps) to show what the sum misses
 * (submission, EMA before the key pass, …).
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import { setConvAlgo } from "../kernels/conv/conv2d.ts";
import { Tensor } from "../kernels/tensor.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import type { Backend } from "../model/backend.ts";
import { Moco } from "../train/moco.ts";
import { convAlgoFlag, loadTuneCache, MOCO_CFG, randomStepInputs } from "./moco_step.ts";
import { gpuTrainOps, type TrainOps } from "../train/train_ops.ts";
import { Optimizer } from "../train/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { msPerCall, tunerOf } from "../kernels/tuner.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "32" },
    size: { type: "string", default: "64" },
    match: { type: "string" },
    "target-ms": { type: "string", default: "150" },
    steps: { type: "string", default: "2" },
    "conv-algo": { type: "string", default: "auto" },
    "tune-cache": { type: "string" },
    replay: { type: "boolean", default: false },
    precision: { type: "string", default: "f32" },
  },
});
const precision = values.precision;
if (precision !== "f32" && precision !== "f16") {
  console.error(`--precision: f32 or f16, got ${precision}`);
  Deno.exit(2);
}
setConvAlgo(convAlgoFlag(values["conv-algo"]));
const N = Number(values.batch), S = Number(values.size);
const targetMs = Number(values["target-ms"]);
const match = values.match ? new RegExp(values.match) : null;

const gpu = await getGpu();
const tuneCache = values["tune-cache"];
if (tuneCache) await loadTuneCache(gpu, tuneCache);
/** The 1/5/15-minute load averages (the machine is shared; numbers drift with load). */
function loadavg(): string {
  try {
    return Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  } catch {
    return "n/a (run with --allow-sys=loadavg to see it)";
  }
}
const rng = new Rng(1);
/** Steps run untimed just before the timed one on hardware (see the in-step timing). */
const CLOCK_RAMP_STEPS = 8;

// ---- recording ---------------------------------------------------------------

/** How a recorded argument is rebuilt for the replay. */
type ArgSpec =
  | { t: readonly number[]; index?: number } // a tensor (index: integer values in [0, index))
  | { list: ArgSpec[] }
  | { v: unknown }; // a plain value, passed as is

interface CallRecord {
  op: string;
  args: ArgSpec[];
  calls: number;
  call: (args: unknown[]) => unknown;
}

const records = new Map<string, CallRecord>();
let recording = false;
/** In-step timing: each outermost op call is a timed stretch (Gpu.beginTimed), keyed here. */
let timing = false;
let depth = 0;
const stretches: string[] = [];
/** Ops that move data to/from the host or only manage storage: not kernels. */
const STORAGE = new Set(["fromArray", "zeros", "read", "write", "dispose", "flush", "dtype"]);

function spec(a: unknown): ArgSpec {
  if (a instanceof Tensor) return { t: a.shape };
  if (Array.isArray(a) && a.every((x) => x instanceof Tensor)) return { list: a.map(spec) };
  return { v: a };
}

/** Keys name a class instance (f16's loss scaler holds the device) by its class, not its fields. */
function plainValue(this: unknown, key: string, v: unknown): unknown {
  if (key === "" || v === null || typeof v !== "object" || Array.isArray(v)) return v;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null ? v : `<${proto.constructor?.name}>`;
}

const shapeText = (s: ArgSpec): string =>
  "t" in s ? `[${s.t}]` : "list" in s ? `(${s.list.map(shapeText).join(",")})` : "";

function wrap<T extends object>(obj: T, prefix: string): T {
  const out: { [k: string]: unknown } = {};
  for (const [name, f] of Object.entries(obj)) {
    if (typeof f !== "function" || STORAGE.has(name)) {
      out[name] = f;
      continue;
    }
    out[name] = (...args: unknown[]) => {
      const timed = timing && depth === 0;
      if (recording || timed) {
        const s = args.map(spec);
        // Index tensors must hold valid row indices in the replay.
        if (name === "gatherRows" && "t" in s[1]) s[1].index = (args[0] as Tensor).shape[0];
        const key = `${prefix}${name} ${s.map(shapeText).filter(Boolean).join(" ")} ${
          JSON.stringify(s.filter((x) => "v" in x), plainValue)
        }`;
        if (recording) {
          const r = records.get(key);
          if (r) r.calls++;
          else records.set(key, { op: prefix + name, args: s, calls: 1, call: (a) => f(...a) });
        }
        if (timed) stretches.push(key);
      }
      if (timed) gpu.beginTimed();
      depth++;
      try {
        return f(...args);
      } finally {
        depth--;
        if (timed) gpu.endTimed();
      }
    };
  }
  return out as T;
}

// ---- the step ------------------------------------------------------------------

const B: Backend = wrap(gpuBackend(gpu), "");
const ops: TrainOps = wrap(gpuTrainOps, "");
const moco = await Moco.create(B, ops, { ...MOCO_CFG, precision }, 7);
const opt = new Optimizer(
  B,
  ops,
  moco.encQ.namedParameters(),
  { kind: "adam", weightDecay: 1e-4 },
  moco.scaler,
);

const randn = (n: number) => new Float32Array(n).map(() => rng.normal());

async function step(): Promise<number> {
  const host = randomStepInputs(rng, N, S);
  const xq = B.fromArray(host.xq, [N, 1, S, S]);
  const xk = B.fromArray(host.xk, [N, 1, S, S]);
  const un = B.fromArray(host.inv, [N]);
  await gpu.sync();
  const t0 = performance.now();
  const r = moco.step(xq, xk, un);
  opt.update(1e-3);
  await gpu.sync();
  const ms = performance.now() - t0;
  for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
  return ms;
}

console.log(`adapter: ${gpu.describe()}; load average ${loadavg()}`);
console.log(
  `MoCo step: ResNet-18, batch ${N}, ${S}×${S}×1, ${precision}, split BN 2, queue 4096, dim 128, Adam`,
);
await step(); // warm-up: compiles every pipeline
// Hardware adapters: time the warm-up's GEMM/conv shapes now, so the profile is of tuned kernels.
if (tunerOf(gpu).pendingCount > 0) await tunerOf(gpu).tunePending(); // saved as --tune-cache asks
recording = true;
const steps: number[] = [await step()];
recording = false;
for (let i = 1; i < Number(values.steps); i++) steps.push(await step());
const stepMs = Math.min(...steps);

// ---- in-step timing (timestamp queries) ---------------------------------------------

if (gpu.hasTimestamps && !values.replay) {
  const host = randomStepInputs(rng, N, S);
  const xq = B.fromArray(host.xq, [N, 1, S, S]);
  const xk = B.fromArray(host.xk, [N, 1, S, S]);
  const un = B.fromArray(host.inv, [N]);
  await gpu.sync();
  // On hardware, steps queued ahead untimed first: a card idle since the last read runs the timed
  // step at a fraction of its clock (an H200 at 345 MHz idle, ~300 ms of work to reach 1,980;
  // session 12's profile summed its ops to 3.5× the steady step), so it starts at speed.
  if (!gpu.isSoftware) {
    for (let i = 0; i < CLOCK_RAMP_STEPS; i++) {
      const w = moco.step(xq, xk, un);
      opt.update(1e-3);
      B.dispose(w.loss);
      B.dispose(w.correct);
    }
  }
  gpu.startTimer(2048);
  timing = true;
  const r = moco.step(xq, xk, un);
  opt.update(1e-3);
  timing = false;
  const times = await gpu.stopTimer();
  for (const t of [xq, xk, un, r.loss, r.correct]) B.dispose(t);
  const rows = new Map<string, { calls: number; ms: number; untimed: number }>();
  times.forEach((ms, i) => {
    const row = rows.get(stretches[i]) ?? { calls: 0, ms: 0, untimed: 0 };
    row.calls++;
    if (ms === null) row.untimed++;
    else row.ms += ms;
    rows.set(stretches[i], row);
  });
  const sum = [...rows.values()].reduce((a, r) => a + r.ms, 0);
  console.log(
    `in-step GPU time of each op call (timestamp queries around its own compute pass; one step, ` +
      `${times.length} calls)`,
  );
  console.log(
    `${"op shape".padEnd(78)} ${"calls".padStart(5)} ${"ms/step".padStart(9)} ${
      "share".padStart(6)
    }`,
  );
  const sorted = [...rows].filter(([k]) => !match || match.test(k)).sort((a, b) =>
    b[1].ms - a[1].ms
  );
  for (const [key, r] of sorted) {
    console.log(
      `${key.slice(0, 78).padEnd(78)} ${String(r.calls).padStart(5)} ${
        r.ms.toFixed(2).padStart(9)
      } ${(100 * r.ms / sum).toFixed(1).padStart(5)}%${
        r.untimed ? `  (${r.untimed} untimed)` : ""
      }`,
    );
  }
  const byOp = new Map<string, number>();
  for (const [key, r] of rows) {
    const op = key.split(" ")[0];
    byOp.set(op, (byOp.get(op) ?? 0) + r.ms);
  }
  console.log("\nper op type (ms/step):");
  for (const [op, t] of [...byOp].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${op.padEnd(24)} ${t.toFixed(2).padStart(9)} ${(100 * t / sum).toFixed(1)}%`);
  }
  const untimed = [...rows.values()].reduce((a, r) => a + r.untimed, 0);
  console.log(
    `\nsum of timed op calls ${sum.toFixed(1)} ms${
      untimed ? ` (${untimed} calls untimed: more passes than the timer holds)` : ""
    }; whole step (best of ${steps.length}, wall, submit and wait included) ${
      stepMs.toFixed(1)
    } ms; load average ${loadavg()}`,
  );
  moco.dispose();
  Deno.exit(0);
}

// ---- replay ----------------------------------------------------------------------

function build(s: ArgSpec, made: Tensor[]): unknown {
  if ("v" in s) return s.v;
  if ("list" in s) return s.list.map((x) => build(x, made));
  const n = s.t.reduce((a, b) => a * b, 1);
  const data = s.index ? Float32Array.from({ length: n }, (_, i) => i % s.index!) : randn(n);
  const t = Tensor.from(gpu, data, s.t);
  made.push(t);
  return t;
}

function disposeAll(r: unknown): void {
  if (r instanceof Tensor) r.dispose();
  else if (r && typeof r === "object") { for (const v of Object.values(r)) disposeAll(v); }
}

interface Row {
  key: string;
  op: string;
  shape: string;
  calls: number;
  ms: number;
}
const rows: Row[] = [];
for (const [key, r] of records) {
  if (match && !match.test(key)) continue;
  const made: Tensor[] = [];
  const args = r.args.map((s) => build(s, made));
  const once = () => disposeAll(r.call(args));
  once();
  await gpu.sync();
  // Submit differences (kernels/tuner.ts msPerCall): a submit's fixed cost (~10 ms on an H200)
  // would otherwise dominate the short replays.
  const sync = () => gpu.sync();
  const est = await msPerCall(once, sync, 4);
  const reps = Math.max(4, Math.min(400, Math.round(targetMs / Math.max(est, 0.005))));
  let best = Infinity;
  for (let b = 0; b < 3; b++) best = Math.min(best, await msPerCall(once, sync, reps));
  for (const t of made) t.dispose();
  const shape = r.args.map(shapeText).filter(Boolean).join(" ");
  rows.push({ key, op: r.op, shape, calls: r.calls, ms: best });
}

// ---- report --------------------------------------------------------------------------

rows.sort((a, b) => b.ms * b.calls - a.ms * a.calls);
const total = rows.reduce((s, r) => s + r.ms * r.calls, 0);
console.log(
  `${"op".padEnd(24)} ${"shape".padEnd(52)} ${"calls".padStart(5)} ${"ms/call".padStart(9)} ${
    "ms/step".padStart(9)
  } ${"share".padStart(6)}`,
);
for (const r of rows) {
  const t = r.ms * r.calls;
  console.log(
    `${r.op.padEnd(24)} ${r.shape.slice(0, 52).padEnd(52)} ${String(r.calls).padStart(5)} ${
      r.ms.toFixed(2).padStart(9)
    } ${t.toFixed(1).padStart(9)} ${(100 * t / total).toFixed(1).padStart(5)}%`,
  );
}
const byOp = new Map<string, number>();
for (const r of rows) byOp.set(r.op, (byOp.get(r.op) ?? 0) + r.ms * r.calls);
console.log("\nper op type (ms/step):");
for (const [op, t] of [...byOp].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${op.padEnd(24)} ${t.toFixed(1).padStart(9)} ${(100 * t / total).toFixed(1)}%`);
}
console.log(
  `\nsum of replayed ops ${total.toFixed(0)} ms; whole step (best of ${steps.length}) ${
    stepMs.toFixed(0)
  } ms; load average ${loadavg()}`,
);
moco.dispose();
