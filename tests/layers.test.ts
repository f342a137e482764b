/**
 * The layering the README states: util < kernels < model < data < eval < train < cli < tasks,
 * imports pointing down only; tools/ and bench/ may import any layer but tasks/, so only
 * tests (which may import anything) import tasks/.
 */
import { dirname, join, relative, resolve } from "node:path";
import { assertEquals } from "./helpers.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const LAYERS = ["util", "kernels", "model", "data", "eval", "train", "cli", "tasks"];
const TOP = ["tools", "bench"];

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* tsFiles(p);
    else if (e.isFile && e.name.endsWith(".ts")) yield p;
  }
}

/** The top-level folders that `file`'s relative imports and re-exports lead to. */
export function importedFolders(file: string, source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of source.matchAll(re)) {
    out.push(relative(ROOT, resolve(dirname(file), m[1])).split("/")[0]);
  }
  return out;
}

/** Every import that breaks the layering, as "from → to". */
export async function layerViolations(): Promise<string[]> {
  const bad: string[] = [];
  for (const folder of [...LAYERS, ...TOP]) {
    for await (const file of tsFiles(join(ROOT, folder))) {
      const rank = LAYERS.indexOf(folder);
      for (const to of importedFolders(file, await Deno.readTextFile(file))) {
        const toRank = LAYERS.indexOf(to);
        const ok = to === folder ||
          (rank >= 0 ? toRank >= 0 && toRank < rank : to !== "tasks" && toRank >= 0);
        if (!ok) bad.push(`${relative(ROOT, file)} → ${to}/`);
      }
    }
  }
  return bad;
}

Deno.test("layers: imports point down only, and only tests import tasks/", async () => {
  assertEquals(await layerViolations(), []);
});

Deno.test("layers: the check sees an upward import and a tool importing tasks/", () => {
  const up = importedFolders(join(ROOT, "data/x.ts"), 'import { a } from "../train/moco.ts";');
  assertEquals(up, ["train"]);
  const dyn = importedFolders(join(ROOT, "tools/x.ts"), 'await import("../tasks/pretrain.ts");');
  assertEquals(dyn, ["tasks"]);
  const reexport = importedFolders(
    join(ROOT, "data/synth/x.ts"),
    'export * from "../../eval/a.ts";',
  );
  assertEquals(reexport, ["eval"]);
});
