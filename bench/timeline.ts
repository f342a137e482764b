/**
 * Reading a GPU timeline (Gpu.lastTimeline: every timed pass's stretch and its GPU begin and end):
 * the benchmarks' steady-state step time, free of the card's clock ramp.
 */

/**
 * The GPU's median period a step over the stretches (steps) from `from` on: the time from one
 * step's last pass ending to the next one's, i.e. a step's passes, the gaps inside it and any
 * idle before it (the card waiting for the host), from a timeline whose stretch i is step i.
 */
export function steadyPeriodMs(
  timeline: Array<{ stretch: number; end: number }>,
  from: number,
): number {
  const ends = new Map<number, number>();
  for (const p of timeline) ends.set(p.stretch, Math.max(ends.get(p.stretch) ?? -Infinity, p.end));
  const periods: number[] = [];
  for (const [s, e] of ends) {
    const prev = ends.get(s - 1);
    if (s >= Math.max(1, from) && prev !== undefined) periods.push(e - prev);
  }
  if (periods.length === 0) return NaN;
  periods.sort((a, b) => a - b);
  return periods[periods.length >> 1];
}
