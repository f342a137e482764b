/**
 * The dataset identity a run records (kind, root, record count, record-list hash): the same data
 * loaded twice has one identity; another label, path, root or record count does not.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers.ts";
import { loadCsvDataset } from "../data/generic.ts";
import { datasetIdentity, identityDifference } from "../data/identity.ts";
import { encodePngGray } from "../data/png_encode.ts";

const PNG = encodePngGray({ width: 2, height: 2, data: new Uint8Array(4) });

Deno.test("dataset identity: stable for the same data, different for other data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data_identity_" });
  try {
    for (const f of ["a.png", "b.png", "c.png"]) await Deno.writeFile(join(dir, f), PNG);
    const load = async (csv: string) => {
      await Deno.writeTextFile(join(dir, "labels.csv"), csv);
      return datasetIdentity(await loadCsvDataset({ root: dir }));
    };
    const base = await load("path,label\na.png,1\nb.png,0\n");
    assertEquals(base.kind, "csv");
    assertEquals(base.records, 2);
    assertEquals(await load("path,label\na.png,1\nb.png,0\n"), base);
    assertEquals(identityDifference(base, base), null);
    const relabelled = await load("path,label\na.png,0\nb.png,0\n");
    assert(relabelled.hash !== base.hash);
    assertEquals(
      identityDifference(base, relabelled),
      "the same number of records with other paths or labels",
    );
    const other = await load("path,label\na.png,1\nc.png,0\n");
    assert(identityDifference(base, other) !== null, "another file");
    const more = await load("path,label\na.png,1\nb.png,0\nc.png,1\n");
    assertEquals(identityDifference(base, more), "2 vs 3 records");
    assertEquals(
      identityDifference(base, { ...base, root: "/elsewhere" }),
      `root ${base.root} vs /elsewhere`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
