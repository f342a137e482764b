/**
 * 2-D convolution (groups 1, NCHW, any kernel size / stride / padding) and its
 * gradients, all as implicit GEMMs — no im2col buffer is ever materialised.
 *   forward      M = O, N = N·OH·OW, K = C·KH·KW   (conv/implicit_fwd.ts)
 *   grad-input   M = C, N = N·H·W,   K = O·KH·KW   (conv/implicit_dgrad.ts)
 *   grad-weight  M = O, N = C·KH·KW, K = N·OH·OW, split-K + ordered sum
 *                                                  (conv/implicit_wgrad.ts)
 *   grad-bias    per-channel reduction over N, H, W (conv/implicit_wgrad.ts)
 * 3×3 stride-1 convs (most of a ResNet) run all three as Winograd F(2×2, 3×3)
 * or F(4×4, 3×3) transforms around 16 or 36 batched GEMMs instead (winograd.ts;
 * `algo` chooses; the tuner times both on GPUs), and
 * strided convs' grad-input as an explicit GEMM + gather (conv/col2im.ts).
 * Tile shapes are specializations chosen per adapter (gemm/variants.ts); the
 * `variant` / `splits` options force one, for tests and benchmarks.
 * Storage: x, w, bias and dy share one type, f32 or f16 (sameDtype), and every
 * output (y, dx, dw, db) has it; the kernels that read or write them widen on
 * load, compute in f32 and round once at the store; internal scratch (split-K
 * slices, Winograd panels, col2im columns) stays f32 (kernels/KERNELS.md).
 * CPU references with the same signatures: kernels/cpu/conv2d.ts.
 */
import { type Gpu, GpuError, type Kernel, params } from "../device.ts";
import { bakesGeometry, withConstants } from "../wgsl.ts";
import { type DType, type Shape, Tensor } from "../tensor.ts";
import { cast, sameDtype } from "../cast.ts";
import { type ConvOptions, convShapes } from "../cpu/conv2d.ts";
import { type ConvGeom, convParamFields, liveTapBox, tapsOf } from "../gemm/skeleton.ts";
import { convFwdKernel } from "./implicit_fwd.ts";
import { fill } from "../elementwise.ts";
import { convDgradKernel } from "./implicit_dgrad.ts";
import { convWgradKernel } from "./implicit_wgrad.ts";
import { channelSum, sumSlices } from "../reduce.ts";
import {
  chooseVariant,
  type GemmVariant,
  reg,
  tileCandidates,
  tileOf,
  variantKey,
} from "../gemm/variants.ts";
import { type Candidate, tunerOf } from "../tuner.ts";
import { winogradConv, winogradScratchBytes, winogradWeightGrad } from "./winograd.ts";
import type { WindowChoice } from "../gemm/window_plan.ts";
import { col2imScratch, conv2dBackwardInputCol2im } from "./col2im.ts";

export type { ConvOptions } from "../cpu/conv2d.ts";

/** Conv options plus optional overrides of the tuned specialization. */
export interface ConvGpuOptions extends ConvOptions {
  /** Force a tile shape (default: gemm/variants.ts's choice for the adapter and shape). */
  variant?: GemmVariant;
  /**
   * Winograd's and col2im's GEMMs through uniform windows (gemm/windows.ts): a forced
   * chunk and lane tile, or false for the storage-operand kernels (default: the cost model).
   */
  window?: WindowChoice;
  /** Force the grad-weight split-K count (default: enough slices to fill the device). */
  splits?: number;
  /** col2im's columns channel-major (see conv/col2im.ts; a GPU tuner candidate, "col2im/cm"). */
  channelMajorCols?: boolean;
  /**
   * "gemm": implicit GEMM; "winograd": F(2×2, 3×3) (3×3 stride-1 convs only, winograd.ts);
   * "winograd4": F(4×4, 3×3) (the same convs: 4× fewer multiplies, more rounding);
   * "col2im": grad-input as an explicit GEMM and a gather (conv/col2im.ts; forward and
   * grad-weight stay implicit GEMMs); "auto" (default): on software adapters, where they were
   * measured faster, Winograd for 3×3 stride-1 convs (F(4×4) on maps from 14×14) and col2im for
   * strided grad-inputs.
   */
  algo?: ConvAlgo;
}

/**
 * The convolution algorithms: auto (per shape, the tuner's choice), implicit GEMM, Winograd F(2×2,
 * 3×3) and F(4×4, 3×3), col2im.
 */
export const CONV_ALGOS = ["auto", "gemm", "winograd", "winograd4", "col2im"] as const;
/** A convolution algorithm (see CONV_ALGOS). */
export type ConvAlgo = typeof CONV_ALGOS[number];

let defaultAlgo: ConvAlgo = "auto";
/** Sets the algorithm of convs that do not name one (benchmarks compare them this way). */
export function setConvAlgo(algo: ConvAlgo): void {
  defaultAlgo = algo;
}

/**
 * Whether conv2d and its gradients run as Winograd F(2×2) or F(4×4), or as (implicit or col2im)
 * GEMMs here, before any tuning.
 */
export function convAlgorithm(
  gpu: Gpu,
  xShape: Shape,
  wShape: Shape,
  o: ConvGpuOptions,
): "gemm" | "winograd" | "winograd4" {
  const tile = winograd(gpu, geom(xShape, wShape, o, "conv2d"), o, "conv2d");
  return tile === 4 ? "winograd4" : tile ? "winograd" : "gemm";
}

/**
 * The output tile of the Winograd algorithm this conv runs as (2: F(2×2, 3×3), 4: F(4×4, 3×3)),
 * or 0 for a GEMM (see ConvGpuOptions.algo).
 */
function winograd(gpu: Gpu, g: ConvGeom, o: ConvGpuOptions, fn: string): 0 | 2 | 4 {
  const algo = o.algo ?? defaultAlgo;
  if (algo === "winograd" || algo === "winograd4") {
    const tile = algo === "winograd4" ? 4 : 2;
    if (!winogradFits(gpu, g, tile)) {
      throw new GpuError(
        `${fn}: Winograd needs a 3×3 stride-1 kernel with padding ≤ 2 and scratch within the ` +
          `binding limit (kernel ${g.kh}×${g.kw}, stride ${g.stride}, pad ${g.pad})`,
      );
    }
    return tile;
  }
  if (algo !== "auto" || !gpu.isSoftware || g.oh < 2 || g.ow < 2) return 0;
  // Measured on lavapipe (kernels/KERNELS.md): F(2×2) beats the GEMMs from 2×2 output maps up,
  // F(4×4) beats F(2×2) from 14×14 up (sessions 4 and 9).
  if (Math.min(g.oh, g.ow) >= 14 && winogradFits(gpu, g, 4)) return 4;
  return winogradFits(gpu, g, 2) ? 2 : 0;
}

/** The three GEMM-shaped conv passes. */
export type ConvOp = "fwd" | "dgrad" | "wgrad";

/** Whether Winograd F(m×m, 3×3) can run this conv at all (kernel, stride, padding, scratch). */
function winogradFits(gpu: Gpu, g: ConvGeom, m: 2 | 4): boolean {
  // temporaries cover the larger of the two maps (grad-input transforms dy over x's size)
  const side = Math.max(g.c, g.o);
  const scratch = winogradScratchBytes(
    g.n,
    side,
    side,
    Math.max(g.oh, g.h),
    Math.max(g.ow, g.w),
    m,
  );
  return g.kh === 3 && g.kw === 3 && g.stride === 1 && g.pad <= 2 &&
    scratch <= gpu.limits.maxStorageBufferBindingSize;
}

/**
 * The options one conv call runs with: the caller's where it forces anything
 * (algo, variant, window, a non-auto default algorithm), else the tuner's
 * choice among the algorithms and tile shapes that apply (kernels/tuner.ts),
 * the prior ({}: the "auto" rules below) first.
 */
function tuned(
  gpu: Gpu,
  op: ConvOp,
  g: ConvGeom,
  o: ConvGpuOptions,
  bias: boolean,
  d: DType,
): ConvGpuOptions {
  if (o.algo || o.variant || o.window !== undefined || defaultAlgo !== "auto") return o;
  if (tunerOf(gpu).mode === "off") return o; // the prior ({}) without building its rivals
  const key = `conv_${op}:${g.n}x${g.c}x${g.h}x${g.w}>${g.o}:${g.kh}x${g.kw}/${g.stride}p${g.pad}${
    bias ? "+bias" : ""
  }${d === "f16" ? ":f16" : ""}`;
  const settled = tunerOf(gpu).settled<Partial<ConvGpuOptions>>(key);
  if (settled) return { ...o, ...settled }; // tuned before: no candidate list to build
  const candidates = convCandidates(gpu, op, g);
  const choice = tunerOf(gpu).choose({
    key,
    candidates,
    scratch: () => {
      const t = (shape: Shape) => scratchOf(gpu, shape, d);
      const x = t([g.n, g.c, g.h, g.w]), w = t([g.o, g.c, g.kh, g.kw]);
      const dy = t([g.n, g.o, g.oh, g.ow]), b = bias ? t([g.o]) : null;
      const base = { stride: g.stride, pad: g.pad };
      return {
        run: (c) => {
          const oc = { ...base, ...c };
          const out = op === "fwd"
            ? conv2d(x, w, b, oc)
            : op === "dgrad"
            ? conv2dBackwardInput(dy, w, x.shape, oc)
            : conv2dBackwardWeight(dy, x, w.shape, oc);
          out.dispose();
        },
        dispose: () => [x, w, dy, b].forEach((s) => s?.dispose()),
      };
    },
  });
  return { ...o, ...choice };
}

/**
 * What the tuner times for one conv call, the prior ({}: the "auto" rules) first: on software
 * adapters the implicit GEMM beside it; on GPUs every tile shape (gemm/variants.ts; the one-slab
 * tiles where the inner dimension is short: 1×1 convs over ≤ 256 channels), more split-K counts
 * for grad-weight, Winograd F(2×2) and F(4×4) where they fit and col2im for
 * strided grad-inputs.
 */
export function convCandidates(
  gpu: Gpu,
  op: ConvOp,
  g: ConvGeom,
): Candidate<Partial<ConvGpuOptions>>[] {
  // the implicit GEMM's output rows, columns and inner dimension
  const [m, cols, k] = op === "fwd"
    ? [g.o, g.n * g.oh * g.ow, g.c * g.kh * g.kw]
    : op === "dgrad"
    ? [g.c, g.n * g.h * g.w, g.o * g.kh * g.kw]
    : [g.o, g.c * g.kh * g.kw, g.n * g.oh * g.ow];
  const candidates: Candidate<Partial<ConvGpuOptions>>[] = [{ label: "auto", choice: {} }];
  if (gpu.isSoftware) {
    candidates.push({ label: "gemm", choice: { algo: "gemm" } });
  } else {
    for (const c of tileCandidates(gpu, chooseVariant(gpu, m, cols), k)) {
      candidates.push({ label: `gemm/${c.label}`, choice: { algo: "gemm", ...c.choice } });
    }
  }
  if (op === "wgrad" && !gpu.isSoftware) candidates.push(...wgradSplitCandidates(gpu, g));
  for (const [algo, m] of [["winograd", 2], ["winograd4", 4]] as const) {
    if (winogradFits(gpu, g, m)) candidates.push({ label: algo, choice: { algo } });
  }
  if (
    op === "dgrad" && g.stride > 1 && col2imScratch(g) * 4 <= gpu.limits.maxStorageBufferBindingSize
  ) {
    candidates.push({ label: "col2im", choice: { algo: "col2im" } });
    if (!gpu.isSoftware) {
      candidates.push({ label: "col2im/cm", choice: { algo: "col2im", channelMajorCols: true } });
    }
  }
  return candidates;
}

/** A scratch operand of 0.5s in storage type d, for timing. */
function scratchOf(gpu: Gpu, shape: Shape, d: DType): Tensor {
  const t = fill(Tensor.empty(gpu, shape), 0.5);
  if (d === "f32") return t;
  const h = cast(t, d);
  t.dispose();
  return h;
}

/** Zeroes t with a dispatch (f32 or f16), not a buffer clear: a clear would end the compute pass. */
function zeroed(t: Tensor): Tensor {
  return fill(t, 0);
}

function geom(xShape: Shape, wShape: Shape, o: ConvOptions, fn: string): ConvGeom {
  const [n, oc, oh, ow] = convShapes(xShape, wShape, o, fn);
  const [, c, h, w] = xShape, [, , kh, kw] = wShape;
  return { n, c, h, w, o: oc, oh, ow, kh, kw, stride: o.stride, pad: o.pad };
}

function sameShape(t: Tensor, shape: Shape, what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new GpuError(`${what} must be [${shape}], got [${t.shape}]`);
  }
}

/** y[N,O,OH,OW] = conv(x[N,C,H,W], w[O,C,KH,KW]) + bias[O]. */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, o: ConvGpuOptions): Tensor {
  const g = geom(x.shape, w.shape, o, "conv2d");
  if (bias) sameShape(bias, [g.o], "conv2d: bias");
  const d = sameDtype("conv2d", x, w, ...(bias ? [bias] : []));
  o = tuned(x.gpu, "fwd", g, o, !!bias, d);
  const tile = winograd(x.gpu, g, o, "conv2d");
  if (tile) return winogradConv(x, w, bias, g.pad, false, o, tile);
  const y = Tensor.empty(x.gpu, [g.n, g.o, g.oh, g.ow], d);
  const cols = g.n * g.oh * g.ow;
  const v = o.variant ?? chooseVariant(x.gpu, g.o, cols);
  const { bm, bn } = tileOf(v);
  x.gpu.dispatch(
    forMaps(x.gpu, convFwdKernel(v, d, tapsOf(g, v)), v, g),
    [x.buffer, w.buffer, (bias ?? w).buffer, y.buffer],
    params(convParamFields(g, bias ? 1 : 0)),
    [Math.ceil(cols / bn), Math.ceil(g.o / bm), 1],
  );
  return y;
}

/**
 * A GPU tile's conv kernel compiled for this call's map sizes (H, W, OH, OW as WGSL constants;
 * wgsl.ts withConstants) where the adapter bakes geometry (hardware): its loaders decompose a
 * pixel index for every element they load, four u32 divisions by OH·OW, OW (H·W, W); by a
 * constant each is a multiply and a shift, by a uniform a long instruction sequence on a GPU.
 * Channels stay uniforms (nothing divides by them), so the convs of a map size share a pipeline
 * whatever their channels (DenseNet's 1×1s). Not yet timed on a card (kernels/KERNELS.md).
 */
function forMaps(gpu: Gpu, k: Kernel, v: GemmVariant, g: ConvGeom): Kernel {
  if (v.kind !== "reg" || !bakesGeometry(gpu)) return k;
  return withConstants(k, { H: g.h, W: g.w, OH: g.oh, OW: g.ow });
}

/** Whether grad-input runs as GEMM + col2im (see ConvGpuOptions.algo). */
function col2im(gpu: Gpu, g: ConvGeom, o: ConvGpuOptions): boolean {
  const algo = o.algo ?? defaultAlgo;
  const fits = col2imScratch(g) * 4 <= gpu.limits.maxStorageBufferBindingSize;
  if (algo === "col2im") {
    if (!fits) {
      throw new GpuError(`conv2dBackwardInput: the col2im scratch exceeds the binding limit`);
    }
    return true;
  }
  return algo === "auto" && gpu.isSoftware && g.stride > 1 && fits;
}

/** dx[N,C,H,W] from dy[N,O,OH,OW] and w[O,C,KH,KW]. */
export function conv2dBackwardInput(
  dy: Tensor,
  w: Tensor,
  xShape: Shape,
  o: ConvGpuOptions,
): Tensor {
  const g = geom(xShape, w.shape, o, "conv2dBackwardInput");
  sameShape(dy, [g.n, g.o, g.oh, g.ow], "conv2dBackwardInput: dy");
  const d = sameDtype("conv2dBackwardInput", dy, w);
  o = tuned(dy.gpu, "dgrad", g, o, false, d);
  const tile = winograd(dy.gpu, g, o, "conv2dBackwardInput");
  if (tile) return winogradConv(dy, w, null, 2 - g.pad, true, o, tile); // the flipped kernel's conv
  if (col2im(dy.gpu, g, o)) return conv2dBackwardInputCol2im(dy, w, g, o);
  const dx = Tensor.empty(dy.gpu, xShape, d);
  const s = g.stride;
  const v = o.variant ?? chooseVariant(dy.gpu, g.c, g.n * g.h * g.w);
  const { bm, bn } = tileOf(v);
  const grid: [number, number, number] = v.kind === "fat"
    ? [Math.ceil(g.n * Math.ceil(g.h / s) * Math.ceil(g.w / s) / bn), Math.ceil(g.c / bm), s * s]
    : [Math.ceil(g.n * g.h * g.w / bn), Math.ceil(g.c / bm), 1];
  dy.gpu.dispatch(
    forMaps(dy.gpu, convDgradKernel(v, d, tapsOf(g, v)), v, g),
    [dy.buffer, w.buffer, dx.buffer],
    params(convParamFields(g)),
    grid,
  );
  return dx;
}

/** Largest split-K scratch buffer, in floats (64 MiB). */
const MAX_PART = 16 << 20;

/**
 * The grad-weight's split-K count for tile v over `cols` output columns: enough slices to give
 * every core (or SM) several workgroups (~32 on software adapters, ~256 on GPUs), each at least
 * minChunk pixels long, within the scratch cap.
 */
function defaultSplits(gpu: Gpu, g: ConvGeom, v: GemmVariant, cols: number): number {
  const { bm, bn } = tileOf(v);
  const tiles = Math.ceil(cols / bn) * Math.ceil(g.o / bm);
  const [target, minChunk] = gpu.isSoftware ? [32, 128] : [256, 256];
  return Math.min(
    Math.ceil(target / tiles),
    Math.ceil(g.n * g.oh * g.ow / minChunk),
    Math.max(1, Math.floor(MAX_PART / (g.o * g.c * g.kh * g.kw))),
  );
}

/** Tiles the GPU tuner also times with more grad-weight slices than the default's. */
const WGRAD_SPLIT_TILES: GemmVariant[] = [reg(64, 64, 16, 8, 8), reg(64, 128, 8, 4, 8)];

/**
 * Split-K counts for the GPU tuner (issue 13: split-K timed, not fixed): the default's ~256
 * workgroups leave a 132-SM card with 1-2 workgroups an SM and a ragged last wave, so each of
 * WGRAD_SPLIT_TILES is also timed at 2× and 4× its default slices (each slice ≥ 128 pixels, the
 * f32 scratch ≤ 64 MiB). Any count is the same kernel and sum: the tests force several.
 */
function wgradSplitCandidates(gpu: Gpu, g: ConvGeom): Candidate<Partial<ConvGpuOptions>>[] {
  const K = g.n * g.oh * g.ow, cols = g.c * g.kh * g.kw;
  const most = Math.min(Math.floor(K / 128), Math.floor(MAX_PART / (g.o * cols)));
  const out: Candidate<Partial<ConvGpuOptions>>[] = [];
  for (const v of WGRAD_SPLIT_TILES) {
    const base = defaultSplits(gpu, g, v, cols);
    for (const s of [2 * base, 4 * base]) {
      if (s > most) break;
      out.push({
        label: `gemm/${variantKey(v)}/split${s}`,
        choice: { algo: "gemm", variant: v, splits: s },
      });
    }
  }
  return out;
}

/** dw[O,C,KH,KW] from dy[N,O,OH,OW] and x[N,C,H,W]: split-K partials, then an ordered sum. */
export function conv2dBackwardWeight(
  dy: Tensor,
  x: Tensor,
  wShape: Shape,
  o: ConvGpuOptions,
): Tensor {
  const g = geom(x.shape, wShape, o, "conv2dBackwardWeight");
  sameShape(dy, [g.n, g.o, g.oh, g.ow], "conv2dBackwardWeight: dy");
  const d = sameDtype("conv2dBackwardWeight", dy, x);
  o = tuned(x.gpu, "wgrad", g, o, false, d);
  const gpu = x.gpu;
  const tile = winograd(gpu, g, o, "conv2dBackwardWeight");
  if (tile) return winogradWeightGrad(dy, x, g.pad, o, tile);
  const ncols = g.c * g.kh * g.kw, nw = g.o * ncols, K = g.n * g.oh * g.ow;
  // fat kernels compute only the columns of live taps (tiny maps: most taps of
  // a padded 3×3 read only padding); the dead taps' weights get zeros.
  const { h0, h1, w0, w1 } = liveTapBox(g);
  const live = g.c * (h1 - h0) * (w1 - w0);
  const v = o.variant ?? chooseVariant(gpu, g.o, live);
  const liveCols = v.kind === "fat" ? live : ncols;
  const { bm, bn } = tileOf(v);
  let splits = o.splits ?? defaultSplits(gpu, g, v, liveCols);
  splits = Math.max(1, Math.min(splits, K));
  const chunk = Math.ceil(K / splits);
  splits = Math.ceil(K / chunk);
  // the slices are f32 scratch whatever the storage type; dw has dy's
  const alloc = (shape: Shape, dt: DType) => {
    const t = Tensor.empty(gpu, shape, dt);
    return liveCols < ncols ? zeroed(t) : t;
  };
  const dw = splits === 1 ? alloc(wShape, d) : Tensor.empty(gpu, wShape, d);
  const part = splits === 1 ? dw : alloc([splits, nw], "f32");
  gpu.dispatch(
    forMaps(gpu, convWgradKernel(v, d, part.dtype, tapsOf(g, v)), v, g),
    [dy.buffer, x.buffer, part.buffer],
    params(convParamFields(g, 0, chunk)),
    [Math.ceil(liveCols / bn), Math.ceil(g.o / bm), splits],
  );
  if (splits > 1) {
    sumSlices(part, splits, dw);
    part.dispose();
  }
  return dw;
}

/** db[O] = Σ over n, h, w of dy[N,O,H,W] (dy's storage type): reduce.ts's channelSum. */
export const conv2dBackwardBias = channelSum;
