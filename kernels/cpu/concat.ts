/** CPU references for kernels/concat.ts (channel concat/slice of NCHW or [N,C] tensors). */
import { type CpuTensor, cpuTensor } from "./tensor.ts";

/** [N, C, inner] of an NCHW-like shape (rank ≥ 2). */
export function channelDims(shape: readonly number[], what: string): [number, number, number] {
  if (shape.length < 2) throw new Error(`${what}: need at least [N,C], got [${shape}]`);
  return [shape[0], shape[1], shape.slice(2).reduce((a, b) => a * b, 1)];
}

/** Checks that all shapes agree except in dim 1; returns the concatenated shape. */
export function concatShape(shapes: ReadonlyArray<readonly number[]>): number[] {
  if (shapes.length === 0) throw new Error("concatChannels: no inputs");
  const s0 = shapes[0];
  let C = 0;
  shapes.forEach((s, i) => {
    channelDims(s, "concatChannels");
    if (s.length !== s0.length || s.some((d, j) => j !== 1 && d !== s0[j])) {
      throw new Error(`concatChannels: input ${i} is [${s}], incompatible with [${s0}]`);
    }
    C += s[1];
  });
  return [s0[0], C, ...s0.slice(2)];
}

/**
 * [N, C_wide, inner, C_narrow] after checking that `narrow`'s channels fit `wide`'s from `start`
 * (the same N and inner): the one check of the channel-range ops, GPU and CPU.
 * copyChannelsInto and addToChannels write the narrow tensor into the wide one; addChannelsInto
 * adds the wide one's range into the narrow one.
 */
export function channelRange(
  wide: readonly number[],
  narrow: readonly number[],
  start: number,
  op: string,
): [number, number, number, number] {
  const [N, C, inner] = channelDims(wide, op);
  const [Nn, Cn, innerN] = channelDims(narrow, op);
  if (N !== Nn || inner !== innerN || !(start >= 0 && start + Cn <= C)) {
    throw new Error(`${op}: [${narrow}] does not fit [${wide}]'s channels from ${start}`);
  }
  return [N, C, inner, Cn];
}

export function copyChannelsIntoCpu(dst: CpuTensor, src: CpuTensor, dstStart: number): void {
  const [N, Cd, inner, Cs] = channelRange(dst.shape, src.shape, dstStart, "copyChannelsInto");
  for (let n = 0; n < N; n++) {
    dst.data.set(
      src.data.subarray(n * Cs * inner, (n + 1) * Cs * inner),
      (n * Cd + dstStart) * inner,
    );
  }
}

/** dst's channels [dstStart, dstStart + C_src) += src (f32 sums; the backend rounds f16). */
export function addToChannelsCpu(dst: CpuTensor, src: CpuTensor, dstStart: number): void {
  const [N, Cd, inner, Cs] = channelRange(dst.shape, src.shape, dstStart, "addToChannels");
  for (let n = 0; n < N; n++) {
    const d0 = (n * Cd + dstStart) * inner, s0 = n * Cs * inner;
    for (let i = 0; i < Cs * inner; i++) dst.data[d0 + i] += src.data[s0 + i];
  }
}

export function concatChannelsCpu(xs: CpuTensor[]): CpuTensor {
  const y = cpuTensor(concatShape(xs.map((x) => x.shape)));
  let c = 0;
  for (const x of xs) {
    copyChannelsIntoCpu(y, x, c);
    c += x.shape[1];
  }
  return y;
}

export function sliceChannelsCpu(x: CpuTensor, start: number, count: number): CpuTensor {
  const [N, C, inner] = channelDims(x.shape, "sliceChannels");
  if (!(start >= 0 && count >= 1 && start + count <= C)) {
    throw new Error(`sliceChannels: [${start}, ${start + count}) is outside ${C} channels`);
  }
  const y = cpuTensor([N, count, ...x.shape.slice(2)]);
  for (let n = 0; n < N; n++) {
    y.data.set(
      x.data.subarray((n * C + start) * inner, (n * C + start + count) * inner),
      n * count * inner,
    );
  }
  return y;
}

/** acc += x's channels [start, start + acc's channels) (f32 sums; the backend rounds f16). */
export function addChannelsIntoCpu(acc: CpuTensor, x: CpuTensor, start: number): void {
  const [N, Cx, inner, C] = channelRange(x.shape, acc.shape, start, "addChannelsInto");
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < C * inner; i++) {
      acc.data[n * C * inner + i] += x.data[(n * Cx + start) * inner + i];
    }
  }
}
