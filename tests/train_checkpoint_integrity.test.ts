/**
 * A checkpoint that cannot resume exactly is refused, naming the file and what is wrong: meta
 * that is not a JSON object or lacks / misstates the counters (step, optimizerStep, ptr), data
 * changed since the save (its SHA-256), a tensor rewritten in F16, a tensor the run does not
 * have. A checkpoint from before the hash still loads. Each refusal is a DamagedCheckpointError
 * that the command line words in one line. Also: saves are flushed (util/fs.ts durability) and
 * clear the temp files of a killed save. All on the CPU with the tiny net.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { cpuBackend as B } from "../model/backend_cpu.ts";
import { readSafetensors, serializeSafetensors, type TensorData } from "../model/safetensors.ts";
import { readState } from "../model/state.ts";
import { DATA_HASH_KEY, loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { pretrain } from "../train/pretrain.ts";
import { DamagedCheckpointError } from "../train/run_errors.ts";
import { cpuTrainOps } from "../train/train_ops.ts";
import { explain } from "../cli/explain.ts";
import { durability, removeStaleTemps, writeFileAtomic } from "../util/fs.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertEquals } from "./helpers.ts";
import { discSource } from "./image_source.ts";
import { TinyNet, tinyPretrainConfig } from "./tiny_net.ts";

const net = (seed: number) => new TinyNet(B, { inChannels: 1, seed: new Rng(seed) });

/** The error `f` rejects with (fails when it resolves). */
async function rejection(f: () => Promise<unknown>): Promise<unknown> {
  return await f().then(() => {
    throw new Error("expected a refusal, got none");
  }, (e) => e);
}

/** A safetensors file with its JSON header changed by `edit` (the data section as it was). */
function withHeader(bytes: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  edit(header);
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(bytes.subarray(8 + n), 8 + h.length);
  return out;
}

/** Asserts a DamagedCheckpointError naming `path` whose detail matches `re`, worded in one line. */
function assertDamaged(e: unknown, path: string, re: RegExp): void {
  assert(e instanceof DamagedCheckpointError, `a DamagedCheckpointError: ${e}`);
  assertEquals(e.path, path);
  assert(re.test(e.detail), `${e.detail} !~ ${re}`);
  const line = explain(e) ?? "";
  assert(line.startsWith(`checkpoint ${path} is damaged (`) && !line.includes("\n"), line);
  assert(!line.includes("    at "), `no stack trace: ${line}`);
}

Deno.test("a checkpoint records its data's SHA-256; changed data, F16 tensors and unknown tensors are refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "checkpoint.safetensors");
    const q = net(5), queue = B.fromArray(Float32Array.from({ length: 8 }, (_, i) => i), [2, 4]);
    const parts = { modules: { q }, tensors: { queue } };
    await saveCheckpoint(path, B, { ...parts, meta: { step: 3 } });
    const bytes = await Deno.readFile(path);
    const file = await readSafetensors(path);
    assertEquals(
      file.metadata[DATA_HASH_KEY],
      createHash("sha256").update(bytes.subarray(file.dataStart)).digest("hex"),
    );
    const load = () => loadCheckpoint(path, B, { modules: { q: net(6) }, tensors: { queue } });
    assertEquals(await load(), { step: 3 });

    // One value changed in place (still finite): only the hash can tell.
    const changed = bytes.slice();
    changed[changed.length - 2] ^= 1;
    await Deno.writeFile(path, changed);
    assertDamaged(await rejection(load), path, /do not match the SHA-256 recorded/);

    // A checkpoint from before the hash (none recorded) still loads, its values exactly.
    const { data_sha256: _, ...noHash } = file.metadata;
    await Deno.writeFile(path, serializeSafetensors(file.tensors, noHash));
    const q2 = net(7), queue2 = B.zeros([2, 4]);
    await loadCheckpoint(path, B, { modules: { q: q2 }, tensors: { queue: queue2 } });
    assertEquals(await readState(q2), await readState(q));
    assertEquals(await B.read(queue2), await B.read(queue));

    // Rewritten in F16 by another tool (no hash: the tool dropped it): refused by tensor name,
    // where it used to load, rounded, and resume inexactly.
    // (the queue's 8 values as 16 bytes: written as 4 F32 values, then declared F16 [2, 4])
    const asF16 = new Map(file.tensors);
    asF16.set("queue", { dtype: "F32", shape: [4], data: new Float32Array(4).fill(1) });
    const out = withHeader(serializeSafetensors(asF16, noHash), (h) => {
      const t = h.queue as { dtype: string; shape: number[] };
      [t.dtype, t.shape] = ["F16", [2, 4]];
    });
    await Deno.writeFile(path, out);
    assertDamaged(await rejection(load), path, /tensor "queue" is F16; .*F32 and I64 only/);

    // A tensor the run does not have (an old-style save with a hash is refused by its hash; this
    // one by name).
    const extra = new Map<string, TensorData>(file.tensors);
    extra.set("bogus", { dtype: "F32", shape: [1], data: new Float32Array(1) });
    await Deno.writeFile(path, serializeSafetensors(extra, noHash));
    assertDamaged(await rejection(load), path, /1 tensor this run does not have: "bogus"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a resumed pretraining run refuses a checkpoint's meta that is not sound, naming the field", async () => {
  const opts = { quiet: true, log: () => {}, backbone: (o: object) => new TinyNet(B, o) };
  const cfg = tinyPretrainConfig(1); // 32 images, batch 16: 2 steps; queue of 32
  const base = await Deno.makeTempDir();
  try {
    await pretrain(B, cpuTrainOps, cfg, discSource(32), base, opts);
    const ckpt = join(base, "checkpoint.safetensors");
    const orig = await readSafetensors(ckpt);
    const meta = JSON.parse(orig.metadata.meta);
    assertEquals([meta.step, meta.ptr, meta.optimizerStep], [2, 0, 2]);
    const cases: [string, string | undefined, RegExp][] = [
      ["malformed JSON", "{oops", /__metadata__\.meta is not valid JSON/],
      ["null", "null", /__metadata__\.meta is null, not a JSON object/],
      ["no meta", undefined, /meta\.step is missing, not a whole number/],
      ["no step", JSON.stringify({ ...meta, step: undefined }), /meta\.step is missing/],
      [
        "step beyond",
        JSON.stringify({ ...meta, step: 1e6 }),
        /meta\.step is 1000000, not a whole number in \[0, 2\]/,
      ],
      ["step fraction", JSON.stringify({ ...meta, step: 1.5 }), /meta\.step is 1\.5/],
      [
        "no optimizerStep",
        JSON.stringify({ ...meta, optimizerStep: undefined }),
        /meta\.optimizerStep is missing/,
      ],
      [
        "negative optimizerStep",
        JSON.stringify({ ...meta, optimizerStep: -1 }),
        /meta\.optimizerStep is -1/,
      ],
      [
        "ptr past the queue",
        JSON.stringify({ ...meta, ptr: 32 }),
        /meta\.ptr is 32, not a whole number in \[0, 32\)/,
      ],
      ["ptr fraction", JSON.stringify({ ...meta, ptr: 3.5 }), /meta\.ptr is 3\.5/],
      ["ptr negative", JSON.stringify({ ...meta, ptr: -16 }), /meta\.ptr is -16/],
      ["ptr text", JSON.stringify({ ...meta, ptr: "abc" }), /meta\.ptr is "abc"/],
      [
        "config not an object",
        JSON.stringify({ ...meta, config: 7 }),
        /meta\.config is not a JSON object/,
      ],
    ];
    for (const [what, m, re] of cases) {
      const dir = await Deno.makeTempDir();
      try {
        for (const f of Deno.readDirSync(base)) {
          await Deno.copyFile(join(base, f.name), join(dir, f.name));
        }
        const { meta: _, ...rest } = orig.metadata;
        const path = join(dir, "checkpoint.safetensors");
        await Deno.writeFile(
          path,
          serializeSafetensors(orig.tensors, m === undefined ? rest : { ...rest, meta: m }),
        );
        const e = await rejection(() =>
          pretrain(B, cpuTrainOps, cfg, discSource(32), dir, { ...opts, resume: true })
        );
        assertDamaged(e, path, re);
        assert(e instanceof Error && !(e instanceof SyntaxError), what);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a save removes the temp files a killed save left beside its target, and no others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "checkpoint.safetensors");
    const stale = [
      "checkpoint.safetensors.tmp-123-1700000000000",
      "checkpoint.safetensors.tmp-9-1",
    ];
    const kept = [
      "checkpoint.safetensors.tmp-123-x", // not the pattern
      "other.safetensors.tmp-123-1700000000000", // another target
      "checkpoint.safetensors.tmp-1-2.bak",
      "xcheckpoint.safetensors.tmp-1-2",
      "checkpointXsafetensors.tmp-1-2", // the dot is literal
    ];
    for (const n of [...stale, ...kept]) await Deno.writeTextFile(join(dir, n), "partial");
    const q = net(5), queue = B.fromArray(new Float32Array(8), [2, 4]);
    await saveCheckpoint(path, B, { modules: { q }, tensors: { queue }, meta: { step: 1 } });
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["checkpoint.safetensors", ...kept].sort());
    assertEquals(await removeStaleTemps(join(dir, "none", "x")), [], "a missing folder is none");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an atomic write flushes the file before the rename and the folder after it", async () => {
  const dir = await Deno.makeTempDir();
  const { file, dir: flushDir } = durability;
  const calls: string[] = [];
  const path = join(dir, "sub", "a.json");
  try {
    durability.file = async (f) => {
      // The data is all there when it is flushed, and the target is not yet replaced.
      calls.push(`file ${(await f.stat()).size} ${await Deno.readTextFile(path).catch(() => "-")}`);
      await file(f);
    };
    durability.dir = async (d) => {
      calls.push(`dir ${d} ${await Deno.readTextFile(path)}`);
      await flushDir(d);
    };
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, new TextEncoder().encode("second!"));
    assertEquals(calls, [
      "file 5 -",
      `dir ${join(dir, "sub")} first`,
      "file 7 first",
      `dir ${join(dir, "sub")} second!`,
    ]);
    assertEquals([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["a.json"]);
    // A folder that cannot be opened is skipped quietly.
    await flushDir(join(dir, "no-such-folder"));
  } finally {
    durability.file = file;
    durability.dir = flushDir;
    await Deno.remove(dir, { recursive: true });
  }
});
