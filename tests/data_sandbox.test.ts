/**
 * Staying inside the data root, on generated trees in /tmp: a CSV or CheXpert row naming a
 * symlink whose target (or a symlinked folder on its way) lies outside the root is refused,
 * naming file and row; links that stay inside, and a root reached through a link, are fine;
 * folder layouts skip and count symlinks. A read the sandbox denies is a permission error (which
 * names the flag), not "dataset folder not found"; data/paths.ts and util/fs.ts share one
 * exists/isDir.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./helpers.ts";
import { CHEXPERT_OBSERVATIONS, loadChexpert } from "../data/chexpert.ts";
import { loadCsvDataset, loadFolder } from "../data/generic.ts";
import { loadShenzhen } from "../data/shenzhen.ts";
import { loadDataset } from "../data/load.ts";
import { DataError } from "../data/data_error.ts";
import * as paths from "../data/paths.ts";
import * as fs from "../util/fs.ts";
import { explain } from "../cli/explain.ts";
import { encodePngGray } from "../data/png_encode.ts";

const PNG = encodePngGray({ width: 2, height: 2, data: new Uint8Array([0, 64, 128, 255]) });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "data_sandbox_" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Makes a symbolic link. Deno.symlink needs unscoped --allow-write, which the test suite does not
 * have (it may write /tmp only), so python3 (which it may run) makes the link.
 */
async function symlink(target: string, path: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("python3", {
    args: ["-c", "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", target, path],
  }).output();
  if (code !== 0) throw new Error(`symlink ${path}: ${new TextDecoder().decode(stderr)}`);
}

async function put(path: string, bytes: Uint8Array = PNG): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, bytes);
}

/** root/ with a.png and labels.csv listing `rows`; outside/secret.png beside it. */
async function csvTree(dir: string, rows: string[]): Promise<string> {
  const root = join(dir, "root");
  await put(join(root, "a.png"));
  await put(join(dir, "outside", "secret.png"));
  await Deno.writeTextFile(join(root, "labels.csv"), ["path,label", "a.png,1", ...rows].join("\n"));
  return root;
}

Deno.test("CSV: a symlink out of the root is refused naming file and row", async () => {
  await withDir(async (dir) => {
    const root = await csvTree(dir, ["link.png,0"]);
    await symlink(join(dir, "outside", "secret.png"), join(root, "link.png"));
    let err: unknown;
    try {
      await loadCsvDataset({ root });
    } catch (e) {
      err = e;
    }
    assert(err instanceof DataError, String(err));
    assert(
      /labels\.csv: row 3: refused path "link\.png": .*symbolic link to .*outside\/secret\.png, outside the dataset root/
        .test(err.message),
      err.message,
    );
  });
});

Deno.test("CSV: a symlinked folder out of the root is refused; a link inside is fine", async () => {
  await withDir(async (dir) => {
    const root = await csvTree(dir, ["sub/secret.png,0"]);
    await symlink(join(dir, "outside"), join(root, "sub"));
    await assertRejects(() => loadCsvDataset({ root }), /row 3: refused path "sub\/secret\.png"/);
    // Inside the root, and the root itself reached through a link: accepted.
    await Deno.remove(join(root, "sub"));
    await symlink(join(root, "a.png"), join(root, "alias.png"));
    await Deno.writeTextFile(join(root, "labels.csv"), "path,label\na.png,1\nalias.png,0\n");
    await symlink(root, join(dir, "root-link"));
    const ds = await loadCsvDataset({ root: join(dir, "root-link") });
    assertEquals(ds.records.length, 2);
    // A row naming a missing file passes here (the cache counts it as a bad image).
    await Deno.writeTextFile(join(root, "labels.csv"), "path,label\na.png,1\nmissing.png,0\n");
    assertEquals((await loadCsvDataset({ root })).records.length, 2);
  });
});

Deno.test("CheXpert: a row whose image is a symlink out of the root is refused", async () => {
  await withDir(async (dir) => {
    const P = "CheXpert-v1.0-small", root = join(dir, P);
    const head = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", ...CHEXPERT_OBSERVATIONS];
    const row = (p: string) =>
      [p, "Female", "61", "Frontal", "PA", ...CHEXPERT_OBSERVATIONS.map(() => "1.0")].join(",");
    const good = `${P}/train/patient00001/study1/view1_frontal.jpg`;
    const bad = `${P}/train/patient00002/study1/view1_frontal.jpg`;
    await put(join(dir, good));
    await put(join(dir, "outside.jpg"));
    await Deno.mkdir(join(dir, P, "train/patient00002/study1"), { recursive: true });
    await symlink(join(dir, "outside.jpg"), join(dir, bad));
    await Deno.writeTextFile(
      join(root, "train.csv"),
      [head.join(","), row(good), row(bad)].join("\n"),
    );
    await assertRejects(
      () => loadChexpert({ root, splits: ["train"] }),
      /train\.csv: row 3: refused path "CheXpert-v1\.0-small\/train\/patient00002.*outside the dataset root/,
    );
  });
});

Deno.test("folder and Shenzhen layouts skip symlinks and count them", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "folder");
    await put(join(root, "0_normal", "n1.png"));
    await put(join(root, "1_sick", "s1.png"));
    await put(join(dir, "outside", "x.png"));
    await symlink(join(dir, "outside", "x.png"), join(root, "1_sick", "s2.png"));
    await symlink(join(dir, "outside"), join(root, "2_linked"));
    const ds = await loadFolder({ root });
    assertEquals(ds.records.length, 2);
    assertEquals(ds.skippedSymlinks, 2);
    assertEquals(ds.tasks, ["1_sick"]);

    const sz = join(dir, "shenzhen");
    await put(join(sz, "CHNCXR_0001_0.png"));
    await symlink(join(dir, "outside", "x.png"), join(sz, "CHNCXR_0002_1.png"));
    const s = await loadShenzhen({ root: sz });
    assertEquals([s.records.length, s.skippedSymlinks], [1, 1]);
  });
});

Deno.test("data/paths.ts and util/fs.ts share one exists/isDir", () => {
  assert(paths.exists === fs.exists && paths.isDir === fs.isDir);
});

const dataDir = await Deno.realPath(await Deno.makeTempDir({ prefix: "data_sandbox_denied_" }));
await put(join(dataDir, "0_a", "x.png"));
await put(join(dataDir, "1_b", "y.png"));

Deno.test({
  name: "a read the sandbox denies is a permission error naming the flag, not 'not found'",
  // As `--allow-read=.` with the data elsewhere.
  permissions: { read: [Deno.cwd()], env: true },
  async fn() {
    for (const spec of [{ root: dataDir }, { root: dataDir, kind: "folder" as const }]) {
      let err: unknown;
      try {
        await loadDataset(spec);
      } catch (e) {
        err = e;
      }
      assert(err instanceof Deno.errors.NotCapable, `${spec.kind}: ${err}`);
      const msg = explain(err)!;
      assert(msg.includes(`--allow-read=${dataDir}`) && !msg.includes("\n"), msg);
    }
    await assertRejects(() => fs.isDir(dataDir), /Requires read access/);
  },
});

Deno.test("cleanup", async () => {
  await Deno.remove(dataDir, { recursive: true });
});
