/**
 * deno task report:check <report.html> [--screenshot out.png]
 *
 * Opens a generated report in headless Chromium (driven over the DevTools protocol) and fails
 * unless it displays cleanly: no console errors, no uncaught exceptions, no failed loads, no
 * request leaving the file (everything must be inline), no broken images, and at least one
 * results table and SVG plot. Writes a full-page screenshot next to the report (report.png).
 */
import { dirname, join, resolve } from "node:path";
import { describeRange, inRange, type NumSpecs } from "../cli/flags.ts";
import { parseArgs } from "node:util";

export const CHROMIUM = "/usr/bin/chromium";

const USAGE = `Usage: deno task report:check <report.html> [--screenshot out.png] [--width 1280]
  Renders the report in headless Chromium and checks that it displays without errors.
  Writes a full-page screenshot (default: next to the report, with .png instead of .html).
  Needs ${CHROMIUM} (Debian: apt-get install -y chromium).`;

export interface PageFacts {
  title: string;
  tables: number;
  svgs: number;
  images: number;
  brokenImages: string[];
  height: number;
  overflowX: boolean;
}

export interface ReportCheckResult {
  ok: boolean;
  problems: string[];
  facts: PageFacts | null;
  screenshot: string | null;
}

/** The fields of the DevTools events this check listens to. */
interface EventParams {
  type?: string;
  args?: { value?: unknown; description?: string }[];
  exceptionDetails?: { text?: string; exception?: { description?: string } };
  entry?: { level?: string; source?: string; text?: string };
  request?: { url?: string };
  errorText?: string;
  requestId?: string;
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

/** A minimal DevTools-protocol client over one WebSocket (flattened sessions). */
class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<
    number,
    { ok: (r: Record<string, unknown>) => void; fail: (e: Error) => void }
  >();
  #listeners: ((m: CdpMessage) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const m: CdpMessage = JSON.parse(String(ev.data));
      if (m.id !== undefined) {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (m.error) p?.fail(new Error(`DevTools: ${m.error.message}`));
        else p?.ok(m.result ?? {});
      } else {
        for (const l of this.#listeners) l(m);
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.fail(new Error("DevTools connection closed"));
      this.#pending.clear();
    };
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ok(new Cdp(ws));
      ws.onerror = () => fail(new Error(`cannot connect to Chromium DevTools at ${url}`));
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string) {
    const id = this.#next++;
    return new Promise<Record<string, unknown>>((ok, fail) => {
      this.#pending.set(id, { ok, fail });
      this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  on(listener: (m: CdpMessage) => void): void {
    this.#listeners.push(listener);
  }

  close(): void {
    this.#ws.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`timed out after ${ms / 1000} s ${what}`)), ms);
    }),
  ]);
}

async function waitForDevToolsUrl(profile: string, child: Deno.ChildProcess, ms: number) {
  const file = join(profile, "DevToolsActivePort");
  const deadline = Date.now() + ms;
  let exited = false;
  child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error("Chromium exited before opening its DevTools port");
    try {
      const [port, path] = (await Deno.readTextFile(file)).trim().split("\n");
      if (port && path) return `ws://127.0.0.1:${port}${path}`;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Chromium did not open its DevTools port within ${ms / 1000} s`);
}

const FACTS_JS = `JSON.stringify({
  title: document.title,
  tables: document.querySelectorAll("table").length,
  svgs: document.querySelectorAll("svg").length,
  images: document.images.length,
  brokenImages: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0)
    .map((i) => i.alt || i.src.slice(0, 40)),
  height: Math.ceil(document.documentElement.scrollHeight),
  overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
})`;

/** Renders `reportPath` in headless Chromium, collects problems and writes a screenshot. */
export async function checkReport(
  reportPath: string,
  { screenshot, width = 1280, timeoutMs = 60_000, chromium = CHROMIUM }: {
    screenshot?: string | null;
    width?: number;
    timeoutMs?: number;
    chromium?: string;
  } = {},
): Promise<ReportCheckResult> {
  const abs = resolve(reportPath);
  const st = await Deno.stat(abs).catch(() => null);
  if (!st?.isFile) throw new Error(`${reportPath} does not exist; run deno task evaluate first`);
  const shotPath = screenshot === null
    ? null
    : screenshot ?? join(dirname(abs), abs.replace(/^.*\//, "").replace(/\.html?$/, "") + ".png");
  const profile = await Deno.makeTempDir({ prefix: "report-check-" });
  const child = new Deno.Command(chromium, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const problems: string[] = [];
  let facts: PageFacts | null = null;
  let cdp: Cdp | null = null;
  try {
    cdp = await Cdp.connect(await waitForDevToolsUrl(profile, child, 30_000));
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const sid = sessionId as string;
    let loaded: () => void = () => {};
    const loadedP = new Promise<void>((r) => (loaded = r));
    cdp.on((m) => {
      if (m.sessionId !== sid || !m.params) return;
      const p = m.params as EventParams;
      switch (m.method) {
        case "Page.loadEventFired":
          loaded();
          break;
        case "Runtime.consoleAPICalled":
          if (p.type === "error" || p.type === "assert" || p.type === "warning") {
            const text = (p.args ?? []).map((a) => a.value ?? a.description).join(" ");
            problems.push(`console.${p.type}: ${text}`);
          }
          break;
        case "Runtime.exceptionThrown":
          problems.push(
            `uncaught exception: ${
              p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text
            }`,
          );
          break;
        case "Log.entryAdded":
          if (p.entry?.level === "error" || p.entry?.level === "warning") {
            problems.push(`${p.entry.level} (${p.entry.source}): ${p.entry.text}`);
          }
          break;
        case "Network.requestWillBeSent": {
          const url: string = p.request?.url ?? "";
          if (!url.startsWith("data:") && url !== `file://${abs}` && !url.startsWith("about:")) {
            problems.push(`the report requests ${url}; everything must be inline`);
          }
          break;
        }
        case "Network.loadingFailed":
          problems.push(`failed load (${p.errorText}) of request ${p.requestId}`);
          break;
      }
    });
    for (const domain of ["Page", "Runtime", "Log", "Network"]) {
      await cdp.send(`${domain}.enable`, {}, sid);
    }
    await cdp.send("Emulation.setDeviceMetricsOverride", {
      width,
      height: 900,
      deviceScaleFactor: 1,
      mobile: false,
    }, sid);
    await cdp.send("Page.navigate", { url: `file://${abs}` }, sid);
    await withTimeout(loadedP, timeoutMs, `loading ${reportPath}`);
    const ev = await cdp.send(
      "Runtime.evaluate",
      { expression: FACTS_JS, returnByValue: true },
      sid,
    );
    facts = JSON.parse((ev.result as { value: string }).value) as PageFacts;
    if (facts.tables === 0) problems.push("no results <table> in the page");
    if (facts.svgs === 0) problems.push("no SVG plot in the page");
    for (const b of facts.brokenImages) problems.push(`image does not display: ${b}`);
    if (facts.overflowX) problems.push(`the page is wider than ${width} px (horizontal scrolling)`);
    if (shotPath) {
      await cdp.send("Emulation.setDeviceMetricsOverride", {
        width,
        height: Math.min(facts.height, 16000),
        deviceScaleFactor: 1,
        mobile: false,
      }, sid);
      const shot = await cdp.send("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
      }, sid);
      const bytes = Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0));
      await Deno.writeFile(shotPath, bytes);
    }
    await cdp.send("Browser.close").catch(() => {});
  } finally {
    cdp?.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
  return { ok: problems.length === 0, problems, facts, screenshot: shotPath };
}

/** Ranges of the numeric flags. */
export const REPORT_CHECK_NUMERIC = {
  width: { min: 320, max: 8192, int: true },
} satisfies NumSpecs;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        screenshot: { type: "string" },
        width: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`error: give one report.html\n\n${USAGE}`);
    return 2;
  }
  const width = Number(parsed.values.width ?? 1280);
  if (!(parsed.values.width?.trim() !== "" && inRange(width, REPORT_CHECK_NUMERIC.width))) {
    console.error(
      `error: --width must be ${
        describeRange(REPORT_CHECK_NUMERIC.width)
      }, got "${parsed.values.width}"`,
    );
    return 2;
  }
  if (!(await Deno.stat(CHROMIUM).catch(() => null))) {
    console.error(`error: ${CHROMIUM} not found; install it with: apt-get install -y chromium`);
    return 1;
  }
  try {
    const r = await checkReport(parsed.positionals[0], {
      screenshot: parsed.values.screenshot,
      width,
    });
    const f = r.facts;
    if (f) {
      console.log(
        `${parsed.positionals[0]}: "${f.title}", ${f.tables} table(s), ${f.svgs} SVG plot(s), ` +
          `${f.images} image(s), page height ${f.height} px`,
      );
    }
    if (r.screenshot) console.log(`screenshot: ${r.screenshot}`);
    for (const p of r.problems) console.error(`problem: ${p}`);
    console.log(r.ok ? "report displays without errors" : `${r.problems.length} problem(s)`);
    return r.ok ? 0 : 1;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
