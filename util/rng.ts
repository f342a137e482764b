/**
 * Seeded pseudo-random numbers whose whole state is one 32-bit integer, so a
 * checkpoint can store it and a resumed run draws exactly the same numbers.
 * Generator: mulberry32 (fast, passes BigCrush's basic tests; not crypto).
 */
export class Rng {
  /** The whole generator state (store it to resume the sequence). */
  state: number;

  /** A generator seeded with a 32-bit integer. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform uint32. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller; draws two uniforms per call so the state advance is fixed). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** An independent generator derived from this one's next output and a label. */
  fork(label = 0): Rng {
    return new Rng(this.nextU32() ^ Math.imul(label + 1, 0x9e3779b1));
  }
}
