/**
 * safetensors reading/writing and state loading: round trip of a whole model,
 * F16/BF16/F64 decoding, malformed files (clear errors, no out-of-bounds
 * reads), strict/non-strict reports, prefix stripping, the grayscale stem rule.
 */
import { assert, assertClose, assertEquals, assertRejects, assertThrows } from "./helpers.ts";
import { cpuBackend as B } from "../model/backend_cpu.ts";
import { noGrad, Var } from "../model/autograd.ts";
import { resnet18 } from "../model/resnet.ts";
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type TensorData,
  writeSafetensors,
} from "../model/safetensors.ts";
import { loadModel, loadStateDict, readState, saveModel } from "../model/state.ts";
import { randn } from "./gpu.ts";

const dir = await Deno.makeTempDir({ prefix: "model_st_" });
// One seeded ResNet-18 shared by the tests (drawing 11M normals takes a while).
let seeded: ReturnType<typeof resnet18> | null = null;
const source = () => seeded ??= resnet18(B, { numClasses: 3, seed: 1 });

/** A file from a raw header object and a data section. */
function rawFile(header: unknown, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const f32 = (shape: number[], data: number[]): TensorData => ({
  dtype: "F32",
  shape,
  data: Float32Array.from(data),
});

Deno.test("round trip of tensors and metadata, 8-byte aligned data", () => {
  const t = new Map<string, TensorData>([
    ["a.weight", f32([2, 3], [1, 2, 3, 4, 5, 6])],
    ["b", { dtype: "I64", shape: [], data: BigInt64Array.of(42n) }],
    ["c", f32([0], [])],
  ]);
  const bytes = serializeSafetensors(t, { format: "pt", note: "ü" });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + hlen) % 8, 0);
  const back = parseSafetensors(bytes);
  assertEquals(back.metadata, { format: "pt", note: "ü" });
  assertEquals([...back.tensors.keys()], ["a.weight", "b", "c"]);
  assertEquals([...back.tensors.get("a.weight")!.data], [1, 2, 3, 4, 5, 6]);
  assertEquals(back.tensors.get("b"), { dtype: "I64", shape: [], data: BigInt64Array.of(42n) });
});

Deno.test("F16, BF16 and F64 are read into f32", () => {
  const vals = [1, -2.5, 0.099975586, 65504, 0];
  const f16 = Uint16Array.of(0x3c00, 0xc100, 0x2e66, 0x7bff, 0x0000);
  const bf16 = Uint16Array.of(0x3f80, 0xc020, 0x3dcc, 0x477f, 0x8000);
  const f64 = Float64Array.from(vals);
  const data = new Uint8Array(10 + 10 + 40);
  data.set(new Uint8Array(f16.buffer), 0);
  data.set(new Uint8Array(bf16.buffer), 10);
  data.set(new Uint8Array(f64.buffer), 20);
  const { tensors } = parseSafetensors(rawFile({
    h: { dtype: "F16", shape: [5], data_offsets: [0, 10] },
    b: { dtype: "BF16", shape: [5], data_offsets: [10, 20] },
    d: { dtype: "F64", shape: [5], data_offsets: [20, 60] },
  }, data));
  assertClose(tensors.get("h")!.data as Float32Array, vals, { atol: 1e-6, rtol: 1e-3 });
  assertClose(tensors.get("b")!.data as Float32Array, [1, -2.5, 0.0996, 65280, -0], {
    atol: 1e-6,
    rtol: 1e-2,
  });
  assertClose(tensors.get("d")!.data as Float32Array, vals, { atol: 0, rtol: 1e-7 });
  assertEquals(tensors.get("h")!.dtype, "F32");
});

Deno.test("malformed files give clear errors", () => {
  const ok = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /too short/],
    [rawFile(ok, eight, 1000n), /header length 1000 exceeds the file size/],
    [rawFile(ok, eight, 1n << 62n), /exceeds the 100000000-byte limit/],
    [rawFile("{not json", eight), /not valid JSON/],
    [rawFile("[1,2]", eight), /not a JSON object/],
    [
      rawFile({ w: { dtype: "Q8", shape: [2], data_offsets: [0, 8] } }, eight),
      /unsupported dtype "Q8"/,
    ],
    [rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 16] } }, eight), /out of range/],
    [rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, eight), /needs 12 bytes/],
    [
      rawFile({ w: { dtype: "F32", shape: [1e9, 1e9], data_offsets: [0, 8] } }, eight),
      /but data_offsets span 8/,
    ],
    [
      rawFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 8] } }, eight),
      /non-negative integers/,
    ],
    [rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [4] } }, eight), /data_offsets/],
    [
      rawFile({
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      }, eight),
      /overlap/,
    ],
    [rawFile({ __metadata__: { a: 1 } }, eight), /__metadata__.a is not a string/],
  ];
  for (const [bytes, re] of cases) {
    assertThrows(() => parseSafetensors(bytes, "bad.safetensors"), re);
  }
  // Truncation of a valid file.
  const good = serializeSafetensors([["w", f32([4], [1, 2, 3, 4])]]);
  assertThrows(
    () => parseSafetensors(good.subarray(0, good.length - 3), "t.st"),
    /t\.st: .*out of range/,
  );
});

Deno.test("a whole model round-trips through a file (atomic write, no temp left)", async () => {
  const a = source();
  a.stateDict().find((e) => e.name === "bn1.num_batches_tracked")!.write(BigInt64Array.of(7n));
  const path = `${dir}/r18.safetensors`;
  await saveModel(path, a, { arch: "resnet18" });
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("tmp")), []);
  assertEquals((await readSafetensors(path)).metadata, { arch: "resnet18" });
  const b = resnet18(B, { numClasses: 3, init: false });
  const report = await loadModel(path, b);
  assertEquals(report.loaded.length, a.stateDict().length);
  const sa = await readState(a), sb = await readState(b);
  for (const [k, v] of sa) {
    const w = sb.get(k)!.data;
    assert(v.data.length === w.length && v.data.every((x, i) => x === w[i]), k);
  }
  assertEquals(sb.get("bn1.num_batches_tracked")!.data[0], 7n);
  // A destination that cannot exist (below a file) fails with the system's error.
  await assertRejects(
    () => writeSafetensors(`${path}/below-a-file/x.st`, sa),
    /Not a directory|File exists|not found/i,
  );
});

Deno.test("load reports: strict failures by name, non-strict new head, prefixes, exclude", async () => {
  const src = source();
  const state = await readState(src);
  const dst = resnet18(B, { numClasses: 5, init: false });
  assertThrows(
    () => loadStateDict(dst, state),
    /shape mismatches: fc\.weight \(model \[5,512\], file \[3,512\]\)/,
  );
  const r = loadStateDict(dst, state, { strict: false });
  assertEquals(r.mismatched.map((m) => m.name), ["fc.weight", "fc.bias"]);
  assertEquals(r.missing, []);
  assertEquals(r.loaded.length, state.size - 2);

  // A MoCo-style checkpoint: module.encoder_q.* (with an MLP head), encoder_k and queue.
  const moco = new Map<string, TensorData>();
  for (const [k, v] of state) {
    if (k.startsWith("fc.")) continue;
    moco.set(`module.encoder_q.${k}`, v);
    moco.set(`module.encoder_k.${k}`, v);
  }
  moco.set("module.encoder_q.fc.0.weight", f32([1], [0]));
  moco.set("module.queue", f32([1], [0]));
  const r2 = loadStateDict(dst, moco, { stripPrefix: "module.encoder_q.", exclude: ["fc."] });
  assertEquals(r2.ignored.length, state.size - 2 + 1);
  assertEquals(r2.loaded.length, state.size - 2);
  assertThrows(
    () => loadStateDict(dst, moco, { stripPrefix: "module.encoder_q." }),
    /missing keys: fc\.weight, fc\.bias; unexpected keys: fc\.0\.weight/,
  );
  const extra = new Map(state);
  extra.set("extra.thing", f32([1], [1]));
  assertThrows(() => loadStateDict(src, extra), /unexpected keys: extra\.thing/);
  const missing = new Map(state);
  missing.delete("layer1.0.bn1.running_var");
  assertThrows(() => loadStateDict(src, missing), /missing keys: layer1\.0\.bn1\.running_var/);
});

Deno.test("a 3-channel stem loads into a 1-channel model summed over RGB", async () => {
  const rgb = source().eval();
  const gray = resnet18(B, { numClasses: 3, inChannels: 1, init: false }).eval();
  const r = loadStateDict(gray, await readState(rgb));
  assertEquals(r.adapted, ["conv1.weight"]);
  const g = randn(32 * 32, 4);
  const x1 = new Var(B, B.fromArray(g, [1, 1, 32, 32]));
  const x3 = new Var(
    B,
    B.fromArray(Float32Array.from({ length: 3 * 1024 }, (_, i) => g[i % 1024]), [1, 3, 32, 32]),
  );
  const y1 = noGrad(() => gray.forward(x1)), y3 = noGrad(() => rgb.forward(x3));
  assertClose(await y1.read(), await y3.read(), { atol: 1e-4, rtol: 1e-4 });
});
