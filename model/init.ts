/**
 * torch.nn.init equivalents drawing from the project's seeded Rng, so a model
 * is reproducible from its seed (the numbers differ from torch's generator;
 * the distributions are the same).
 */
import type { Rng } from "../util/rng.ts";
import { numel, type Shape } from "./backend.ts";

/** Makes the initial contents of a parameter from its shape. */
export type Init = (shape: Shape) => Float32Array;

/** fan_in = C·KH·KW (or I), fan_out = O·KH·KW (or O), as torch's _calculate_fan_in_and_fan_out. */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  const receptive = shape.length > 2 ? numel(shape.slice(2)) : 1;
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0] * receptive };
}

export const zerosInit: Init = (shape) => new Float32Array(numel(shape));
export const constInit = (v: number): Init => (shape) => new Float32Array(numel(shape)).fill(v);

/** kaiming_normal_(mode, nonlinearity='relu'): N(0, 2/fan). */
export function kaimingNormal(rng: Rng, mode: "fan_in" | "fan_out"): Init {
  return (shape) => {
    const f = fans(shape);
    const std = Math.sqrt(2 / (mode === "fan_in" ? f.fanIn : f.fanOut));
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
    return a;
  };
}

/** U(-bound, bound). */
export function uniform(rng: Rng, bound: number): Init {
  return (shape) => {
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = (rng.uniform() * 2 - 1) * bound;
    return a;
  };
}

/**
 * nn.Linear's default: kaiming_uniform_(a=√5) for the weight, which is
 * U(±1/√fan_in), and U(±1/√fan_in) for the bias.
 */
export function linearDefault(rng: Rng, inFeatures: number): { weight: Init; bias: Init } {
  const bound = 1 / Math.sqrt(inFeatures);
  return { weight: uniform(rng, bound), bias: uniform(rng, bound) };
}
