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
 * [N, C_dst, inner, C_src] after checking that src's channels fit dst's from dstStart
 * (copyChannelsInto, GPU and CPU).
 */
export function copyChannelsDims(
  dst: readonly number[],
  src: readonly number[],
  dstStart: number,
): [number, number, number, number] {
  const [N, C, inner] = channelDims(dst, "copyChannelsInto");
  const [Ns, Cs, innerS] = channelDims(src, "copyChannelsInto");
  if (N !== Ns || inner !== innerS || !(dstStart >= 0 && dstStart + Cs <= C)) {
    throw new Error(
      `copyChannelsInto: src [${src}] does not fit dst [${dst}] at channel ${dstStart}`,
    );
  }
  return [N, C, inner, Cs];
}

export function copyChannelsIntoCpu(dst: CpuTensor, src: CpuTensor, dstStart: number): void {
  const [N, Cd, inner, Cs] = copyChannelsDims(dst.shape, src.shape, dstStart);
  for (let n = 0; n < N; n++) {
    dst.data.set(
      src.data.subarray(n * Cs * inner, (n + 1) * Cs * inner),
      (n * Cd + dstStart) * inner,
    );
  }
}

/** dst's channels [dstStart, dstStart + C_src) += src (f32 sums; the backend rounds f16). */
export function addToChannelsCpu(dst: CpuTensor, src: CpuTensor, dstStart: number): void {
  const [N, Cd, inner, Cs] = copyChannelsDims(dst.shape, src.shape, dstStart);
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

/**
 * [N, C, inner] of acc and x's channel count, after checking that acc takes x's channels
 * [start, start + C) (addChannelsInto, GPU and CPU).
 */
export function addChannelsDims(
  acc: readonly number[],
  x: readonly number[],
  start: number,
): [number, number, number, number] {
  const [N, C, inner] = channelDims(acc, "addChannelsInto");
  const [Nx, Cx, innerX] = channelDims(x, "addChannelsInto");
  if (N !== Nx || inner !== innerX || !(start >= 0 && start + C <= Cx)) {
    throw new Error(`addChannelsInto: [${acc}] does not take x [${x}]'s channels from ${start}`);
  }
  return [N, C, inner, Cx];
}

/** acc += x's channels [start, start + acc's channels) (f32 sums; the backend rounds f16). */
export function addChannelsIntoCpu(acc: CpuTensor, x: CpuTensor, start: number): void {
  const [N, C, inner, Cx] = addChannelsDims(acc.shape, x.shape, start);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < C * inner; i++) {
      acc.data[n * C * inner + i] += x.data[(n * Cx + start) * inner + i];
    }
  }
}
