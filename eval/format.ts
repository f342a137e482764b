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

/** "p = 0.012", "p < 0.001". */
export function fmtP(p: number): string {
  if (Number.isNaN(p)) return "p = n/a";
  if (p < 0.001) return "p < 0.001";
  return `p = ${p < 0.01 ? p.toFixed(3) : p.toFixed(2)}`;
}
