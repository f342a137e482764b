/**
 * The headless-Chromium report check on a generated report and on a deliberately broken page.
 * Skipped unless /usr/bin/chromium exists and the test may run it and reach 127.0.0.1
 * (deno test ... --allow-run=/usr/bin/chromium --allow-net=127.0.0.1).
 */
import { buildReport, computeResults } from "../eval/mod.ts";
import { checkReport, CHROMIUM } from "../tools/report_check.ts";
import { syntheticCells } from "./eval_fixtures.ts";
import { assert, assertEquals } from "./helpers.ts";

const usable = (() => {
  try {
    Deno.statSync(CHROMIUM);
  } catch {
    return false;
  }
  return Deno.permissions.querySync({ name: "run", command: CHROMIUM }).state === "granted" &&
    Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state === "granted";
})();

Deno.test({
  name: "report:check passes a generated report and fails a broken page",
  ignore: !usable,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const cells = syntheticCells({ fractions: [0.01, 1], draws: 1, nTest: 100 });
      await Deno.writeTextFile(
        `${dir}/report.html`,
        buildReport({ results: computeResults(cells, { replicates: 50 }) }),
      );
      const ok = await checkReport(`${dir}/report.html`);
      assertEquals(ok.problems, []);
      assertEquals(ok.facts!.tables, 1);
      assertEquals(ok.facts!.svgs, 3);
      assert((await Deno.stat(`${dir}/report.png`)).size > 1000, "screenshot written");

      await Deno.writeTextFile(
        `${dir}/bad.html`,
        '<!DOCTYPE html><title>bad</title><img src="http://127.0.0.1:9/x.png" alt="x"><script>nope()</script>',
      );
      const bad = await checkReport(`${dir}/bad.html`, { screenshot: null });
      assert(!bad.ok);
      const all = bad.problems.join("\n");
      for (
        const re of [
          /requests http:\/\/127\.0\.0\.1:9\/x\.png/,
          /uncaught exception: ReferenceError/,
          /no results <table>/,
          /image does not display: x/,
        ]
      ) {
        assert(re.test(all), `${re} not in:\n${all}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
