/**
 * Elementwise kernels: ReLU and its gradient, add, scale, axpby, fill.
 *
 * Mapping: invocation i handles elements i, i+T, i+2T, … (T = total
 * invocations) so neighbouring lanes touch neighbouring addresses.
 * Tiles: workgroup 64, at most MAX_GROUPS workgroups; dispatch
 * = min(ceil(n / 64), MAX_GROUPS) workgroups, folded into 2-D by grid1d.
 * Rejected: one element per invocation with 2-D folding for large n — on
 * lavapipe the per-invocation setup dominated for 1-FLOP bodies.
 */
import { grid1d, type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";

const WG = 64;
const MAX_GROUPS = 4096;

function mapKernel(name: string, inputs: number, expr: string): Kernel {
  const bindings = Array.from(
    { length: inputs },
    (_, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<f32>;`,
  ).join("\n");
  return {
    key: `map:${name}`,
    code: `
struct P { n: u32, a: f32, b: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
@group(0) @binding(${inputs + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = nw.x * nw.y * ${WG}u;
  var i = g.x + g.y * nw.x * ${WG}u;
  loop {
    if (i >= p.n) { break; }
    let x = ${inputs > 0 ? "in0[i]" : "0.0"};
    let y = ${inputs > 1 ? "in1[i]" : "0.0"};
    out[i] = ${expr};
    i += total;
  }
}`,
  };
}

const K = {
  // select, not max: max(NaN, 0) is 0 on some drivers, which would hide a diverged run.
  relu: mapKernel("relu", 1, "select(x, 0.0, x < 0.0)"),
  reluGrad: mapKernel("relu_grad", 2, "select(0.0, x, y > 0.0)"), // x = dy, y = relu output
  add: mapKernel("add", 2, "x + y"),
  mul: mapKernel("mul", 2, "x * y"),
  axpby: mapKernel("axpby", 2, "p.a * x + p.b * y"),
  scale: mapKernel("scale", 1, "p.a * x"),
  fill: mapKernel("fill", 0, "p.a"),
};

function run(k: Kernel, inputs: Tensor[], out: Tensor, a = 0, b = 0): Tensor {
  for (const t of inputs) {
    if (t.size !== out.size) throw new Error(`${k.key}: size ${t.size} vs ${out.size}`);
  }
  const groups = grid1d(out.size, WG);
  const g = Math.min(groups[0] * groups[1], MAX_GROUPS);
  out.gpu.dispatch(
    k,
    [...inputs.map((t) => t.buffer), out.buffer],
    params([out.size, { f32: a }, { f32: b }]),
    [g],
  );
  return out;
}

const like = (t: Tensor) => Tensor.empty(t.gpu, t.shape);

export const relu = (x: Tensor, out = like(x)) => run(K.relu, [x], out);
/** dL/dx of y = relu(x), from the output y (y > 0 exactly where x > 0). */
export const reluBackward = (dy: Tensor, y: Tensor, out = like(dy)) =>
  run(K.reluGrad, [dy, y], out);
export const add = (a: Tensor, b: Tensor, out = like(a)) => run(K.add, [a, b], out);
export const mul = (a: Tensor, b: Tensor, out = like(a)) => run(K.mul, [a, b], out);
/** out = a·x + b·y (out may alias x or y: each element is read before it is written). */
export const axpby = (a: number, x: Tensor, b: number, y: Tensor, out = like(x)) =>
  run(K.axpby, [x, y], out, a, b);
export const scale = (x: Tensor, a: number, out = like(x)) => run(K.scale, [x], out, a);
export const fill = (out: Tensor, value: number) => run(K.fill, [], out, value);
