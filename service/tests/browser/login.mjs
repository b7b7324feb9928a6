// The devnet's login page (service/web/login/) in headless Chromium: opens URL, waits until
// the page has read devnet.json, enters EMAIL, clicks "Log in", waits for the end of the
// flow and prints what the page shows as one JSON line (status, address, key index, the
// steps with their times, every request torus.js made). Writes a screenshot of the whole
// page to SCREENSHOT when given.
//
//   TORUS_CHROMIUM=/usr/bin/chromium node login.mjs URL EMAIL [SCREENSHOT]
import { drive } from "./chromium.mjs";

const [url, email, screenshot] = process.argv.slice(2);
if (!url || !email) {
  console.error("usage: node login.mjs URL EMAIL [SCREENSHOT]");
  process.exit(2);
}

await drive(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 }, deviceScaleFactor: 1 });
  const messages = [];
  page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => messages.push(`page error: ${e}`));
  const out = { messages };
  try {
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("ready"), null, { timeout: 30_000 });
    await page.fill("[data-testid=email]", email);
    const t0 = Date.now();
    await page.click("[data-testid=login]");
    await page.waitForFunction(
      () => ["logged in", "failed"].includes(document.getElementById("status").textContent),
      null,
      { timeout: 120_000 },
    );
    out.ms = Date.now() - t0;
    // torus.js goes on once enough nodes answered; give the others a moment to be counted.
    await page
      .waitForFunction(() => {
        const d = document.getElementById("nodes-summary").dataset;
        return d.n && d.answered === d.n;
      }, null, { timeout: 10_000 })
      .catch(() => {});
    const text = (id) => page.textContent(`#${id}`);
    out.status = await text("status");
    out.pageError = await text("error");
    out.address = await text("address");
    out.keyIndex = await text("key-index");
    out.nodesAnswered = Number(await page.getAttribute("#nodes-summary", "data-answered"));
    out.n = Number(await page.getAttribute("#nodes-summary", "data-n"));
    const rows = (selector) =>
      page.$$eval(selector, (trs) =>
        trs.map((tr) => Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.field, td.textContent]))),
      );
    out.steps = await rows("[data-testid=step]");
    out.requests = await rows("[data-testid=request]");
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    if (out.status !== "logged in") out.error = `the page says ${out.status}: ${out.pageError}`;
  } catch (e) {
    out.error = String(e && e.stack ? e.stack : e);
  }
  return out;
});
