/**
 * A checkpoint reads its tensors in one round trip a part, not one a tensor: each read is a
 * submit and a wait of ~10-12 ms through Deno (lavapipe and an H200 alike), so ResNet-18's MoCo
 * checkpoint took 5 s read tensor by tensor and 0.7 s in one round trip (session 11).
 */
import { join } from "node:path";
import { gpuBackend } from "../model/backend_gpu.ts";
import { readState } from "../model/state.ts";
import { loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { Rng } from "../util/rng.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { TinyNet } from "./tiny_net.ts";

Deno.test("saveCheckpoint reads a module's state and the loose tensors in one submit each", async () => {
  const B = gpuBackend(gpu);
  const dir = await Deno.makeTempDir();
  const net = (seed: number) => new TinyNet(B, { inChannels: 1, seed: new Rng(seed) });
  const q = net(1), k = net(2);
  const queue = B.fromArray(Float32Array.from({ length: 24 }, (_, i) => i / 7), [4, 6]);
  const other = B.fromArray(Float32Array.of(3, 1, 4), [3]);
  try {
    const entries = q.stateDict().filter((e) => e.tensor).length;
    assert(entries >= 10, `TinyNet has ${entries} tensors`);
    const path = join(dir, "checkpoint.safetensors");
    const s0 = gpu.stats.submits;
    await saveCheckpoint(path, B, {
      modules: { q, k },
      tensors: { queue, other },
      meta: { step: 1 },
    });
    assertEquals(gpu.stats.submits - s0, 3, "encoder q, encoder k, the loose tensors");
    // and what was read is what the tensors hold: loaded into fresh nets, read one by one
    const q2 = net(3), k2 = net(4);
    const queue2 = B.zeros([4, 6]), other2 = B.zeros([3]);
    await loadCheckpoint(path, B, {
      modules: { q: q2, k: k2 },
      tensors: { queue: queue2, other: other2 },
    });
    for (const [a, b] of [[q, q2], [k, k2]]) {
      const want = a.stateDict(), got = b.stateDict();
      for (let i = 0; i < want.length; i++) {
        assertEquals(await got[i].read(), await want[i].read(), want[i].name);
      }
    }
    assertEquals(await B.read(queue2), await B.read(queue));
    assertEquals(await B.read(other2), await B.read(other));
    assertEquals([...(await readState(q)).keys()], q.stateDict().map((e) => e.name));
  } finally {
    for (const t of [queue, other]) B.dispose(t);
    await Deno.remove(dir, { recursive: true });
  }
});
