import { Tensor } from "../kernels/tensor.ts";
import { cast, sameDtype } from "../kernels/cast.ts";
import { castCpu, cpuTensor } from "../kernels/cpu/tensor.ts";
import { assertEquals, assertThrows } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { assertHalves, half, hasF16 } from "./f16.ts";

// Odd and even lengths (f16 storage pads to 4 bytes), past one workgroup and the grid cap.
const SPECIAL = [0, -0, 1, -1, 65504, 65520, 1e6, -1e6, 6.1e-5, 3e-5, 6e-8, 1 / 3, NaN, Infinity];

for (const n of [1, 7, 300_001]) {
  Deno.test({
    name: `f16 storage: write/read and cast match round-to-nearest-even halves, n=${n}`,
    ignore: !hasF16,
    async fn() {
      const x = randn(n, n, 3);
      x.set(SPECIAL.slice(0, Math.min(n, SPECIAL.length)));
      const want = half(x);
      const h = Tensor.from(gpu, x, [n], "f16");
      assertEquals(h.dtype, "f16");
      assertEquals(h.bytes, Math.ceil(n / 2) * 4);
      assertEquals(await h.read(), want);
      const f = Tensor.from(gpu, x, [n]);
      const down = cast(f, "f16");
      assertEquals(down.dtype, "f16");
      const halves = await down.read();
      assertHalves(halves, want, "GPU f32 → f16 rounding");
      assertEquals(castCpu(cpuTensor([n], x), "f16").data, want, "CPU reference");
      const up = cast(down, "f32");
      assertEquals(up.dtype, "f32");
      assertHalves(await up.read(), halves, "f16 → f32 is exact");
      assertEquals(await h.clone().read(), want);
      for (const t of [h, f, down, up]) t.dispose();
    },
  });
}

Deno.test({
  name: "sameDtype names the op and both storage types",
  ignore: !hasF16,
  fn() {
    const a = Tensor.zeros(gpu, [4]), b = Tensor.zeros(gpu, [4], "f16");
    assertEquals(sameDtype("op", a, a), "f32");
    assertThrows(() => sameDtype("conv2d", a, b), /conv2d: operands mix f32 and f16/);
    a.dispose();
    b.dispose();
  },
});
