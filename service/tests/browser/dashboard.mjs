// A node's operator dashboard (/dashboard, service/src/rpc/dashboard/) in headless
// Chromium: opens URL, waits until the page has rendered the node's data with at least
// KEYS keys created and a chart of at least two readings, and prints what it shows as one
// JSON line (the cards, the committee, the batches with their phases, the client request
// rows, the chart's series, and every console message, page error or blocked request).
// Writes a screenshot of the whole page to SCREENSHOT when given.
//
//   TORUS_CHROMIUM=/usr/bin/chromium node dashboard.mjs URL KEYS [SCREENSHOT]
import { drive } from "./chromium.mjs";

const [url, keys, screenshot] = process.argv.slice(2);
if (!url || !keys) {
  console.error("usage: node dashboard.mjs URL KEYS [SCREENSHOT]");
  process.exit(2);
}

await drive(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const messages = [];
  page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => messages.push(`page error: ${e}`));
  page.on("requestfailed", (r) => messages.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  const out = { messages };
  try {
    await page.goto(url);
    await page.waitForFunction(
      (want) => {
        const created = Number((document.getElementById("keys-created").textContent || "").replaceAll(",", ""));
        const points = Number(document.getElementById("buffer-chart").getAttribute("data-points") || 0);
        return created >= want && points >= 2 && document.getElementById("batches").children.length > 0;
      },
      Number(keys),
      { timeout: 120_000, polling: 250 },
    );
    const text = (id) => page.textContent(`#${id}`);
    for (const id of ["node-index", "node-address", "epoch", "thresholds", "height", "round", "app-hash", "peers",
      "keys-created", "keys-assigned", "keys-free", "ready", "blamed", "updated", "error"]) {
      out[id] = (await text(id)).trim();
    }
    out.errorHidden = await page.$eval("#error", (e) => e.hidden);
    const rows = (id) =>
      page.$$eval(`#${id} tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    out.committee = await rows("committee");
    out.batches = await rows("batches");
    out.rpc = await rows("rpc");
    out.series = await page.$$eval("#buffer-chart polyline", (ls) =>
      ls.map((l) => ({ series: l.dataset.series, points: l.getAttribute("points").split(" ").filter(Boolean).length })),
    );
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  } catch (e) {
    out.error = String(e && e.stack ? e.stack : e);
  }
  return out;
});
