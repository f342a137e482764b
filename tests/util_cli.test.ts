import { requireWrite, UserError } from "../util/cli.ts";
import { assert, assertRejects } from "./helpers.ts";

Deno.test("a path outside the write sandbox is refused up front, naming the flag", async () => {
  await assertRejects(() => requireWrite("/etc/moco-run"), /may not write \/etc\/moco-run.*--out/s);
  await requireWrite("/tmp/moco-run"); // the tests may write /tmp
  assert(new UserError("x") instanceof Error);
});
