/** Number and name formatting shared by the report and the command-line output. */
import type { Init, Protocol } from "./results.ts";

export const INIT_LABEL: Record<Init, string> = {
  random: "Random init",
  imagenet: "ImageNet",
  moco: "MoCo-CXR",
};

/** Color-blind-safe colors (Okabe–Ito) per init. */
export const INIT_COLOR: Record<Init, string> = {
  random: "#6b6b6b",
  imagenet: "#0072B2",
  moco: "#D55E00",
};

export const PROTOCOL_LABEL: Record<Protocol, string> = {
  linear: "Linear probe",
  e2e: "End-to-end fine-tuning",
};

export const fmtAuc = (v: number) => v.toFixed(3);

/** Signed, e.g. "+0.034" / "−0.012" (true minus sign). */
export function fmtDiff(v: number): string {
  const t = Math.abs(v).toFixed(3);
  return Number(t) === 0 ? `±${t}` : v > 0 ? `+${t}` : `−${t}`;
}

export function fmtCi(ci: [number, number], f: (v: number) => string = fmtAuc): string {
  return `[${f(ci[0])}, ${f(ci[1])}]`;
}

/**
 * "p = 0.012", "p < 0.001". For a bootstrap p pass its number of resamples B: its resolution is
 * 2/B, so a p of 0 prints as "p < 2/B" rounded up to one significant digit ("p < 0.002" at
 * B = 1000), not as a smaller bound the resamples cannot support.
 */
export function fmtP(p: number, opts: { replicates?: number } = {}): string {
  if (Number.isNaN(p)) return "p = n/a";
  const B = opts.replicates;
  if (B !== undefined && p === 0) {
    const r = 2 / B, e = 10 ** Math.floor(Math.log10(r));
    const up = Math.ceil(+(r / e).toPrecision(12)) * e;
    return `p < ${+up.toPrecision(1)}`;
  }
  if (p < 0.001) return "p < 0.001";
  return `p = ${p < 0.01 ? p.toFixed(3) : p.toFixed(2)}`;
}

/**
 * The p-value of the test behind a difference's CI, for showing next to that CI: the seed-level
 * t test with several pretraining seeds, else the paired bootstrap's (whose percentile interval
 * the CI is), formatted with its resolution. DeLong's p stays in the data (p_delong).
 */
export function fmtCiP(
  d: { p: number; p_method: string; p_bootstrap: number },
  replicates: number,
): string {
  return d.p_method === "seed-t" ? fmtP(d.p) : fmtP(d.p_bootstrap, { replicates });
}
