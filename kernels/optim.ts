/**
 * Optimizer steps, in place, with torch.optim semantics:
 * SGD (momentum, dampening, Nesterov, weight decay; torch's first step sets
 * buf = d_p, selected by o.first), Adam / AdamW (bias correction as torch:
 * p −= (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps); the scalars are computed in f64 on
 * the host), and the MoCo EMA k ← m·k + (1−m)·q.
 *
 * Mapping: grid-stride over items, workgroup 64, dispatch min(ceil(items/64),
 * 4096) for one tensor. Items are vec4 when n % 4 == 0 (every conv weight here),
 * else f32: on lavapipe each storage access is a per-lane scalar loop and vec4
 * pays its overhead once per 4 floats. The many-tensor forms (sgdStepMany,
 * adamStepMany, emaUpdateMany, flagNonFinite), used for a whole model's 60–360
 * parameter tensors, group several tensors a dispatch on hardware adapters: each
 * tensor a row of a 1-D grid with the workgroups its own dispatch would have had
 * (`rowGrid`, `rowMain`), as many rows as 8 storage bindings hold, the update's
 * body from the same SPECS table, so the same bits. Software adapters dispatch
 * one tensor at a time (measured there: kernels/KERNELS.md, "kernels/optim.ts" and session 14).
 *
 * Loss scaling (mixed precision, torch.cuda.amp.GradScaler's rule, all on the
 * device): the scaler's state is `amp` = { scale: [1] f32, flags: 4 u32 words
 * [found (a gradient was not finite), good steps, skipped steps, applied steps] }.
 * `flagNonFinite` ORs found over gradients (7 a dispatch); an optimizer step given `amp`
 * multiplies each gradient by 1/scale, or writes nothing when found is set;
 * `updateLossScale` then halves the scale (found) or counts an applied step and doubles the
 * scale after `interval` good steps, and clears found. One invocation runs the update.
 * Adam given `amp` takes its step count t from the applied steps (+ 1), as torch's
 * state['step'], which a step GradScaler skips never advances, and so computes its bias
 * corrections on the device in f32 (`biasCorrection`; kernels/cpu/optim.ts
 * adamDeviceScalars); without `amp` they come from the host in f64, as before.
 */
import { type Gpu, type Kernel, kernelFamily, params } from "./device.ts";
import type { Tensor } from "./tensor.ts";
import { gridStrideMain } from "./wgsl.ts";
import {
  type AdamOptions,
  adamScalars,
  AMP_APPLIED,
  checkOptimShapes,
  type LossScaleOptions,
  type SgdOptions,
} from "./cpu/optim.ts";

const WG = 64;
const MAX_GROUPS = 4096;

/** An update's WGSL: bindings ("!" read-write), uniform fields after the count, body, setup. */
interface Spec {
  bindings: string[];
  fields: string;
  /** Statement(s) for item i. */
  body: string;
  /** Lines before the loop (each invocation), plain and with loss scaling (after the skip). */
  setup?: { plain: string; amp: string };
  /** Module-scope functions the setup calls. */
  fns?: string;
}

/** The loss-scaling lines before an update's loop: nothing when found, else the unscale factor. */
const AMP_SETUP = "if (ampFlags[0] != 0u) { return; }\n  let inv = 1.0 / ampScale[0];";

/**
 * Scalar (f32) and vec4 specializations of one update, each plain and with loss scaling
 * ([f32, vec4, f32 + amp, vec4 + amp]); vec4 is used when n % 4 == 0.
 */
function kernel(key: string, sp: Spec): Kernel[] {
  return [false, true].flatMap((amp) => ["f32", "vec4f"].map((T) => make(key, sp, T, amp)));
}

function make(key: string, sp: Spec, T: string, amp: boolean): Kernel {
  const { bindings, fields, body } = sp;
  const decls = bindings.map((b, i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${b.endsWith("!") ? "read_write" : "read"}> ${
      b.replace("!", "")
    }: array<${T}>;`
  );
  if (amp) {
    decls.push(
      `@group(0) @binding(${bindings.length + 1}) var<storage, read> ampScale: array<f32>;`,
      `@group(0) @binding(${bindings.length + 2}) var<storage, read> ampFlags: array<u32>;`,
    );
  }
  return {
    name: `optim:${key}:${T}${amp ? ":amp" : ""}`,
    code: `
struct P { n: u32, ${fields} }
@group(0) @binding(0) var<uniform> p: P;
${decls.join("\n")}
${sp.fns ?? ""}
${
      amp
        ? gridStrideMain(
          WG,
          "p.n",
          body.replaceAll("grad[i]", "(grad[i] * inv)"),
          AMP_SETUP + (sp.setup ? `\n  ${sp.setup.amp}` : ""),
        )
        : gridStrideMain(WG, "p.n", body, sp.setup?.plain)
    }`,
  };
}

/**
 * WGSL `biasCorrection(c, t)`: 1 − β^t from c = 1 − β, in f32 by square-and-multiply on the
 * complements (no 1 − β^t cancels); kernels/cpu/optim.ts biasCorrectionF32 is the same operations
 * (exported for tests/kernels_optim.test.ts).
 */
export const BIAS_CORRECTION = `
fn biasCorrection(c: f32, t: u32) -> f32 {
  var r = 0.0;
  var u = c;
  var e = t;
  loop {
    if ((e & 1u) != 0u) { r = r + u * (1.0 - r); }
    e = e >> 1u;
    if (e == 0u) { break; }
    u = u * (2.0 - u);
  }
  return r;
}`;

const SGD_FIELDS = "lr: f32, mom: f32, d1: f32, wd: f32, nesterov: u32, first: u32, _p: u32";
/** Each update: its bindings ("!" read-write), its uniform fields after the item count, its body. */
const SPECS: Record<"sgd" | "sgd_momentum" | "adam" | "ema", Spec> = {
  sgd: {
    bindings: ["param!", "grad"],
    fields: SGD_FIELDS,
    body: `    param[i] = param[i] - p.lr * (grad[i] + p.wd * param[i]);`,
  },
  sgd_momentum: {
    bindings: ["param!", "grad", "buf!"],
    fields: SGD_FIELDS,
    body: `    let dp = grad[i] + p.wd * param[i];
    let b = select(buf[i] * p.mom + p.d1 * dp, dp, p.first != 0u);
    buf[i] = b;
    param[i] = param[i] - p.lr * select(b, dp + p.mom * b, p.nesterov != 0u);`,
  },
  adam: {
    bindings: ["param!", "grad", "m!", "v!"],
    fields:
      "one1: f32, one2: f32, b2: f32, eps: f32, wd: f32, decay: f32, stepSize: f32, bc2: f32, " +
      "decoupled: u32, lr: f32, _b: u32",
    // Plain: the host's f64 scalars for o.step. With a loss scaler: t = applied steps + 1, the
    // scalars in f32 here (the host cannot know which steps the device skipped).
    setup: {
      plain: "let stepSize = p.stepSize;\n  let bc2 = p.bc2;",
      amp: `let st = ampFlags[${AMP_APPLIED}] + 1u;
  let stepSize = p.lr / biasCorrection(p.one1, st);
  let bc2 = sqrt(biasCorrection(p.one2, st));`,
    },
    fns: BIAS_CORRECTION,
    body: `    var g = grad[i];
    var w = param[i];
    if (p.decoupled != 0u) { w = w * p.decay; } else { g = g + p.wd * w; }
    let mi = m[i] + p.one1 * (g - m[i]);
    let vi = v[i] * p.b2 + p.one2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = w - stepSize * (mi / (sqrt(vi) / bc2 + p.eps));`,
  },
  ema: {
    bindings: ["k!", "q"],
    fields: "a: f32, b: f32, _p: u32",
    body: `    k[i] = k[i] * p.a + q[i] * p.b;`,
  },
};
type SpecKey = keyof typeof SPECS;
/** Each update's one-tensor kernels (see `kernel`). */
const K = Object.fromEntries(
  Object.entries(SPECS).map(([key, sp]) => [key, kernel(key, sp)]),
) as Record<SpecKey, Kernel[]>;

/** The kernel variant, its item count (n or n/4) and workgroup count for n elements. */
function plan(k: Kernel[], n: number, amp = false): { k: Kernel; items: number; groups: [number] } {
  const vec = n % 4 === 0;
  const items = vec ? n / 4 : n;
  return {
    k: k[(vec ? 1 : 0) + (amp ? 2 : 0)],
    items,
    groups: [Math.max(1, Math.min(Math.ceil(items / WG), MAX_GROUPS))],
  };
}

/** SGD's uniform values after the item count (SGD_FIELDS). */
function sgdValues(o: SgdOptions): Array<number | { f32: number }> {
  return [
    { f32: o.lr },
    { f32: o.momentum ?? 0 },
    { f32: 1 - (o.dampening ?? 0) },
    { f32: o.weightDecay ?? 0 },
    o.nesterov ? 1 : 0,
    o.first ? 1 : 0,
  ];
}

/** Adam's uniform values after the item count (SPECS.adam.fields; host scalars in f64). */
function adamValues(o: AdamOptions): Array<number | { f32: number }> {
  const { stepSize, bc2Sqrt } = adamScalars(o);
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, wd = o.weightDecay ?? 0;
  return [
    { f32: 1 - b1 },
    { f32: 1 - b2 },
    { f32: b2 },
    { f32: o.eps ?? 1e-8 },
    { f32: o.decoupled ? 0 : wd },
    { f32: o.decoupled ? 1 - o.lr * wd : 1 },
    { f32: stepSize },
    { f32: bc2Sqrt },
    o.decoupled ? 1 : 0,
    { f32: o.lr },
  ];
}

/**
 * One tensor's update: SPECS[key]'s one-tensor kernel (vec4 where the length allows), `row` its
 * bindings in SPECS order, `values` the update's uniform values after the item count.
 */
function runOne(
  key: SpecKey,
  row: readonly Tensor[],
  values: Array<number | { f32: number }>,
  amp: AmpState | null,
): void {
  const pl = plan(K[key], row[0].size, amp !== null);
  row[0].gpu.dispatch(
    pl.k,
    [...row.map((t) => t.buffer), ...(amp ? [amp.scale.buffer, amp.flags.buffer] : [])],
    params([pl.items, ...values]),
    pl.groups,
  );
}

/** An SGD update's kernel and bindings, after checking its operands (sgdStep, sgdStepMany). */
function sgdRow(
  param: Tensor,
  grad: Tensor,
  buf: Tensor | null,
  o: SgdOptions,
): [SpecKey, Tensor[]] {
  checkOptimShapes("sgdStep", param, [["grad", grad], ["buf", buf]]);
  if ((o.momentum ?? 0) === 0) return ["sgd", [param, grad]];
  if (!buf) throw new Error("sgdStep: momentum needs a buffer");
  return ["sgd_momentum", [param, grad, buf]];
}

/** An Adam update's bindings, after checking its operands (adamStep, adamStepMany). */
function adamRow(param: Tensor, grad: Tensor, m: Tensor, v: Tensor): Tensor[] {
  checkOptimShapes("adamStep", param, [["grad", grad], ["m", m], ["v", v]]);
  return [param, grad, m, v];
}

/** An EMA update's bindings, after checking its operands (emaUpdate, emaUpdateMany). */
function emaRow(k: Tensor, q: Tensor): Tensor[] {
  checkOptimShapes("emaUpdate", k, [["q", q]]);
  return [k, q];
}

const emaValues = (m: number) => [{ f32: m }, { f32: 1 - m }];

/**
 * torch.optim.SGD step in place. buf is required when momentum ≠ 0 (zeros, with first=true on
 * step 1). With `amp` (loss scaling, see the file header) the gradient is unscaled first and the
 * step is skipped when the scaler flagged a non-finite gradient.
 */
export function sgdStep(
  param: Tensor,
  grad: Tensor,
  buf: Tensor | null,
  o: SgdOptions,
  amp: AmpState | null = null,
): void {
  const [key, row] = sgdRow(param, grad, buf, o);
  runOne(key, row, sgdValues(o), amp);
}

/**
 * torch.optim.Adam (decoupled=false) or AdamW (decoupled=true) step in place; o.step is 1-based.
 * `amp`: as sgdStep, and the step count is amp's applied steps + 1 instead of o.step (a skipped
 * step does not count, as with torch's GradScaler), its bias corrections computed here in f32.
 */
export function adamStep(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  o: AdamOptions,
  amp: AmpState | null = null,
): void {
  runOne("adam", adamRow(param, grad, m, v), adamValues(o), amp);
}

/** MoCo key-encoder update k ← m·k + (1 − m)·q, in place. */
export function emaUpdate(k: Tensor, q: Tensor, m: number): void {
  runOne("ema", emaRow(k, q), emaValues(m), null);
}

/**
 * A dispatch over several tensors ("rows"), each with the workgroups its own dispatch would
 * have had: row r takes workgroups [first[r], first[r] + groups[r]) of a 1-D grid and walks its
 * items grid-stride within them. (Giving every row the largest row's workgroups was 1.5× slower
 * than one dispatch a tensor on lavapipe, where a workgroup costs a call.)
 */
function rowGrid(items: readonly number[]): { first: number[]; groups: number[]; total: number } {
  const groups = items.map((n) => Math.max(1, Math.min(Math.ceil(n / WG), MAX_GROUPS)));
  const first = groups.map((_, r) => groups.slice(0, r).reduce((x, y) => x + y, 0));
  return { first, groups, total: groups.reduce((x, y) => x + y, 0) };
}

/**
 * WGSL: the body of a row-grid kernel's main over `count` rows. `at(field, r)` names row r's
 * value of a per-row uniform array (n, first, groups); `loop(r)` is row r's statement for item i.
 * The row is found by comparing the workgroup with the rows' first workgroups (uniform per
 * workgroup), then a switch picks its bindings; `setup` (lines, each opening "\n  ") comes
 * first. The caller closes main.
 */
function rowMain(
  count: number,
  at: (f: string, r: number) => string,
  loop: (r: number) => string,
  setup = "",
) {
  const t = Array.from({ length: count - 1 }, (_, r) => `u32(wid.x >= ${at("first", r + 1)})`);
  const cases = Array.from(
    { length: count },
    (_, r) =>
      `    case ${r}u: {
      let lw = wid.x - ${at("first", r)};
      for (var i = lw * ${WG}u + lid; i < ${at("n", r)}; i += ${at("groups", r)} * ${WG}u) {
        ${loop(r)}
      }
    }`,
  ).join("\n");
  return `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {${setup}
  let t = ${t.length ? t.join(" + ") : "0u"};
  switch t {
${cases}
    default: {}
  }`;
}

/**
 * The grouped form of an update (SPECS[key]) over `count` tensors in one dispatch, all vec4 or
 * all f32 (T): tensor r a row (rowGrid), its bindings suffixed r, the body and loss scaling
 * (`amp`) as the one-tensor kernel's, so the same bits. Its uniform block puts the rows' item
 * counts, first workgroups and workgroup counts before the update's own fields.
 */
const groupedKernel = kernelFamily(
  (key: SpecKey, count: number, T: "f32" | "vec4f", amp: boolean): Kernel => {
    const { bindings, fields, body, setup, fns } = SPECS[key];
    const names = bindings.map((b) => b.replace("!", ""));
    const decls = Array.from(
      { length: count },
      (_, r) =>
        bindings.map((b, j) =>
          `@group(0) @binding(${r * bindings.length + j + 1}) var<storage, ${
            b.endsWith("!") ? "read_write" : "read"
          }> ${names[j]}${r}: array<${T}>;`
        ),
    ).flat();
    if (amp) {
      decls.push(
        `@group(0) @binding(${
          count * bindings.length + 1
        }) var<storage, read> ampScale: array<f32>;`,
        `@group(0) @binding(${
          count * bindings.length + 2
        }) var<storage, read> ampFlags: array<u32>;`,
      );
    }
    const rowBody = (r: number) => {
      let b = body;
      for (const nm of names) b = b.replace(new RegExp(`\\b${nm}\\[`, "g"), `${nm}${r}[`);
      return amp ? b.replaceAll(`grad${r}[i]`, `(grad${r}[i] * inv)`) : b;
    };
    const pre = amp ? AMP_SETUP + (setup ? `\n  ${setup.amp}` : "") : setup?.plain;
    const main = rowMain(count, (f, r) => `p.row${f}[${r}]`, rowBody, pre ? `\n  ${pre}` : "");
    return {
      name: `optim:${key}:${count}:${T}${amp ? ":amp" : ""}`,
      code: `
struct P { rown: vec4u, rowfirst: vec4u, rowgroups: vec4u, ${fields} }
@group(0) @binding(0) var<uniform> p: P;
${decls.join("\n")}
${fns ?? ""}
${main}
}`,
    };
  },
);

/**
 * Runs SPECS[key] over many tensors: rows[r] is one tensor's bindings in SPECS order, `values`
 * the update's own uniform values. Grouped (hardware adapters): as many rows a dispatch as fit 8
 * storage buffers (amp's two included), at most 4, the vec4 rows and the others apart; else
 * the one-tensor kernel a row, as sgdStep and the others dispatch it. Same bits either way.
 */
function runMany(
  key: SpecKey,
  rows: readonly Tensor[][],
  values: Array<number | { f32: number }>,
  amp: AmpState | null,
): void {
  if (rows.length === 0) return;
  const gpu = rows[0][0].gpu;
  const ampBufs = amp ? [amp.scale.buffer, amp.flags.buffer] : [];
  if (!grouped(gpu)) return rows.forEach((row) => runOne(key, row, values, amp));
  const per = Math.min(4, Math.floor((8 - ampBufs.length) / SPECS[key].bindings.length));
  const pad = (v: number[]) => [...v, ...new Array(4 - v.length).fill(0)];
  for (const vec of [true, false]) {
    const at = rows.flatMap((row, i) => (row[0].size % 4 === 0) === vec ? [i] : []);
    for (let j = 0; j < at.length; j += per) {
      const part = at.slice(j, j + per);
      const items = part.map((i) => vec ? rows[i][0].size / 4 : rows[i][0].size);
      const g = rowGrid(items);
      gpu.dispatch(
        groupedKernel(key, part.length, vec ? "vec4f" : "f32", amp !== null),
        [...part.flatMap((i) => rows[i].map((t) => t.buffer)), ...ampBufs],
        params([...pad(items), ...pad(g.first), ...pad(g.groups), ...values]),
        [g.total],
      );
    }
  }
}

/**
 * Whether the many-tensor kernels (emaUpdateMany, sgdStepMany, adamStepMany, flagNonFinite) group
 * their tensors, several a dispatch: hardware adapters do, where a dispatch that waits on the last costs a barrier and a
 * launch; software adapters run one dispatch a tensor, since there the grouped kernel, its
 * bindings chosen by a switch, ran 1.5× slower (lavapipe, ResNet-18's 62 tensors: 30–32 ms an
 * EMA against 19–28). `setGroupedOptim` forces either (tests).
 */
let groupedOptim: "auto" | boolean = "auto";

/** Forces the grouped many-tensor kernels on or off ("auto": hardware adapters group). */
export function setGroupedOptim(v: "auto" | boolean): void {
  groupedOptim = v;
}

const grouped = (gpu: Gpu): boolean => groupedOptim === "auto" ? !gpu.isSoftware : groupedOptim;

/**
 * emaUpdate over many pairs (ks[i], qs[i]): grouped on hardware adapters, 4 pairs a dispatch
 * (runMany), a model's 60 to 360 parameter tensors in a quarter as many dispatches; the same bits.
 */
export function emaUpdateMany(ks: readonly Tensor[], qs: readonly Tensor[], m: number): void {
  if (ks.length !== qs.length) {
    throw new Error(`emaUpdateMany: ${ks.length} key tensors for ${qs.length} query tensors`);
  }
  runMany("ema", ks.map((k, i) => emaRow(k, qs[i])), emaValues(m), null);
}

/** sgdStep over many parameters (bufs[i] each one's momentum buffer, or null without momentum). */
export function sgdStepMany(
  ps: readonly Tensor[],
  gs: readonly Tensor[],
  bufs: readonly (Tensor | null)[],
  o: SgdOptions,
  amp: AmpState | null = null,
): void {
  const rows = ps.map((p, i) => sgdRow(p, gs[i], bufs[i], o));
  if (rows.length) runMany(rows[0][0], rows.map(([, row]) => row), sgdValues(o), amp);
}

/** adamStep over many parameters (ms[i], vs[i] each one's moments). */
export function adamStepMany(
  ps: readonly Tensor[],
  gs: readonly Tensor[],
  ms: readonly Tensor[],
  vs: readonly Tensor[],
  o: AdamOptions,
  amp: AmpState | null = null,
): void {
  runMany("adam", ps.map((p, i) => adamRow(p, gs[i], ms[i], vs[i])), adamValues(o), amp);
}

// ---- loss scaling ----------------------------------------------------------

/**
 * A loss scaler's state on the device: scale [1] f32; flags [4] u32 words (found, good, skipped,
 * applied).
 */
export interface AmpState {
  scale: Tensor;
  flags: Tensor;
}

/** Gradients one flag dispatch checks: 7 bound, with the flags, are the 8 storage buffers a stage may take. */
export const FLAG_TENSORS = 7;

/**
 * The found flag over `count` gradients in one dispatch, gradient r a row (rowGrid, its length in
 * a uniform array); a lane that saw ±inf or NaN ORs the flag once. One dispatch instead of one per
 * gradient, and so one barrier: every check writes the flags.
 */
const flagKernel = kernelFamily((count: number): Kernel => {
  const binds = Array.from(
    { length: count },
    (_, t) => `@group(0) @binding(${t + 1}) var<storage, read> g${t}: array<u32>;`,
  ).join("\n");
  return {
    name: `amp_flag_nonfinite:${count}`,
    code: `
struct P { n: array<vec4u, 2>, first: array<vec4u, 2>, groups: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: P;
${binds}
@group(0) @binding(${count + 1}) var<storage, read_write> flags: array<atomic<u32>>;
${
      rowMain(
        count,
        (f, r) => `p.${f}[${r >> 2}][${r & 3}]`,
        (r) => `bad = bad || (g${r}[i] & 0x7f800000u) == 0x7f800000u;`,
        "\n  var bad = false;",
      )
    }
  if (bad) { atomicOr(&flags[0], 1u); }
}`,
  };
});

const UPDATE_SCALE: Kernel = {
  name: "amp_update_scale",
  code: `
struct P { interval: u32, growth: f32, backoff: f32, maxScale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> scale: array<f32>;
@group(0) @binding(2) var<storage, read_write> flags: array<u32>;
@compute @workgroup_size(1)
fn main() {
  if (flags[0] != 0u) {
    scale[0] = scale[0] * p.backoff;
    flags[1] = 0u;
    flags[2] = flags[2] + 1u;
  } else {
    flags[${AMP_APPLIED}] = flags[${AMP_APPLIED}] + 1u;
    flags[1] = flags[1] + 1u;
    if (flags[1] >= p.interval) {
      scale[0] = min(scale[0] * p.growth, p.maxScale);
      flags[1] = 0u;
    }
  }
  flags[0] = 0u;
}`,
};

/**
 * Sets the scaler's found flag when any value of the f32 gradients is ±inf or NaN: FLAG_TENSORS
 * gradients a dispatch where the adapter groups (setGroupedOptim), else one a dispatch.
 */
export function flagNonFinite(gs: readonly Tensor[], amp: AmpState): void {
  for (const g of gs) {
    if (g.dtype !== "f32") throw new Error(`flagNonFinite: gradient must be f32, got ${g.dtype}`);
  }
  const pad = (v: number[]) => [...v, ...new Array(8 - v.length).fill(0)];
  const per = grouped(amp.flags.gpu) ? FLAG_TENSORS : 1;
  for (let at = 0; at < gs.length; at += per) {
    const part = gs.slice(at, at + per);
    const n = part.map((g) => g.size), g = rowGrid(n);
    amp.flags.gpu.dispatch(
      flagKernel(part.length),
      [...part.map((t) => t.buffer), amp.flags.buffer],
      params([...pad(n), ...pad(g.first), ...pad(g.groups)]),
      [g.total],
    );
  }
}

/** GradScaler's update after a step (see the file header); clears the found flag. */
export function updateLossScale(amp: AmpState, o: LossScaleOptions): void {
  amp.scale.gpu.dispatch(
    UPDATE_SCALE,
    [amp.scale.buffer, amp.flags.buffer],
    params([o.interval, { f32: o.growth }, { f32: o.backoff }, { f32: o.maxScale }]),
    [1],
  );
}
