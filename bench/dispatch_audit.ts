/**
 * Every dispatch of a steady MoCo step as a hardware GPU would issue it, recorded on the CPU:
 *
 *   deno run --allow-read --allow-env bench/dispatch_audit.ts [--backbone resnet18] [--batch 64]
 *     [--size 224] [--precision f32|f16] [--software] [--all]
 *
 * A GPU runs a dispatch fast only when it has enough invocations to keep its memory busy; a kernel
 * that streams tens of MiB through a few hundred invocations is latency-bound whatever its tiles.
 * Timing which kernels do that needs the card; their grids do not: the step is recorded in a dry
 * run (kernels/dry_run.ts) with the adapter reading as hardware (`--software`: as this adapter),
 * so every kernel takes its GPU layout and the tuner's prior. Per kernel the table gives calls per
 * step, invocations per call (workgroups × workgroup size), MiB bound per call (every buffer it
 * binds: what it may touch) and KiB bound per invocation; `--all` lists every kernel, else those
 * binding ≥ 1 MiB a call. A row is flagged "few" when a call binds ≥ 1 MiB through fewer
 * invocations than FEW_INVOCATIONS, ≥ 1 KiB each: long serial loops on an under-filled card (a
 * global average pool's 49 loads an output are not that). "floor" is the step's bound bytes at
 * HBM_GBS: a lower bound of the time a kernel can take when it is memory-bound (GEMMs re-read
 * their operands from cache and are compute-bound: their row is a bound on traffic only). A kernel
 * that touches part of what it binds reads high: a channel copy binds both whole tensors (each of a
 * concat's k copies counted the whole concatenation: k times its traffic), a batch norm reading a
 * dense block's channel prefix binds the whole feature store.
 *
 * The second of two steps is recorded (the first creates optimizer state). The input views come
 * from the host (the bench's path); the GPU augmentation's own dispatch is listed after the step,
 * then (hardware, ResNets) Winograd and col2im at the step's conv shapes, which a GPU's tuner may
 * pick instead of the prior. On a GPU with a tuning cache loaded the step shows the tuned choices.
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu, GpuError } from "../kernels/device.ts";
import { type DryDispatch, dryRun } from "../kernels/dry_run.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { type BackboneName, checkBackbone } from "../train/backbones.ts";
import { AUGMENT_SLOT, augmentImages, uploadBytes } from "../kernels/augment.ts";
import { Tensor } from "../kernels/tensor.ts";
import type { BenchEntry } from "./harness.ts";
import { MOCO_CFG } from "./moco_step.ts";
import { twoMocoSteps } from "./memory.ts";
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from "../kernels/conv/conv2d.ts";

/** Invocations under which a call binding ≥ 1 MiB is flagged: ~1/4 of an H200's resident lanes. */
export const FEW_INVOCATIONS = 65536;
/** HBM bandwidth for the "floor" column: an H200's nominal 4.8 TB/s. */
export const HBM_GBS = 4800;
const MiB = 2 ** 20;

/** Invocations per workgroup, read off the kernel's `@workgroup_size(…)` (1 where absent). */
export function workgroupSize(code: string): number {
  const m = /@workgroup_size\(([^)]*)\)/.exec(code);
  if (!m) return 1;
  return m[1].split(",").map((s) => Number(s.trim())).reduce((a, b) => a * (b || 1), 1);
}

export interface AuditRow {
  kernel: string;
  calls: number;
  /** Smallest and largest invocations of one call. */
  minInvocations: number;
  maxInvocations: number;
  /** Largest bytes bound by one call, and the sum over the step's calls. */
  maxBytes: number;
  totalBytes: number;
  /** Largest bytes bound per invocation of one call. */
  maxBytesPerInvocation: number;
  /** Some call binds ≥ 1 MiB through fewer than FEW_INVOCATIONS invocations, ≥ 1 KiB each. */
  few: boolean;
}

/** Groups dispatches by kernel name, largest total bytes first. */
export function auditRows(dispatches: DryDispatch[]): AuditRow[] {
  const rows = new Map<string, AuditRow>();
  for (const d of dispatches) {
    const inv = d.groups[0] * d.groups[1] * d.groups[2] * workgroupSize(d.kernel.code);
    let r = rows.get(d.kernel.name);
    if (!r) {
      rows.set(
        d.kernel.name,
        r = {
          kernel: d.kernel.name,
          calls: 0,
          minInvocations: Infinity,
          maxInvocations: 0,
          maxBytes: 0,
          totalBytes: 0,
          maxBytesPerInvocation: 0,
          few: false,
        },
      );
    }
    r.calls++;
    r.minInvocations = Math.min(r.minInvocations, inv);
    r.maxInvocations = Math.max(r.maxInvocations, inv);
    r.maxBytes = Math.max(r.maxBytes, d.bytesBound);
    r.totalBytes += d.bytesBound;
    r.maxBytesPerInvocation = Math.max(r.maxBytesPerInvocation, d.bytesBound / inv);
    if (d.bytesBound >= MiB && inv < FEW_INVOCATIONS && d.bytesBound >= 1024 * inv) r.few = true;
  }
  return [...rows.values()].sort((a, b) => b.totalBytes - a.totalBytes);
}

export interface StepAudit {
  dispatches: DryDispatch[];
  /** Winograd and col2im at the step's conv shapes (auditConvAlgos), when recorded. */
  convAlgos?: { dispatches: DryDispatch[]; skipped: string[] };
  /** The GPU augmentation's dispatches for the step's two views (uint8 sources at `size`). */
  augment: DryDispatch[];
}

/** Records the second of two MoCo steps (SGD with momentum, as the bench) in a dry run. */
export async function auditMocoStep(
  gpu: Gpu,
  backbone: BackboneName,
  N: number,
  S: number,
  precision: "f32" | "f16",
  hardware: boolean,
): Promise<StepAudit> {
  const B = gpuBackend(gpu), C = MOCO_CFG.inChannels;
  const dispatches: DryDispatch[] = [], augment: DryDispatch[] = [];
  let sink: DryDispatch[] | null = null;
  await dryRun(gpu, async () => {
    await twoMocoSteps(
      B,
      backbone,
      N,
      S,
      precision,
      (_, n) => new Float32Array(n),
      (step, on) => sink = on && step === 1 ? dispatches : null,
    );
    sink = augment;
    recordAugment(gpu, N, S, C);
    sink = null;
  }, { hardware, onDispatch: (d) => sink?.push(d) });
  return { dispatches, augment };
}

/** The GPU augmentation of a step's 2N views from uint8 sources stored at side S. */
function recordAugment(gpu: Gpu, N: number, S: number, C: number): void {
  const pixels = uploadBytes(gpu, new Uint8Array(2 * N * C * S * S));
  const slots = Tensor.empty(gpu, [2 * N * AUGMENT_SLOT]);
  const out = augmentImages(pixels, slots, { size: S, srcSize: S, channels: C }, false);
  for (const t of [pixels, slots, out]) t.dispose();
}

/**
 * The conv algorithms a GPU's tuner may pick instead of the prior's implicit GEMM, at a ResNet's
 * shapes for batch N and input side S: Winograd F(2×2) and F(4×4) for each stage's 3×3 stride-1
 * conv (forward, grad-input, grad-weight), col2im for each strided 3×3 grad-input. The step's
 * table shows the prior only; the tuner chose Winograd F(2×2) at 28², 14² and 7² on the H200
 * (bench/RESULTS.md, session 6, before F(4×4) existed).
 */
export async function auditConvAlgos(
  gpu: Gpu,
  N: number,
  S: number,
  precision: "f32" | "f16",
): Promise<{ dispatches: DryDispatch[]; skipped: string[] }> {
  const out: DryDispatch[] = [], skipped: string[] = [];
  await dryRun(gpu, () => {
    for (let i = 0; i < 4; i++) {
      const side = Math.ceil(S / 4 / 2 ** i), c = 64 * 2 ** i;
      const t = (shape: number[]) => Tensor.empty(gpu, shape, precision);
      const x = t([N, c, side, side]), w = t([c, c, 3, 3]), dy = t([N, c, side, side]);
      // (a shape whose scratch exceeds this adapter's binding limit is left out and named)
      const tryRun = (what: string, f: () => Tensor) => {
        try {
          f().dispose();
        } catch (e) {
          if (!(e instanceof GpuError)) throw e;
          skipped.push(`${what} ${N}×${c}×${side}²`);
        }
      };
      for (const [algo, tag] of [["winograd", "F(2×2)"], ["winograd4", "F(4×4)"]] as const) {
        const wino = { stride: 1, pad: 1, algo };
        tryRun(`Winograd ${tag} fwd`, () => conv2d(x, w, null, wino));
        tryRun(`Winograd ${tag} grad-input`, () => conv2dBackwardInput(dy, w, x.shape, wino));
        tryRun(`Winograd ${tag} grad-weight`, () => conv2dBackwardWeight(dy, x, w.shape, wino));
      }
      if (i > 0) { // the stage's first conv: stride 2 from the previous stage's c/2 channels
        const xs = t([N, c / 2, 2 * side, 2 * side]), ws = t([c, c / 2, 3, 3]);
        tryRun(
          "col2im grad-input",
          () => conv2dBackwardInput(dy, ws, xs.shape, { stride: 2, pad: 1, algo: "col2im" }),
        );
        for (const u of [xs, ws]) u.dispose();
      }
      for (const u of [x, w, dy]) u.dispose();
    }
  }, { hardware: true, onDispatch: (d) => out.push(d) });
  return { dispatches: out, skipped };
}

function table(rows: AuditRow[], all: boolean): string[] {
  const lines = [
    `${"kernel".padEnd(34)} ${"calls".padStart(5)} ${"invocations/call".padStart(17)} ` +
    `${"MiB/call".padStart(8)} ${"KiB/inv".padStart(8)} ${"floor ms".padStart(8)}`,
  ];
  for (const r of rows) {
    if (!all && r.maxBytes < MiB) continue;
    const inv = r.minInvocations === r.maxInvocations
      ? `${r.maxInvocations}`
      : `${r.minInvocations}-${r.maxInvocations}`;
    lines.push(
      `${r.kernel.slice(0, 34).padEnd(34)} ${String(r.calls).padStart(5)} ${inv.padStart(17)} ` +
        `${(r.maxBytes / MiB).toFixed(1).padStart(8)} ` +
        `${(r.maxBytesPerInvocation / 1024).toFixed(2).padStart(8)} ` +
        `${(r.totalBytes / HBM_GBS / 1e6).toFixed(3).padStart(8)}${r.few ? "  few" : ""}`,
    );
  }
  return lines;
}

/** The audit's printout: the step's table, totals, then the augmentation's row. */
export function formatAudit(a: StepAudit, all: boolean): string[] {
  const rows = auditRows(a.dispatches);
  const total = rows.reduce((s, r) => s + r.totalBytes, 0);
  const few = rows.filter((r) => r.few);
  return [
    ...table(rows, all),
    `step: ${a.dispatches.length} dispatches of ${rows.length} kernels, ` +
    `${(total / 2 ** 30).toFixed(2)} GiB bound (floor ${(total / HBM_GBS / 1e6).toFixed(1)} ms ` +
    `at ${HBM_GBS} GB/s); flagged few: ${
      few.length ? few.map((r) => r.kernel).join(", ") : "none"
    }`,
    "augmentation of the step's two views (GPU path):",
    ...table(auditRows(a.augment), true).slice(1),
    ...(a.convAlgos
      ? [
        "Winograd (each stage's 3×3 stride-1 fwd, grad-input, grad-weight) and col2im (strided " +
        "grad-inputs), the tuner's other candidates:",
        ...table(auditRows(a.convAlgos.dispatches), all).slice(1),
        ...(a.convAlgos.skipped.length
          ? [`(beyond this adapter's binding limit: ${a.convAlgos.skipped.join(", ")})`]
          : []),
      ]
      : []),
  ];
}

export const auditBench: BenchEntry = {
  name: "audit",
  description: "every dispatch of a ResNet-18 MoCo step (224 px, batch 64) as a GPU issues it",
  async run(ctx) {
    for (const precision of ctx.gpu.hasF16 ? ["f32", "f16"] as const : ["f32"] as const) {
      const a = await auditMocoStep(ctx.gpu, "resnet18", 64, 224, precision, true);
      a.convAlgos = await auditConvAlgos(ctx.gpu, 64, 224, precision);
      console.log("");
      console.log(
        `Dispatch audit, ResNet-18 MoCo step, 224 px, batch 64, ${precision}, kernels as on a ` +
          `hardware GPU (dry run: grids and bytes bound, nothing timed):`,
      );
      for (const l of formatAudit(a, false)) console.log(`  ${l}`);
    }
  },
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backbone: { type: "string", default: "resnet18" },
      batch: { type: "string", default: "64" },
      size: { type: "string", default: "224" },
      precision: { type: "string", default: "f32" },
      software: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
    },
  });
  const fail = (msg: string): never => {
    console.error(msg);
    Deno.exit(2);
  };
  const num = (flag: string, v: string, min: number) => {
    const x = Number(v);
    return Number.isInteger(x) && x >= min
      ? x
      : fail(`--${flag}: an integer >= ${min}, got "${v}"`);
  };
  let backbone: BackboneName = "resnet18";
  try {
    backbone = checkBackbone(values.backbone);
  } catch (e) {
    fail((e as Error).message);
  }
  const precision = values.precision === "f32" || values.precision === "f16"
    ? values.precision
    : fail(`--precision: f32 or f16, got "${values.precision}"`);
  const N = num("batch", values.batch, 2), S = num("size", values.size, 32);
  if (N % MOCO_CFG.bnGroups) fail(`--batch: a multiple of bnGroups (${MOCO_CFG.bnGroups})`);
  const gpu = await getGpu();
  if (precision === "f16" && !gpu.hasF16) fail("--precision f16: this adapter has no shader-f16");
  const hardware = !values.software;

  const a = await auditMocoStep(gpu, backbone, N, S, precision, hardware);
  if (backbone.startsWith("resnet") && hardware) {
    a.convAlgos = await auditConvAlgos(gpu, N, S, precision);
  }
  console.log(
    `${backbone} MoCo step, ${S} px, batch ${N}, ${precision}, kernels as on ` +
      `${hardware ? "a hardware GPU (tuner's prior)" : gpu.describe()}:`,
  );
  for (const l of formatAudit(a, values.all)) console.log(l);
}
