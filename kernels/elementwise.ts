/**
 * Elementwise kernels: ReLU and its gradient, add (also in place, and fused with ReLU), scale,
 * axpby, fill, sigmoid.
 *
 * Mapping: when n % 4 == 0 the buffers are read as vec4 (n/4 items), else as
 * f32; invocation i handles items i, i+T, i+2T, … (T = total invocations), so
 * neighbouring lanes touch neighbouring addresses. Workgroup WG = 64, dispatch
 * min(ceil(items / 64), cap) workgroups (cap = MAX_GROUPS = 1024 on software adapters,
 * Gpu.gridCap's on hardware ones).
 *
 * Why vec4 (lavapipe, Mesa 22.3): each storage access is a per-lane scalar
 * loop; a vec4 access does 4 component loads inside one lane iteration, so the
 * loop overhead is paid once per 4 elements.
 * Measured against f32 items and other group caps: kernels/KERNELS.md.
 *
 * ReLU keeps NaN (as torch): the test is on the bits (sign set and not NaN),
 * because the GL backend's compiler turned select(x, 0, x < 0) into max(x, 0),
 * which maps NaN to 0.
 *
 * Storage: f32 or f16 (wgsl.ts `storagePrelude`), the output in the inputs'
 * dtype; loads are widened to f32, the expression is computed in f32 and
 * rounded once at the store. scaleBy's one-value factor s is always f32.
 */
import { grid1d, type Kernel, kernelFamily, params } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";
import { sameDtype } from "./cast.ts";
import { storagePrelude } from "./wgsl.ts";

export const EW_WG = 64;
const MAX_GROUPS = 1024;

/**
 * WGSL for an elementwise map; `expr` sees x, y (inputs), Z (zero of the item type) and p.a, p.b.
 * An in-place map (EXPRS' fourth field) reads x from `out` itself and y from its one input.
 */
const kernelFor = kernelFamily((name: string, vec: boolean, dtype: DType): Kernel => {
  const [inputs, expr, scalarY, inPlace] = EXPRS[name];
  const T = vec ? "vec4f" : "f32"; // compute type
  const ST = vec ? "vec4<S>" : "S"; // storage type
  const bindings = Array.from(
    { length: inputs },
    (_, i) =>
      `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<${
        i === 1 && scalarY ? "f32" : ST
      }>;`,
  ).join("\n");
  return {
    name: `map:${name}:${vec ? 4 : 1}:${dtype}`,
    code: `${storagePrelude(dtype)}
struct P { n: u32, a: f32, b: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
@group(0) @binding(${inputs + 1}) var<storage, read_write> out: array<${ST}>;
alias T = ${T};
alias I = ${vec ? "vec4i" : "i32"};
const Z = T(0.0);
@compute @workgroup_size(${EW_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = nw.x * nw.y * ${EW_WG}u;
  var i = g.x + g.y * nw.x * ${EW_WG}u;
  loop {
    if (i >= p.n) { break; }
    let x = ${inPlace ? "T(out[i])" : inputs > 0 ? "T(in0[i])" : "Z"};
    let y = ${inPlace ? "T(in0[i])" : inputs > 1 ? (scalarY ? "T(in1[0])" : "T(in1[i])") : "Z"};
    out[i] = ${ST}(${expr});
    i += total;
  }
}`,
  };
});

// x < 0 and not NaN, on the bits: sign bit set, magnitude ≤ +inf.
const NEG = "(bitcast<I>(x) < I(0)) & ((bitcast<I>(x) & I(0x7fffffff)) <= I(0x7f800000))";
/**
 * name → [inputs, expression, whether y is the one value of a [1] tensor (broadcast), whether x is
 * the output's own value (in place)].
 */
const EXPRS: Record<string, [number, string, boolean?, boolean?]> = {
  relu: [1, `select(x, Z, ${NEG})`],
  relu_grad: [2, "select(Z, x, y > Z)"], // x = dy, y = relu output
  add: [2, "x + y"],
  // relu(x + y), a residual join in one pass: relu's test on the sum's bits (NaN kept)
  add_relu: [2, `select(x + y, Z, ${NEG.replaceAll("bitcast<I>(x)", "bitcast<I>(x + y)")})`],
  add_into: [1, "x + y", false, true], // x = the accumulator (out), y = the addend
  axpby: [2, "p.a * x + p.b * y"],
  scale: [1, "p.a * x"],
  scale_by: [2, "x * y", true], // y = s[0]: the chain rule's upstream factor of a scalar loss
  fill: [0, "T(p.a)"],
  // stable for large |x|: e^−|x| never overflows
  sigmoid: [
    1,
    "select(exp(-abs(x)) / (T(1.0) + exp(-abs(x))), T(1.0) / (T(1.0) + exp(-abs(x))), x >= Z)",
  ],
};

function run(name: string, inputs: Tensor[], out: Tensor, a = 0, b = 0): Tensor {
  const scalarY = EXPRS[name][2];
  inputs.forEach((t, i) => {
    const want = i === 1 && scalarY ? 1 : out.size;
    if (t.size !== want) throw new Error(`${name}: input ${i} has ${t.size} values, not ${want}`);
  });
  if (scalarY && inputs[1].dtype !== "f32") {
    throw new Error(`${name}: the factor s must be f32, got ${inputs[1].dtype}`);
  }
  const dtype = sameDtype(name, ...inputs.filter((_, i) => !(i === 1 && scalarY)), out);
  const vec = out.size % 4 === 0;
  const items = vec ? out.size / 4 : out.size;
  const groups = grid1d(items, EW_WG);
  const g = Math.min(groups[0] * groups[1], out.gpu.gridCap(MAX_GROUPS));
  out.gpu.dispatch(
    kernelFor(name, vec, dtype),
    [...inputs.map((t) => t.buffer), out.buffer],
    params([items, { f32: a }, { f32: b }]),
    [g],
  );
  return out;
}

/** A new tensor of t's shape and dtype. */
const like = (t: Tensor) => Tensor.empty(t.gpu, t.shape, t.dtype);

export const relu = (x: Tensor, out = like(x)) => run("relu", [x], out);
/** dL/dx of y = relu(x), from the output y (y > 0 exactly where x > 0). */
export const reluBackward = (dy: Tensor, y: Tensor, out = like(dy)) =>
  run("relu_grad", [dy, y], out);
export const add = (a: Tensor, b: Tensor, out = like(a)) => run("add", [a, b], out);
/**
 * relu(a + b) in one pass, a residual block's join: the bits of add then relu (f16 storage too:
 * rounding to a half and ReLU commute), with one write and two reads fewer.
 */
export const addRelu = (a: Tensor, b: Tensor, out = like(a)) => run("add_relu", [a, b], out);
/**
 * acc += d in place: acc bound once, read-write, so no temporary and no copy (a copy ends the
 * compute pass; on an H200 each such break cost ~0.1 ms of a step). The same bits as add(acc, d).
 */
export const addInPlace = (acc: Tensor, d: Tensor) => run("add_into", [d], acc);
/** out = a·x + b·y (out must be a third tensor: WebGPU forbids binding x or y as read_write too). */
export const axpby = (a: number, x: Tensor, b: number, y: Tensor, out = like(x)) =>
  run("axpby", [x, y], out, a, b);
export const scale = (x: Tensor, a: number, out = like(x)) => run("scale", [x], out, a);
/** out = x · s[0] for a one-value tensor s (scaling by a value that stays on the device). */
export const scaleBy = (x: Tensor, s: Tensor, out = like(x)) => run("scale_by", [x, s], out);
export const fill = (out: Tensor, value: number) => run("fill", [], out, value);
/** σ(x) = 1 / (1 + e^−x), computed from e^−|x| so it never overflows. */
export const sigmoid = (x: Tensor, out = like(x)) => run("sigmoid", [x], out);
