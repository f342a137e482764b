/**
 * The peak probe (bench/peak.ts): every probe kernel compiles and runs here, the figures are the
 * fastest probe's, and the unrolled FMA probes (f32 and f16) do the FMAs the flop count says.
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
  for (const dtype of ["f32", "f16"] as const) {
    const fmas = (chains: number, by: number) =>
      fmaKernel(chains, by, dtype).code.split("\n").filter((l) => /= fma\(/.test(l)).length;
    for (const [chains, by] of FMA_PROBES) assertEquals(fmas(chains, by), chains * by);
  }
  assert(/vec4<f16>/.test(fmaKernel(8, 4, "f16").code), "the f16 probe's chains are f16");
});

Deno.test({
  name: "peak probe: the f16 FMA rate where asked and the adapter has shader-f16, from f16 probes",
  ignore: !gpu.hasF16,
  fn: async () => {
    const peak = await gpu.checked(() => measurePeak(gpu, { f16: true }));
    assert(peak.f16Gflops! > 0 && Number.isFinite(peak.f16Gflops), `f16 ${peak.f16Gflops}`);
    const names = FMA_PROBES.map(([c, u]) => fmaKernel(c, u, "f16").name);
    assert(names.includes(peak.f16Probe!), String(peak.f16Probe));
    assertEquals(peak.probes.filter(([n]) => names.includes(n)).length, FMA_PROBES.length);
    assertEquals(fastest(peak.probes.filter(([n]) => names.includes(n)))[1], peak.f16Gflops);
  },
});
