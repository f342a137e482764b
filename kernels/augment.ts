/**
 * The augmentation of a batch on the device: uint8 images (the image cache's stored pixels,
 * uploaded as they are, 4 to a u32 word) resampled through one affine map per output image
 * (crop, resize, flip and rotation folded together on the host), by nearest neighbour (the f32
 * source coordinate rounded half to even by WGSL's round(), as torchvision's NEAREST / grid_sample)
 * or bilinearly (spec.interp, one choice a dispatch), black outside, then one affine intensity map (contrast about the image mean, brightness, normalisation),
 * written as f32 [slots, C, n, n] with the channel replicated C times. data/augment.ts is what it
 * reproduces; data/augment_device.ts turns its sampled transforms into the slot parameters.
 *
 * Slot parameters (AUGMENT_SLOT f32 a slot): [src, ox, oy, dxu, dyu, dxv, dyv, a, cm, b] —
 * source image `src` (index into the uploaded images); output pixel (u, v) reads source point
 * (ox + u·dxu + v·dxv, oy + u·dyu + v·dyv) in pixel-centre coordinates; the value is
 * val·a + mean·cm + b, mean being the slot's mean resampled value (computed only when some slot
 * has cm ≠ 0: a second pass).
 *
 * Mapping: workgroup (t, s) of 256 lanes writes pixels [t·CHUNK, (t+1)·CHUNK) of slot s, lane l
 * every 256th from l; with the mean, one workgroup per slot (t = 0, CHUNK = n²) first sums every
 * pixel (fixed-order tree sum) and then writes. CHUNK = 4,096 pixels (16 a lane).
 * Dispatch: [ceil(n² / CHUNK), slots] (or [1, slots] with the mean); slots ≤ 65,535.
 */
import { type Gpu, GpuError, type Kernel, params } from "./device.ts";
import { Tensor } from "./tensor.ts";
import { treeSum } from "./wgsl.ts";
import { AUGMENT_SLOT, type AugmentSpec } from "./cpu/augment.ts";

export { AUGMENT_SLOT, type AugmentSpec };

const WG = 256;
const CHUNK = 4096;

const KERNEL: Kernel = {
  name: "augment_resample",
  code: `
struct P { n: u32, S: u32, C: u32, chunk: u32, mean: u32, nearest: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> pix: array<u32>;
@group(0) @binding(2) var<storage, read> slot: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> sh: array<f32, ${WG}>;
${treeSum(WG)}

fn texel(base: u32, x: i32, y: i32) -> f32 {
  let S = i32(p.S);
  if (x < 0 || y < 0 || x >= S || y >= S) { return 0.0; }
  let b = base + u32(y * S + x);
  return f32((pix[b >> 2u] >> ((b & 3u) * 8u)) & 255u);
}

fn sample(o: u32, base: u32, i: u32) -> f32 {
  let u = f32(i % p.n);
  let v = f32(i / p.n);
  let X = slot[o + 1u] + u * slot[o + 3u] + v * slot[o + 5u];
  let Y = slot[o + 2u] + u * slot[o + 4u] + v * slot[o + 6u];
  if (p.nearest == 1u) {
    // round(): halves to even (WGSL), as grid_sample's nearbyint; the range test keeps i32() small
    let rx = round(X);
    let ry = round(Y);
    if (rx < 0.0 || ry < 0.0 || rx >= f32(p.S) || ry >= f32(p.S)) { return 0.0; }
    return texel(base, i32(rx), i32(ry));
  }
  let fx = floor(X);
  let fy = floor(Y);
  let ax = X - fx;
  let ay = Y - fy;
  // far outside: every tap is black (also keeps i32() of huge coordinates out)
  if (fx < -1.0 || fy < -1.0 || fx >= f32(p.S) || fy >= f32(p.S)) { return 0.0; }
  let x0 = i32(fx);
  let y0 = i32(fy);
  let p00 = texel(base, x0, y0);
  let p10 = texel(base, x0 + 1, y0);
  let p01 = texel(base, x0, y0 + 1);
  let p11 = texel(base, x0 + 1, y0 + 1);
  let top = p00 + (p10 - p00) * ax;
  let bot = p01 + (p11 - p01) * ax;
  return top + (bot - top) * ay;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
  let s = w.y;
  let o = s * ${AUGMENT_SLOT}u;
  let n2 = p.n * p.n;
  let base = u32(slot[o]) * p.S * p.S;
  var m = 0.0;
  if (p.mean == 1u) {
    var acc = 0.0;
    for (var i = l; i < n2; i += ${WG}u) { acc += sample(o, base, i); }
    m = total(acc, l) / f32(n2);
  }
  let a = slot[o + 7u];
  let c = m * slot[o + 8u] + slot[o + 9u];
  let start = w.x * p.chunk;
  let end = min(start + p.chunk, n2);
  for (var i = start + l; i < end; i += ${WG}u) {
    let val = sample(o, base, i) * a + c;
    for (var ch = 0u; ch < p.C; ch++) { out[(s * p.C + ch) * n2 + i] = val; }
  }
}`,
};

/** Uploads bytes (uint8 pixels) into a pooled buffer, 4 to a word (the tail padded with 0). */
export function uploadBytes(gpu: Gpu, bytes: Uint8Array): Tensor {
  const words = Math.max(1, Math.ceil(bytes.length / 4));
  const t = Tensor.empty(gpu, [words]);
  if (bytes.length % 4 === 0) gpu.write(t.buffer, bytes);
  else {
    const padded = new Uint8Array(words * 4);
    padded.set(bytes);
    gpu.write(t.buffer, padded);
  }
  return t;
}

/** Whether any slot needs its image mean (contrast ≠ 1). */
export function slotsNeedMean(slots: Float32Array): boolean {
  for (let o = 8; o < slots.length; o += AUGMENT_SLOT) if (slots[o] !== 0) return true;
  return false;
}

/**
 * Resamples the uploaded images (`pixels`: uploadBytes of count·srcSize² bytes) through the
 * slots ([slots, AUGMENT_SLOT]) into a new [slots, C, n, n] tensor. `needMean` must be
 * slotsNeedMean of the slots' values (the host has them).
 */
export function augmentImages(
  pixels: Tensor,
  slots: Tensor,
  spec: AugmentSpec,
  needMean: boolean,
): Tensor {
  const count = slots.size / AUGMENT_SLOT, n = spec.size, n2 = n * n;
  if (!Number.isInteger(count) || count < 1 || count > 65535) {
    throw new GpuError(`augmentImages: ${slots.size} slot values is not 1-65535 slots`);
  }
  const interp = spec.interp ?? "bilinear";
  if (interp !== "nearest" && interp !== "bilinear") {
    throw new GpuError(`augmentImages: unknown interpolation "${interp}"`);
  }
  const nearest = interp === "nearest";
  const out = Tensor.empty(pixels.gpu, [count, spec.channels, n, n]);
  const chunk = needMean ? n2 : CHUNK;
  pixels.gpu.dispatch(
    KERNEL,
    [pixels.buffer, slots.buffer, out.buffer],
    params([n, spec.srcSize, spec.channels, chunk, needMean ? 1 : 0, nearest ? 1 : 0]),
    [Math.ceil(n2 / chunk), count],
  );
  return out;
}
