/**
 * Numeric command-line flags with ranges: each task lists its numeric flags with a NumSpec, so
 * a bad value (0 where 1 is the least, negative, fractional for a count, huge, not a number) is
 * one clear line naming the flag and the range, before any work starts.
 */
import { UserError } from "../util/user_error.ts";

export interface NumSpec {
  /** Least value allowed. */
  min: number;
  /** Largest value allowed. */
  max: number;
  /** Whole numbers only. */
  int?: boolean;
  /** The minimum itself is excluded (e.g. a learning rate above 0). */
  above?: boolean;
  /** The maximum itself is excluded (e.g. a confidence level below 1). */
  below?: boolean;
}

/** A task's numeric flags by name (without the leading --). */
export type NumSpecs = Record<string, NumSpec>;

/** "an integer from 1 to 4096", "a number above 0 and at most 10". */
export function describeRange(s: NumSpec): string {
  const kind = s.int ? "an integer" : "a number";
  return s.above
    ? `${kind} above ${s.min} and at most ${s.max}`
    : `${kind} from ${s.min} to ${s.max}`;
}

/** Whether x lies in the spec's range (and is whole where it must be). */
export function inRange(x: number, s: NumSpec): boolean {
  return Number.isFinite(x) && (s.above ? x > s.min : x >= s.min) &&
    (s.below ? x < s.max : x <= s.max) &&
    (!s.int || Number.isInteger(x));
}

/** Parses one numeric flag; the default when absent, a one-line UserError when out of range. */
export function numFlag(
  name: string,
  raw: string | boolean | undefined,
  def: number,
  spec: NumSpec,
): number {
  if (raw === undefined) return def;
  const x = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!inRange(x, spec)) {
    throw new UserError(`--${name} must be ${describeRange(spec)}, got "${raw}"`);
  }
  return x;
}

/** A comma-separated list of numbers, each in the spec's range (no empty items). */
export function numListFlag(
  name: string,
  raw: string | boolean | undefined,
  def: number[],
  spec: NumSpec,
): number[] {
  if (raw === undefined) return def;
  if (typeof raw !== "string") throw new UserError(`--${name} expects a list of numbers`);
  return raw.split(",").map((x) => x.trim()).map((x) => {
    const v = x === "" ? NaN : Number(x);
    if (!inRange(v, spec)) {
      throw new UserError(`--${name}: each item must be ${describeRange(spec)}, got "${x}"`);
    }
    return v;
  });
}

/** Counts and seeds that recur across tasks. */
export const SEED: NumSpec = { min: 0, max: 2 ** 32 - 1, int: true };
export const WORKERS: NumSpec = { min: 0, max: 64, int: true };
export const FRACTION: NumSpec = { min: 0, max: 1, above: true };
export const MAX_BAD: NumSpec = { min: 0, max: 1 };
export const LR: NumSpec = { min: 0, max: 10, above: true };
/** Steps between reads of a training loop's loss and accuracy (train/step_scalars.ts). */
export const LOG_EVERY: NumSpec = { min: 1, max: 10_000, int: true };
