// Shared helpers of the opt-in browser scripts: launching Debian's chromium through playwright-core and opening
// a ComfyUI page with console capture. Nothing here downloads a browser.
import { existsSync } from "node:fs";

export const DEFAULT_CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, ...DEFAULT_CHROMIUM].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no chromium found (tried ${candidates.join(", ")}); apt-get install -y chromium`);
  return found;
}

export async function loadPlaywright() {
  try {
    return await import("playwright-core");
  } catch (error) {
    throw new Error(`playwright-core is not installed (npm install in the repository root): ${error.message}`);
  }
}

/** Parses `--name value` pairs. */
export function parseArgs(argv, defaults) {
  const args = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    args[argv[i].slice(2).replace(/-/g, "_")] = argv[i + 1];
  }
  return args;
}

/**
 * Opens ComfyUI in a fresh headless page and waits for the app. Returns {browser, page, events}; `events` collects
 * console errors/warnings, uncaught page errors and failed HTTP responses from then on.
 */
export async function openComfy(url, { width = 1600, height = 1000 } = {}) {
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width, height } });
  const events = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") {
      const where = m.location()?.url ? ` (${m.location().url})` : "";
      events.push({ kind: `console.${m.type()}`, text: `${m.text()}${where}` });
    }
  });
  page.on("pageerror", (e) => events.push({ kind: "pageerror", text: `${e.message}\n${e.stack ?? ""}` }));
  page.on("response", (r) => {
    if (r.status() >= 400) events.push({ kind: "http", text: `${r.status()} ${r.request().method()} ${r.url()}` });
  });
  await page.goto(url);
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph && window.app.extensionManager, null, {
    timeout: 90_000,
  });
  return { browser, page, events };
}
