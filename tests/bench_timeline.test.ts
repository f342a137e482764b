/**
 * bench/timeline.ts: the steady period a step read off a GPU timeline (the benchmarks' figure free
 * of the card's clock ramp).
 */
import { steadyPeriodMs } from "../bench/timeline.ts";
import { assertEquals } from "./helpers.ts";

Deno.test("steady period: the median time between steps' last pass ends, from a given step on", () => {
  // steps 0-4, two passes each; the steps end at 100, 200, 260, 290 and 320 ms
  const ends = [100, 200, 260, 290, 320];
  const tl = ends.flatMap((e, s) => [
    { stretch: s, begin: e - 50, end: e - 20 },
    { stretch: s, begin: e - 15, end: e },
  ]);
  assertEquals(steadyPeriodMs(tl, 2), 30); // periods 60, 30, 30
  assertEquals(steadyPeriodMs(tl, 0), 60); // 100, 60, 30, 30: the upper median
  assertEquals(steadyPeriodMs(tl, 4), 30);
  assertEquals(steadyPeriodMs(tl, 5), NaN); // no step after the ramp
  // a step whose passes were not all timed (a missing stretch) gives no period across the hole
  assertEquals(steadyPeriodMs(tl.filter((p) => p.stretch !== 3), 2), 60);
});
