/**
 * Kernels compiled per geometry (kernels/wgsl.ts withConstants / withParams): each named u32 field
 * read becomes its value as a u32 literal and nothing else changes (a field whose name another
 * starts with, `p.C` beside `p.CK`, stays apart; f32 fields and the kept ones stay uniforms); one
 * kernel per distinct set of values; and baking every field, which would drop the uniform block
 * from the pipeline's layout and fail the dispatch asynchronously, is a clear error instead.
 */
import { withConstants, withParams } from "../kernels/wgsl.ts";
import { assertEquals, assertThrows } from "./helpers.ts";

const K = {
  name: "toy",
  code: `struct P { items: u32, C: u32, CK: u32,
  eps: f32, W: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn main() { let a = p.C * p.CK + p.W; let e = p.eps; let n = p.items; let q = cap.C; }`,
};

Deno.test("withParams bakes the u32 fields but the kept ones, by position in struct P", () => {
  const k = withParams(K, [100, 3, 7, 0, 5], ["items"]);
  assertEquals(k.name, "toy:3x7x5");
  assertEquals(
    k.code.split("\n").at(-1),
    "fn main() { let a = 3u * 7u + 5u; let e = p.eps; let n = p.items; let q = cap.C; }",
  );
  assertEquals(withParams(K, [999, 3, 7, 0, 5], ["items"]), k, "memoised: the same kernel object");
  assertEquals(withParams(K, [100, 4, 7, 0, 5], ["items"]).name, "toy:4x7x5");
  assertEquals(withConstants(K, {}), K);
});

Deno.test("baking every field read, or a value that is not a u32, is a clear error", () => {
  const k = { name: "all", code: "struct P { n: u32 }\nfn main() { let a = p.n; }" };
  assertThrows(() => withParams(k, [4]), /withConstants\(all\): every field baked/);
  assertThrows(() => withConstants(K, { C: -1 }), /C = -1 is not a u32/);
  assertThrows(() => withConstants(K, { C: 2.5 }), /C = 2.5 is not a u32/);
});
