/**
 * The peak probe (bench/peak.ts): every probe kernel compiles and runs here, the figures are the
 * fastest probe's, and the unrolled FMA probes do the FMAs the flop count says.
 */
import { COPY_PROBES, fastest, FMA_PROBES, fmaKernel, measurePeak } from "../bench/peak.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";

Deno.test("peak probe: the fastest of its probes, each one run", async () => {
  assertEquals(fastest([["a", 1], ["b", 3], ["c", 2]]), ["b", 3]);
  const peak = await gpu.checked(() => measurePeak(gpu));
  assert(Number.isFinite(peak.gflops) && peak.gflops > 0, `gflops ${peak.gflops}`);
  assert(Number.isFinite(peak.gbps) && peak.gbps > 0, `gbps ${peak.gbps}`);
  const fmaNames = FMA_PROBES.map(([c, u]) => fmaKernel(c, u).name);
  assert(fmaNames.includes(peak.fmaProbe), peak.fmaProbe);
  assert(COPY_PROBES.map((p) => `peak_copy:${p}`).includes(peak.copyProbe), peak.copyProbe);
});

Deno.test("peak probe: an unrolled FMA kernel repeats the round, not the chains", () => {
  const fmas = (chains: number, by: number) =>
    fmaKernel(chains, by).code.split("\n").filter((l) => /= fma\(/.test(l)).length;
  for (const [chains, by] of FMA_PROBES) assertEquals(fmas(chains, by), chains * by);
});
