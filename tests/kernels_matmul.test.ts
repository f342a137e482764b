/**
 * matmul (all transpose combinations), linear and linearBackward on the GPU
 * against the CPU references for every tile variant (forced), and the CPU
 * references' gradients against central finite differences in float64.
 * Tolerance: |gpu − ref| ≤ 1e-5 · Σₖ|a·b| + 1e-7 per element (f32 rounding
 * grows with the magnitude of the summed terms).
 */
import { Tensor } from "../kernels/tensor.ts";
import type { Gpu } from "../kernels/device.ts";
import { bmm, linear, linearBackward, matmul, vec4Operands } from "../kernels/gemm/matmul.ts";
import { linearBackwardCpu, linearCpu, matmulCpu, matmulF64 } from "../kernels/cpu/matmul.ts";
import { type CpuTensor, cpuTensor } from "../kernels/cpu/tensor.ts";
import {
  chooseVariant,
  fitsAdapter,
  type GemmVariant,
  GPU_CANDIDATES,
  maxFatTile,
  reg,
  regSharedBytes,
  regThreads,
  SHORT_K,
  SHORT_K_CANDIDATES,
  splitKCandidates,
  testedGpuCandidates,
  tileCandidates,
  variantKey,
} from "../kernels/gemm/variants.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./helpers.ts";
import { gpu, onGl, randn } from "./gpu.ts";
import type { WindowChoice } from "../kernels/gemm/window_plan.ts";
import { assertHalfClose, half, hasF16 } from "./f16.ts";
import { dryRun } from "../kernels/dry_run.ts";

const abs = (t: CpuTensor) => cpuTensor(t.shape, t.data.map(Math.abs));

function assertNear(got: Float32Array, want: Float32Array, mag: Float32Array, label: string) {
  assertEquals(got.length, want.length, `${label}: length`);
  let worst = -1, worstRatio = 1;
  for (let i = 0; i < got.length; i++) {
    const ratio = Math.abs(got[i] - want[i]) / (1e-5 * mag[i] + 1e-7);
    if (!(ratio <= worstRatio)) [worst, worstRatio] = [i, ratio];
  }
  assert(worst < 0, `${label}: [${worst}] got ${got[worst]}, want ${want[worst]}`);
}

const VARIANTS: Array<GemmVariant | null> = [
  { kind: "fat", tm: 4, tn: 4 },
  { kind: "fat", tm: 16, tn: 2 },
  ...testedGpuCandidates(), // every shape the GPU tuner may pick (one under GL)
  null,
];
/** One small GPU tile for the tests that run a fat and a GPU tile (the GL run's one tile there). */
const SMALL_GPU_TILE = onGl ? testedGpuCandidates()[0] : reg(32, 32, 16, 4, 4);
// The windowed kernel (gemm/windows.ts), forced: chunks of 16 (several accumulate) and
// of 512 (panels of ≤ 32 rows/columns: several row and column blocks).
const WINDOWS: WindowChoice[] = [{ kc: 16, tm: 4, tn: 4 }, { kc: 512, tm: 8, tn: 4 }];
type Choice = { variant?: GemmVariant; window?: WindowChoice };
const choices = (vs: Array<GemmVariant | null>): Choice[] => [
  ...vs.map((v) => (v ? { variant: v } : {})),
  ...WINDOWS.map((window) => ({ window })),
];
const cname = (c: Choice) => JSON.stringify(c) === "{}" ? "default" : JSON.stringify(c);

// [M, K, N]: scalar, odd sizes across tile edges, a long inner dimension.
const SHAPES: Array<[number, number, number]> = [[1, 1, 1], [7, 13, 65], [65, 33, 130], [
  3,
  700,
  17,
]];

for (const [M, K, N] of SHAPES) {
  Deno.test(`matmul GPU == CPU, M=${M} K=${K} N=${N}, all transposes and variants`, async () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const o = { transA, transB };
        const a = cpuTensor(transA ? [K, M] : [M, K], randn(M * K, 1));
        const b = cpuTensor(transB ? [N, K] : [K, N], randn(K * N, 2));
        const want = matmulCpu(a, b, o), mag = matmulCpu(abs(a), abs(b), o).data;
        const ta = Tensor.from(gpu, a.data, a.shape), tb = Tensor.from(gpu, b.data, b.shape);
        // Every variant without transposes; the transposed loaders with one fat and one GPU tile.
        const vs = choices(transA || transB ? [VARIANTS[0], SMALL_GPU_TILE] : VARIANTS);
        for (const v of vs) {
          const c = await gpu.checked(() => matmul(ta, tb, { ...o, ...v }));
          assertEquals(c.shape, [M, N]);
          assertNear(await c.read(), want.data, mag, `${transA}/${transB} ${cname(v)}`);
          c.dispose();
        }
      }
    }
  });
}

Deno.test("bmm GPU == CPU per batch entry, all transposes, fat and GPU tiles", async () => {
  const [B, M, K, N] = [3, 9, 20, 37];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const o = { transA, transB };
      const aShape = transA ? [K, M] : [M, K], bShape = transB ? [N, K] : [K, N];
      const a = randn(B * M * K, 7), b = randn(B * K * N, 8);
      const ta = Tensor.from(gpu, a, [B, ...aShape]), tb = Tensor.from(gpu, b, [B, ...bShape]);
      for (const v of choices([VARIANTS[0], SMALL_GPU_TILE, null])) {
        const c = await gpu.checked(() => bmm(ta, tb, { ...o, ...v }));
        assertEquals(c.shape, [B, M, N]);
        const got = await c.read();
        for (let z = 0; z < B; z++) {
          const az = cpuTensor(aShape, a.subarray(z * M * K, (z + 1) * M * K));
          const bz = cpuTensor(bShape, b.subarray(z * K * N, (z + 1) * K * N));
          const want = matmulCpu(az, bz, o), mag = matmulCpu(abs(az), abs(bz), o).data;
          const label = `${transA}/${transB} ${cname(v)} batch ${z}`;
          assertNear(got.subarray(z * M * N, (z + 1) * M * N), want.data, mag, label);
        }
        c.dispose();
      }
    }
  }
  // sharedB: every A[z] times one 2-D B
  const a = randn(B * M * K, 9), b = randn(K * N, 10);
  const ta = Tensor.from(gpu, a, [B, M, K]), tb = Tensor.from(gpu, b, [K, N]);
  for (const v of [{}, ...WINDOWS.map((window) => ({ window }))]) {
    const shared = await bmm(ta, tb, { sharedB: true, ...v }).read();
    for (let z = 0; z < B; z++) {
      const az = cpuTensor([M, K], a.subarray(z * M * K, (z + 1) * M * K));
      const bz = cpuTensor([K, N], b);
      const want = matmulCpu(az, bz), mag = matmulCpu(abs(az), abs(bz)).data;
      const label = `sharedB ${cname(v)} batch ${z}`;
      assertNear(shared.subarray(z * M * N, (z + 1) * M * N), want.data, mag, label);
    }
  }
  // sharedA: one 2-D A (read transposed, as col2im's channel-major GEMM does) times every B[z], on
  // the fat and a GPU tile, split-K included (a kernel that offset A by the batch entry fails it)
  const a2 = randn(K * M, 11), b3 = randn(B * K * N, 12);
  const tA = Tensor.from(gpu, a2, [K, M]), tB = Tensor.from(gpu, b3, [B, K, N]);
  for (const v of choices([VARIANTS[0], SMALL_GPU_TILE, null])) {
    for (const splitK of v.variant?.kind === "reg" ? [undefined, 2] : [undefined]) {
      const c = await bmm(tA, tB, { transA: true, sharedA: true, ...v, splitK }).read();
      for (let z = 0; z < B; z++) {
        const az = cpuTensor([K, M], a2);
        const bz = cpuTensor([K, N], b3.subarray(z * K * N, (z + 1) * K * N));
        const want = matmulCpu(az, bz, { transA: true });
        const mag = matmulCpu(abs(az), abs(bz), { transA: true }).data;
        const label = `sharedA ${cname(v)} split ${splitK} batch ${z}`;
        assertNear(c.subarray(z * M * N, (z + 1) * M * N), want.data, mag, label);
      }
    }
  }
  assertThrows(
    () => bmm(Tensor.zeros(gpu, [2, 3, 4]), Tensor.zeros(gpu, [3, 4, 5])),
    /bmm: need a \[B,·,·\] and b \[B,·,·\]/,
  );
  assertThrows(
    () => bmm(tA, tB, { sharedA: true, sharedB: true }),
    /sharedA and sharedB together/,
  );
  assertThrows(() => bmm(tB, tB, { sharedA: true }), /need a \[·,·\] \(sharedA\)/);
});

Deno.test("linear and linearBackward GPU == CPU, with and without bias", async () => {
  const [N, I, O] = [5, 37, 70];
  const x = cpuTensor([N, I], randn(N * I, 3)), w = cpuTensor([O, I], randn(O * I, 4, 0.2));
  const b = cpuTensor([O], randn(O, 5)), dy = cpuTensor([N, O], randn(N * O, 6));
  const tx = Tensor.from(gpu, x.data, x.shape), tw = Tensor.from(gpu, w.data, w.shape);
  const tb = Tensor.from(gpu, b.data, b.shape), tdy = Tensor.from(gpu, dy.data, dy.shape);
  for (const o of choices(VARIANTS)) {
    const v = cname(o);
    for (const bias of [null, b]) {
      const want = linearCpu(x, w, bias), mag = linearCpu(abs(x), abs(w), bias && abs(bias));
      const y = linear(tx, tw, bias && tb, o);
      assertNear(await y.read(), want.data, mag.data, `linear ${v} bias=${!!bias}`);
    }
    for (const hasBias of [false, true]) {
      const want = linearBackwardCpu(dy, x, w, hasBias);
      const mag = linearBackwardCpu(abs(dy), abs(x), abs(w), hasBias);
      const got = linearBackward(tdy, tx, tw, hasBias, o);
      assertNear(await got.dx.read(), want.dx.data, mag.dx.data, `dx ${v}`);
      assertNear(await got.dw.read(), want.dw.data, mag.dw.data, `dw ${v}`);
      assertEquals(got.db === null, !hasBias);
      if (got.db) assertNear(await got.db.read(), want.db!.data, mag.db!.data, "db");
    }
  }
});

Deno.test("matmul GPU == CPU with the largest fat tile the software default picks (32x32; 16x16 on GL)", async () => {
  const [M, K, N] = [40, 50, 300];
  const a = cpuTensor([M, K], randn(M * K, 11)), b = cpuTensor([K, N], randn(K * N, 12));
  const want = matmulCpu(a, b), mag = matmulCpu(abs(a), abs(b)).data;
  const c = matmul(Tensor.from(gpu, a.data, a.shape), Tensor.from(gpu, b.data, b.shape), {
    variant: { kind: "fat", tm: maxFatTile(gpu), tn: maxFatTile(gpu) },
  });
  assertNear(await c.read(), want.data, mag, `fat${maxFatTile(gpu)}`);
});

Deno.test("vec4 operand fetches == CPU and == the scalar fetches, every GPU tile, all transposes", async () => {
  // [M, K, N]: every extent a multiple of 4 (both operands vec4 in every transpose) but of no
  // tile or slab (edge tiles, a partial last slab; K = 132: 9 slabs, every group of a tile that
  // splits K inside the workgroup gets some); then K = 37 (only Aᵀ and B by rows of N)
  const regs = testedGpuCandidates().filter((v): v is Extract<GemmVariant, { kind: "reg" }> =>
    v.kind === "reg"
  );
  assert(regs.length > 0);
  for (const [M, K, N] of [[68, 36, 132], [68, 132, 132], [68, 37, 132]]) {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const a = cpuTensor(transA ? [K, M] : [M, K], randn(M * K, 31));
      const b = cpuTensor(transB ? [N, K] : [K, N], randn(K * N, 32));
      const o = { transA, transB };
      const want = matmulCpu(a, b, o), mag = matmulCpu(abs(a), abs(b), o).data;
      const ta = Tensor.from(gpu, a.data, a.shape), tb = Tensor.from(gpu, b.data, b.shape);
      const { va, vb } = vec4Operands(transA, transB, M, K, N);
      assertEquals([va, vb], K % 4 === 0 ? [true, true] : [transA, !transB], `${M}x${K}x${N}`);
      for (const [i, variant] of regs.entries()) {
        // split-K (whole-slab chunks, so a vec4 never straddles a slice) on two of the tiles and
        // on those that also split K inside the workgroup
        for (const splitK of i < 2 || variant.ks ? [1, 3] : [1]) {
          const label = `${M}x${K}x${N} ${JSON.stringify(o)} ${variantKey(variant)}/${splitK}`;
          const c = await gpu.checked(() => matmul(ta, tb, { ...o, variant, splitK }));
          const got = await c.read();
          assertNear(got, want.data, mag, label);
          const s = matmul(ta, tb, { ...o, variant, splitK, scalarLoads: true });
          assertEquals(got, await s.read(), `${label}: vec4 against scalar fetches`);
          c.dispose();
          s.dispose();
        }
      }
      ta.dispose();
      tb.dispose();
    }
  }
  // bmm: every entry of a batch starts on a vec4 (Winograd's panels: Aᵀ and B)
  const [Z, M, K, N] = [3, 12, 20, 36];
  const a = randn(Z * K * M, 33), b = randn(Z * K * N, 34);
  const ta = Tensor.from(gpu, a, [Z, K, M]), tb = Tensor.from(gpu, b, [Z, K, N]);
  // every tile (the same pipelines as the Aᵀ·B matmuls above: the batch is the dispatch's z)
  for (const variant of regs) {
    const got = await bmm(ta, tb, { transA: true, variant }).read();
    for (let z = 0; z < Z; z++) {
      const az = cpuTensor([K, M], a.subarray(z * K * M, (z + 1) * K * M));
      const bz = cpuTensor([K, N], b.subarray(z * K * N, (z + 1) * K * N));
      const want = matmulCpu(az, bz, { transA: true });
      const mag = matmulCpu(abs(az), abs(bz), { transA: true }).data;
      const label = `bmm ${variantKey(variant)} entry ${z}`;
      assertNear(got.subarray(z * M * N, (z + 1) * M * N), want.data, mag, label);
    }
  }
  ta.dispose();
  tb.dispose();
});

Deno.test("split-K matmul and bmm == CPU for every split candidate shape, all transposes", async () => {
  // K = 700 is not a multiple of a slice (slices of 352 / 176 / 240 with 2, 4 and 3 splits)
  const [M, K, N] = [65, 700, 33];
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = cpuTensor(transA ? [K, M] : [M, K], randn(M * K, 21));
    const b = cpuTensor(transB ? [N, K] : [K, N], randn(K * N, 22));
    const o = { transA, transB };
    const want = matmulCpu(a, b, o), mag = matmulCpu(abs(a), abs(b), o).data;
    const ta = Tensor.from(gpu, a.data, a.shape), tb = Tensor.from(gpu, b.data, b.shape);
    // (under GL the one GPU tile its tests compile there: tests/gpu.ts onGl)
    const tiles = onGl
      ? testedGpuCandidates()
      : [reg(128, 128, 16, 8, 8), reg(128, 64, 16, 8, 8), reg(64, 64, 16, 8, 8)];
    for (const variant of tiles) {
      for (const splitK of [2, 3, 4]) {
        const c = matmul(ta, tb, { ...o, variant, splitK });
        assertNear(
          await c.read(),
          want.data,
          mag,
          `${JSON.stringify(o)} ${variantKey(variant)}/${splitK}`,
        );
        c.dispose();
      }
    }
  }
  // bmm: slices of each batch entry, with and without a shared B
  const Z = 3;
  const a3 = cpuTensor([Z, M, K], randn(Z * M * K, 23)),
    b3 = cpuTensor([Z, K, N], randn(Z * K * N, 24));
  const ta3 = Tensor.from(gpu, a3.data, a3.shape), tb3 = Tensor.from(gpu, b3.data, b3.shape);
  const b2 = cpuTensor([K, N], b3.data.slice(0, K * N));
  for (const sharedB of [false, true]) {
    const got = await bmm(ta3, sharedB ? Tensor.from(gpu, b2.data, b2.shape) : tb3, {
      variant: onGl ? testedGpuCandidates()[0] : reg(64, 64, 16, 8, 8),
      splitK: 3,
      sharedB,
    }).read();
    for (let z = 0; z < Z; z++) {
      const az = cpuTensor([M, K], a3.data.slice(z * M * K, (z + 1) * M * K));
      const bz = sharedB ? b2 : cpuTensor([K, N], b3.data.slice(z * K * N, (z + 1) * K * N));
      const want = matmulCpu(az, bz), mag = matmulCpu(abs(az), abs(bz)).data;
      assertNear(
        got.subarray(z * M * N, (z + 1) * M * N),
        want.data,
        mag,
        `bmm split z=${z} shared=${sharedB}`,
      );
    }
  }
  const z = Tensor.zeros(gpu, [8, 8]);
  assertThrows(
    () =>
      linear(z, z, Tensor.zeros(gpu, [8]), { variant: reg(64, 64, 16, 8, 8), splitK: 2 } as never),
    /splitK needs a GEMM without bias/,
  );
});

Deno.test("a window that cannot hold its tile is a clear error", () => {
  const a = Tensor.zeros(gpu, [4, 4]), b = Tensor.zeros(gpu, [4, 4]);
  assertThrows(() => matmul(a, b, { window: { kc: 10, tm: 4, tn: 4 } }), /multiple of 16/);
  // a 1,024-deep chunk leaves 16 floats a row: less than one 8-lane × 4-column tile
  assertThrows(
    () => matmul(a, b, { window: { kc: 1024, tm: 4, tn: 4 } }),
    /must fit a 16384-float window/,
  );
});

Deno.test("a reg tile the skeleton cannot build is a clear error", () => {
  const a = Tensor.zeros(gpu, [4, 4]), b = Tensor.zeros(gpu, [4, 4]);
  // in-workgroup split-K 2 with 16-deep slabs: one group's slab store (2·16 rows) cannot hold a
  // 64-row tile for the sum; 3 groups; 512 threads
  for (
    const v of [
      reg(64, 64, 16, 8, 8, false, 2),
      reg(32, 32, 16, 4, 4, false, 3),
      reg(128, 128, 16, 4, 4),
    ]
  ) {
    assertThrows(() => matmul(a, b, { variant: v }), new RegExp(`${variantKey(v)}: not a valid`));
  }
  a.dispose();
  b.dispose();
});

Deno.test("matmul and linear reject mismatched shapes", () => {
  const a = Tensor.zeros(gpu, [3, 4]), b = Tensor.zeros(gpu, [5, 6]);
  assertThrows(() => matmul(a, b), /inner dimensions differ/);
  assertThrows(() => matmul(a, Tensor.zeros(gpu, [4])), /2-D/);
  assertThrows(() => linear(a, Tensor.zeros(gpu, [6, 5]), null), /need x \[N,I\] and w \[O,I\]/);
  assertThrows(() => linear(a, Tensor.zeros(gpu, [6, 4]), Tensor.zeros(gpu, [5])), /bias/);
  assertThrows(
    () => linearBackward(Tensor.zeros(gpu, [3, 5]), a, Tensor.zeros(gpu, [6, 4]), true),
    /dy must be \[3,6\]/,
  );
});

// ---- CPU references vs central finite differences (float64) ---------------

Deno.test("linear CPU gradients (matmul with both transposes) match finite differences", () => {
  const [N, I, O] = [3, 4, 5];
  const x = Float64Array.from(randn(N * I, 7)), w = Float64Array.from(randn(O * I, 8));
  const b = Float64Array.from(randn(O, 9)), g = Float64Array.from(randn(N * O, 10));
  // L = Σ g ⊙ (x·wᵀ + b)
  const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => {
    const y = matmulF64(xv, [N, I], wv, [O, I], { transB: true });
    let s = 0;
    for (let i = 0; i < y.length; i++) s += g[i] * (y[i] + bv[i % O]);
    return s;
  };
  const cpu = linearBackwardCpu(
    cpuTensor([N, O], g),
    cpuTensor([N, I], x),
    cpuTensor([O, I], w),
    true,
  );
  // The f32 wrappers round the analytic gradients; compare those at f32 precision
  // and the f64 core (dw = gᵀ·x through transA) at f64 precision.
  const dwF64 = matmulF64(g, [N, O], x, [N, I], { transA: true });
  const h = 1e-5;
  const fd = (at: Float64Array, f: (v: Float64Array) => number) =>
    Float64Array.from(at, (keep, i) => {
      at[i] = keep + h;
      const up = f(at);
      at[i] = keep - h;
      const down = f(at);
      at[i] = keep;
      return (up - down) / (2 * h);
    });
  const fdx = fd(x, (v) => loss(v, w, b)), fdw = fd(w, (v) => loss(x, v, b));
  const fdb = fd(b, (v) => loss(x, w, v));
  assertClose(dwF64, fdw, { atol: 1e-7, rtol: 1e-6, label: "dw f64" });
  assertClose(matmulF64(g, [N, O], w, [O, I]), fdx, { atol: 1e-7, rtol: 1e-6, label: "dx f64" });
  assertClose(cpu.dx.data, fdx, { atol: 1e-5, rtol: 1e-5, label: "dx" });
  assertClose(cpu.dw.data, fdw, { atol: 1e-5, rtol: 1e-5, label: "dw" });
  assertClose(cpu.db!.data, fdb, { atol: 1e-5, rtol: 1e-5, label: "db" });
});

// ---- f16 storage (col2im's GEMM, and matmul/bmm/linear for any caller) -----------------------

Deno.test({
  name: "f16 matmul, linear, bmm (f32 out), split-K and linearBackward match CPU on halves",
  ignore: !hasF16,
  async fn() {
    const [m, k, n] = [20, 37, 12];
    const a = half(randn(m * k, 1)), b = half(randn(k * n, 2)), bias = half(randn(n, 3));
    const ref = matmulCpu(cpuTensor([m, k], a), cpuTensor([k, n], b), {}).data;
    const refB = ref.map((v, i) => v + bias[i % n]);
    const ta = Tensor.from(gpu, a, [m, k], "f16"), tb = Tensor.from(gpu, b, [k, n], "f16");
    const tbias = Tensor.from(gpu, bias, [n], "f16");
    const bT = new Float32Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) bT[j * k + i] = b[i * n + j];
    const twT = Tensor.from(gpu, bT, [n, k], "f16");
    const variants: (GemmVariant | undefined)[] = [
      undefined,
      { kind: "fat", tm: 4, tn: 4 },
      ...testedGpuCandidates(),
    ];
    for (const variant of variants) {
      const windows: (WindowChoice | undefined)[] = variant
        ? [undefined]
        : [undefined, false, { kc: 16, tm: 4, tn: 4 }];
      for (const window of windows) {
        const tag = `${variant ? variantKey(variant) : "default"} window ${JSON.stringify(window)}`;
        const c = matmul(ta, tb, { variant, window });
        assertEquals(c.dtype, "f16");
        assertHalfClose(await c.read(), ref, { label: `matmul ${tag}` });
        assertHalfClose(await linear(ta, twT, tbias, { variant, window }).read(), refB, {
          label: `linear ${tag}`,
        });
        const c32 = bmm(ta.view([1, m, k]), tb.view([1, k, n]), {
          variant,
          window,
          outDtype: "f32",
        });
        assertEquals(c32.dtype, "f32");
        assertClose(await c32.read(), ref, { atol: 1e-5, rtol: 1e-5, label: `bmm f32 out ${tag}` });
      }
    }
    // split-K slices summed into an f16 output
    const [m2, k2, n2] = [16, 600, 8];
    const a2 = half(randn(m2 * k2, 4)), b2 = half(randn(k2 * n2, 5));
    const ref2 = matmulCpu(cpuTensor([m2, k2], a2), cpuTensor([k2, n2], b2), {}).data;
    for (const v of testedGpuCandidates()) {
      const c = matmul(
        Tensor.from(gpu, a2, [m2, k2], "f16"),
        Tensor.from(gpu, b2, [k2, n2], "f16"),
        { variant: v, splitK: 3 },
      );
      assertEquals(c.dtype, "f16");
      assertHalfClose(await c.read(), ref2, { atol: 1e-3, label: `splitK ${variantKey(v)}` });
    }
    const dyB = Float32Array.from(half(refB));
    const { dx, dw, db } = linearBackward(Tensor.from(gpu, dyB, [m, n], "f16"), ta, twT, true);
    const want = linearBackwardCpu(
      cpuTensor([m, n], dyB),
      cpuTensor([m, k], a),
      cpuTensor([n, k], bT),
      true,
    );
    for (
      const [name, got, ref] of [["dx", dx, want.dx], ["dw", dw, want.dw], [
        "db",
        db!,
        want.db!,
      ]] as const
    ) {
      assertEquals(got.dtype, "f16", name);
      assertHalfClose(await got.read(), ref.data, { atol: 2e-3, label: name });
    }
    assertThrows(() => matmul(ta, Tensor.from(gpu, b, [k, n])), /matmul: operands mix f16 and f32/);
  },
});

/** Compute limits of a large GPU (an NVIDIA card's through Vulkan) and WebGPU's guaranteed ones. */
const LARGE = {
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
};
const WEBGPU_MIN = {
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};
const fakeGpu = (limits: typeof LARGE) => ({ isSoftware: false, limits }) as unknown as Gpu;

// Each reg tile's counted invocations and workgroup bytes are what its WGSL declares, and a device
// is offered only the tiles its limits hold. A device at WebGPU's guaranteed 16 KiB would fail to
// build the 24–32 KiB tiles' pipelines; its candidates, split-K ones and priors all fit.
Deno.test("a GEMM tile is offered only where the device's compute limits hold it", async () => {
  const a = Tensor.from(gpu, new Float32Array(64 * 64), [64, 64]);
  for (const v of testedGpuCandidates()) {
    if (v.kind !== "reg") continue;
    const codes: string[] = [];
    await dryRun(gpu, () => matmul(a, a, { variant: v }).dispose(), {
      hardware: true,
      onDispatch: (d) => codes.push(d.kernel.code),
    });
    const bytes = [...codes[0].matchAll(/var<workgroup> \w+: array<vec4f, (\d+)>/g)]
      .reduce((sum, m) => sum + 16 * Number(m[1]), 0);
    assertEquals(bytes, regSharedBytes(v), `${variantKey(v)}: workgroup bytes`);
    const size = Number(/@workgroup_size\((\d+)\)/.exec(codes[0])![1]);
    assertEquals(size, regThreads(v), `${variantKey(v)}: invocations`);
  }
  a.dispose();
  const small = fakeGpu(WEBGPU_MIN), large = fakeGpu(LARGE);
  const offered = (g: Gpu) => tileCandidates(g, reg(32, 32, 16, 4, 4), 64).map((c) => c.label);
  const all = [...GPU_CANDIDATES, ...SHORT_K_CANDIDATES];
  const over = all.filter((v) => v.kind === "reg" && regSharedBytes(v) > 16384);
  assert(over.length >= 4, "tiles over 16 KiB to leave out");
  assertEquals(offered(large).length, all.length);
  assertEquals(
    offered(small),
    offered(large).filter((l) => !over.some((v) => variantKey(v) === l)),
  );
  assertEquals(
    splitKCandidates(small, 1024, 1024, 1024).length,
    splitKCandidates(large, 1024, 1024, 1024).length,
  );
  for (const [m, n] of [[4096, 4096], [1024, 1024], [64, 64]]) {
    assert(fitsAdapter(small, chooseVariant(small, m, n)), `prior for ${m}×${n}`);
  }
  // a device with fewer invocations a workgroup than a 256-thread tile
  const narrow = fakeGpu({ ...LARGE, maxComputeWorkgroupSizeX: 128 });
  assert(
    tileCandidates(narrow, reg(32, 32, 16, 4, 4)).every((c) =>
      regThreads(c.choice.variant as never) <= 128
    ),
  );
});

Deno.test("the one-slab tiles are offered where the inner dimension is short", () => {
  const hw = fakeGpu(LARGE);
  const labels = (k?: number) => tileCandidates(hw, reg(32, 32, 16, 4, 4), k).map((c) => c.label);
  const short = SHORT_K_CANDIDATES.map(variantKey);
  for (const k of [64, SHORT_K]) assert(short.every((l) => labels(k).includes(l)), `K ${k}`);
  for (const k of [SHORT_K + 1, undefined]) {
    assert(short.every((l) => !labels(k).includes(l)), `K ${k}`);
  }
  // every candidate the tuner can be offered is one the tests force
  const forced = new Set(testedGpuCandidates().map(variantKey));
  if (!onGl) assert(labels(64).filter((l) => l.startsWith("reg")).every((l) => forced.has(l)));
});

Deno.test("split-K is offered where the output alone is under 256×256 invocations, per tile", () => {
  const hw = fakeGpu(LARGE);
  const labels = (m: number, n: number, k: number, batch = 1) =>
    splitKCandidates(hw, m, n, k, batch).map((c) => c.label);
  // 1024³: 64 tiles of 128² (16,384 invocations), 128 of 128×64 (16,384) and 256 of 64² (16,384)
  // all split, 2 and 4 ways (slices of 512 and 256 rows)
  assertEquals(labels(1024, 1024, 1024), [
    "reg128x128_t8x8_k16/split2",
    "reg128x128_t8x8_k16/split4",
    "reg128x64_t8x8_k16/split2",
    "reg128x64_t8x8_k16/split4",
    "reg64x64_t8x8_k16/split2",
    "reg64x64_t8x8_k16/split4",
  ]);
  // 2048³: 256 tiles of 128² (65,536 invocations), 512 of 128×64 and 1,024 of 64²: not split
  assertEquals(labels(2048, 2048, 2048), []);
  // K too short to split, and software adapters: none
  assertEquals(labels(1024, 1024, 256), []);
  assertEquals(splitKCandidates(gpu, 1024, 1024, 1024).length, gpu.isSoftware ? 0 : 6);
});

// Experimental f16 accumulation (bench/f16_accumulate.ts only): each slab's products summed in f16,
// the slab sums in f32. Within the bound of 16 f16 roundings a slab of its terms' magnitude (odd
// shapes with scalar fetches, vec4 shapes, both transposes, single- and double-buffered tiles), and
// not the f32-accumulated bits (the f16 sums are real); f32 operands, an in-workgroup split-K tile
// or split-K are clear errors. A dropped or unreset slab flush, or f32 math, fails it.
Deno.test({
  name: "f16 accumulation (experimental) stays within its f16 rounding bound, and is f16",
  ignore: !hasF16 || onGl,
  async fn() {
    const tiles = [reg(64, 64, 16, 8, 8), reg(32, 64, 16, 4, 4), reg(128, 128, 16, 8, 8, true)];
    const shapes = [[70, 200, 52, false, false], [64, 512, 64, true, true]] as const;
    const f16only = /f16 accumulation needs f16 operands and a GPU tile, no split-K/;
    for (const [m, k, n, transA, transB] of shapes) {
      // operands as stored (op(A) is m×k, op(B) k×n)
      const sa = transA ? [k, m] : [m, k], sb = transB ? [n, k] : [k, n], t = { transA, transB };
      const A = half(randn(m * k, 7)), B = half(randn(k * n, 8));
      const tA = Tensor.from(gpu, A, sa, "f16"), tB = Tensor.from(gpu, B, sb, "f16");
      const ref = matmulF64(A, sa, B, sb, t);
      const mag = matmulF64(A.map(Math.abs), sa, B.map(Math.abs), sb, t);
      for (const variant of tiles) {
        const o = { ...t, variant, outDtype: "f32" as const };
        const got = await matmul(tA, tB, { ...o, accumulate: "f16" }).read();
        const f32 = await matmul(tA, tB, o).read();
        const tag = `${m}x${k}x${n} ${transA ? "T" : "N"}${transB ? "T" : "N"} ${
          variantKey(variant)
        }`;
        let worst = 0;
        got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref[i]) / (mag[i] + 1e-6))));
        assert(worst <= 16 * 2 ** -11, `${tag}: error ${worst} of the terms' magnitude`);
        assert(got.some((v, i) => v !== f32[i]), `${tag}: the same bits as f32 sums`);
      }
      const a32 = Tensor.from(gpu, A, sa), b32 = Tensor.from(gpu, B, sb);
      const acc16 = { ...t, accumulate: "f16" as const };
      assertThrows(() => matmul(a32, b32, { ...acc16, variant: tiles[0] }), f16only);
      const ks = reg(64, 64, 16, 8, 8, false, 4);
      assertThrows(() => matmul(tA, tB, { ...acc16, variant: ks }), f16only);
      assertThrows(() => matmul(tA, tB, { ...acc16, variant: tiles[0], splitK: 2 }), f16only);
      for (const x of [tA, tB, a32, b32]) x.dispose();
    }
  },
});
