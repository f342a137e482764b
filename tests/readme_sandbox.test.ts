/**
 * README's "Sandboxing" command lines, run as written: each `deno run` line of the section is
 * parsed, and its task runs in-process under exactly those --allow-read/--allow-write/--allow-env
 * grants (Deno.test permissions), with "." mapped to this repository, the data folder to a
 * generated folder-per-class set of JPEGs and PNGs, and runs/ to a temporary folder. The data
 * workers start fresh under the narrowed grants, as they would in a narrowed `deno run`.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./helpers.ts";
import { runMain } from "../cli/run_main.ts";
import { main as prepareMain } from "../tasks/prepare.ts";
import { encodeJpegGray } from "../data/jpeg.ts";
import { encodePngGray } from "../data/png_encode.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const readme = await Deno.readTextFile(join(REPO, "README.md"));
const section = readme.slice(
  readme.indexOf("### Sandboxing"),
  readme.indexOf("\n## ", readme.indexOf("### Sandboxing")),
);
const LINES = [...section.matchAll(/^deno run (.+)$/gm)].map((m) => m[1].trim().split(/\s+/));

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "readme_sandbox_" }));
const DATA = join(tmp, "data"), WORK = join(tmp, "work");
await Deno.mkdir(WORK);
for (const [cls, v] of [["0_clear", 60], ["1_effusion", 180]] as const) {
  await Deno.mkdir(join(DATA, cls), { recursive: true });
  for (let i = 0; i < 3; i++) {
    const img = { width: 24, height: 20, data: new Uint8Array(480).fill(v + 10 * i) };
    await Deno.writeFile(join(DATA, cls, `p${i}.jpg`), encodeJpegGray(img, 90));
    await Deno.writeFile(join(DATA, cls, `q${i}.png`), encodePngGray(img));
  }
}

/** The --allow-* lists of a command line, with README paths mapped onto the test's folders. */
function grants(args: string[]) {
  const list = (flag: string) =>
    args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1).split(",") ?? [];
  const dataPath = args[args.indexOf("--data") + 1];
  const place = (p: string) =>
    p === "." ? REPO : p === dataPath ? DATA : p === "runs" ? join(WORK, "runs") : p;
  return {
    read: list("--allow-read").map(place),
    write: list("--allow-write").map(place),
    env: list("--allow-env"),
    dataPath,
    script: args.find((a) => a.endsWith(".ts"))!,
  };
}

Deno.test("README's Sandboxing section gives narrowed command lines", () => {
  assert(LINES.length >= 1, "no deno run line");
  for (const args of LINES) {
    const g = grants(args);
    assert(g.read.length && g.write.length && g.env.length, args.join(" "));
    assertEquals(g.script, "tasks/prepare.ts");
  }
});

for (const args of LINES) {
  const g = grants(args);
  Deno.test({
    name: `README: ${args.join(" ")}`,
    // The grants as written ("runs" relative to the working folder, as in the repo).
    permissions: { read: [...g.read, WORK], write: g.write, env: g.env },
    async fn() {
      const printed: unknown[] = [];
      let code = 0;
      const taskArgs = args.slice(args.indexOf(g.script) + 1).map((a) =>
        a === g.dataPath ? DATA : a
      );
      const cwd = Deno.cwd();
      const log = console.log;
      Deno.chdir(WORK); // runs/ of the command line is WORK/runs
      console.log = () => {};
      try {
        await runMain(() => prepareMain(taskArgs), {
          error: (...d) => printed.push(...d),
          exit: (c) => (code = c),
        });
      } finally {
        console.log = log;
        Deno.chdir(cwd);
      }
      assertEquals(printed, [], `${args.join(" ")} failed`);
      assertEquals(code, 0);
      const caches = [...Deno.readDirSync(join(WORK, "runs", "cache"))];
      assertEquals(caches.length, 1);
      const index = JSON.parse(
        await Deno.readTextFile(join(WORK, "runs", "cache", caches[0].name, "index.json")),
      );
      assertEquals([index.count, index.badImages.length], [12, 0]);
    },
  });
}

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
