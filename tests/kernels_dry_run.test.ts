/**
 * The dry allocation count (kernels/dry_run.ts) equals what the real pool allocates for the same
 * work: two ResNet-18 MoCo steps at a small shape, counted dry and then run on the device from an
 * empty pool (Winograd, col2im and split-K scratch included, as this adapter chooses them).
 */
import { dryRun } from "../kernels/dry_run.ts";
import { poolBucket } from "../kernels/device.ts";
import { mocoFootprint, twoMocoSteps } from "../bench/memory.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import {
  auditConvAlgos,
  auditMocoStep,
  auditRows,
  workgroupSize,
} from "../bench/dispatch_audit.ts";
import { tunerOf } from "../kernels/tuner.ts";

import { assert, assertEquals } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";

Deno.test("pool buckets: 256-byte granules to 64 KiB, then eighths of a power of two", () => {
  assertEquals([1, 256, 257, 65536, 65537, 100_000].map(poolBucket), [
    256,
    256,
    512,
    65536,
    73728,
    106496,
  ]);
});

/** Dry count and real allocation of two MoCo steps in this precision. */
async function dryAndReal(precision: "f32" | "f16") {
  const N = 4, S = 32;
  const dry = await mocoFootprint(gpu, "resnet18", N, S, "auto", precision);
  // The same two steps on the device, from an empty pool.
  gpu.trim();
  const before = { ...gpu.stats };
  const losses = await twoMocoSteps(
    gpuBackend(gpu),
    "resnet18",
    N,
    S,
    precision,
    (seed, n) => randn(n, seed),
  );
  assert(losses.every(Number.isFinite), `losses ${losses}`);
  const real = {
    bytes: gpu.stats.bytesAllocated - before.bytesAllocated,
    buffers: gpu.stats.buffersCreated - before.buffersCreated,
  };
  gpu.trim();
  return { dry: { bytes: dry.bytes, buffers: dry.buffers }, real };
}

Deno.test("a dry-run MoCo step counts the bytes the real pool allocates", async () => {
  const { dry, real } = await dryAndReal("f32");
  assertEquals(dry, real);
});

Deno.test({
  name: "f16: the dry count equals the real pool too",
  ignore: !gpu.hasF16,
  async fn() {
    const h = await dryAndReal("f16");
    // (At this shape the weights' f16 casts outweigh the halved activations; at 224 px, batch 64
    // the f16 step takes 40–45% less: bench/RESULTS.md.)
    assertEquals(h.dry, h.real);
  },
});

Deno.test("a dry run computes nothing, restores the device and refuses nesting", async () => {
  const r = await dryRun(gpu, async () => {
    const t = B0.fromArray(new Float32Array([1, 2, 3]), [3]);
    const v = await B0.read(t);
    B0.dispose(t);
    await assertRejectsNested();
    return Array.from(v);
  });
  assertEquals(r.result, [0, 0, 0]);
  assertEquals({ bytes: r.bytes, buffers: r.buffers }, { bytes: 256, buffers: 1 });
  const t = B0.fromArray(new Float32Array([1, 2, 3]), [3]);
  assertEquals(Array.from(await B0.read(t)), [1, 2, 3]);
  B0.dispose(t);
});

const B0 = gpuBackend(gpu);
async function assertRejectsNested() {
  let msg = "";
  try {
    await dryRun(gpu, () => 0);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/already in a dry run/.test(msg), msg);
}

Deno.test("a hardware dry run issues the GPU layouts, and the adapter reads as itself after", async () => {
  const names = async (hardware: boolean) =>
    new Set(
      (await auditMocoStep(gpu, "resnet18", 4, 32, "f32", hardware)).dispatches.map((d) =>
        d.kernel.name.split(":")[0]
      ),
    );
  const hw = await names(true), own = await names(false);
  assert(hw.has("bn-grid") && !hw.has("bn"), [...hw].join(" "));
  if (gpu.isSoftware) assert(own.has("bn") && !own.has("bn-grid"), [...own].join(" "));
  assert(!Object.hasOwn(gpu, "isSoftware"), "isSoftware left patched");
  assertEquals(tunerOf(gpu).mode, gpu.isSoftware ? "off" : "measure");
});

Deno.test("audit rows: invocations from the workgroup size, calls binding 1 MiB through few flagged", () => {
  assertEquals(workgroupSize("@compute @workgroup_size(8, 4)\nfn main() {}"), 32);
  assertEquals(workgroupSize("@compute @workgroup_size(256)"), 256);
  const k = (name: string, wg: number) => ({ name, code: `@workgroup_size(${wg})` });
  const rows = auditRows([
    { kernel: k("narrow", 8), groups: [64, 1, 1], bytesBound: 2 ** 20 }, // 512 lanes: few
    { kernel: k("wide", 64), groups: [1024, 2, 1], bytesBound: 2 ** 21 }, // 131072 lanes
    { kernel: k("wide", 64), groups: [16, 1, 1], bytesBound: 2 ** 16 }, // small: not flagged
    { kernel: k("short", 64), groups: [512, 1, 1], bytesBound: 2 ** 24 }, // 512 B each: not few
  ]);
  assertEquals(rows.map((r) => [r.kernel, r.calls, r.minInvocations, r.maxInvocations, r.few]), [
    ["short", 1, 32768, 32768, false],
    ["wide", 2, 1024, 131072, false],
    ["narrow", 1, 512, 512, true],
  ]);
  assertEquals(rows[1].totalBytes, 2 ** 21 + 2 ** 16);
  assertEquals(rows[2].maxBytesPerInvocation, 2048);
});

Deno.test("on a GPU no memory-bound call of a 224 px batch-64 step is starved", async () => {
  // The H200 step of session 6 ran batch norm as 512-2,048 invocations binding up to 832 MiB a
  // call (0.4-1.6 MiB an invocation): no such kernel may be flagged "few" on a GPU now.
  const a = await auditMocoStep(gpu, "resnet18", 64, 224, "f32", true);
  const algos = await auditConvAlgos(gpu, 64, 224, "f32"); // Winograd's transforms, col2im's gather
  const starved = auditRows([...a.dispatches, ...algos.dispatches, ...a.augment]).filter((r) =>
    r.few && /^(bn|map|pool|cast|winograd|conv_dgrad_col2im|augment)/.test(r.kernel)
  );
  assertEquals(starved.map((r) => `${r.kernel} (${r.minInvocations})`), []);
});

Deno.test("on a GPU Winograd's transforms and col2im's gather take the hardware grid cap", async () => {
  const { dispatches } = await auditConvAlgos(gpu, 64, 224, "f32");
  const most = (re: RegExp) =>
    Math.max(...dispatches.filter((d) => re.test(d.kernel.name)).map((d) => d.groups[0]));
  // 1,024 workgroups is the software adapters' cap; a 28² stage has ~12,544 groups of 64 items
  for (const k of ["winograd:input", "winograd:output", "winograd4:input", "winograd4:output"]) {
    const re = new RegExp(`^${k}`);
    assert(most(re) > 1024, `${k} ${most(re)}`);
  }
  assert(most(/^conv_dgrad_col2im/) > 1024, `col2im ${most(/^conv_dgrad_col2im/)}`);
});
