/** Label-fraction subsets and patient splits: nesting, disjointness, determinism, class presence. */
import { assert, assertEquals, assertThrows } from "./helpers.ts";
import {
  type LabeledItem,
  labelFractionSubsets,
  sharedPatients,
  splitByPatient,
} from "../data/fractions.ts";
import { Rng } from "../util/rng.ts";

/** n patients with 1–4 images each; ~15% positive images (patient-correlated), some masked. */
function records(nPatients: number, seed = 1): LabeledItem[] {
  const rng = new Rng(seed), out: LabeledItem[] = [];
  for (let p = 0; p < nPatients; p++) {
    const sick = rng.uniform() < 0.15;
    for (let k = 1 + rng.int(4); k > 0; k--) {
      const pos = sick && rng.uniform() < 0.8;
      out.push({
        patient: `p${p}`,
        labels: Float32Array.of(pos ? 1 : 0),
        mask: Float32Array.of(rng.uniform() < 0.05 ? 0 : 1),
      });
    }
  }
  return out;
}

const patientsOf = (recs: LabeledItem[], idx: number[]) => new Set(idx.map((i) => recs[i].patient));

Deno.test("fractions: nested within a draw, whole patients, sizes near the fraction", () => {
  const recs = records(800);
  const pool = recs.map((_, i) => i);
  const fr = [0.001, 0.01, 0.1, 0.5, 1];
  const subsets = labelFractionSubsets(recs, pool, { fractions: fr, draws: 3, seed: 4 });
  assertEquals(subsets.length, 3 * 4 + 1); // fraction 1 once
  for (let d = 0; d < 3; d++) {
    const mine = subsets.filter((s) => s.draw === d || s.fraction === 1)
      .sort((x, y) => x.fraction - y.fraction);
    for (let k = 1; k < mine.length; k++) {
      const small = new Set(mine[k - 1].indices);
      assert(
        mine[k - 1].indices.every((i) => mine[k].indices.includes(i)),
        `draw ${d} nesting ${k}`,
      );
      assert(small.size <= mine[k].indices.length);
    }
    for (const s of mine) {
      // Whole patients: every image of a chosen patient is in.
      const ps = patientsOf(recs, s.indices);
      assertEquals(s.indices.length, pool.filter((i) => ps.has(recs[i].patient)).length);
      assertEquals(s.patients, ps.size);
      const target = Math.max(1, Math.round(s.fraction * pool.length));
      assert(s.indices.length >= target, `${s.fraction}: ${s.indices.length} < ${target}`);
      if (s.fraction >= 0.1) assert(s.indices.length < target + 5, `${s.fraction}: overshoot`);
    }
  }
  const full = subsets.find((s) => s.fraction === 1)!;
  assertEquals(full.indices, pool);
});

Deno.test("fractions: every subset holds a positive and a negative of the task", () => {
  for (let seed = 0; seed < 5; seed++) {
    const recs = records(300, seed);
    const pool = recs.map((_, i) => i).filter((i) => i % 3 !== 0);
    for (
      const s of labelFractionSubsets(recs, pool, { fractions: [0.001, 0.01], draws: 4, seed })
    ) {
      assert(s.positives >= 1 && s.negatives >= 1, `seed ${seed} ${JSON.stringify(s)}`);
      assert(s.indices.every((i) => i % 3 !== 0), "only pool indices");
    }
  }
});

Deno.test("fractions: deterministic per seed, draws differ, bad input explained", () => {
  const recs = records(400);
  const pool = recs.map((_, i) => i);
  const o = { fractions: [0.05], draws: 3, seed: 11 };
  assertEquals(labelFractionSubsets(recs, pool, o), labelFractionSubsets(recs, pool, o));
  const [a, b] = labelFractionSubsets(recs, pool, o);
  assert(a.indices.join() !== b.indices.join(), "draws differ");
  const other = labelFractionSubsets(recs, pool, { ...o, seed: 12 })[0];
  assert(other.indices.join() !== a.indices.join(), "seeds differ");
  assertThrows(() => labelFractionSubsets(recs, pool, { fractions: [0] }), /fraction must be in/);
  const allNeg = recs.map((r) => ({ ...r, labels: Float32Array.of(0) }));
  assertThrows(() => labelFractionSubsets(allNeg, pool), /at least one positive and one negative/);
});

Deno.test("splitByPatient: disjoint, covers the pool, ratios, both classes everywhere", () => {
  const recs = records(600, 3);
  const s = splitByPatient(recs, { ratios: { train: 0.7, valid: 0.15, test: 0.15 }, seed: 2 });
  const all = [...s.train, ...s.valid, ...s.test].sort((x, y) => x - y);
  assertEquals(all, recs.map((_, i) => i));
  assertEquals(sharedPatients(recs, s.train, s.valid), []);
  assertEquals(sharedPatients(recs, s.train, s.test), []);
  assertEquals(sharedPatients(recs, s.valid, s.test), []);
  const nP = patientsOf(recs, all).size;
  for (const [part, r] of [[s.valid, 0.15], [s.test, 0.15], [s.train, 0.7]] as const) {
    const share = patientsOf(recs, part).size / nP;
    assert(Math.abs(share - r) < 0.02, `patient share ${share} vs ${r}`);
    assert(part.some((i) => recs[i].labels[0] === 1) && part.some((i) => recs[i].labels[0] === 0));
  }
  assertEquals(splitByPatient(recs, { seed: 2 }), splitByPatient(recs, { seed: 2 }));
  assert(
    splitByPatient(recs, { seed: 3 }).valid.join() !==
      splitByPatient(recs, { seed: 2 }).valid.join(),
  );
  const sub = splitByPatient(recs, { pool: s.train, ratios: { train: 0.9, valid: 0.1, test: 0 } });
  assertEquals(sub.test, []);
  assert([...sub.train, ...sub.valid].every((i) => s.train.includes(i)));
});
