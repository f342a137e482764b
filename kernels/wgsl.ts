/**
 * WGSL pieces shared by the kernels, so each is written once:
 * - `gridStrideMain`: the entry point of a 1-D grid-stride kernel. Invocation
 *   `i` handles items i, i + T, i + 2T, … (T = workgroups · wg), so any item
 *   count runs on a capped number of workgroups and neighbouring lanes touch
 *   neighbouring addresses. Dispatch: [min(ceil(n / wg), cap)].
 * - `treeSum`: `fn total(v, lid) -> f32`, a workgroup-wide sum in a fixed
 *   order (halving strides over a `sh` array the kernel declares), so a
 *   reduction gives the same bits on every run.
 * - `unroll`: host-side helper that spells out a loop body n times.
 * - `storagePrelude`: the first lines of a kernel whose activations are stored
 *   as `S` (f32 or f16): `enable f16;` where needed and `alias S`. Such a kernel
 *   declares those bindings `array<S>` (or `array<vec4<S>>`), widens every load
 *   with `f32(…)` and computes in f32, and rounds once at the store with `S(…)`.
 * - `forGeometry` (with `withParams`, `withConstants`, `bakesGeometry`): a
 *   uniform-driven kernel compiled per geometry, its `p.<field>` reads (some,
 *   or all but a few) written in as constants. A GPU's compiler then divides by constants (a
 *   multiply and a shift) and knows its loop bounds, where a u32 division by a
 *   uniform is a long instruction sequence: on an H200 the index-heavy,
 *   memory-bound kernels (pooling, col2im's gather) ran several times over their
 *   memory floors (kernels/KERNELS.md, sessions 11-13). Hardware adapters bake;
 *   software adapters, where compiling is slow and a division is cheap, keep one
 *   pipeline for every geometry. Tests force either.
 */
import type { Gpu, Kernel } from "./device.ts";
import type { DType } from "./tensor.ts";

/** Must open the module (WGSL wants `enable` before any declaration). */
export const storagePrelude = (d: DType): string =>
  d === "f16" ? "enable f16;\nalias S = f16;\n" : "alias S = f32;\n";

/** `n` strings made by `f(0) … f(n − 1)`, joined by newlines (unrolled WGSL). */
export const unroll = (n: number, f: (i: number) => string): string =>
  Array.from({ length: n }, (_, i) => f(i)).join("\n");

/** Entry point looping `i` over [0, count) with a grid stride; `setup` runs once per invocation. */
export function gridStrideMain(wg: number, count: string, body: string, setup = ""): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  ${setup}
  for (var i = gid.x; i < ${count}; i += nw.x * ${wg}u) {
${body}
  }
}`;
}

/**
 * `fn total(v: ty, lid: u32) -> ty`: sum over a workgroup of `wg` lanes (all must call it), over a
 * `sh` array the kernel declares (see `treeSumDeclared`); ty is f32 or a vector of f32.
 */
export const treeSum = (wg: number, sh = "sh", ty = "f32"): string => `
fn total(v: ${ty}, lid: u32) -> ${ty} {
  ${sh}[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${sh}[lid] += ${sh}[lid + s]; }
    workgroupBarrier();
  }
  let r = ${sh}[0];
  workgroupBarrier();
  return r;
}`;

/** `treeSum` with its workgroup array `sh: array<ty, wg>` declared. */
export const treeSumDeclared = (wg: number, ty: string): string =>
  `\nvar<workgroup> sh: array<${ty}, ${wg}>;${treeSum(wg, "sh", ty)}`;

let perGeometry: "auto" | boolean = "auto";

/** Kernels compiled per geometry: "auto" (hardware adapters do), or forced on or off (tests). */
export function setPerGeometry(v: "auto" | boolean): void {
  perGeometry = v;
}

/** Whether `gpu` runs the per-geometry forms of the kernels that have one (see withConstants). */
export function bakesGeometry(gpu: Gpu): boolean {
  return perGeometry === "auto" ? !gpu.isSoftware : perGeometry;
}

/**
 * `k` as the adapter runs it: compiled for this call's `values` (withParams) where the adapter
 * bakes geometry (bakesGeometry), else `k` itself, every geometry through its uniforms.
 */
export function forGeometry(gpu: Gpu, k: Kernel, values: ArrayLike<number>, keep: string[] = []) {
  return bakesGeometry(gpu) ? withParams(k, values, keep) : k;
}

/** A kernel's `struct P` fields in order, [name, type] (parsed once a kernel). */
const fieldsOf = new WeakMap<Kernel, Array<[string, string]>>();

/**
 * `k` with every u32 field of its `struct P` uniform block written in as the constant it holds in
 * `values` (the params array, in field order), except the fields named in `keep` (those that vary
 * between calls of one geometry: an item count, a batch). See withConstants.
 */
export function withParams(k: Kernel, values: ArrayLike<number>, keep: string[] = []): Kernel {
  let struct = fieldsOf.get(k);
  if (!struct) {
    const m = /struct P \{([^}]*)\}/.exec(k.code);
    if (!m) throw new Error(`withParams(${k.name}): no struct P`);
    struct = m[1].split(",").map((f) => f.trim()).filter(Boolean)
      .map((f) => f.split(":").map((x) => x.trim()) as [string, string]);
    fieldsOf.set(k, struct);
  }
  const fields: Record<string, number> = {};
  struct.forEach(([name, type], i) => {
    if (type === "u32" && !keep.includes(name) && i < values.length) fields[name] = values[i];
  });
  return withConstants(k, fields);
}

/**
 * Baked kernels by their source kernel (the object: kernel families memoise theirs, so this is
 * one lookup a dispatch, not a hash of a long source) and then by the fields' names and values.
 */
const baked = new WeakMap<Kernel, Map<string, Kernel>>();
/**
 * `k` with each `p.<field>` read of the given fields written in as a u32 constant (named
 * `<name>:<values>`, memoised: one pipeline per geometry). The fields must be u32 in `k`'s
 * uniform block; the block itself stays, so the same params still bind, and at least one field
 * must stay a uniform read (else the block drops out of the layout; an error here).
 */
export function withConstants(k: Kernel, fields: Record<string, number>): Kernel {
  const names = Object.keys(fields);
  if (names.length === 0) return k;
  const values = names.map((f) => fields[f]).join("x");
  let mine = baked.get(k);
  if (!mine) baked.set(k, mine = new Map());
  const key = `${names.join(",")}|${values}`;
  let out = mine.get(key);
  if (!out) {
    for (const f of names) {
      const v = fields[f];
      if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
        throw new Error(`withConstants(${k.name}): ${f} = ${v} is not a u32`);
      }
    }
    const code = k.code.replace(
      new RegExp(`\\bp\\.(${names.join("|")})\\b`, "g"),
      (_, f: string) => `${fields[f]}u`,
    );
    // a uniform block no longer read drops out of the pipeline's layout, and the dispatch that
    // still binds it fails asynchronously: keep one field a uniform (an item count)
    if (!/\bp\./.test(code)) {
      throw new Error(`withConstants(${k.name}): every field baked; keep one a uniform`);
    }
    mine.set(key, out = { name: `${k.name}:${values}`, code });
  }
  return out;
}
