import { Gpu } from "../kernels/device.ts";
import { Tensor } from "../kernels/tensor.ts";
import { axpby, fill } from "../kernels/elementwise.ts";
import { matmul } from "../kernels/gemm/matmul.ts";
import { conv2d } from "../kernels/conv/conv2d.ts";
import { chooseVariant, tileCandidates } from "../kernels/gemm/variants.ts";
import {
  adapterKey,
  type Problem,
  TIMED_ROUNDS,
  TuneCacheError,
  Tuner,
  tunerOf,
} from "../kernels/tuner.ts";
import { assert, assertEquals } from "./helpers.ts";
import { gpu } from "./gpu.ts";
import { hasF16 } from "./f16.ts";

/**
 * A problem whose "slow" candidate does 40× the work of the "fast" one ("slower" 80×); `ran`
 * counts the scratch calls of each candidate, by its reps.
 */
function problem(
  key: string,
  order: string[],
  ran?: Map<number, number>,
): Problem<{ reps: number }> {
  const reps: Record<string, number> = { fast: 1, slow: 40, slower: 80 };
  return {
    key,
    candidates: order.map((label) => ({ label, choice: { reps: reps[label] } })),
    scratch: () => {
      const a = fill(Tensor.empty(gpu, [1 << 16]), 1), b = fill(Tensor.empty(gpu, [1 << 16]), 2);
      return {
        run: (c) => {
          ran?.set(c.reps, (ran.get(c.reps) ?? 0) + 1);
          for (let i = 0; i < c.reps; i++) axpby(0.5, a, 0.5, b).dispose();
        },
        dispose: () => [a, b].forEach((t) => t.dispose()),
      };
    },
  };
}

Deno.test("the tuner answers the prior, times the candidates, then answers the fastest", async () => {
  const t = new Tuner(gpu);
  t.mode = "measure";
  const p = problem("toy", ["slow", "fast"]); // the prior is the slow one
  assertEquals(t.choose(p).reps, 40);
  assertEquals(t.settled("toy"), undefined, "the prior is not settled");
  assertEquals(t.pendingCount, 1);
  assertEquals(await t.tunePending(), 1);
  assertEquals(t.pendingCount, 0);
  assertEquals(t.choose(p).reps, 1);
  // answered from the record once: later calls take it without building candidates
  assertEquals(t.settled<{ reps: number }>("toy")?.reps, 1);
  assertEquals(t.table["toy"].label, "fast");
  assert(t.table["toy"].ms.slow > t.table["toy"].ms.fast, JSON.stringify(t.table["toy"].ms));
  assertEquals(t.summary(), { toy: "fast" });
});

Deno.test("tuning choices persist per adapter: a second tuner starts tuned", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const t = new Tuner(gpu);
    t.mode = "measure";
    t.choose(problem("toy", ["slow", "fast"]));
    await t.tunePending();
    // another adapter's records in the same file survive a save
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        version: 1,
        adapters: { "other|gpu": { k: { label: "x", choice: 1, ms: {} } } },
      }),
    );
    await t.load(path);
    await t.save(path);
    const t2 = new Tuner(gpu);
    t2.mode = "cached";
    await t2.load(path);
    assertEquals(t2.choose(problem("toy", ["slow", "fast"])).reps, 1);
    assertEquals(t2.pendingCount, 0);
    const file = JSON.parse(await Deno.readTextFile(path));
    assertEquals(Object.keys(file.adapters).length, 2);
    // "off" ignores the cache
    const t3 = new Tuner(gpu);
    t3.mode = "off";
    await t3.load(path);
    assertEquals(t3.choose(problem("toy", ["slow", "fast"])).reps, 40);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a record that never timed a candidate (one added since) has it timed against its choice, which runs meanwhile", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  // a cache from before "fast" existed: it chose "slow" over "slower"; and a record whose
  // timings are damaged (all of its candidates timed again)
  const records = {
    toy: { label: "slow", choice: { reps: 40 }, ms: { slow: 1, slower: 2 } },
    bad: { label: "fast", choice: { reps: 1 }, ms: 7 },
  };
  const toy = (ran?: Map<number, number>) => problem("toy", ["slow", "slower", "fast"], ran);
  await Deno.writeTextFile(
    path,
    JSON.stringify({ version: 1, adapters: { [adapterKey(gpu)]: records } }),
  );
  try {
    const t = new Tuner(gpu);
    t.mode = "measure";
    await t.load(path);
    const ran = new Map<number, number>();
    assertEquals(t.choose(toy(ran)).reps, 40); // the record, until timed
    assertEquals(t.settled("toy"), undefined);
    assertEquals(t.choose(problem("bad", ["slow", "fast"], ran)).reps, 1);
    assertEquals(t.pendingCount, 2);
    await t.tunePending();
    assertEquals(t.choose(toy()).reps, 1);
    // "slower" lost to "slow" before: not run again, its old timing kept; the damaged record's
    // "slow" was timed (it and toy's "slow" both run reps 40)
    assertEquals(ran.get(80) ?? 0, 0);
    assert((ran.get(40) ?? 0) > 0 && (ran.get(1) ?? 0) > 0);
    assertEquals(Object.keys(t.table["toy"].ms).sort(), ["fast", "slow", "slower"]);
    assertEquals(t.table["toy"].ms.slower, 2);
    assert(t.table["toy"].ms.slow !== 1, "the record's choice is timed again beside the new one");
    assertEquals(Object.keys(t.table["bad"].ms).sort(), ["fast", "slow"]);
    assertEquals(t.settled<{ reps: number }>("toy")?.reps, 1);
    // "cached" never times: the record answers as it is
    const c = new Tuner(gpu);
    c.mode = "cached";
    await c.load(path);
    assertEquals(c.choose(toy()).reps, 40);
    assertEquals(c.pendingCount, 0);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("two runs tuning into one cache keep each other's records", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.remove(path);
  try {
    // both open the cache before either has written it (two jobs started together)
    const a = new Tuner(gpu), b = new Tuner(gpu);
    for (const t of [a, b]) {
      t.mode = "measure";
      await t.load(path);
      t.persistTo(path);
    }
    a.choose(problem("toy-a", ["slow", "fast"]));
    await a.tunePending(5);
    b.choose(problem("toy-b", ["slow", "fast"]));
    await b.tunePending(5);
    const c = new Tuner(gpu);
    c.mode = "cached";
    await c.load(path);
    assertEquals(Object.keys(c.table).sort(), ["toy-a", "toy-b"]);
    assertEquals(Object.keys(b.table), ["toy-b"], "a run's own choices stay its own");
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("a damaged tuning cache is a clear error naming the file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    for (const text of ["{not json", JSON.stringify({ version: 7, adapters: {} })]) {
      await Deno.writeTextFile(path, text);
      let msg = "";
      try {
        await new Tuner(gpu).load(path);
      } catch (e) {
        assert(e instanceof TuneCacheError, String(e));
        msg = (e as Error).message;
      }
      assert(msg.startsWith(path) && /delete it to retune/.test(msg), msg);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a tuned matmul gives the untuned result and records what ran", async () => {
  // its own device, so the shared test Gpu keeps the software default ("off")
  const g = await Gpu.create();
  try {
    const t = tunerOf(g);
    t.mode = "measure";
    const a = Tensor.from(g, Float32Array.from({ length: 48 * 40 }, (_, i) => (i % 7) - 3), [
      48,
      40,
    ]);
    const b = Tensor.from(g, Float32Array.from({ length: 40 * 24 }, (_, i) => (i % 5) - 2), [
      40,
      24,
    ]);
    const before = await matmul(a, b).read();
    assertEquals(t.pendingCount, 1);
    await t.tunePending(2);
    const key = Object.keys(t.table)[0];
    assert(key.startsWith("matmul:NN:1x48x40x24"), key);
    // software: auto (windows or fat) and plain fat; hardware: every GPU tile shape
    const want = tileCandidates(g, chooseVariant(g, 48, 24)).length;
    assertEquals(Object.keys(t.table[key].ms).length, want);
    assert(want >= 2);
    assertEquals(await matmul(a, b).read(), before); // small integers: exact either way
    assertEquals(t.summary()[key], t.table[key].label);
  } finally {
    g.device.destroy();
  }
});

Deno.test({
  name: "f16 and f32 convs of one shape are tuned separately, and f16 tuning keeps f16 results",
  ignore: !hasF16,
  async fn() {
    const g = await Gpu.create(); // its own device, as above
    try {
      const t = tunerOf(g);
      t.mode = "measure";
      // small integers: every candidate (Winograd included) computes them exactly
      const xs = [1, 3, 6, 6], ws = [4, 3, 3, 3], o = { stride: 1, pad: 1 };
      const xv = Float32Array.from({ length: 108 }, (_, i) => (i % 7) - 3);
      const wv = Float32Array.from({ length: 108 }, (_, i) => (i % 5) - 2);
      const y32 = await conv2d(Tensor.from(g, xv, xs), Tensor.from(g, wv, ws), null, o).read();
      const x16 = Tensor.from(g, xv, xs, "f16"), w16 = Tensor.from(g, wv, ws, "f16");
      const y16 = conv2d(x16, w16, null, o);
      assertEquals(y16.dtype, "f16");
      assertEquals(await y16.read(), y32);
      // the two convs (and the f32 GEMMs of Winograd's panels, shared by both)
      await t.tunePending(2);
      const keys = Object.keys(t.table).filter((k) => k.startsWith("conv_")).sort();
      assertEquals(keys.length, 2, Object.keys(t.table).join(", "));
      assert(keys[0].startsWith("conv_fwd:1x3x6x6>4:3x3/1p1") && !keys[0].endsWith(":f16"));
      assertEquals(keys[1], `${keys[0]}:f16`);
      for (const k of keys) assert(Object.values(t.table[k].ms).every(Number.isFinite), k);
      const tuned = conv2d(x16, w16, null, o);
      assertEquals(tuned.dtype, "f16");
      assertEquals(await tuned.read(), y32);
    } finally {
      g.device.destroy();
    }
  },
});

Deno.test("a candidate's inner tuned calls are tuned before the candidate is timed", async () => {
  // The outer problem's candidates call an inner tuned problem, as Winograd calls its bmm: one
  // tunePending tunes both, and the outer candidates' timed calls run the inner one's fastest.
  const t = new Tuner(gpu);
  t.mode = "measure";
  const inner = problem("inner", ["slow", "fast"]);
  // what each outer call got from the inner problem, and whether the inner one was tuned by then
  const seen: Array<{ reps: number; tuned: boolean }> = [];
  const outer: Problem<{ reps: number }> = {
    key: "outer",
    candidates: [{ label: "a", choice: { reps: 1 } }, { label: "b", choice: { reps: 2 } }],
    scratch: () => {
      const s = inner.scratch();
      return {
        run: (c) => {
          const ic = t.choose(inner);
          seen.push({ reps: ic.reps, tuned: "inner" in t.table });
          for (let i = 0; i < c.reps; i++) s.run(ic);
        },
        dispose: s.dispose,
      };
    },
  };
  t.choose(outer);
  assertEquals(await t.tunePending(), 1);
  assertEquals(t.pendingCount, 0, "the inner problem is not left pending");
  assertEquals(t.table["inner"].label, "fast");
  // only warm-up calls (one a candidate at most) ran before the inner problem was tuned; every
  // call after, the timed ones included, ran its winner (1 rep)
  const before = seen.filter((x) => !x.tuned), after = seen.filter((x) => x.tuned);
  assert(before.length >= 1 && before.length <= 2, JSON.stringify(seen));
  assert(before.every((x) => x.reps === 40), JSON.stringify(seen));
  assert(after.length > 4 && after.every((x) => x.reps === 1), JSON.stringify(seen));
  assertEquals(t.table["outer"].label, "a");
});

Deno.test("timestamp timing: each stretch's GPU time over its passes, null past the capacity", async () => {
  const a = fill(Tensor.empty(gpu, [1 << 18]), 1), b = fill(Tensor.empty(gpu, [1 << 18]), 2);
  const calls = (n: number) => () => {
    for (let i = 0; i < n; i++) axpby(0.5, a, 0.5, b).dispose();
  };
  const stretches = () =>
    gpu.timePasses([
      calls(1),
      calls(16),
      () => { // a clear between dispatches ends the pass; the next dispatch opens a timed one
        calls(8)();
        gpu.clear(a.buffer);
        calls(8)();
      },
      () => gpu.clear(a.buffer), // no dispatch: nothing timed
    ]);
  // Structure, not speed: a timing ratio (16 calls against 1) fails whenever a shared CPU preempts
  // the lone call. Each stretch's time is the sum of its passes' spans on the timeline, which runs
  // forward pass by pass; a pass timed into another's query slots reads 0 or runs backwards there.
  const times = await stretches();
  if (!gpu.hasTimestamps) {
    assertEquals(times, [null, null, null, null]);
  } else {
    const [one, many, split, cleared] = times;
    assert(one !== null && many !== null && split !== null, `${times}`);
    assert(one > 0 && many > 0 && split > 0, `${times}`);
    assertEquals(cleared, 0);
    // the timeline: every timed pass in order, its stretch and first kernel, begin < end, in ms
    // from the first pass (the clear split stretch 2 in two passes; stretch 3 had none)
    const tl = gpu.lastTimeline;
    assertEquals(tl.map((p) => p.stretch), [0, 1, 2, 2]);
    assert(
      tl.every((p) => p.label.includes("axpby")),
      JSON.stringify(tl),
    );
    assertEquals(tl[0].begin, 0);
    for (let i = 0; i < tl.length; i++) {
      assert(
        tl[i].end > tl[i].begin && (i === 0 || tl[i].begin >= tl[i - 1].end),
        JSON.stringify(tl),
      );
    }
    const spans = [0, 1, 2].map((k) =>
      tl.filter((p) => p.stretch === k).reduce((s, p) => s + (p.end - p.begin), 0)
    );
    for (let k = 0; k < 3; k++) {
      assert(Math.abs(times[k]! - spans[k]) <= 1e-6 * spans[k], `${times} against ${spans}`);
    }
    // a stretch needing more passes than the timer holds reads null; work after the last stretch
    // (an untimed pass still open at stopTimer) is fine
    const late = await gpu.checked(async () => { // (a validation error fails this)
      gpu.startTimer(1);
      gpu.beginTimed();
      calls(1)();
      gpu.clear(a.buffer);
      calls(1)();
      gpu.endTimed();
      calls(1)();
      return await gpu.stopTimer();
    });
    assertEquals(late, [null]);
  }
  // the device is usable afterwards: a and b hold what the calls left
  assertEquals((await b.read())[0], 2);
  a.dispose();
  b.dispose();
});

Deno.test("without timestamp-query the tuner times by submit difference", async () => {
  const g = await Gpu.create({ timestamps: false }); // its own device, as above
  try {
    assertEquals(g.hasTimestamps, false);
    assertEquals(await g.timePasses([() => {}]), [null]);
    const t = new Tuner(g);
    t.mode = "measure";
    const reps: Record<string, number> = { fast: 1, slow: 40 };
    const p: Problem<{ reps: number }> = {
      key: "toy-diff",
      candidates: ["slow", "fast"].map((label) => ({ label, choice: { reps: reps[label] } })),
      scratch: () => {
        const a = fill(Tensor.empty(g, [1 << 16]), 1), b = fill(Tensor.empty(g, [1 << 16]), 2);
        return {
          run: (c) => {
            for (let i = 0; i < c.reps; i++) axpby(0.5, a, 0.5, b).dispose();
          },
          dispose: () => [a, b].forEach((x) => x.dispose()),
        };
      },
    };
    t.choose(p);
    await t.tunePending(5);
    assertEquals(t.table["toy-diff"].label, "fast");
  } finally {
    g.device.destroy();
  }
});

Deno.test("settle says what it tunes and how long it took, then saves; nothing pending says nothing", async () => {
  const t = new Tuner(gpu);
  t.mode = "measure";
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    t.persistTo(path);
    t.choose(problem("toy-a", ["slow", "fast"]));
    t.choose(problem("toy-b", ["fast", "slow"]));
    const lines: string[] = [];
    await t.settle((l) => lines.push(l));
    assertEquals(lines.length, 2, lines.join("\n"));
    assert(/timing 2 kernel shapes .*kept in /.test(lines[0]), lines[0]);
    assert(/2 shapes timed .* in \d+\.\d s$/.test(lines[1]), lines[1]);
    const saved = JSON.parse(await Deno.readTextFile(path));
    assertEquals(Object.keys(Object.values(saved.adapters)[0] as object).sort(), [
      "toy-a",
      "toy-b",
    ]);
    await t.settle((l) => lines.push(l));
    assertEquals(lines.length, 2);
    // progress between the first and the last line (here after every shape but the last)
    for (const k of ["toy-c", "toy-d", "toy-e"]) t.choose(problem(k, ["slow", "fast"]));
    await t.settle((l) => lines.push(l), 0);
    assertEquals(lines.slice(3, 5).map((l) => l.replace(/, [\d.]+ s$/, "")), [
      "kernel tuning: 1 of 3 shapes timed",
      "kernel tuning: 2 of 3 shapes timed",
    ]);
    assertEquals(lines.length, 6, lines.join("\n"));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a cache that cannot be saved mid-run is said once; tuning and the run go on", async () => {
  const t = new Tuner(gpu);
  t.mode = "measure";
  const file = await Deno.makeTempFile();
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...d: unknown[]) => warned.push(d.join(" "));
  try {
    // a path under a file: the save fails as on a read-only or full disk
    t.persistTo(`${file}/tune.json`);
    for (const k of ["toy-f", "toy-g"]) t.choose(problem(k, ["slow", "fast"]));
    await t.settle();
    assertEquals([t.table["toy-f"]?.label, t.table["toy-g"]?.label], ["fast", "fast"]);
    assertEquals(warned.length, 1, warned.join("\n"));
    assert(
      /^warning: could not save the kernel tuning cache .*tune\.json \(.*\); this run goes on/
        .test(warned[0]),
      warned[0],
    );
    assertEquals(t.persistedAt, null);
  } finally {
    console.warn = warn;
    await Deno.remove(file);
  }
});

Deno.test("a run stopped while tuning keeps what was timed: the cache is saved after every shape", async () => {
  const t = new Tuner(gpu);
  t.mode = "measure";
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    t.persistTo(path);
    const seen: string[][] = [];
    // what a process killed as each shape's timing starts would have left on disk
    const watched = (key: string) => {
      const p = problem(key, ["slow", "fast"]);
      const scratch = p.scratch;
      p.scratch = () => {
        const file = JSON.parse(Deno.readTextFileSync(path) || '{"adapters":{}}');
        seen.push(Object.keys(Object.values(file.adapters)[0] ?? {}).sort());
        return scratch();
      };
      return p;
    };
    for (const k of ["toy-a", "toy-b", "toy-c"]) t.choose(watched(k));
    assertEquals(await t.tunePending(5), 3);
    assertEquals(seen, [[], ["toy-a"], ["toy-a", "toy-b"]]);
    const file = JSON.parse(await Deno.readTextFile(path));
    assertEquals(Object.keys(Object.values(file.adapters)[0] as object).length, 3);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a candidate that does not compile is dropped, named in failures, and the rest still tuned", async () => {
  const g = await Gpu.create(); // its own device: the compile error stays there
  try {
    const t = new Tuner(g);
    t.mode = "measure";
    const broken = {
      name: "broken_candidate",
      code: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
    };
    const p: Problem<string> = {
      key: "toy-broken",
      candidates: ["broken", "slow", "fast"].map((label) => ({ label, choice: label })),
      scratch: () => {
        const a = fill(Tensor.empty(g, [1 << 16]), 1), b = fill(Tensor.empty(g, [1 << 16]), 2);
        return {
          run: (c) => {
            if (c === "broken") return g.dispatch(broken, [], null, [1]);
            for (let i = 0; i < (c === "slow" ? 40 : 1); i++) axpby(0.5, a, 0.5, b).dispose();
          },
          dispose: () => [a, b].forEach((x) => x.dispose()),
        };
      },
    };
    t.choose(p);
    await t.tunePending(5);
    assertEquals(t.table["toy-broken"].label, "fast");
    assertEquals(t.table["toy-broken"].ms.broken, Infinity);
    assert(t.failures.some((f) => f.startsWith("toy-broken broken:")), t.failures.join("\n"));
  } finally {
    g.device.destroy();
  }
});

Deno.test({
  name: "timestamps that read 0 everywhere switch the device to submit-difference timing",
  ignore: !gpu.hasTimestamps,
  async fn() {
    const g = await Gpu.create(); // its own device: the switch is for the device's lifetime
    const proto = GPUCommandEncoder.prototype;
    const resolve = proto.resolveQuerySet;
    try {
      const a = fill(Tensor.empty(g, [1 << 16]), 1), b = fill(Tensor.empty(g, [1 << 16]), 2);
      // a driver that writes no times: the resolved buffer keeps its zeros
      proto.resolveQuerySet = function () {};
      const t = await g.timePasses([() => axpby(0.5, a, 0.5, b).dispose()]);
      proto.resolveQuerySet = resolve;
      assertEquals(t, [null]);
      assertEquals(g.hasTimestamps, false);
      assertEquals(await g.timePasses([() => {}]), [null]);
      [a, b].forEach((x) => x.dispose());
    } finally {
      proto.resolveQuerySet = resolve;
      g.device.destroy();
    }
  },
});

Deno.test("a problem whose scratch cannot be made keeps its prior; the others are still tuned", async () => {
  const t = new Tuner(gpu);
  t.mode = "measure";
  const unmakeable: Problem<{ reps: number }> = {
    key: "toy-no-scratch",
    candidates: [{ label: "a", choice: { reps: 1 } }, { label: "b", choice: { reps: 2 } }],
    scratch: () => {
      throw new Error("scratch operands exceed this adapter's memory");
    },
  };
  t.choose(unmakeable);
  t.choose(problem("toy-after", ["slow", "fast"]));
  assertEquals(await t.tunePending(5), 2);
  assertEquals(t.pendingCount, 0);
  assertEquals(t.table["toy-no-scratch"], undefined);
  assertEquals(t.choose(unmakeable).reps, 1, "the prior");
  assertEquals(t.pendingCount, 0, "not queued again: a loop would retry it every step");
  assertEquals(t.table["toy-after"].label, "fast");
  assert(t.failures.some((f) => f.startsWith("toy-no-scratch: scratch operands")), `${t.failures}`);
});

Deno.test({
  name: "timestamp tuning times the candidates in rounds of alternating order, the fastest kept",
  ignore: !gpu.hasTimestamps,
  async fn() {
    // each candidate's calls logged in the order they are recorded
    const log: string[] = [];
    const a = fill(Tensor.empty(gpu, [1 << 12]), 1), b = fill(Tensor.empty(gpu, [1 << 12]), 2);
    const p: Problem<string> = {
      key: "rounds",
      candidates: ["x", "y", "z"].map((label) => ({ label, choice: label })),
      scratch: () => ({
        run: (c) => {
          log.push(c);
          axpby(0.5, a, 0.5, b).dispose();
        },
        dispose: () => {},
      }),
    };
    const t = new Tuner(gpu);
    t.mode = "measure";
    t.choose(p);
    await t.tunePending();
    // warm-up and the timing of one call each: x y z twice; then TIMED_ROUNDS batches
    const blocks = log.slice(6).reduce<string[]>(
      (acc, c) => (acc.at(-1) === c ? acc : [...acc, c]),
      [],
    );
    assertEquals(log.slice(0, 6), ["x", "y", "z", "x", "y", "z"]);
    // three rounds: x y z | z y x | x y z, a round's last block running on into the next's first
    assertEquals(TIMED_ROUNDS, 3);
    assertEquals(blocks, ["x", "y", "z", "y", "x", "y", "z"]);
    const ms = t.table["rounds"].ms;
    assert(["x", "y", "z"].every((l) => Number.isFinite(ms[l]) && ms[l] > 0), JSON.stringify(ms));
    a.dispose();
    b.dispose();
  },
});

// Until a shape is timed (and for good in "cached" mode) it runs the choice recorded for the
// nearest shape of the same op, where that is one of its candidates: nearest by the factors its
// numbers differ by; another op's records, or a label it does not offer, leave the prior. A tuner
// that ignored the neighbours, measured distance by differences, or matched across ops fails it.
Deno.test("an untimed shape runs the nearest timed shape's choice, where it offers it", () => {
  const t = new Tuner(gpu);
  t.mode = "cached";
  const rec = (label: string) => ({ label, choice: {}, ms: { [label]: 1 } });
  // deno-lint-ignore no-explicit-any
  (t as any).records = {
    "toy:8x100": rec("fast"),
    "toy:8x1000": rec("slower"),
    "toy:8x100:f16": rec("slower"),
    "other:8x120": rec("slower"),
  };
  const toy = (key: string, order = ["slow", "fast", "slower"]) => problem(key, order);
  // 300 is nearer 100 (3x against 3.3x); 400 is nearer 1000 by factors (2.5x against 4x), though
  // nearer 100 by differences
  assertEquals(t.choose(toy("toy:8x300")).reps, 1);
  assertEquals(t.summary()["toy:8x300"], "fast");
  assertEquals(t.choose(toy("toy:8x400")).reps, 80);
  // the f16 record is another op (its key reads differently with the numbers blanked); an f16
  // storage key with no f16 neighbour takes the f32 records' choice
  assertEquals(t.nearestLabel("toy:8x120:f16"), "slower");
  assertEquals(t.nearestLabel("toy:9x120"), "fast");
  assertEquals(t.nearestLabel("toy:8x120:f16>f32"), "fast");
  // a neighbour's label this problem does not offer, or no neighbour: the prior
  assertEquals(t.choose(toy("toy:8x300", ["slow", "slower"])).reps, 40);
  assertEquals(t.choose(toy("new:8x300")).reps, 40);
  assertEquals(t.pendingCount, 0, "cached mode times nothing");
});
