/**
 * Grad-input of a strided conv as an explicit GEMM and a gather (col2im):
 *   cols[n][(oh,ow)][(c,kh,kw)] = Σ_o dy[n, o, oh, ow] · w[o, (c,kh,kw)]
 *       bmm per image n with dy[n] read transposed and w shared:
 *       M = OH·OW, K = O, N = C·KH·KW (matmul.ts's kernels, grid z = n), or on
 *       software adapters, where cheaper, one windowed GEMM with M = N·OH·OW
 *       (gemm/windows.ts; dy packed with its per-image transpose)
 *   dx[n, c, h, w] = Σ cols[n][(oh,ow)][(c,kh,kw)] over the taps with
 *       h = oh·s − pad + kh and w = ow·s − pad + kw (a fixed order: deterministic)
 * Why: the implicit-GEMM grad-input of a stride-2 conv splits into s² phases
 * whose columns see few taps each, and a 1×1 stride-2 conv leaves 3 of 4
 * input pixels with no tap at all; on lavapipe these ran at 0.4–1.3 GFLOP/s.
 * Here the GEMM has long, dense rows (K = O) and the gather reads ≤ ⌈KH/s⌉·⌈KW/s⌉
 * values per input pixel.
 * With `channelMajorCols` (a tuner candidate on GPUs, "col2im/cm") the GEMM is cols[n] =
 * wᵀ·dy[n] (bmm with w shared), [C·KH·KW, OH·OW] an image, so the gather's neighbouring lanes
 * (neighbouring w) read neighbouring ow; pixel-major cols put them C·KH·KW floats apart.
 * Gather: one invocation per dx element in a grid-stride loop, workgroup 64,
 * min(⌈N·C·H·W / 64⌉, cap) workgroups, cap 1,024 on software adapters (Gpu.gridCap's on
 * hardware). On hardware compiled per geometry (wgsl.ts `forGeometry`), so its index
 * divisions (six a pixel) are by constants. In session 12's H200 cache a 1×1 stride-2
 * grad-input took 0.85 ms, of which its GEMM 0.41: the rest, ~7× the gather's memory floor,
 * points at that index math. Not yet timed on a card.
 * Storage: dy, w and dx share one type, f32 or f16; the GEMM reads dy and w in
 * it (widened) and writes cols as f32 scratch, the gather sums in f32 and rounds
 * dx once (gemm/storage.ts).
 */
import { grid1d, type Kernel, kernelFamily, params } from "../device.ts";
import { type DType, Tensor } from "../tensor.ts";
import { sameDtype } from "../cast.ts";
import { storageWgsl } from "../gemm/storage.ts";
import { bmm } from "../gemm/matmul.ts";
import { pack, plainSource, windowGemm } from "../gemm/windows.ts";
import { chooseWindows, type GemmChoice } from "../gemm/window_plan.ts";
import type { ConvGeom } from "../gemm/skeleton.ts";
import { forGeometry } from "../wgsl.ts";

const WG = 64, MAX_GROUPS = 1024;

/**
 * `cm`: cols channel-major, [n][(c,kh,kw)][(oh,ow)] (neighbouring lanes, neighbouring w, read
 * neighbouring ow); else pixel-major, [n][(oh,ow)][(c,kh,kw)] (lanes C·KH·KW floats apart).
 */
const gatherKernel = kernelFamily((d: DType, cm: boolean): Kernel => ({
  name: `conv_dgrad_col2im${cm ? ":cm" : ""}${d === "f16" ? ":f16" : ""}`,
  code: `${
    storageWgsl(d).prelude
  }struct P { items: u32, C: u32, H: u32, W: u32, OH: u32, OW: u32, KH: u32, KW: u32,
  stride: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<${storageWgsl(d).t}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = nw.x * nw.y * ${WG}u;
  let KK = p.KH * p.KW; let CKK = p.C * KK; let OHW = p.OH * p.OW;
  var i = gid.x + gid.y * nw.x * ${WG}u;
  loop {
    if (i >= p.items) { break; }
    let w = i % p.W; let h = (i / p.W) % p.H; let c = (i / (p.W * p.H)) % p.C;
    let n = i / (p.W * p.H * p.C);
    let rowBase = n * OHW;
    var s = 0.0;
    // taps kh with (h + pad − kh) ≥ 0 and divisible by the stride: start at the
    // first such kh and step by the stride
    let hp = h + p.pad; let wp = w + p.pad;
    for (var kh = hp % p.stride; kh < p.KH && kh <= hp; kh += p.stride) {
      let oh = (hp - kh) / p.stride;
      if (oh < p.OH) {
        for (var kw = wp % p.stride; kw < p.KW && kw <= wp; kw += p.stride) {
          let ow = (wp - kw) / p.stride;
          if (ow < p.OW) {
            s += cols[${
    cm
      ? "(n * CKK + c * KK + kh * p.KW + kw) * OHW + oh * p.OW + ow"
      : "(rowBase + oh * p.OW + ow) * CKK + c * KK + kh * p.KW + kw"
  }];
          }
        }
      }
    }
    dx[i] = ${storageWgsl(d).st("s")};
    i += total;
  }
}`,
}));

/** Floats of the cols temporary for this conv. */
export function col2imScratch(g: ConvGeom): number {
  return g.n * g.oh * g.ow * g.c * g.kh * g.kw;
}

/** dx[N,C,H,W] from dy[N,O,OH,OW] and w[O,C,KH,KW] (any stride; meant for stride > 1). */
export function conv2dBackwardInputCol2im(
  dy: Tensor,
  w: Tensor,
  g: ConvGeom,
  o: GemmChoice & { channelMajorCols?: boolean } = {},
): Tensor {
  const gpu = dy.gpu, ohw = g.oh * g.ow, ckk = g.c * g.kh * g.kw;
  const d = sameDtype("conv2dBackwardInput", dy, w);
  const cm = !!o.channelMajorCols;
  // windowed: one GEMM for the batch (M = N·OH·OW), which also helps small maps,
  // where a per-image GEMM has a row or four; else the per-image bmm
  const shape = { z: 1, zb: 1, m: g.n * ohw, n: ckk, k: g.o };
  const { plan } = cm ? { plan: null } : chooseWindows(gpu, shape, o, true, { z: g.n, m: ohw });
  let cols: Tensor;
  if (cm) {
    // cols[n] = wᵀ · dy[n]: [C·KH·KW, OH·OW] per image, w shared
    cols = bmm(w.view([g.o, ckk]), dy.view([g.n, g.o, ohw]), {
      transA: true,
      sharedA: true,
      variant: o.variant,
      outDtype: "f32",
    });
  } else if (plan) {
    // one GEMM over all images: row n·OH·OW + pixel of A is dy[n, ·, pixel]
    const a = pack(dy, plan, "a", { zs: 0, xs: ohw, s1: g.o * ohw, s2: 1, s3: ohw });
    const b = pack(w, plan, "b", plainSource(plan, "b", false));
    cols = windowGemm(a, b, plan);
    a.dispose();
    b.dispose();
  } else {
    cols = bmm(dy.view([g.n, g.o, ohw]), w.view([g.o, ckk]), {
      transA: true,
      sharedB: true,
      variant: o.variant,
      outDtype: "f32",
    });
  }
  const dx = Tensor.empty(gpu, [g.n, g.c, g.h, g.w], d);
  const items = dx.size;
  const [gx, gy] = grid1d(items, WG);
  const fields = [items, g.c, g.h, g.w, g.oh, g.ow, g.kh, g.kw, g.stride, g.pad];
  gpu.dispatch(
    forGeometry(gpu, gatherKernel(d, cm), fields, ["items"]),
    [cols.buffer, dx.buffer],
    params(fields),
    [Math.min(gx * gy, gpu.gridCap(MAX_GROUPS))],
  );
  cols.dispose();
  return dx;
}
