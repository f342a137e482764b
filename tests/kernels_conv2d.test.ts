/**
 * conv2d forward / grad-input / grad-weight / grad-bias on the GPU against the
 * CPU references, for every tile variant (forced) and every algorithm that
 * applies (implicit GEMM, grad-input as GEMM + col2im, and for 3×3 stride-1
 * convs Winograd F(2×2, 3×3) and F(4×4, 3×3)); and the CPU
 * references' gradients against central finite differences in float64.
 *
 * Tolerance: |gpu − ref| ≤ 1e-5 · Σ|terms| + 1e-7 per element, where Σ|terms|
 * is the same convolution of |inputs| — f32 accumulation error grows with the
 * magnitude of what is summed, not with the (possibly cancelling) result.
 * Winograd F(4×4) gets 10× that: its transforms multiply by up to 8 and ⅙ (winograd.ts).
 */
import { Tensor } from "../kernels/tensor.ts";
import type { WindowChoice } from "../kernels/gemm/window_plan.ts";
import {
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  convAlgorithm,
  convCandidates,
} from "../kernels/conv/conv2d.ts";
import { dryRun } from "../kernels/dry_run.ts";
import { setPerGeometry } from "../kernels/wgsl.ts";
import {
  conv2dBackwardBiasCpu,
  conv2dBackwardBiasF64,
  conv2dBackwardInputCpu,
  conv2dBackwardInputF64,
  conv2dBackwardWeightCpu,
  conv2dBackwardWeightF64,
  conv2dCpu,
  conv2dF64,
  convShapes,
} from "../kernels/cpu/conv2d.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import {
  chooseVariant,
  type GemmVariant,
  GPU_CANDIDATES,
  maxFatTile,
  reg,
  SHORT_K_CANDIDATES,
  testedGpuCandidates,
  variantKey,
} from "../kernels/gemm/variants.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, onGl, randn } from "./gpu.ts";
import { assertHalfClose, half, hasF16 } from "./f16.ts";

type S4 = [number, number, number, number];
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const abs = (t: CpuTensor) => cpuTensor(t.shape, t.data.map(Math.abs));

/** The relative tolerance of an algorithm's results (see the header). */
const relTol = (algo?: string) => (algo === "winograd4" ? 1e-4 : 1e-5);

/** Per-element check against a magnitude bound (see the header). */
function assertNear(
  got: Float32Array,
  want: Float32Array,
  mag: Float32Array,
  label: string,
  rel = 1e-5,
) {
  assertEquals(got.length, want.length, `${label}: length`);
  let worst = -1, worstRatio = 1;
  for (let i = 0; i < got.length; i++) {
    const ratio = Math.abs(got[i] - want[i]) / (rel * mag[i] + 1e-7);
    if (!(ratio <= worstRatio)) [worst, worstRatio] = [i, ratio];
  }
  assert(
    worst < 0,
    `${label}: [${worst}] got ${got[worst]}, want ${want[worst]} (Σ|terms| ${mag[worst]})`,
  );
}

/**
 * The GPU tiles forced at a case: every shape the GPU tuner may pick (one under GL) and both
 * shared-memory tiles where the kernel is 3×3, stride 1, pad 1 (most cases, sharing their
 * pipelines); elsewhere one shared-memory and one reg tile. GPU conv kernels are compiled per
 * kernel size, stride and padding (gemm/skeleton.ts ConvTaps), lavapipe takes ~1 s a reg
 * pipeline, and the loaders, the only code that differs by taps, are the same in every tile.
 */
function gpuTiles(cs: { w: S4; stride: number; pad: number }): GemmVariant[] {
  const main = cs.w[2] === 3 && cs.w[3] === 3 && cs.stride === 1 && cs.pad === 1;
  const gpuShapes = testedGpuCandidates();
  if (main) return gpuShapes;
  // Under GL (Mesa's compiler: 1-25 s a pipeline) only the main case: the Vulkan run covers the rest.
  return onGl ? [] : [reg(32, 32, 16, 4, 4), reg(64, 64, 16, 8, 8)];
}

// Forced variants: two fat register tiles (one with TM > M and TN·8 > columns
// on the small cases), the GPU tiles above; plus the adapter's own pick.
const variantsFor = (cs: { w: S4; stride: number; pad: number }): Array<GemmVariant | null> => [
  { kind: "fat", tm: 4, tn: 4 },
  { kind: "fat", tm: 16, tn: 2 },
  ...gpuTiles(cs),
  null,
];
const vname = (v: GemmVariant | null) => (v ? JSON.stringify(v) : "default");
/**
 * Winograd F(4×4)'s forced GEMMs: its 36 GEMMs are the bmm F(2×2) runs every tile through (16 of
 * them), so the default and one GPU tile (none under GL); its windows are WINDOWS.
 */
const wino4Variants = (): Array<GemmVariant | null> =>
  onGl ? [null] : [null, reg(32, 32, 16, 4, 4)];
const WINDOWS: WindowChoice[] = [{ kc: 16, tm: 4, tn: 4 }, { kc: 512, tm: 8, tn: 4 }];

const CASES: Array<{ name: string; x: S4; w: S4; stride: number; pad: number; bias: boolean }> = [
  {
    name: "3x3 odd sizes, 65 out channels",
    x: [2, 3, 7, 7],
    w: [65, 3, 3, 3],
    stride: 1,
    pad: 1,
    bias: true,
  },
  {
    name: "7x7/2 stem, 3 channels, batch 1",
    x: [1, 3, 15, 13],
    w: [5, 3, 7, 7],
    stride: 2,
    pad: 3,
    bias: false,
  },
  {
    name: "7x7/2 stem, 1 channel",
    x: [2, 1, 16, 16],
    w: [4, 1, 7, 7],
    stride: 2,
    pad: 3,
    bias: false,
  },
  { name: "3x3 stride 2", x: [2, 4, 8, 9], w: [6, 4, 3, 3], stride: 2, pad: 1, bias: true },
  { name: "1x1", x: [2, 5, 6, 6], w: [7, 5, 1, 1], stride: 1, pad: 0, bias: false },
  { name: "1x1 stride 2", x: [1, 4, 5, 5], w: [3, 4, 1, 1], stride: 2, pad: 0, bias: true },
  {
    name: "2x3 kernel stride 3 pad 2",
    x: [2, 3, 5, 4],
    w: [2, 3, 2, 3],
    stride: 3,
    pad: 2,
    bias: false,
  },
  // Tiny maps: taps that only read padding are skipped (layer4 at 32 px).
  {
    name: "3x3 on 1x1 (8 dead taps)",
    x: [2, 8, 1, 1],
    w: [6, 8, 3, 3],
    stride: 1,
    pad: 1,
    bias: true,
  },
  {
    name: "3x3/2 on 2x2 (5 dead taps)",
    x: [2, 5, 2, 2],
    w: [4, 5, 3, 3],
    stride: 2,
    pad: 1,
    bias: false,
  },
  { name: "5x5 on 2x3, pad 2", x: [1, 3, 2, 3], w: [4, 3, 5, 5], stride: 1, pad: 2, bias: false },
  // Winograd edges: partial 2×2 and 4×4 tiles, pad 0 and 2, item counts not a multiple of 4.
  {
    name: "3x3 pad 0, odd output",
    x: [1, 3, 7, 6],
    w: [5, 3, 3, 3],
    stride: 1,
    pad: 0,
    bias: true,
  },
  { name: "3x3 pad 2", x: [2, 3, 5, 4], w: [4, 3, 3, 3], stride: 1, pad: 2, bias: false },
  { name: "512 in channels", x: [1, 512, 4, 4], w: [8, 512, 3, 3], stride: 1, pad: 1, bias: false },
  { name: "512 out channels", x: [1, 8, 4, 4], w: [512, 8, 3, 3], stride: 1, pad: 1, bias: true },
];

for (const cs of CASES) {
  Deno.test(`conv2d GPU == CPU: ${cs.name} x[${cs.x}] w[${cs.w}] s${cs.stride} p${cs.pad}`, async () => {
    const o = { stride: cs.stride, pad: cs.pad };
    const x = cpuTensor(cs.x, randn(numel(cs.x), 1));
    const w = cpuTensor(cs.w, randn(numel(cs.w), 2, 0.3));
    const b = cs.bias ? cpuTensor([cs.w[0]], randn(cs.w[0], 3)) : null;
    const y = conv2dCpu(x, w, b, o);
    const dy = cpuTensor(y.shape, randn(y.data.length, 4));
    const yMag = conv2dCpu(abs(x), abs(w), b && abs(b), o).data;
    const dx = conv2dBackwardInputCpu(dy, w, cs.x, o);
    const dxMag = conv2dBackwardInputCpu(abs(dy), abs(w), cs.x, o).data;
    const dw = conv2dBackwardWeightCpu(dy, x, cs.w, o);
    const dwMag = conv2dBackwardWeightCpu(abs(dy), abs(x), cs.w, o).data;
    const db = conv2dBackwardBiasCpu(dy), dbMag = conv2dBackwardBiasCpu(abs(dy)).data;

    const tx = Tensor.from(gpu, x.data, cs.x), tw = Tensor.from(gpu, w.data, cs.w);
    const tb = b && Tensor.from(gpu, b.data, b.shape), tdy = Tensor.from(gpu, dy.data, dy.shape);
    // Both algorithms where Winograd applies (3×3, stride 1, pad ≤ 2), each with every variant.
    const wino = cs.w[2] === 3 && cs.w[3] === 3 && cs.stride === 1 && cs.pad <= 2;
    // col2im changes only grad-input (forward and grad-weight stay the implicit GEMM).
    const algos = [
      "gemm",
      "col2im",
      ...(wino ? ["winograd", "winograd4"] as const : []),
    ] as const;
    for (const algo of algos) {
      // Winograd's and col2im's GEMMs also through uniform windows: one chunk of 16 (several
      // chunks accumulate), one of 512 (panels of ≤ 32 rows/columns: several row/column blocks).
      const choices: Array<
        { variant?: GemmVariant; window?: WindowChoice; channelMajorCols?: boolean; label: string }
      > = [
        ...(algo === "winograd4" ? wino4Variants() : variantsFor(cs)).map((v) =>
          v ? { variant: v, label: vname(v) } : { label: "default" }
        ),
        ...(algo !== "gemm" ? WINDOWS.map((w) => ({ window: w, label: JSON.stringify(w) })) : []),
        // col2im's channel-major columns (a GPU tuner candidate): the fat tile and a GPU tile
        ...(algo === "col2im"
          ? [
            { channelMajorCols: true, label: "channel-major cols" },
            ...(onGl ? [] : [{
              channelMajorCols: true,
              variant: reg(32, 32, 16, 4, 4),
              label: "channel-major cols reg32x32",
            }]),
          ]
          : []),
      ];
      for (const { label: vl, ...choice } of choices) {
        const ov = { ...o, ...choice, algo };
        const label = `${algo} ${vl}`;
        await gpu.checked(async () => {
          const gy = conv2d(tx, tw, tb, ov);
          assertEquals(gy.shape, y.shape);
          const rel = relTol(algo);
          assertNear(await gy.read(), y.data, yMag, `forward ${label}`, rel);
          const gdx = conv2dBackwardInput(tdy, tw, cs.x, ov);
          assertNear(await gdx.read(), dx.data, dxMag, `grad-input ${label}`, rel);
          // Split-K (implicit GEMM only): the default, one slice (written directly) and an uneven 3.
          for (const splits of algo.startsWith("winograd") ? [undefined] : [undefined, 1, 3]) {
            const gdw = conv2dBackwardWeight(tdy, tx, cs.w, { ...ov, splits });
            const lw = `grad-weight ${label} splits ${splits}`;
            assertNear(await gdw.read(), dw.data, dwMag, lw, rel);
            gdw.dispose();
          }
          gy.dispose();
          gdx.dispose();
        });
      }
    }
    assertNear(await conv2dBackwardBias(tdy).read(), db.data, dbMag, "grad-bias");
  });
}

Deno.test("conv2d GPU == CPU with the largest fat tile the software default picks (32x32; 16x16 on GL)", async () => {
  const variant: GemmVariant = { kind: "fat", tm: maxFatTile(gpu), tn: maxFatTile(gpu) };
  const xs: S4 = [3, 8, 10, 11], ws: S4 = [40, 8, 3, 3];
  const x = cpuTensor(xs, randn(numel(xs), 21)), w = cpuTensor(ws, randn(numel(ws), 22, 0.3));
  const y = conv2dCpu(x, w, null, { stride: 1, pad: 1 }),
    dy = cpuTensor(y.shape, randn(y.data.length, 23));
  const tx = Tensor.from(gpu, x.data, xs), tw = Tensor.from(gpu, w.data, ws);
  const tdy = Tensor.from(gpu, dy.data, dy.shape);
  for (const algo of ["gemm", "winograd"] as const) {
    const o = { stride: 1, pad: 1, variant, algo };
    assertNear(
      await conv2d(tx, tw, null, o).read(),
      y.data,
      conv2dCpu(abs(x), abs(w), null, o).data,
      "forward",
    );
    assertNear(
      await conv2dBackwardInput(tdy, tw, xs, o).read(),
      conv2dBackwardInputCpu(dy, w, xs, o).data,
      conv2dBackwardInputCpu(abs(dy), abs(w), xs, o).data,
      "grad-input",
    );
    assertNear(
      await conv2dBackwardWeight(tdy, tx, ws, o).read(),
      conv2dBackwardWeightCpu(dy, x, ws, o).data,
      conv2dBackwardWeightCpu(abs(dy), abs(x), ws, o).data,
      "grad-weight",
    );
  }
});

Deno.test("conv2d grad-weight: dead taps' weights are exactly 0 in a reused (dirty) buffer", async () => {
  // 3×3 on a 1×1 map: only the centre tap sees data. Leave NaN in pooled buffers of the sizes
  // grad-weight will take (dw itself, and split-K scratch), then check every dead tap is 0.
  const o = { stride: 1, pad: 1 };
  const xs: S4 = [4, 6, 1, 1], ws: S4 = [5, 6, 3, 3];
  const tx = Tensor.from(gpu, randn(numel(xs), 7), xs);
  const tdy = Tensor.from(gpu, randn(4 * 5, 8), [4, 5, 1, 1]);
  for (const splits of [1, 2]) {
    const n = numel(ws);
    for (const size of [n, splits * n]) {
      Tensor.from(gpu, new Float32Array(size).fill(NaN)).dispose();
    }
    const dw = await conv2dBackwardWeight(tdy, tx, ws, { ...o, splits }).read();
    const ref = conv2dBackwardWeightCpu(
      cpuTensor([4, 5, 1, 1], await tdy.read()),
      cpuTensor(xs, await tx.read()),
      ws,
      o,
    ).data;
    for (let i = 0; i < n; i++) {
      if (i % 9 !== 4) assertEquals(dw[i], 0, `splits ${splits}: dead tap ${i}`);
      else assertClose([dw[i]], [ref[i]], { atol: 1e-5, rtol: 1e-5, label: `live tap ${i}` });
    }
  }
  // f16 storage: the same zeroing, in a dirty f16 buffer of dw's size
  if (hasF16) {
    const hx = Tensor.from(gpu, await tx.read(), xs, "f16");
    const hdy = Tensor.from(gpu, await tdy.read(), [4, 5, 1, 1], "f16");
    Tensor.from(gpu, new Float32Array(numel(ws)).fill(NaN), [numel(ws)], "f16").dispose();
    const dw = await conv2dBackwardWeight(hdy, hx, ws, o).read();
    for (let i = 0; i < numel(ws); i++) {
      if (i % 9 !== 4) assertEquals(dw[i], 0, `f16: dead tap ${i}`);
      else assert(Number.isFinite(dw[i]), `f16: live tap ${i} is ${dw[i]}`);
    }
    hx.dispose();
    hdy.dispose();
  }
});

Deno.test("conv2d grad-weight is deterministic and independent of the split count", async () => {
  const o = { stride: 1, pad: 1 };
  const xs: S4 = [2, 6, 9, 9], ws: S4 = [5, 6, 3, 3];
  const tx = Tensor.from(gpu, randn(numel(xs), 5), xs);
  const tdy = Tensor.from(gpu, randn(2 * 5 * 81, 6), [2, 5, 9, 9]);
  const a = await conv2dBackwardWeight(tdy, tx, ws, { ...o, splits: 7 }).read();
  const b = await conv2dBackwardWeight(tdy, tx, ws, { ...o, splits: 7 }).read();
  assertEquals(a, b);
  const c = await conv2dBackwardWeight(tdy, tx, ws, { ...o, splits: 2 }).read();
  assertClose(c, a, { atol: 1e-5, rtol: 1e-5, label: "splits 2 vs 7" });
});

Deno.test("conv2d rejects mismatched shapes with clear errors", () => {
  const x = Tensor.zeros(gpu, [1, 3, 8, 8]), w = Tensor.zeros(gpu, [4, 2, 3, 3]);
  assertThrows(() => conv2d(x, w, null, { stride: 1, pad: 1 }), /3 channels but w expects 2/);
  const w3 = Tensor.zeros(gpu, [4, 3, 3, 3]);
  assertThrows(
    () => conv2d(x, w3, Tensor.zeros(gpu, [5]), { stride: 1, pad: 1 }),
    /bias must be \[4\]/,
  );
  assertThrows(() => conv2d(x, w3, null, { stride: 0, pad: 1 }), /stride/);
  assertThrows(
    () => conv2d(x, Tensor.zeros(gpu, [4, 3, 11, 11]), null, { stride: 1, pad: 1 }),
    /does not fit/,
  );
  const dy = Tensor.zeros(gpu, [1, 4, 7, 7]);
  assertThrows(
    () => conv2dBackwardInput(dy, w3, [1, 3, 8, 8], { stride: 1, pad: 1 }),
    /dy must be \[1,4,8,8\]/,
  );
});

Deno.test("conv2d: Winograd where it does not apply is a clear error", () => {
  const x = Tensor.zeros(gpu, [1, 3, 8, 8]), w = Tensor.zeros(gpu, [4, 3, 3, 3]);
  assertThrows(
    () => conv2d(x, w, null, { stride: 2, pad: 1, algo: "winograd" }),
    /Winograd needs a 3×3 stride-1 kernel.*stride 2/,
  );
  const w5 = Tensor.zeros(gpu, [4, 3, 5, 5]);
  assertThrows(() => conv2d(x, w5, null, { stride: 1, pad: 2, algo: "winograd" }), /kernel 5×5/);
  const dy = Tensor.zeros(gpu, [1, 4, 8, 8]);
  assertThrows(
    () => conv2dBackwardWeight(dy, x, [4, 3, 5, 5], { stride: 1, pad: 2, algo: "winograd4" }),
    /conv2dBackwardWeight: Winograd needs a 3×3 stride-1 kernel.*kernel 5×5/,
  );
});

Deno.test("conv2d auto: Winograd F(4×4) from 14×14 maps on software adapters, F(2×2) below, the tuner's prior on GPUs", async () => {
  const algo = (hw: number, c = 8) =>
    convAlgorithm(gpu, [2, c, hw, hw], [c, c, 3, 3], { stride: 1, pad: 1 });
  const onHardware = await dryRun(gpu, () => [algo(14), algo(56)], { hardware: true });
  assertEquals(onHardware.result, ["gemm", "gemm"]);
  if (!gpu.isSoftware) return;
  assertEquals([algo(1), algo(2), algo(13), algo(14), algo(56)], [
    "gemm",
    "winograd",
    "winograd",
    "winograd4",
    "winograd4",
  ]);
  // 3×3 stride 2: neither
  assertEquals(convAlgorithm(gpu, [2, 8, 28, 28], [8, 8, 3, 3], { stride: 2, pad: 1 }), "gemm");
});

Deno.test("the adapter's default variant is a shape the tests force", () => {
  for (const [m, cols] of [[64, 16 * 56 * 56], [64, 64], [512, 4 * 7 * 7]]) {
    const v = chooseVariant(gpu, m, cols);
    if (gpu.isSoftware) assert(v.kind === "fat", JSON.stringify(v));
    else {assert(
        GPU_CANDIDATES.some((c) => JSON.stringify(c) === JSON.stringify(v)),
        JSON.stringify(v),
      );}
  }
});

// ---- CPU references vs central finite differences (float64) ---------------

function fdCheck(
  name: string,
  f: (v: Float64Array) => number,
  at: Float64Array,
  analytic: Float64Array,
): void {
  const h = 1e-5;
  const fd = new Float64Array(at.length);
  for (let i = 0; i < at.length; i++) {
    const keep = at[i];
    at[i] = keep + h;
    const up = f(at);
    at[i] = keep - h;
    const down = f(at);
    at[i] = keep;
    fd[i] = (up - down) / (2 * h);
  }
  assertClose(analytic, fd, { atol: 1e-7, rtol: 1e-6, label: name });
}

const f64 = (n: number, seed: number) => Float64Array.from(randn(n, seed));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

for (
  const [xs, ws, stride, pad] of [
    [[2, 2, 5, 5], [3, 2, 3, 3], 2, 1],
    [[1, 3, 4, 4], [2, 3, 1, 1], 1, 0],
    [[1, 1, 9, 8], [2, 1, 7, 7], 2, 3],
  ] as Array<[S4, S4, number, number]>
) {
  Deno.test(`conv2d CPU gradients match finite differences x[${xs}] w[${ws}] s${stride} p${pad}`, () => {
    const o = { stride, pad };
    const x = f64(numel(xs), 11), w = f64(numel(ws), 12), b = f64(ws[0], 13);
    const ys = convShapes(xs, ws, o);
    const g = f64(numel(ys), 14); // L = Σ g·y, so dL/dy = g
    const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) =>
      dot(conv2dF64(xv, xs, wv, ws, bv, o), g);
    fdCheck("dx", (v) => loss(v, w, b), x, conv2dBackwardInputF64(g, w, xs, ws, o));
    fdCheck("dw", (v) => loss(x, v, b), w, conv2dBackwardWeightF64(g, x, xs, ws, o));
    fdCheck("db", (v) => loss(x, w, v), b, conv2dBackwardBiasF64(g, ys));
  });
}

// ---- f16 storage ----------------------------------------------------------
//
// The f16 kernels read half inputs, widen them, accumulate in f32 and round each output once, so
// against the f32 CPU reference on the same half inputs they differ by that one rounding (≤ 2⁻¹¹
// relative, under assertHalfClose's rtol of 1e-3) plus the f32 summation-order difference the f32
// tests allow, 1e-5 · Σ|terms| (see the header). That second part is absolute for outputs that
// cancel, so atol is 1e-5 · max Σ|terms| of the output (the f32 bound at its worst element; here
// 4e-5 to 8e-4, against a half-ulp of 4.9e-4 at 1 and outputs mostly of magnitude 1 to 20) plus
// 2⁻²⁴ (f16's subnormal spacing, for outputs near 0).
// rtol 1e-3 would also pass a store that truncates (≤ 2⁻¹⁰), so the check also wants at least 90%
// of the outputs to be exactly the reference rounded to the nearest half: with one rounding only
// those within the f32 error (~1e-6 relative) of a midpoint between two halves may differ.

/** assertHalfClose with atol from the output's Σ|terms| (see above); checks the dtype is f16. */
async function assertHalf(t: Tensor, want: Float32Array, mag: Float32Array, label: string) {
  assertEquals(t.dtype, "f16", `${label}: dtype`);
  const got = await t.read();
  const atol = 1e-5 * mag.reduce((a, b) => Math.max(a, b), 0) + 2 ** -24;
  assertHalfClose(got, want, { atol, label });
  const rounded = half(want);
  const off = got.filter((v, i) => v !== rounded[i]).length;
  assert(
    off <= Math.ceil(0.1 * got.length),
    `${label}: ${off} of ${got.length} outputs are not the reference rounded to f16`,
  );
}

/** Leaves NaN in the pooled buffers the next f16 tensors of n values get (acquire takes the oldest). */
function dirtyHalfPool(n: number) {
  const nan = new Float32Array(n).fill(NaN);
  for (const t of Array.from({ length: 8 }, () => Tensor.from(gpu, nan, [n], "f16"))) t.dispose();
}

const HALF_CASES: Array<
  { name: string; x: S4; w: S4; stride: number; pad: number; bias: boolean }
> = [
  { name: "3x3 pad 1, bias", x: [2, 3, 7, 7], w: [6, 3, 3, 3], stride: 1, pad: 1, bias: true },
  { name: "3x3 pad 0, odd", x: [1, 3, 7, 6], w: [5, 3, 3, 3], stride: 1, pad: 0, bias: false },
  { name: "7x7/2 stem", x: [1, 3, 15, 13], w: [5, 3, 7, 7], stride: 2, pad: 3, bias: false },
  { name: "3x3/2, bias", x: [2, 4, 8, 9], w: [6, 4, 3, 3], stride: 2, pad: 1, bias: true },
  { name: "1x1", x: [2, 5, 6, 6], w: [7, 5, 1, 1], stride: 1, pad: 0, bias: false },
  { name: "1x1/2, bias", x: [1, 4, 5, 5], w: [3, 4, 1, 1], stride: 2, pad: 0, bias: true },
  // dead taps: f16 grad-weight zeroes them in its own (f16) buffer
  { name: "3x3 on 1x1", x: [2, 8, 1, 1], w: [6, 8, 3, 3], stride: 1, pad: 1, bias: true },
];
// a fat tile, the GPU tiles (gpuTiles), the adapter's default
const halfVariantsFor = (cs: { w: S4; stride: number; pad: number }) => [
  { kind: "fat", tm: 4, tn: 4 } as GemmVariant,
  ...gpuTiles(cs),
  null,
];

for (const cs of HALF_CASES) {
  Deno.test({
    name:
      `conv2d f16 storage == CPU on halves: ${cs.name} x[${cs.x}] w[${cs.w}] s${cs.stride} p${cs.pad}`,
    ignore: !hasF16,
    async fn() {
      const o = { stride: cs.stride, pad: cs.pad };
      const x = cpuTensor(cs.x, half(randn(numel(cs.x), 31)));
      const w = cpuTensor(cs.w, half(randn(numel(cs.w), 32, 0.3)));
      const b = cs.bias ? cpuTensor([cs.w[0]], half(randn(cs.w[0], 33))) : null;
      const y = conv2dCpu(x, w, b, o);
      const dy = cpuTensor(y.shape, half(randn(y.data.length, 34)));
      const yMag = conv2dCpu(abs(x), abs(w), b && abs(b), o).data;
      const dx = conv2dBackwardInputCpu(dy, w, cs.x, o).data;
      const dxMag = conv2dBackwardInputCpu(abs(dy), abs(w), cs.x, o).data;
      const dw = conv2dBackwardWeightCpu(dy, x, cs.w, o).data;
      const dwMag = conv2dBackwardWeightCpu(abs(dy), abs(x), cs.w, o).data;

      const h = (t: CpuTensor) => Tensor.from(gpu, t.data, t.shape, "f16");
      const tx = h(x), tw = h(w), tb = b && h(b), tdy = h(dy);
      const wino = cs.w[2] === 3 && cs.w[3] === 3 && cs.stride === 1 && cs.pad <= 2;
      const algos = [
        "gemm",
        "col2im",
        "auto",
        ...(wino ? ["winograd", "winograd4"] as const : []),
      ] as const;
      for (const algo of algos) {
        // Winograd's and col2im's GEMMs also through uniform windows (f16 packs into f32 panels)
        const choices: Array<{ variant?: GemmVariant; window?: WindowChoice; label: string }> = [
          ...(algo === "winograd4" ? wino4Variants() : halfVariantsFor(cs)).map((v) =>
            v ? { variant: v, label: vname(v) } : { label: "default" }
          ),
          ...(algo === "col2im" || algo.startsWith("winograd")
            ? [{ window: WINDOWS[0], label: JSON.stringify(WINDOWS[0]) }]
            : []),
        ];
        for (const { label: vl, ...choice } of choices) {
          const ov = { ...o, ...choice, algo };
          const label = `f16 ${algo} ${vl}`;
          await gpu.checked(async () => {
            const gy = conv2d(tx, tw, tb, ov);
            await assertHalf(gy, y.data, yMag, `forward ${label}`);
            const gdx = conv2dBackwardInput(tdy, tw, cs.x, ov);
            await assertHalf(gdx, dx, dxMag, `grad-input ${label}`);
            // split-K: the default, one slice (written in f16 directly), three (f32 slices)
            for (const splits of algo.startsWith("winograd") ? [undefined] : [undefined, 1, 3]) {
              dirtyHalfPool(numel(cs.w)); // dead taps must be zeroed in dw (3x3 on 1x1)
              const gdw = conv2dBackwardWeight(tdy, tx, cs.w, { ...ov, splits });
              await assertHalf(gdw, dw, dwMag, `grad-weight ${label} splits ${splits}`);
              gdw.dispose();
            }
            gy.dispose();
            gdx.dispose();
          });
        }
      }
      const db = conv2dBackwardBias(tdy);
      await assertHalf(
        db,
        conv2dBackwardBiasCpu(dy).data,
        conv2dBackwardBiasCpu(abs(dy)).data,
        "grad-bias",
      );
      for (const t of [tx, tw, tb, tdy, db]) t?.dispose();
    },
  });
}

Deno.test({
  name: "conv2d: operands of mixed storage types are a clear error naming the op",
  ignore: !hasF16,
  fn() {
    const o = { stride: 1, pad: 1 };
    const x = Tensor.zeros(gpu, [1, 3, 4, 4]), xh = Tensor.zeros(gpu, [1, 3, 4, 4], "f16");
    const w = Tensor.zeros(gpu, [2, 3, 3, 3]), wh = Tensor.zeros(gpu, [2, 3, 3, 3], "f16");
    const bh = Tensor.zeros(gpu, [2], "f16"), dyh = Tensor.zeros(gpu, [1, 2, 4, 4], "f16");
    const b = Tensor.zeros(gpu, [2]), mix = /operands mix f32 and f16/;
    for (const algo of ["gemm", "winograd", "winograd4", "col2im", "auto"] as const) {
      const oa = { ...o, algo };
      assertThrows(() => conv2d(x, wh, null, oa), /^Error: conv2d: operands mix f32 and f16/);
      assertThrows(() => conv2d(x, w, bh, oa), mix);
      assertThrows(() => conv2d(xh, wh, b, oa), /conv2d: operands mix f16 and f32/);
      assertThrows(() => conv2dBackwardInput(dyh, w, x.shape, oa), /conv2dBackwardInput: .*mix/);
      assertThrows(() => conv2dBackwardWeight(dyh, x, w.shape, oa), /conv2dBackwardWeight: .*mix/);
    }
    for (const t of [x, xh, w, wh, b, bh, dyh]) t.dispose();
  },
});

Deno.test("every candidate a GPU's tuner times for a conv computes the CPU reference (split-K counts too)", async () => {
  // The candidate lists as a hardware GPU builds them (a dry run reading as hardware), then each
  // choice run for real here. 4×8×32×32, 3×3: K = 4,096 pixels, so grad-weight gets split counts
  // beyond the default's.
  const xs: S4 = [4, 8, 32, 32], ws: S4 = [8, 8, 3, 3], o = { stride: 1, pad: 1 };
  const g = { n: 4, c: 8, h: 32, w: 32, o: 8, oh: 32, ow: 32, kh: 3, kw: 3, ...o };
  const lists = await dryRun(gpu, () => ({
    fwd: convCandidates(gpu, "fwd", g),
    dgrad: convCandidates(gpu, "dgrad", g),
    wgrad: convCandidates(gpu, "wgrad", g),
  }), { hardware: true });
  const splitLabels = lists.result.wgrad.map((c) => c.label).filter((l) => /\/split\d+$/.test(l));
  assert(splitLabels.length >= 2, lists.result.wgrad.map((c) => c.label).join(" "));
  // the one-slab tiles where the implicit GEMM's inner dimension is short: 72 for the forward and
  // grad-input (8 channels × 9 taps), 4,096 for grad-weight
  const shortK = SHORT_K_CANDIDATES.map((v) => `gemm/${variantKey(v)}`);
  for (const op of ["fwd", "dgrad", "wgrad"] as const) {
    const labels = lists.result[op].map((c) => c.label);
    assertEquals(shortK.map((l) => labels.includes(l)), shortK.map(() => op !== "wgrad"), op);
  }
  const x = cpuTensor(xs, randn(numel(xs), 31)), w = cpuTensor(ws, randn(numel(ws), 32));
  const dy = cpuTensor([4, 8, 32, 32], randn(4 * 8 * 32 * 32, 33));
  const tx = Tensor.from(gpu, x.data, xs), tw = Tensor.from(gpu, w.data, ws);
  const tdy = Tensor.from(gpu, dy.data, dy.shape);
  const ref = {
    fwd: [conv2dCpu(x, w, null, o).data, conv2dCpu(abs(x), abs(w), null, o).data],
    dgrad: [
      conv2dBackwardInputCpu(dy, w, xs, o).data,
      conv2dBackwardInputCpu(abs(dy), abs(w), xs, o).data,
    ],
    wgrad: [
      conv2dBackwardWeightCpu(dy, x, ws, o).data,
      conv2dBackwardWeightCpu(abs(dy), abs(x), ws, o).data,
    ],
  };
  // under GL only the GPU tiles its tests compile there (onGl); Vulkan runs every one
  const tested = new Set(testedGpuCandidates().map(variantKey));
  const runsHere = (v?: GemmVariant) =>
    !onGl || !v || v.kind !== "reg" || tested.has(variantKey(v));
  for (const op of ["fwd", "dgrad", "wgrad"] as const) {
    for (const c of lists.result[op].filter((c) => runsHere(c.choice.variant))) {
      const oc = { ...o, ...c.choice };
      const out = op === "fwd"
        ? conv2d(tx, tw, null, oc)
        : op === "dgrad"
        ? conv2dBackwardInput(tdy, tw, xs, oc)
        : conv2dBackwardWeight(tdy, tx, ws, oc);
      const rel = relTol(c.choice.algo);
      assertNear(await out.read(), ref[op][0], ref[op][1], `${op} ${c.label}`, rel);
      out.dispose();
    }
  }
  for (const t of [tx, tw, tdy]) t.dispose();
});

// col2im's gather compiled per geometry (what hardware GPUs run: wgsl.ts withConstants) gives the
// uniform-driven kernel's bits, and that is the kernel a hardware GPU dispatches: strided 3×3,
// 1×1 and an uneven 5×5/3 with padding. A constant written into the wrong field, or a gather
// that ignored the switch, fails it.
Deno.test("col2im's gather per geometry == its uniform-driven form, bit for bit", async () => {
  const cases: Array<{ x: S4; w: S4; stride: number; pad: number }> = [
    { x: [2, 5, 9, 9], w: [6, 5, 3, 3], stride: 2, pad: 1 },
    { x: [2, 6, 8, 8], w: [4, 6, 1, 1], stride: 2, pad: 0 },
    { x: [1, 3, 11, 7], w: [5, 3, 5, 5], stride: 3, pad: 2 },
  ];
  for (const cs of cases) {
    const o = { stride: cs.stride, pad: cs.pad, algo: "col2im" as const };
    const [n, , h, wd] = cs.x, [oc, , kh, kw] = cs.w;
    const oh = Math.floor((h + 2 * cs.pad - kh) / cs.stride) + 1;
    const ow = Math.floor((wd + 2 * cs.pad - kw) / cs.stride) + 1;
    const dyShape: S4 = [n, oc, oh, ow];
    const w = Tensor.from(gpu, randn(numel(cs.w), 41), cs.w);
    const dy = Tensor.from(gpu, randn(numel(dyShape), 42), dyShape);
    const got: Float32Array[] = [];
    for (const baked of [false, true]) {
      setPerGeometry(baked);
      try {
        const dx = conv2dBackwardInput(dy, w, cs.x, o);
        got.push(await dx.read());
        dx.dispose();
      } finally {
        setPerGeometry("auto");
      }
    }
    assertEquals(got[1], got[0], `[${cs.x}] w[${cs.w}] /${cs.stride}`);
    const ref = conv2dBackwardInputCpu(
      cpuTensor(dyShape, await dy.read()),
      cpuTensor(cs.w, await w.read()),
      cs.x,
      o,
    );
    assertClose(got[0], ref.data, { atol: 1e-4, label: `[${cs.x}] w[${cs.w}]` });
    // on a hardware GPU the gather is the per-geometry kernel
    const names: string[] = [];
    await dryRun(gpu, () => conv2dBackwardInput(dy, w, cs.x, o).dispose(), {
      hardware: true,
      onDispatch: (d) => names.push(d.kernel.name),
    });
    const gather = names.filter((k) => k.startsWith("conv_dgrad_col2im"));
    const geometry = [cs.x[1], h, wd, oh, ow, kh, kw, cs.stride, cs.pad].join("x");
    assertEquals(gather, [`conv_dgrad_col2im:${geometry}`]);
    w.dispose();
    dy.dispose();
  }
});

// The GPU tiles' conv kernels compiled for their map sizes (what hardware GPUs run: conv2d.ts
// forMaps) give the uniform-driven kernels' bits for all three ops, and a hardware GPU dispatches
// them: a strided 3×3 on a non-square map, a 1×1/2 and an odd 5×5/3. A constant written into the
// wrong field (OH for OW, H for W) or a dispatch that ignored the switch fails it. Skipped under
// GL, whose compiler takes seconds a GPU tile (the Vulkan run covers it).
Deno.test({
  name: "GPU-tile convs per map size == their uniform-driven form, bit for bit, all three ops",
  ignore: onGl,
  fn: async () => {
    const cases: Array<{ x: S4; w: S4; stride: number; pad: number }> = [
      { x: [2, 5, 9, 7], w: [6, 5, 3, 3], stride: 2, pad: 1 },
      { x: [2, 6, 8, 6], w: [4, 6, 1, 1], stride: 2, pad: 0 },
      { x: [1, 3, 11, 7], w: [5, 3, 5, 5], stride: 3, pad: 2 },
    ];
    const tiles = [reg(32, 32, 16, 4, 4), reg(64, 64, 16, 8, 8)];
    for (const cs of cases) {
      const [n, , h, wd] = cs.x, [oc, , kh, kw] = cs.w;
      const oh = Math.floor((h + 2 * cs.pad - kh) / cs.stride) + 1;
      const ow = Math.floor((wd + 2 * cs.pad - kw) / cs.stride) + 1;
      const dyShape: S4 = [n, oc, oh, ow];
      const x = Tensor.from(gpu, randn(numel(cs.x), 51), cs.x);
      const w = Tensor.from(gpu, randn(numel(cs.w), 52), cs.w);
      const dy = Tensor.from(gpu, randn(numel(dyShape), 53), dyShape);
      for (const variant of tiles) {
        const o = { stride: cs.stride, pad: cs.pad, algo: "gemm" as const, variant, splits: 2 };
        const run = async () => {
          const outs = [
            conv2d(x, w, null, o),
            conv2dBackwardInput(dy, w, cs.x, o),
            conv2dBackwardWeight(dy, x, cs.w, o),
          ];
          const got = [];
          for (const t of outs) got.push(await t.read());
          outs.forEach((t) => t.dispose());
          return got;
        };
        const both = [];
        for (const baked of [false, true]) {
          setPerGeometry(baked);
          try {
            both.push(await run());
          } finally {
            setPerGeometry("auto");
          }
        }
        const label = `[${cs.x}] w[${cs.w}] /${cs.stride} ${variantKey(variant)}`;
        assertEquals(both[1], both[0], label);
        const ref = conv2dCpu(
          cpuTensor(cs.x, await x.read()),
          cpuTensor(cs.w, await w.read()),
          null,
          o,
        );
        assertClose(both[0][0], ref.data, { atol: 1e-4, label });
        // on a hardware GPU each op's kernel carries the map sizes
        const names: string[] = [];
        await dryRun(gpu, () => {
          conv2d(x, w, null, o).dispose();
          conv2dBackwardInput(dy, w, cs.x, o).dispose();
          conv2dBackwardWeight(dy, x, cs.w, o).dispose();
        }, { hardware: true, onDispatch: (d) => names.push(d.kernel.name) });
        const maps = `:${h}x${wd}x${oh}x${ow}`;
        const convs = names.filter((k) => /^conv_(fwd|dgrad|wgrad):reg/.test(k));
        assertEquals(convs.length, 3, names.join(" "));
        assert(convs.every((k) => k.endsWith(maps)), convs.join(" "));
      }
      for (const t of [x, w, dy]) t.dispose();
    }
  },
});

// Winograd's transforms compiled for their call's fields (what hardware GPUs run: winograd.ts run,
// wgsl.ts withParams) give the uniform-driven kernels' bits, F(2×2) and F(4×4), all three ops, with
// a bias, pad 1 and 0, uneven tiles; and a hardware GPU dispatches transforms that read no field
// but the item count. A field baked with another's value, or a run() that ignored the switch,
// fails it.
Deno.test("Winograd transforms per call == their uniform-driven form, bit for bit, all three ops", async () => {
  const cases: Array<{ x: S4; w: S4; pad: number }> = [
    { x: [2, 3, 9, 7], w: [5, 3, 3, 3], pad: 1 },
    { x: [1, 4, 10, 13], w: [3, 4, 3, 3], pad: 0 },
  ];
  for (const cs of cases) {
    const [n, , h, wd] = cs.x, oc = cs.w[0];
    const oh = h + 2 * cs.pad - 2, ow = wd + 2 * cs.pad - 2;
    const dyShape: S4 = [n, oc, oh, ow];
    const x = Tensor.from(gpu, randn(numel(cs.x), 61), cs.x);
    const w = Tensor.from(gpu, randn(numel(cs.w), 62), cs.w);
    const b = Tensor.from(gpu, randn(oc, 63), [oc]);
    const dy = Tensor.from(gpu, randn(numel(dyShape), 64), dyShape);
    for (const algo of ["winograd", "winograd4"] as const) {
      const o = { stride: 1, pad: cs.pad, algo };
      const record = () => [
        conv2d(x, w, b, o),
        conv2dBackwardInput(dy, w, cs.x, o),
        conv2dBackwardWeight(dy, x, cs.w, o),
      ];
      const both = [];
      for (const baked of [false, true]) {
        setPerGeometry(baked);
        try {
          const outs = record(), got = [];
          for (const t of outs) got.push(await t.read());
          outs.forEach((t) => t.dispose());
          both.push(got);
        } finally {
          setPerGeometry("auto");
        }
      }
      const label = `[${cs.x}] p${cs.pad} ${algo}`;
      assertEquals(both[1], both[0], label);
      const ref = conv2dCpu(
        cpuTensor(cs.x, await x.read()),
        cpuTensor(cs.w, await w.read()),
        cpuTensor([oc], await b.read()),
        o,
      );
      assertClose(both[0][0], ref.data, { atol: 1e-3, label });
      const transforms: string[] = [];
      await dryRun(gpu, () => record().forEach((t) => t.dispose()), {
        hardware: true,
        onDispatch: (d) => {
          if (/^wino/.test(d.kernel.name)) transforms.push(d.kernel.code);
        },
      });
      assert(transforms.length >= 6, `${transforms.length} transforms`);
      for (const code of transforms) {
        const fields = [...code.matchAll(/\bp\.(\w+)/g)].map((m) => m[1]);
        assertEquals([...new Set(fields)], ["items"], label);
      }
    }
    for (const t of [x, w, b, dy]) t.dispose();
  }
});
