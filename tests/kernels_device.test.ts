import { formatCompileError, Gpu, GpuError, kernelFamily } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
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
