/**
 * bench/cache_diff.ts: a record's fastest finite timing (a candidate that failed, Infinity, is
 * never it), rows only for keys both caches time, the most time saved first, and an adapter
 * picked by a substring of its key with a clear error naming the ones there. Sorting by ratio
 * instead of time saved, or taking a record's chosen label's time instead of its fastest, fails
 * it.
 */
import { adapterRecords, diffRecords, fastest } from "../bench/cache_diff.ts";
import { assertEquals, assertThrows } from "./helpers.ts";

const rec = (label: string, ms: Record<string, number>) => ({ label, choice: {}, ms });

Deno.test("cache_diff: fastest timings, common keys, most time saved first", () => {
  assertEquals(fastest(rec("a", { a: 2, b: 1.5, c: Infinity })), { ms: 1.5, label: "b" });
  assertEquals(fastest({ label: "a", choice: {}, ms: 7 as unknown as Record<string, number> }), {
    ms: Infinity,
    label: "a",
  });
  const before = {
    small: rec("x", { x: 0.010 }), // 10x faster, saves 0.009 ms
    big: rec("y", { y: 4.0, z: 4.2 }), // 1.1x faster, saves 0.36 ms
    gone: rec("x", { x: 1 }),
    broken: rec("x", { x: Infinity }),
  };
  const after = {
    small: rec("x", { x: 0.001 }),
    big: rec("z", { y: 3.7, z: 3.64 }),
    broken: rec("x", { x: 1 }),
    added: rec("x", { x: 1 }),
  };
  assertEquals(diffRecords(before, after), [
    { key: "big", oldMs: 4.0, oldLabel: "y", newMs: 3.64, newLabel: "z" },
    { key: "small", oldMs: 0.010, oldLabel: "x", newMs: 0.001, newLabel: "x" },
  ]);
});

Deno.test("cache_diff: an adapter by a substring of its key, else the first; none is a clear error", () => {
  const file = {
    version: 1 as const,
    adapters: { "nv|H200": { k: rec("a", { a: 1 }) }, "amd|X": {} },
  };
  assertEquals(adapterRecords(file).key, "nv|H200");
  assertEquals(adapterRecords(file, "X").key, "amd|X");
  assertThrows(
    () => adapterRecords(file, "M3"),
    /no adapter matching "M3" \(has: nv\|H200; amd\|X\)/,
  );
  assertThrows(() => adapterRecords({ version: 1, adapters: {} }), /no adapters/);
});
