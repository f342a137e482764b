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
import { TinyNet } from "./tiny_net.ts";
import { Rng } from "../util/rng.ts";
import { Conv2d } from "../model/nn.ts";
import { zerosInit } from "../model/init.ts";

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
      // No byte count is claimed for a shape beyond the data section (it was a wrong, partial one).
      rawFile({ w: { dtype: "F32", shape: [1e9, 1e9], data_offsets: [0, 8] } }, eight),
      /bad\.safetensors: tensor "w": shape \[1000000000,1000000000\] of F32 exceeds the data section \(8 bytes; data_offsets span 8\)$/,
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

Deno.test("the data section is tiled exactly, with integer offsets, as the reference library requires", () => {
  const sixteen = new Uint8Array(16);
  const t = (o: number[]) => ({ dtype: "F32", shape: [1], data_offsets: o });
  const refused: [string, Uint8Array, RegExp][] = [
    [
      "a gap",
      rawFile({ a: t([0, 4]), b: t([8, 12]) }, new Uint8Array(12)),
      /bytes 4\.\.8 .* no tensor \(before "b"/,
    ],
    ["a first tensor past 0", rawFile({ a: t([4, 8]) }, new Uint8Array(8)), /bytes 0\.\.4 /],
    [
      "trailing bytes",
      rawFile({ a: t([0, 4]) }, new Uint8Array(8)),
      /4 bytes after its last tensor/,
    ],
    [
      // The dropped first copy of "a" leaves its bytes to no tensor.
      "a duplicated key",
      rawFile(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
          '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        new Uint8Array(8),
      ),
      /bytes 0\.\.4 .*named twice/,
    ],
    [
      "an offset written 4.0",
      rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', new Uint8Array(4)),
      /data_offsets \[0,"4\.0"\] must be two non-negative integers/,
    ],
    [
      "a dimension written 1e0",
      rawFile('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', new Uint8Array(4)),
      /shape \["1e0"\] is not a list of non-negative integers/,
    ],
  ];
  for (const [what, bytes, re] of refused) {
    assertThrows(() => parseSafetensors(bytes, "bad.safetensors"), re, what);
  }
  // What the writer makes still reads, empty tensors included, and so does a file of none.
  const ok = serializeSafetensors([["e", f32([0], [])], ["w", f32([4], [1, 2, 3, 4])]]);
  assertEquals(parseSafetensors(ok).tensors.size, 2);
  assertEquals(parseSafetensors(serializeSafetensors([])).tensors.size, 0);
  assertEquals(
    parseSafetensors(rawFile({ a: t([0, 4]), b: t([4, 8]) }, sixteen.subarray(8))).tensors.size,
    2,
  );
});

Deno.test("the writer refuses a tensor name given twice", () => {
  const t = f32([2], [1, 2]);
  assertThrows(() => serializeSafetensors([["a", t], ["a", t]]), /tensor "a" is given twice/);
  // Names that are Object.prototype's own are ordinary names.
  const back = parseSafetensors(serializeSafetensors([["constructor", t], ["toString", t]]));
  assertEquals([...back.tensors.keys()], ["constructor", "toString"]);
});

Deno.test("an F64 value beyond the f32 range is refused by name, not read as a non-finite value", () => {
  const file = (v: number) =>
    rawFile(
      { d: { dtype: "F64", shape: [2], data_offsets: [0, 16] } },
      new Uint8Array(Float64Array.of(1, v).buffer),
    );
  assertThrows(
    () => parseSafetensors(file(1e300), "big.safetensors"),
    /big\.safetensors: tensor "d": holds 1e\+300 at 1, outside the f32 range \(±3\.4028235e\+38\)/,
  );
  assertThrows(() => parseSafetensors(file(-4e38)), /holds -4e\+38 at 1, outside the f32 range/);
  // The largest f32 itself, and values rounding to it, are in range; infinities stay infinities
  // (refused where finite weights are needed, as non-finite).
  assertEquals([...parseSafetensors(file(3.4028235e38)).tensors.get("d")!.data], [
    1,
    3.4028234663852886e38,
  ]);
  assertEquals([...parseSafetensors(file(Infinity)).tensors.get("d")!.data], [1, Infinity]);
});

Deno.test("saveModel refuses non-finite weights and leaves the previous file", async () => {
  const n = new TinyNet(B, { inChannels: 1, seed: new Rng(1) }), path = `${dir}/tiny.safetensors`;
  await saveModel(path, n);
  const good = await Deno.readFile(path);
  const p = n.parameters()[0], d = await p.read();
  d[3] = NaN;
  B.write(p.value, d);
  await assertRejects(
    () => saveModel(path, n),
    /model save .*tiny\.safetensors: tensor "conv1\.weight" holds non-finite values \(1 of/,
  );
  assertEquals(await Deno.readFile(path), good);
});

Deno.test("a BN running_var below zero is refused on load, naming the file and the tensor", async () => {
  const state = await readState(source());
  const v = state.get("layer2.0.bn1.running_var")!;
  const d = (v.data as Float32Array).slice();
  d[5] = -0.25;
  state.set("layer2.0.bn1.running_var", { ...v, data: d });
  const path = `${dir}/negvar.safetensors`;
  await writeSafetensors(path, state);
  const dst = resnet18(B, { numClasses: 3, init: false });
  await assertRejects(
    () => loadModel(path, dst),
    /negvar\.safetensors: tensor "layer2\.0\.bn1\.running_var" holds negative variances \(1 of 128, first -0\.25 at 5\)/,
  );
  // Zero is a variance (a dead channel); it loads.
  d[5] = 0;
  await writeSafetensors(path, state);
  await loadModel(path, dst);
});

Deno.test("Conv2d's bias starts as torch's U(±1/√fan_in), not zeros", async () => {
  const c = new Conv2d(B, 3, 64, 3, { bias: true, init: zerosInit, rng: new Rng(3) });
  const b = await B.read(c.bias!.value) as Float32Array, bound = 1 / Math.sqrt(27);
  assert(b.every((x) => Math.abs(x) <= bound), "within the bound");
  assert(Math.max(...b.map(Math.abs)) > bound / 2, `spread over the range: ${b.slice(0, 4)}`);
  assertThrows(
    () => new Conv2d(B, 3, 4, 3, { bias: true, init: zerosInit }),
    /needs biasInit or rng/,
  );
  assertEquals(new Conv2d(B, 3, 4, 3, { init: zerosInit }).bias, null);
});
