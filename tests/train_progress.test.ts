/**
 * The pretraining progress line: its ETA follows the recent pace (the first steps of a run are
 * slow while pipelines build; an average since the start keeps the ETA nearly flat while the
 * throughput climbs).
 */
import { ETA_WINDOW, formatEta, Progress } from "../train/progress.ts";
import { assertEquals } from "./helpers.ts";

const fields = (step: number) => ({
  step,
  totalSteps: 100,
  epoch: 1,
  loss: 1,
  lr: 1e-4,
  imgPerSec: 1,
});
const etaOf = (line: string) => line.match(/ETA (\S+)/)![1];

Deno.test("the ETA is measured over the last steps, not since the start", () => {
  let t = 0;
  const p = new Progress("pretrain", 10, () => t);
  assertEquals(etaOf(p.line(fields(1))), "--:--"); // nothing measured yet
  // Ten slow steps (10 s each), then thirty fast ones (1 s each).
  for (let s = 2; s <= 10; s++) {
    t += 10_000;
    p.line(fields(s));
  }
  let last = "";
  for (let s = 11; s <= 40; s++) {
    t += 1_000;
    last = p.line(fields(s));
  }
  // 60 steps left at 1 s each; the average since the start (≈3.2 s/step) would say 03:12.
  assertEquals(etaOf(last), formatEta(60));
  assertEquals(ETA_WINDOW < 30, true);
});

Deno.test("a resumed run's ETA starts from its own first step", () => {
  let t = 0;
  const p = new Progress("pretrain", 10, () => t);
  assertEquals(etaOf(p.line(fields(51))), "--:--");
  t += 2_000;
  p.line(fields(52));
  t += 2_000;
  assertEquals(etaOf(p.line(fields(53))), formatEta(2 * 47));
});
