/**
 * Synthetic evaluation data for the eval tests: binormal scores whose separation depends on the
 * initialization, protocol and label fraction (MoCo ahead at low fractions), plus metrics rows
 * and Grad-CAM images. Deterministic given the seed.
 */
import type { CellPredictions, GradCamFile, Init, MetricsRow, Protocol } from "../eval/mod.ts";
import { Rng } from "../util/rng.ts";

export interface SyntheticSpec {
  inits?: Init[];
  protocols?: Protocol[];
  fractions?: number[];
  /** Draws at fractions < 1 (one draw at 100%). */
  draws?: number;
  backbones?: string[];
  tasks?: string[];
  nTest?: number;
  prevalence?: number;
  seed?: number;
}

/** Separation (in SDs) of positives from negatives for a cell: drives the true AUC. */
export function separation(init: Init, protocol: Protocol, fraction: number): number {
  const base = { random: 0.35, imagenet: 0.8, moco: 1.15 }[init];
  const gain = { random: 0.25, imagenet: 0.22, moco: 0.13 }[init];
  return base + gain * Math.log10(fraction * 1000) + (protocol === "e2e" ? 0.1 : 0);
}

export function syntheticCells(spec: SyntheticSpec = {}): CellPredictions[] {
  const {
    inits = ["random", "imagenet", "moco"],
    protocols = ["linear", "e2e"],
    fractions = [0.001, 0.01, 0.1, 1],
    draws = 2,
    backbones = ["resnet18"],
    tasks = ["effusion"],
    nTest = 300,
    prevalence = 0.3,
    seed = 7,
  } = spec;
  const rng = new Rng(seed);
  const cells: CellPredictions[] = [];
  for (const backbone of backbones) {
    // One test set per backbone: labels fixed per task, a shared per-image "difficulty".
    const labels = new Map(tasks.map((t) => {
      const y = new Float32Array(nTest);
      for (let i = 0; i < nTest; i++) y[i] = rng.uniform() < prevalence ? 1 : 0;
      y[0] = 1; // both classes always present
      y[1] = 0;
      return [t, y];
    }));
    const difficulty = Float32Array.from({ length: nTest }, () => rng.normal());
    for (const task of tasks) {
      for (const protocol of protocols) {
        for (const init of inits) {
          for (const fraction of fractions) {
            for (let draw = 0; draw < (fraction < 1 ? draws : 1); draw++) {
              const y = labels.get(task)!;
              const d = separation(init, protocol, fraction) + 0.05 * rng.normal();
              const scores = Float32Array.from(
                y,
                (yi, i) => yi * d + 0.6 * difficulty[i] + 0.8 * rng.normal(),
              );
              const tag = `${backbone}_${init}_${protocol}_f${fraction}_d${draw}`;
              cells.push({
                init,
                protocol,
                fraction,
                draw,
                backbone,
                task,
                labels: y,
                scores,
                metrics_file: `metrics/${tag}.jsonl`,
              });
            }
          }
        }
      }
    }
  }
  return cells;
}

/** A decaying loss curve with optional validation AUC rows. */
export function syntheticMetrics(steps: number, seed: number, withVal = true): MetricsRow[] {
  const rng = new Rng(seed);
  const rows: MetricsRow[] = [];
  for (let s = 0; s <= steps; s += 10) {
    const row: MetricsRow = {
      step: s,
      epoch: Math.floor(s / 50),
      loss: 0.25 + 0.45 * Math.exp(-s / (steps / 3)) + 0.02 * rng.normal(),
      lr: 0.01 * 0.5 * (1 + Math.cos((Math.PI * s) / steps)),
    };
    if (withVal && s % 50 === 0) row.val_auc = 0.9 - 0.3 * Math.exp(-s / (steps / 4));
    rows.push(row);
  }
  return rows;
}

/** A 32×32 "radiograph" (two lung fields) with an 8×8 heatmap peaking in one lung. */
export function syntheticGradCam(title: string, cx: number): GradCamFile {
  const w = 32, h = 32, hw = 8, hh = 8;
  const image: number[] = [], heatmap: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const lung = Math.exp(-(((x - 10) / 6) ** 2 + ((y - 16) / 10) ** 2)) +
        Math.exp(-(((x - 22) / 6) ** 2 + ((y - 16) / 10) ** 2));
      image.push(0.8 - 0.6 * lung + 0.1 * Math.sin(y / 2));
    }
  }
  for (let y = 0; y < hh; y++) {
    for (let x = 0; x < hw; x++) {
      heatmap.push(Math.exp(-(((x - cx) / 1.5) ** 2 + ((y - 4) / 2) ** 2)));
    }
  }
  return {
    title,
    width: w,
    height: h,
    image,
    heatmap,
    heatmap_width: hw,
    heatmap_height: hh,
    label: "1",
    score: 0.83,
  };
}

/** A comparison's seed statistics with n seeds of which `pos` favour MoCo (fixed other fields). */
export const seedStats = (n: number, pos: number) => ({
  n_seeds: n,
  seeds_positive: pos,
  seed_share: 0.5,
  seed_diffs: Array(n).fill(0.03),
  seed_sd: 0,
  se: 0.01,
  se_seed: 0.007,
  se_test: 0.007,
  df: 4,
  test_var: 1e-4,
  test_cov: 5e-5,
  ci_test: [0.01, 0.05] as [number, number],
  ci_hier: [0.01, 0.05] as [number, number],
});
