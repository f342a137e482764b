/** Learning-rate schedules, as functions of the 0-based epoch (fractional within an epoch). */

/** A learning-rate schedule over epochs. */
export type Schedule =
  | { kind: "step"; milestones: number[]; gamma: number } // MoCo-CXR: ×0.1 at chosen epochs
  | { kind: "cosine"; epochs: number } // MoCo v2
  | { kind: "constant" };

/** The learning rate at a (fractional) epoch. */
export function learningRate(base: number, s: Schedule, epoch: number): number {
  switch (s.kind) {
    case "constant":
      return base;
    case "step":
      return base * s.gamma ** s.milestones.filter((m) => epoch >= m).length;
    case "cosine":
      return base * 0.5 * (1 + Math.cos(Math.PI * Math.min(epoch / s.epochs, 1)));
  }
}
