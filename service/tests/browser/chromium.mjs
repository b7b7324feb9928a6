// The system's Chromium through playwright-core (which never downloads a browser): the
// binary is $TORUS_CHROMIUM, which service/tests/browser/mod.rs sets to the one it found.
import { chromium } from "playwright-core";

export async function launch() {
  const executablePath = process.env.TORUS_CHROMIUM;
  if (!executablePath) throw new Error("TORUS_CHROMIUM is not set (run the driver from service/tests/browser/mod.rs)");
  return chromium.launch({
    executablePath,
    headless: true,
    // Containers and CI runners often run as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

// Runs `body(browser)`, closes the browser, prints `body`'s result (or the error) as one
// JSON line and exits 1 on an error.
export async function drive(body) {
  let out;
  let browser;
  try {
    browser = await launch();
    out = await body(browser);
  } catch (e) {
    out = { ...(out ?? {}), error: String(e && e.stack ? e.stack : e) };
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  console.log(JSON.stringify(out));
  process.exit(out.error ? 1 : 0);
}
