// Portal figures for `make bench`: time to the first drawn chart in headless Chromium, API calls
// made to draw the usage page, and the unread-count poll answered 200 against 304.
// Environment as for the browser tests: MB_PORTAL_BASE, MB_SERVICE_TOKEN; BENCH_PORTAL_LOADS.
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE = process.env.MB_PORTAL_BASE;
const LOADS = Number(process.env.BENCH_PORTAL_LOADS || 7);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function mint() {
  const res = await fetch(BASE + "/api/v1/portal/tokens", {
    method: "POST",
    headers: { Authorization: "Bearer " + process.env.MB_SERVICE_TOKEN, "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: "demo-user", ttl_seconds: 900 }),
  });
  return (await res.json()).token;
}

async function pageFigures(token) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "meterbell-bench-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.MB_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const firsts = [];
  let calls = 0;
  let apiRequests = 0;
  for (let i = 0; i < LOADS; i++) {
    const page = await context.newPage();
    let seen = 0;
    page.on("request", (r) => {
      if (r.url().includes("/api/v1/")) seen += 1;
    });
    await page.goto(BASE + "/portal#token=" + token);
    await page.waitForFunction(() => window.portalStats && window.portalStats.firstChartAt !== null && document.querySelector("#endpoints tbody tr") && ["#c-requests", "#c-budget"].every((id) => document.querySelector(id).textContent !== "–"));
    const stats = await page.evaluate(() => window.portalStats);
    firsts.push(stats.firstChartAt);
    calls = stats.calls;
    apiRequests = seen;
    await page.close();
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  return { firsts, calls, apiRequests };
}

async function poll(token, etag, n) {
  const times = [];
  let status = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(BASE + "/api/v1/notifications/unread-count", {
      headers: Object.assign({ Authorization: "Bearer " + token }, etag ? { "If-None-Match": etag } : {}),
    });
    const body = await res.arrayBuffer();
    times.push(performance.now() - t0);
    status = res.status;
    bytes = body.byteLength;
  }
  return { status, bytes, p50: median(times) };
}

(async () => {
  const token = await mint();
  const { firsts, calls, apiRequests } = await pageFigures(token);
  console.log(`time to the first drawn chart (navigation start → uPlot drawn, 30 days, ${firsts.length} loads): p50 ${median(firsts).toFixed(0)} ms, min ${Math.min(...firsts).toFixed(0)} ms, max ${Math.max(...firsts).toFixed(0)} ms`);
  console.log(`API calls to draw the usage page: ${calls} (summary: cards, providers, models; time-series: chart; performance: endpoints; budgets: budget card; unread-count: badge); requests seen by the browser: ${apiRequests}`);
  const first = await fetch(BASE + "/api/v1/notifications/unread-count", { headers: { Authorization: "Bearer " + token } });
  const etag = first.headers.get("etag");
  const full = await poll(token, null, 200);
  const cached = await poll(token, etag, 200);
  console.log("unread-count poll, 200 requests each (release build behind the local runner):");
  console.log(`  without If-None-Match: ${full.status}, body ${full.bytes} bytes, p50 ${full.p50.toFixed(2)} ms`);
  console.log(`  with a matching If-None-Match: ${cached.status}, body ${cached.bytes} bytes, p50 ${cached.p50.toFixed(2)} ms`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
