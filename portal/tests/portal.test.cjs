// The usage portal in a real browser: Debian's headless Chromium driven by playwright-core,
// against a running local stack with demo data (`scripts/portal-test.sh` starts one).
// Environment: MB_PORTAL_BASE (http://127.0.0.1:PORT/prod), MB_SERVICE_TOKEN, MB_ADMIN_TOKEN,
// MB_EXPIRED_TOKEN, MB_SCREENSHOTS (folder for the reviewer's screenshots).
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE = process.env.MB_PORTAL_BASE;
const SHOTS = process.env.MB_SCREENSHOTS || "target/portal-screenshots";
const USER = "demo-user";
let context;
let profile;

async function mint(body, token) {
  const res = await fetch(BASE + "/api/v1/portal/tokens", {
    method: "POST",
    headers: { Authorization: "Bearer " + (token || process.env.MB_SERVICE_TOKEN), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).token;
}

async function apiGet(pathAndQuery, token) {
  const res = await fetch(BASE + "/api/v1/" + pathAndQuery, { headers: { Authorization: "Bearer " + token } });
  return res.json();
}

async function open(token, viewport) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(m.text());
  });
  page.on("pageerror", (e) => page.problems.push(String(e)));
  await page.goto(BASE + "/portal#token=" + token);
  return page;
}

// Every panel of the usage page has its data: cards, chart, breakdowns, endpoints, budget.
async function usageLoaded(page) {
  await page.waitForSelector("#chart canvas");
  await page.waitForFunction(() =>
    ["#c-requests", "#c-balance", "#c-budget"].every((id) => document.querySelector(id).textContent !== "–") &&
    ["#providers", "#models", "#endpoints"].every((id) => document.querySelector(id + " tbody tr"))
  );
}

async function points(page) {
  return Number(await page.getAttribute("#chart", "data-points"));
}

before(async () => {
  assert.ok(BASE, "MB_PORTAL_BASE is not set");
  fs.mkdirSync(SHOTS, { recursive: true });
  profile = fs.mkdtempSync(path.join(os.tmpdir(), "meterbell-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.MB_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (context) await context.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

test("the usage page loads with cards, a drawn chart and breakdowns, one API call per panel", async () => {
  const token = await mint({ user_id: USER, ttl_seconds: 600 });
  const page = await open(token);

  await usageLoaded(page);

  assert.equal(await points(page), 30);
  assert.notEqual(await page.textContent("#c-requests"), "–");
  assert.match(await page.textContent("#c-balance"), /credits/);
  await page.waitForFunction(() => document.querySelector("#c-forecast").textContent !== "–");
  assert.match(await page.textContent("#c-forecast"), /^\$/);
  assert.ok((await page.locator("#providers tbody tr").count()) >= 1);
  assert.ok((await page.locator("#models tbody tr").count()) >= 1);
  // Attribution: the summary's groups by the first declared tag key (project in the demo).
  assert.equal(await page.isVisible("#tags-panel"), true);
  assert.match(await page.textContent("#tags tbody"), /search/);
  const stats = await page.evaluate(() => window.portalStats);
  // summary, time-series, performance, budgets, forecast, unread-count: one per panel.
  assert.ok(stats.calls <= 6, `${stats.calls} API calls`);
  assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");
  const stored = await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length);
  assert.equal(stored, 0, "the token is never stored");
  assert.deepEqual(page.problems, []);
  await page.screenshot({ path: path.join(SHOTS, "usage.png"), fullPage: true });
  await page.close();
});

test("switching the period and the granularity redraws the chart with the API's number of points", async () => {
  const token = await mint({ user_id: USER, ttl_seconds: 600 });
  const page = await open(token);
  await page.waitForSelector("#chart canvas");

  await page.selectOption("#days", "7");
  await page.waitForFunction(() => document.querySelector("#chart").dataset.points === "7");
  await page.selectOption("#days", "90");
  await page.waitForFunction(() => document.querySelector("#chart").dataset.points === "90");
  await page.selectOption("#granularity", "week");
  await page.waitForFunction(() => document.querySelector("#chart").dataset.granularity === "week");

  const tz = await page.inputValue("#tz");
  const expected = await apiGet(`analytics/time-series?days=90&granularity=week&tz=${encodeURIComponent(tz)}`, token);
  assert.equal(await points(page), expected.data_points);
  assert.deepEqual(page.problems, []);
  await page.screenshot({ path: path.join(SHOTS, "usage-90-days-weekly.png"), fullPage: true });
  await page.close();
});

test("a custom period in a time zone draws one point per local day", async () => {
  const token = await mint({ user_id: USER, ttl_seconds: 600 });
  const page = await open(token);
  await page.waitForSelector("#chart canvas");
  const day = (ago) => new Date(Date.now() - ago * 86400000).toISOString().slice(0, 10);

  await page.selectOption("#days", "custom");
  await page.fill("#from", day(10));
  await page.fill("#to", day(1));
  await page.fill("#tz", "Europe/Paris");
  await page.click("#period button[type=submit]");

  await page.waitForFunction(() => document.querySelector("#chart").dataset.points === "10");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("marking a notification read lowers the unread badge", async () => {
  // A user of its own with two unread notifications, so the test can run again and again.
  const user = "portal-badge-" + Date.now();
  for (const title of ["Welcome", "Your invoice is ready"]) {
    const res = await fetch(BASE + "/api/v1/notifications", {
      method: "POST",
      headers: { Authorization: "Bearer " + process.env.MB_ADMIN_TOKEN, "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: user, type: "info", title, message: title + "." }),
    });
    assert.equal(res.status, 201, await res.text());
  }
  const token = await mint({ user_id: user, ttl_seconds: 600 });
  const page = await open(token);
  await page.waitForSelector("#badge:not([hidden])");
  const before = Number(await page.textContent("#badge"));
  assert.equal(before, 2);

  await page.focus('[data-view="inbox"]');
  await page.keyboard.press("Enter"); // the tabs work from the keyboard
  await page.waitForSelector("#notifications li.unread button");
  await page.screenshot({ path: path.join(SHOTS, "inbox.png"), fullPage: true });
  await page.locator("#notifications li.unread").first().getByRole("button", { name: /^Mark/ }).click();

  await page.waitForFunction((n) => {
    const b = document.querySelector("#badge");
    return b.hidden ? n - 1 === 0 : Number(b.textContent) === n - 1;
  }, before);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("the export buttons download the period's rows as a file", async () => {
  const token = await mint({ user_id: USER, ttl_seconds: 600 });
  const page = await open(token);
  await page.waitForSelector("#chart canvas");
  await page.selectOption("#days", "7");

  // Pages of 40 rows instead of 5,000, so the download must follow the cursor to get them all.
  await page.route(/analytics\/export\/csv\?days=/, (route) => route.continue({ url: route.request().url() + "&limit=40" }));
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);

  assert.match(download.suggestedFilename(), /\.csv$/);
  const file = path.join(SHOTS, download.suggestedFilename());
  await download.saveAs(file);
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  assert.match(lines[0], /Date,Time,Provider,Model,Credits,Cost \(USD\),Description/);
  const tz = encodeURIComponent(await page.inputValue("#tz"));
  const whole = await fetch(BASE + `/api/v1/analytics/export/csv?days=7&tz=${tz}`, { headers: { Authorization: "Bearer " + token } });
  const expected = (await whole.text()).trim().split("\n");
  assert.ok(expected.length > 41, `${expected.length} lines: too few to need several pages`);
  assert.equal(lines.length, expected.length, "every row once, one header");
  assert.equal(lines.filter((l) => l.startsWith("Date,")).length, 1);

  const [json] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  assert.match(json.suggestedFilename(), /\.json$/);
  await page.close();
});

test("an expired token shows a clear message and nothing else", async () => {
  const page = await open(process.env.MB_EXPIRED_TOKEN);

  await page.waitForSelector("#notice:not([hidden])");

  assert.match(await page.textContent("#notice"), /expired/i);
  assert.equal(await page.isVisible("main"), false);
  await page.screenshot({ path: path.join(SHOTS, "expired.png") });
  await page.close();
});

test("settings show preferences, webhook endpoints and budgets; a new endpoint's secret is shown once", async () => {
  // A user of its own: endpoints are limited to ten per user.
  const token = await mint({ user_id: "portal-settings-" + Date.now(), ttl_seconds: 600 });
  const page = await open(token);

  await page.click('[data-view="settings"]');
  await page.waitForSelector("#switches tbody tr");
  // Reports, zone, digest and quiet hours go out with the preferences and come back from them.
  await page.fill("#p-tz", "Asia/Kolkata");
  await page.check("#rep-weekly");
  await page.selectOption("#p-digest", "hourly");
  await page.fill("#quiet-start", "22:00");
  await page.fill("#quiet-end", "07:00");
  await page.click("#prefs button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#notice")?.textContent.includes("saved"));
  const again = await open(token);
  await again.click('[data-view="settings"]');
  await again.waitForFunction(() => document.querySelector("#p-tz").value === "Asia/Kolkata");
  assert.equal(await again.isChecked("#rep-weekly"), true);
  assert.equal(await again.inputValue("#p-digest"), "hourly");
  assert.equal(await again.inputValue("#quiet-start"), "22:00");
  await again.close();
  await page.fill("#wh-url", "https://example.com/portal-hook");
  await page.click("#add-webhook button[type=submit]");

  await page.waitForSelector("#wh-secret:not([hidden])");
  assert.match(await page.textContent("#wh-secret"), /whsec_/);
  await page.screenshot({ path: path.join(SHOTS, "settings.png"), fullPage: true });
  await page.close();
});

test("an admin token adds the admin view with totals and top users", async () => {
  const token = await mint({ user_id: "demo-admin", admin: true, ttl_seconds: 600 }, process.env.MB_ADMIN_TOKEN);
  const page = await open(token);

  await page.click('[data-view="admin"]');
  await page.waitForSelector("#top-users tbody tr");

  assert.ok((await page.locator("#top-users tbody tr").count()) >= 1);
  await page.screenshot({ path: path.join(SHOTS, "admin.png"), fullPage: true });
  await page.close();
});

test("at phone width nothing overflows sideways", async () => {
  const token = await mint({ user_id: USER, ttl_seconds: 600 });
  const page = await open(token, { width: 390, height: 844 });
  await usageLoaded(page);

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

  assert.ok(overflow <= 1, `${overflow}px wider than the screen`);
  await page.screenshot({ path: path.join(SHOTS, "usage-phone.png"), fullPage: true });
  await page.close();
});
