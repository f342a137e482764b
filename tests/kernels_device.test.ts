import { formatCompileError, getGpu, Gpu, GpuError, kernelFamily } from "../kernels/device.ts";
import { readTensors, Tensor } from "../kernels/tensor.ts";
import { assert, assertEquals } from "./helpers.ts";

Deno.test("a WGSL compile error names the kernel, line:column and the offending source", async () => {
  // its own device: a compile error stays with the Gpu that saw it
  const gpu = await Gpu.create();
  try {
    const code = `@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1)
fn main() {
  let x: f32 = 1u;
  o[0] = x;
}`;
    const out = Tensor.empty(gpu, [1]);
    let msg = "";
    try {
      gpu.dispatch({ name: "broken_kernel", code }, [out.buffer], null, [1]);
      await gpu.sync();
    } catch (e) {
      assert(e instanceof GpuError, `expected a GpuError, got ${e}`);
      msg = (e as Error).message;
    }
    assert(/WGSL error in kernel broken_kernel at 4:7/.test(msg), msg);
    assert(msg.includes("    4 |   let x: f32 = 1u;"), msg);
    assert(msg.includes("    3 | fn main() {"), msg);
    // and later calls keep failing with it rather than running on a broken pipeline
    let again = "";
    try {
      Tensor.empty(gpu, [4]);
    } catch (e) {
      again = (e as Error).message;
    }
    assertEquals(again, msg);
  } finally {
    gpu.device.destroy();
  }
});

Deno.test("formatCompileError points a caret at the column", () => {
  const text = formatCompileError({ name: "k", code: "a\nbcd\ne" }, [
    { message: "Shader 'k' parsing error: oops\n more", lineNum: 2, linePos: 3 },
  ]);
  assertEquals(text.split("\n"), [
    "WGSL error in kernel k at 2:3: parsing error: oops",
    "    1 | a",
    "    2 | bcd",
    "          ^",
  ]);
});

Deno.test("kernelFamily generates each specialization once and tells them apart", () => {
  let made = 0;
  const fam = kernelFamily((a: number, b: { x: boolean }) => {
    made++;
    return { name: `t${a}${b.x}`, code: `// ${a} ${b.x}` };
  });
  const k1 = fam(1, { x: true });
  assertEquals(fam(1, { x: true }), k1);
  assert(fam(1, { x: true }) === k1, "same arguments, same kernel object");
  const k2 = fam(1, { x: false });
  assert(k2 !== k1 && k2.code !== k1.code, "different arguments, different kernel");
  assertEquals(made, 2);
});

Deno.test("readMany reads every range in one submit, equal to read, across staging chunks", async () => {
  const gpu = await getGpu();
  // f32 and f16 tensors of odd lengths (f16 storage pads to 4 bytes)
  const lens = [1, 7, 1000, 3, 4097, 2];
  const ts = lens.map((n, i) => {
    const x = Float32Array.from({ length: n }, (_, j) => (i + 1) * 0.25 + j);
    return Tensor.from(gpu, x, [n], i % 2 && gpu.hasF16 ? "f16" : "f32");
  });
  try {
    const want = await Promise.all(ts.map((t) => t.read()));
    for (const chunk of [64 << 20, 4096, 4]) {
      const s0 = gpu.stats.submits;
      const raw = await gpu.readMany(ts.map((t) => ({ buf: t.buffer, bytes: t.bytes })), chunk);
      assertEquals(gpu.stats.submits - s0, 1, `one submit (chunks of ${chunk} bytes)`);
      raw.forEach((r, i) => assertEquals(r.byteLength, ts[i].bytes));
      ts.forEach((t, i) => assertEquals(t.widen(raw[i]), want[i], `tensor ${i}, chunk ${chunk}`));
    }
    assertEquals(await readTensors(ts), want);
    assertEquals(await readTensors([]), []);
  } finally {
    for (const t of ts) t.dispose();
  }
});
