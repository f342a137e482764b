/**
 * Optimizer steps, in place, with torch.optim semantics (single-tensor path):
 * SGD (momentum, dampening, Nesterov, weight decay; torch's first step sets
 * buf = d_p, selected by o.first), Adam / AdamW (bias correction as torch:
 * p −= (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps); the scalars are computed in f64 on
 * the host), and the MoCo EMA k ← m·k + (1−m)·q.
 *
 * Mapping: grid-stride over items, workgroup 64, dispatch min(ceil(items/64),
 * 4096), one dispatch per parameter tensor (60–360 per step). Items are vec4
 * when n % 4 == 0 (every conv weight here), else f32: on lavapipe each storage
 * access is a per-lane scalar loop and vec4 pays its overhead once per 4 floats.
 * Measurements and the rejected multi-tensor variant: kernels/KERNELS.md.
 */
import { type Kernel, params } from "./device.ts";
import type { Tensor } from "./tensor.ts";
import { gridStrideMain } from "./wgsl.ts";
import { type AdamOptions, adamScalars, checkOptimShapes, type SgdOptions } from "./cpu/optim.ts";

const WG = 64;
const MAX_GROUPS = 4096;

/** Scalar (f32) and vec4 specializations of one update; vec4 is used when n % 4 == 0. */
function kernel(key: string, bindings: string[], fields: string, body: string): [Kernel, Kernel] {
  return [make(key, bindings, fields, body, "f32"), make(key, bindings, fields, body, "vec4f")];
}

function make(key: string, bindings: string[], fields: string, body: string, T: string): Kernel {
  return {
    name: `optim:${key}:${T}`,
    code: `
struct P { n: u32, ${fields} }
@group(0) @binding(0) var<uniform> p: P;
${
      bindings.map((b, i) =>
        `@group(0) @binding(${i + 1}) var<storage, ${b.endsWith("!") ? "read_write" : "read"}> ${
          b.replace("!", "")
        }: array<${T}>;`
      ).join("\n")
    }
${gridStrideMain(WG, "p.n", body)}`,
  };
}

const SGD_FIELDS = "lr: f32, mom: f32, d1: f32, wd: f32, nesterov: u32, first: u32, _p: u32";
const K = {
  sgd: kernel(
    "sgd",
    ["param!", "grad"],
    SGD_FIELDS,
    `    param[i] = param[i] - p.lr * (grad[i] + p.wd * param[i]);`,
  ),
  sgdMomentum: kernel(
    "sgd_momentum",
    ["param!", "grad", "buf!"],
    SGD_FIELDS,
    `    let dp = grad[i] + p.wd * param[i];
    let b = select(buf[i] * p.mom + p.d1 * dp, dp, p.first != 0u);
    buf[i] = b;
    param[i] = param[i] - p.lr * select(b, dp + p.mom * b, p.nesterov != 0u);`,
  ),
  adam: kernel(
    "adam",
    ["param!", "grad", "m!", "v!"],
    "one1: f32, one2: f32, b2: f32, eps: f32, wd: f32, decay: f32, stepSize: f32, bc2: f32, " +
      "decoupled: u32, _a: u32, _b: u32",
    `    var g = grad[i];
    var w = param[i];
    if (p.decoupled != 0u) { w = w * p.decay; } else { g = g + p.wd * w; }
    let mi = m[i] + p.one1 * (g - m[i]);
    let vi = v[i] * p.b2 + p.one2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = w - p.stepSize * (mi / (sqrt(vi) / p.bc2 + p.eps));`,
  ),
  ema: kernel(
    "ema",
    ["k!", "q"],
    "a: f32, b: f32, _p: u32",
    `    k[i] = k[i] * p.a + q[i] * p.b;`,
  ),
};

/** The kernel variant, its item count (n or n/4) and workgroup count for n elements. */
function plan(k: [Kernel, Kernel], n: number): { k: Kernel; items: number; groups: [number] } {
  const vec = n % 4 === 0;
  const items = vec ? n / 4 : n;
  return { k: k[vec ? 1 : 0], items, groups: [Math.min(Math.ceil(items / WG), MAX_GROUPS)] };
}

/** torch.optim.SGD step in place. buf is required when momentum ≠ 0 (zeros, with first=true on step 1). */
export function sgdStep(param: Tensor, grad: Tensor, buf: Tensor | null, o: SgdOptions): void {
  const n = checkOptimShapes("sgdStep", param, [["grad", grad], ["buf", buf]]);
  const mom = o.momentum ?? 0;
  if (mom !== 0 && !buf) throw new Error("sgdStep: momentum needs a buffer");
  const pl = plan(mom === 0 ? K.sgd : K.sgdMomentum, n);
  const pr = params([
    pl.items,
    { f32: o.lr },
    { f32: mom },
    { f32: 1 - (o.dampening ?? 0) },
    { f32: o.weightDecay ?? 0 },
    o.nesterov ? 1 : 0,
    o.first ? 1 : 0,
  ]);
  const bufs = [param.buffer, grad.buffer, ...(mom === 0 ? [] : [buf!.buffer])];
  param.gpu.dispatch(pl.k, bufs, pr, pl.groups);
}

/** torch.optim.Adam (decoupled=false) or AdamW (decoupled=true) step in place; o.step is 1-based. */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamOptions): void {
  const n = checkOptimShapes("adamStep", param, [["grad", grad], ["m", m], ["v", v]]);
  const { stepSize, bc2Sqrt } = adamScalars(o);
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, wd = o.weightDecay ?? 0;
  const pl = plan(K.adam, n);
  param.gpu.dispatch(
    pl.k,
    [param.buffer, grad.buffer, m.buffer, v.buffer],
    params([
      pl.items,
      { f32: 1 - b1 },
      { f32: 1 - b2 },
      { f32: b2 },
      { f32: o.eps ?? 1e-8 },
      { f32: o.decoupled ? 0 : wd },
      { f32: o.decoupled ? 1 - o.lr * wd : 1 },
      { f32: stepSize },
      { f32: bc2Sqrt },
      o.decoupled ? 1 : 0,
    ]),
    pl.groups,
  );
}

/** MoCo key-encoder update k ← m·k + (1 − m)·q, in place. */
export function emaUpdate(k: Tensor, q: Tensor, m: number): void {
  const n = checkOptimShapes("emaUpdate", k, [["q", q]]);
  const pl = plan(K.ema, n);
  k.gpu.dispatch(
    pl.k,
    [k.buffer, q.buffer],
    params([pl.items, { f32: m }, { f32: 1 - m }]),
    pl.groups,
  );
}
