/**
 * Corrupt weights on load and on export: a backbone / ImageNet file or checkpoint holding NaN or
 * Inf, a counter stored as a float NaN, weights stored as integers, and a truncated checkpoint
 * are each a clear UserError naming the file and the tensor; exportBackbone writes nothing
 * non-finite. All on a tiny CPU net (no GPU) and generated files.
 */
import { join } from "node:path";
import { cpuBackend as B } from "../model/backend_cpu.ts";
import {
  readSafetensors,
  serializeSafetensors,
  type TensorData,
  writeSafetensors,
} from "../model/safetensors.ts";
import { loadStateDict, readState } from "../model/state.ts";
import { NonFiniteError, TensorDtypeError } from "../model/tensor_check.ts";
import { exportBackbone, loadInitWeights } from "../train/weights.ts";
import { loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { UserError } from "../util/user_error.ts";
import { explain } from "../cli/explain.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./helpers.ts";
import { TinyNet } from "./tiny_net.ts";
import { resnet18 } from "../model/resnet.ts";
import { densenet121 } from "../model/densenet.ts";
import { buildBackbone } from "../train/backbones.ts";

const net = (seed: number) => new TinyNet(B, { inChannels: 1, seed: new Rng(seed) });

/** The net's state with one value of `name` replaced. */
async function stateWith(
  name: string,
  value: number | TensorData,
): Promise<Map<string, TensorData>> {
  const s = await readState(net(1));
  if (typeof value === "number") {
    const t = s.get(name)!;
    const d = (t.data as Float32Array).slice();
    d[2] = value;
    s.set(name, { ...t, data: d });
  } else s.set(name, value);
  return s;
}

Deno.test("loading weights with NaN or Inf names the tensor; nothing is written", async () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const dst = net(2), before = await readState(dst);
    const s = await stateWith("conv2.weight", bad);
    assertThrows(
      () => loadStateDict(dst, s, { source: "x.safetensors" }),
      (e: unknown) =>
        e instanceof NonFiniteError && e instanceof UserError && e.tensor === "conv2.weight" &&
        /x\.safetensors: tensor "conv2\.weight" holds non-finite values \(1 of 648/.test(e.message),
    );
    // conv1 (before conv2 in the state) was not overwritten either.
    assertEquals((await readState(dst)).get("conv1.weight"), before.get("conv1.weight"));
  }
});

Deno.test("num_batches_tracked stored as a float NaN is a clear error, not a RangeError", async () => {
  const s = await stateWith("bn1.num_batches_tracked", {
    dtype: "F32",
    shape: [],
    data: Float32Array.of(NaN),
  });
  assertThrows(
    () => loadStateDict(net(2), s),
    (e: unknown) =>
      e instanceof TensorDtypeError &&
      /"bn1\.num_batches_tracked" is a counter stored as floats holding NaN/.test(e.message),
  );
  // A whole-number float counter still loads (torchvision files written through numpy do this).
  s.set("bn1.num_batches_tracked", { dtype: "F32", shape: [], data: Float32Array.of(5) });
  const dst = net(2);
  loadStateDict(dst, s);
  assertEquals((await readState(dst)).get("bn1.num_batches_tracked")!.data[0], 5n);
  // Weights stored as integers are refused by name.
  const ints = await stateWith("conv1.weight", {
    dtype: "I64",
    shape: [6, 1, 3, 3],
    data: new BigInt64Array(54),
  });
  assertThrows(() => loadStateDict(net(2), ints), /"conv1\.weight" is an integer tensor/);
});

Deno.test("a backbone / ImageNet file with a NaN is refused by loadInitWeights, naming both", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "imagenet.safetensors");
    // Prefixed, as MoCo checkpoints are: the error names the key in the file.
    const s = await stateWith("bn2.running_var", NaN);
    await writeSafetensors(path, [...s].map(([k, t]) => [`module.encoder_q.${k}`, t]));
    await assertRejects(
      () => loadInitWeights(net(3), path),
      /imagenet\.safetensors: tensor "module\.encoder_q\.bn2\.running_var" holds non-finite/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an init file lacking BN running statistics (or any weight) is refused; only num_batches_tracked may be absent", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The reviewer's file: a ResNet-18 backbone without running_mean / running_var (and counters).
    const path = join(dir, "partial.safetensors");
    const full = await readState(resnet18(B, { inChannels: 1, seed: 1 }));
    const backbone = [...full].filter(([k]) => !k.startsWith("fc."));
    await writeSafetensors(path, backbone.filter(([k]) => !/running_|num_batches/.test(k)));
    const dst = resnet18(B, { inChannels: 1, seed: 2 });
    const refused = async (load: () => Promise<unknown>, message: string) => {
      const e = await load().then(() => null, (x) => x);
      assert(e instanceof UserError, `refused as a UserError: ${e}`);
      assertEquals(e.message, message);
    };
    await refused(
      () => loadInitWeights(dst, path, "ImageNet weights"),
      `ImageNet weights ${path} lack 40 tensors the backbone needs (bn1.running_mean, ` +
        `bn1.running_var, layer1.0.bn1.running_mean, …)`,
    );
    // One weight missing, prefixed as MoCo files are (the default label).
    await writeSafetensors(
      path,
      backbone.filter(([k]) => k !== "layer4.1.conv2.weight").map(([k, t]) => [`module.${k}`, t]),
    );
    await refused(
      () => loadInitWeights(dst, path),
      `init weights ${path} lack 1 tensor the backbone needs (layer4.1.conv2.weight)`,
    );
    // Without the counters alone it loads, every other tensor taken from the file.
    await writeSafetensors(path, backbone.filter(([k]) => !k.endsWith("num_batches_tracked")));
    const report = await loadInitWeights(dst, path);
    assert(report.missing.every((k) => k.endsWith("num_batches_tracked") || k.startsWith("fc.")));
    const got = await readState(dst);
    for (const [k, t] of backbone) {
      if (!k.endsWith("num_batches_tracked")) assertEquals(got.get(k)!.data, t.data, k);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a 1-channel stem exported as RGB loads back to the bit; its colours are w/3", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gray = buildBackbone(B, "resnet18", { inChannels: 1, seed: new Rng(5) });
    const w = (await readState(gray)).get(gray.stemKey)!.data as Float32Array;
    // values whose thirds do not round back: w/3·3 ≠ w in f32 for many of them
    w.set([1, 7, 1e-40, -3.4e38, 0.1, -0.7, 5e-45]);
    B.write(gray.parameters().find((p) => p.value.shape[1] === 1)!.value, w);
    const path = join(dir, "backbone.safetensors");
    await exportBackbone(gray, path, {});
    const rgb = (await readSafetensors(path)).tensors.get(gray.stemKey)!;
    assertEquals(rgb.shape.slice(0, 2), [64, 3]);
    const k = 49, d = rgb.data as Float32Array;
    let inexact = 0;
    for (let i = 0; i < 64; i++) {
      for (let j = 0; j < k; j++) {
        const v = w[i * k + j], [r, g, b] = [0, 1, 2].map((c) => d[(i * 3 + c) * k + j]);
        if (Math.fround(Math.fround(v / 3) * 3) !== v) inexact++;
        assertEquals(r, Math.fround(v / 3));
        assertEquals(g, r);
        assert(Math.abs(b - v / 3) <= 2 * ulp(v / 3), `${v}: B ${b}`);
      }
    }
    assert(inexact > 100, `${inexact} values a plain w/3 export would not give back`);
    const back = buildBackbone(B, "resnet18", { numClasses: 1, inChannels: 1, init: false });
    await loadInitWeights(back, path);
    const got = (await readState(back)).get(back.stemKey)!.data as Float32Array;
    assertEquals(new Uint32Array(got.buffer), new Uint32Array(w.buffer));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The spacing of f32 values at |x| (the smallest subnormal at 0). */
function ulp(x: number): number {
  const a = Math.abs(Math.fround(x));
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

Deno.test("exportBackbone refuses to write non-finite weights", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const n = net(4), path = join(dir, "backbone.safetensors");
    await exportBackbone(n, path, {});
    const good = await Deno.readFile(path);
    const p = n.parameters()[1];
    const d = await p.read();
    d[0] = Infinity;
    B.write(p.value, d);
    await assertRejects(() => exportBackbone(n, path, {}), /backbone export .*non-finite/);
    assertEquals(await Deno.readFile(path), good, "the previous export stays");
    assert((await readSafetensors(path)).tensors.size > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a checkpoint holding a NaN, or cut short, is refused on load with a clear message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "checkpoint.safetensors");
    const q = net(5), queue = B.fromArray(new Float32Array(8).fill(0.5), [2, 4]);
    await saveCheckpoint(path, B, { modules: { q }, tensors: { queue }, meta: { step: 3 } });
    const bytes = await Deno.readFile(path);
    assertEquals(await loadCheckpoint(path, B, { modules: { q: net(6) }, tensors: { queue } }), {
      step: 3,
    });
    // One float of the queue flipped to NaN in place (the last 4 bytes of the data section) in a
    // checkpoint without the data hash (as before it was recorded; with it, the hash refuses
    // the change first: tests/train_checkpoint_integrity.test.ts).
    const file = await readSafetensors(path);
    const { data_sha256: _, ...noHash } = file.metadata;
    const flipped = serializeSafetensors(file.tensors, noHash);
    new DataView(flipped.buffer).setFloat32(flipped.length - 4, NaN, true);
    await Deno.writeFile(path, flipped);
    await assertRejects(
      () => loadCheckpoint(path, B, { modules: { q: net(6) }, tensors: { queue } }),
      /checkpoint\.safetensors: tensor "queue" holds non-finite values/,
    );
    // Cut short: the damage is named, as a UserError (no stack trace from the task), which the
    // command line words with its flag.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100));
    let err: unknown;
    try {
      await loadCheckpoint(path, B, { modules: { q: net(6) }, tensors: { queue } });
    } catch (e) {
      err = e;
    }
    assert(err instanceof UserError, String(err));
    assert(
      /checkpoint .* is damaged .*out of range.*new run folder/.test(err.message),
      err.message,
    );
    assert(!err.message.includes("--"), `the training layer names a flag: ${err.message}`);
    const line = explain(err) ?? "";
    assert(/checkpoint .* is damaged .*out of range.*start a new --out/.test(line), line);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DenseNet-121 weights under torchvision's old names (denselayerN.norm.1.weight) load", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = densenet121(B, { numClasses: 14, init: false });
    // Distinct values in every tensor, so a key loaded into the wrong place would show.
    let v = 0;
    for (const e of src.stateDict()) {
      if (e.dtype === "F32") {
        e.write(Float32Array.from({ length: e.shape.reduce((a, b) => a * b, 1) }, () => ++v % 97));
      }
    }
    const state = await readState(src);
    const old = [...state].filter(([k]) => !k.startsWith("classifier.")).map((
      [k, t],
    ): [string, TensorData] => [
      k.replace(/(denselayer\d+\.(?:norm|relu|conv))([12])\./, "$1.$2."),
      t,
    ]);
    const renamed = old.filter(([k]) => /denselayer\d+\.(?:norm|conv)\.[12]\./.test(k)).length;
    assertEquals(renamed, 696, "12 keys in each of the 58 dense layers");
    const path = join(dir, "densenet121_old.safetensors");
    await writeSafetensors(path, old);
    const dst = densenet121(B, { numClasses: 14, init: false });
    const report = await loadInitWeights(dst, path, "ImageNet weights");
    assertEquals(report.missing, []);
    assertEquals(report.loaded.length, state.size - 2);
    assertEquals(report.unexpected, []);
    const got = await readState(dst);
    for (const [k, t] of state) if (!k.startsWith("classifier.")) assertEquals(got.get(k), t, k);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
