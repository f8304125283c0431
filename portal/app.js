// Meterbell usage portal. Plain script, no build step: it reads its token from the URL fragment
// (#token=...), keeps it in memory only (never localStorage, cookies or the history), and calls
// the API of the stage that served it. One API call per panel: summary (cards, providers,
// models), time-series (chart), performance (endpoints), budgets (budget card), forecast
// (forecast card).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const API = "api/v1/"; // relative: the page lives at /{stage}/portal

  // ------------------------------------------------------------------ token
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  // The fragment leaves the address bar at once, so it is not bookmarked or shared by accident.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  const claims = decodeClaims(token);

  function decodeClaims(t) {
    try {
      const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (_) {
      return null;
    }
  }

  // ------------------------------------------------------------------ messages
  let stopped = false;
  function notice(text, kind) {
    const el = $("notice");
    el.textContent = text;
    el.className = "notice " + (kind || "error");
    el.hidden = !text;
  }
  function expired() {
    stopped = true;
    notice("Your portal link has expired or is no longer valid. Go back to the application that sent you here and open the portal again.", "error");
    document.body.classList.add("expired");
  }

  // ------------------------------------------------------------------ API
  // Counts every request, so tests and the benchmark can check "one call per panel".
  window.portalStats = { calls: 0, firstChartAt: null };

  async function api(method, path, body, extra) {
    if (stopped) throw new Error("stopped");
    window.portalStats.calls += 1;
    const headers = Object.assign({ Authorization: "Bearer " + token }, extra || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    if (res.status === 401) {
      expired();
      throw new Error("expired");
    }
    if (res.status === 304 || res.status === 204) return { status: res.status, headers: res.headers };
    const ct = res.headers.get("content-type") || "";
    const data = ct.includes("json") ? await res.json() : await res.blob();
    if (!res.ok) {
      const message = (data && data.error && data.error.message) || "request failed (" + res.status + ")";
      notice(message, "error");
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return { status: res.status, headers: res.headers, data };
  }

  // ------------------------------------------------------------------ formatting
  const nf = new Intl.NumberFormat();
  const usd = (v) => "$" + Number(v).toFixed(v !== 0 && Math.abs(v) < 0.01 ? 4 : 2);
  const pct = (v) => (v * 100).toFixed(1) + "%";
  const ms = (v) => (v === null || v === undefined ? "–" : nf.format(Math.round(v)));
  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }
  function fillTable(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      cells.forEach((c) => cell(tr, c));
      body.appendChild(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      cell(tr, "Nothing in this period");
      tr.firstChild.colSpan = $(id).tHead.rows[0].cells.length;
      body.appendChild(tr);
    }
  }

  // ------------------------------------------------------------------ period
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  $("tz").value = zone;
  for (const z of ["UTC", zone, "Europe/London", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"]) {
    const o = document.createElement("option");
    o.value = z;
    $("zones").appendChild(o);
  }

  function periodQuery() {
    const q = new URLSearchParams();
    const days = $("days").value;
    if (days === "custom") {
      const from = $("from").value;
      const to = $("to").value;
      if (!from || !to) throw new Error("choose both dates of the custom period");
      const zoneName = $("tz").value.trim() || "UTC";
      const end = new Date(to + "T00:00:00Z");
      end.setUTCDate(end.getUTCDate() + 1); // the To day is included
      q.set("start", localMidnight(from, zoneName));
      q.set("end", localMidnight(end.toISOString().slice(0, 10), zoneName));
    } else {
      q.set("days", days);
    }
    q.set("tz", $("tz").value.trim() || "UTC");
    return q;
  }

  // Midnight of `day` (YYYY-MM-DD) in time zone `zoneName`, as an RFC 3339 UTC instant.
  function localMidnight(day, zoneName) {
    const guess = Date.parse(day + "T00:00:00Z");
    const offset = (at) => {
      const parts = {};
      for (const p of new Intl.DateTimeFormat("en-US", { timeZone: zoneName, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(at)) parts[p.type] = p.value;
      return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second) - at;
    };
    let at = guess - offset(guess);
    at = guess - offset(at); // again, in case midnight is on the other side of a DST change
    return new Date(at).toISOString().replace(".000Z", "Z");
  }

  // ------------------------------------------------------------------ usage
  let series = null;
  let chart = null;

  async function loadUsage() {
    let q;
    try {
      q = periodQuery();
    } catch (e) {
      notice(e.message, "error");
      return;
    }
    notice("");
    await Promise.allSettled([loadSummary(q), loadSeries(q), loadPerformance(q), loadForecast()]);
  }

  // The deployment's attributed tag keys, written into the page by the server: the summary
  // groups by the chosen one, so attribution costs no extra call.
  const tagKeys = (document.querySelector('meta[name="tag-keys"]')?.content || "").split(",").filter(Boolean);

  async function loadSummary(q) {
    const query = new URLSearchParams(q);
    if (tagKeys.length) query.set("group_by", "tag:" + ($("tag-key").value || tagKeys[0]));
    const { data } = await api("GET", "analytics/summary?" + query);
    if (data.groups) {
      fillTable("tags", data.groups.map((g) => [g.key, nf.format(g.requests), usd(g.cost_usd), g.cost_percentage.toFixed(1) + "%"]));
    }
    const u = data.usage;
    $("c-requests").textContent = nf.format(u.total_requests);
    $("c-cost").textContent = usd(u.total_cost_usd);
    $("c-success").textContent = u.total_requests ? pct(u.successful_requests / u.total_requests) : "–";
    $("c-balance").textContent = nf.format(data.credit_balance) + " credits";
    const byCost = (m) => Object.entries(m).sort((a, b) => b[1].cost_usd - a[1].cost_usd || b[1].requests - a[1].requests);
    const rows = (m) => byCost(m).map(([name, c]) => [name, nf.format(c.requests), nf.format(c.credits), usd(c.cost_usd)]);
    fillTable("providers", rows(data.by_provider));
    fillTable("models", rows(data.by_model));
  }

  async function loadSeries(q) {
    const query = new URLSearchParams(q);
    query.set("granularity", $("granularity").value);
    const { data } = await api("GET", "analytics/time-series?" + query);
    series = data;
    drawChart();
  }

  function drawChart() {
    if (!series || !window.uPlot) return;
    const metric = $("metric").value;
    const xs = series.data.map((p) => Date.parse(p.timestamp.length === 7 ? p.timestamp + "-01" : p.timestamp) / 1000);
    const ys = series.data.map((p) => p[metric]);
    const el = $("chart");
    const width = Math.max(280, el.clientWidth - 8);
    const label = $("metric").selectedOptions[0].textContent;
    const opts = {
      width,
      height: 260,
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [{}, { label, stroke: "#2563eb", fill: "rgba(37,99,235,0.12)", width: 2, points: { show: xs.length <= 60 } }],
      legend: { show: true },
    };
    if (chart) chart.destroy();
    chart = new uPlot(opts, [xs, ys], el);
    el.dataset.points = String(xs.length);
    el.dataset.granularity = series.granularity;
    el.setAttribute("aria-label", label + " per " + series.granularity + ", " + xs.length + " points");
    if (window.portalStats.firstChartAt === null) window.portalStats.firstChartAt = performance.now();
  }

  async function loadPerformance(q) {
    const { data } = await api("GET", "analytics/performance?" + q);
    fillTable(
      "endpoints",
      data.by_endpoint.map((e) => [e.endpoint, nf.format(e.requests), pct(e.error_rate), ms(e.latency_ms.p50), ms(e.latency_ms.p95), ms(e.latency_ms.p99)])
    );
  }

  // The forecast card: this month's projected cost with its 80% band, in the chosen zone.
  async function loadForecast() {
    const tz = $("tz").value.trim() || "UTC";
    const { data } = await api("GET", "analytics/forecast?metric=cost&tz=" + encodeURIComponent(tz));
    const c = data.cost_usd;
    $("c-forecast").textContent = usd(c.projected);
    $("c-forecast-detail").textContent = "80%: " + usd(c.low) + " to " + usd(c.high) + (data.confidence === "low" ? " (little history)" : "");
  }

  async function loadRules() {
    const { data } = await api("GET", "alerts/rules");
    const list = $("rules");
    list.replaceChildren();
    for (const r of data.rules) {
      const limit = r.threshold_ms !== undefined ? r.threshold_ms + " ms" : r.threshold_percent + "%";
      const where = r.endpoint || r.model || r.provider || "overall";
      list.appendChild(item(r.id + ": " + r.kind.replace("_", " ") + " " + limit + " over " + r.window_hours + " h, " + where + " (" + r.status + ")", [["Delete", () => deleteRule(r.id)]], r.status === "breached" ? "warn" : ""));
    }
  }

  async function saveRule(ev) {
    ev.preventDefault();
    const kind = $("r-kind").value;
    const body = { kind, window_hours: Number($("r-window").value) };
    if (kind === "latency_p95") body.threshold_ms = Math.round(Number($("r-threshold").value));
    else body.threshold_percent = Number($("r-threshold").value);
    const endpoint = $("r-endpoint").value.trim();
    if (endpoint) body.endpoint = endpoint;
    try {
      await api("PUT", "alerts/rules/" + encodeURIComponent($("r-id").value.trim()), body);
      $("add-rule").reset();
      await loadRules();
    } catch (_) {}
  }

  async function deleteRule(id) {
    await api("DELETE", "alerts/rules/" + encodeURIComponent(id));
    await loadRules();
  }

  async function loadBudgets() {
    const { data } = await api("GET", "budgets");
    const list = $("budgets");
    list.replaceChildren();
    let worst = null;
    for (const b of data.budgets) {
      if (!worst || b.current.percent > worst.current.percent) worst = b;
      const amount = b.amount_usd !== undefined ? usd(b.amount_usd) : nf.format(b.amount_credits) + " credits";
      const spent = b.current.spent_usd !== undefined ? usd(b.current.spent_usd) : nf.format(b.current.spent_credits) + " credits";
      list.appendChild(item(b.id + ": " + spent + " of " + amount + " this " + b.period + " (" + b.current.percent + "%)", [["Delete", () => deleteBudget(b.id)]]));
    }
    if (worst) {
      $("c-budget").textContent = worst.current.percent + "%";
      $("c-budget-detail").textContent = worst.id + (worst.current.percent >= 100 ? " exceeded" : " used");
      $("c-budget").className = worst.current.percent >= 100 ? "bad" : worst.current.percent >= 80 ? "warn" : "";
    } else {
      $("c-budget").textContent = "none";
      $("c-budget-detail").textContent = "";
    }
  }

  // Exports come in pages of up to 5,000 rows; the download follows the cursor to the end
  // (at most MAX_PAGES pages) and joins them into one file.
  const MAX_PAGES = 50;
  async function download(kind) {
    let q;
    try {
      q = periodQuery();
    } catch (e) {
      notice(e.message, "error");
      return;
    }
    const first = await api("GET", "analytics/export/" + kind + "?" + q);
    const disposition = first.headers.get("content-disposition") || "";
    const m = /filename="([^"]+)"/.exec(disposition);
    let csv = kind === "csv" ? await first.data.text() : null;
    const json = kind === "json" ? first.data : null;
    let cursor = first.headers.get("x-next-cursor");
    for (let pages = 1; cursor && pages < MAX_PAGES; pages++) {
      const next = await api("GET", "analytics/export/" + kind + "?cursor=" + encodeURIComponent(cursor));
      if (kind === "csv") {
        const text = await next.data.text();
        csv += text.slice(text.indexOf("\n") + 1); // every page repeats the header
      } else {
        json.rows.push(...next.data.rows);
      }
      cursor = next.headers.get("x-next-cursor");
    }
    if (json) json.next_cursor = null;
    const blob = new Blob([csv !== null ? csv : JSON.stringify(json, null, 1)], { type: kind === "csv" ? "text/csv" : "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = m ? m[1] : "usage." + kind;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    if (cursor) notice("The file holds the first " + MAX_PAGES * 5000 + " rows; narrow the period for the rest.", "info");
  }

  // ------------------------------------------------------------------ inbox
  let nextCursor = null;
  let etag = null;

  function item(text, actions, extraClass) {
    const li = document.createElement("li");
    if (extraClass) li.className = extraClass;
    const span = document.createElement("span");
    span.textContent = text;
    li.appendChild(span);
    for (const [label, fn] of actions) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", fn);
      li.appendChild(b);
    }
    return li;
  }

  async function loadInbox(more) {
    const q = new URLSearchParams({ limit: "20" });
    if ($("f-read").value) q.set("is_read", $("f-read").value);
    if ($("f-type").value) q.set("type", $("f-type").value);
    if (more && nextCursor) q.set("cursor", nextCursor);
    const { data } = await api("GET", "notifications?" + q);
    const list = $("notifications");
    if (!more) list.replaceChildren();
    for (const n of data.notifications) {
      const li = document.createElement("li");
      li.className = "note " + n.type + (n.is_read ? " read" : " unread");
      li.dataset.id = n.id;
      const h = document.createElement("strong");
      h.textContent = n.title;
      const p = document.createElement("p");
      p.textContent = n.message;
      const t = document.createElement("time");
      t.dateTime = n.created_at;
      t.textContent = new Date(n.created_at).toLocaleString() + " · " + n.type;
      const actions = document.createElement("div");
      actions.className = "actions";
      if (!n.is_read) actions.appendChild(button("Mark read", () => markRead(n.id), "Mark “" + n.title + "” read"));
      actions.appendChild(button("Delete", () => removeNotification(n.id), "Delete “" + n.title + "”"));
      li.append(h, p, t, actions);
      list.appendChild(li);
    }
    if (!list.children.length) list.appendChild(item("No notifications", []));
    nextCursor = data.next_cursor;
    $("more").hidden = !nextCursor;
  }

  function button(text, fn, label) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", fn);
    return b;
  }

  async function markRead(id) {
    await api("PUT", "notifications/" + encodeURIComponent(id) + "/read");
    await Promise.all([loadInbox(false), pollUnread()]);
  }
  async function removeNotification(id) {
    await api("DELETE", "notifications/" + encodeURIComponent(id));
    await Promise.all([loadInbox(false), pollUnread()]);
  }
  async function readAll() {
    await api("PUT", "notifications/read-all");
    await Promise.all([loadInbox(false), pollUnread()]);
  }

  // Cheap polling: the count comes back as 304 with no body while it is unchanged.
  async function pollUnread() {
    const res = await api("GET", "notifications/unread-count", undefined, etag ? { "If-None-Match": etag } : {});
    if (res.status === 304) return;
    etag = res.headers.get("etag");
    const n = res.data.unread_count;
    const badge = $("badge");
    badge.textContent = String(n);
    badge.hidden = n === 0;
    badge.setAttribute("aria-label", n + " unread notifications");
  }

  // ------------------------------------------------------------------ settings
  const TYPES = ["info", "warning", "error", "success"];
  async function loadPreferences() {
    const { data } = await api("GET", "notifications/preferences");
    $("email").value = data.email_address || "";
    $("threshold").value = data.low_credit_threshold === null ? "" : data.low_credit_threshold;
    const body = $("switches").tBodies[0];
    body.replaceChildren();
    for (const t of TYPES) {
      const tr = document.createElement("tr");
      cell(tr, t);
      for (const ch of ["email", "webhook"]) {
        const td = document.createElement("td");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = "sw-" + ch + "-" + t;
        box.checked = data.channels[ch][t];
        box.setAttribute("aria-label", ch + " for " + t);
        td.appendChild(box);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    $("p-tz").value = data.tz || "";
    for (const r of ["daily", "weekly", "monthly"]) $("rep-" + r).checked = data.reports[r];
    $("p-digest").value = data.digest.email;
    $("quiet-start").value = data.quiet_hours ? data.quiet_hours.start : "";
    $("quiet-end").value = data.quiet_hours ? data.quiet_hours.end : "";
  }

  async function savePreferences(ev) {
    ev.preventDefault();
    const channels = { email: {}, webhook: {} };
    for (const ch of ["email", "webhook"]) for (const t of TYPES) channels[ch][t] = $("sw-" + ch + "-" + t).checked;
    const threshold = $("threshold").value.trim();
    const start = $("quiet-start").value;
    const end = $("quiet-end").value;
    const body = {
      email_address: $("email").value.trim() || null,
      low_credit_threshold: threshold === "" ? null : Number(threshold),
      channels,
      tz: $("p-tz").value.trim() || null,
      reports: { daily: $("rep-daily").checked, weekly: $("rep-weekly").checked, monthly: $("rep-monthly").checked },
      digest: { email: $("p-digest").value },
      // Both times or neither: one alone is sent as given, and the API names what is missing.
      quiet_hours: start || end ? { start, end } : null,
    };
    try {
      await api("PUT", "notifications/preferences", body);
      notice("Preferences saved.", "info");
    } catch (_) {}
  }

  async function loadWebhooks() {
    const { data } = await api("GET", "webhooks");
    const list = $("webhooks");
    list.replaceChildren();
    for (const w of data.webhooks) {
      const state = w.enabled ? "" : " (disabled: " + (w.disabled_reason || "") + ")";
      list.appendChild(item(w.url + (w.description ? " — " + w.description : "") + state, [["Delete", () => deleteWebhook(w.id)]]));
    }
    if (!data.webhooks.length) list.appendChild(item("No endpoints yet", []));
  }

  async function addWebhook(ev) {
    ev.preventDefault();
    try {
      const { data } = await api("POST", "webhooks", { url: $("wh-url").value.trim(), description: $("wh-desc").value.trim() || null });
      const p = $("wh-secret");
      p.textContent = "Signing secret (shown once, copy it now): " + data.secret;
      p.hidden = false;
      $("add-webhook").reset();
      await loadWebhooks();
    } catch (_) {}
  }

  async function deleteWebhook(id) {
    await api("DELETE", "webhooks/" + encodeURIComponent(id));
    await loadWebhooks();
  }

  async function saveBudget(ev) {
    ev.preventDefault();
    const thresholds = $("b-thresholds").value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
    try {
      await api("PUT", "budgets/" + encodeURIComponent($("b-id").value.trim()), {
        amount_usd: Number($("b-amount").value),
        period: $("b-period").value,
        tz: $("tz").value.trim() || "UTC",
        thresholds,
      });
      $("add-budget").reset();
      $("b-thresholds").value = "50,75,90,100";
      await loadBudgets();
    } catch (_) {}
  }

  async function deleteBudget(id) {
    await api("DELETE", "budgets/" + encodeURIComponent(id));
    await loadBudgets();
  }

  // ------------------------------------------------------------------ admin
  async function loadAdmin() {
    const q = periodQuery();
    const [overview, top] = await Promise.all([
      api("GET", "admin/analytics/overview?" + q),
      api("GET", "admin/analytics/top-users?" + q + "&limit=10"),
    ]);
    const t = overview.data.totals;
    const cards = $("admin-cards");
    cards.replaceChildren();
    for (const [label, value] of [["Requests", nf.format(t.requests)], ["Cost", usd(t.cost_usd)], ["Error rate", pct(t.error_rate)], ["Paid", usd(t.paid_usd)]]) {
      const d = document.createElement("div");
      d.className = "card";
      const s = document.createElement("span");
      s.className = "label";
      s.textContent = label;
      const b = document.createElement("strong");
      b.textContent = value;
      d.append(s, b);
      cards.appendChild(d);
    }
    const a = overview.data.active_users;
    const last = (list) => (list.length ? list[list.length - 1].users : 0);
    fillTable("active", [["Whole period", nf.format(a.distinct)], ["Last day", nf.format(last(a.daily))], ["Last week", nf.format(last(a.weekly))], ["Last month", nf.format(last(a.monthly))]]);
    fillTable("top-users", top.data.users.map((u) => [u.user_id, nf.format(u.requests), usd(u.cost_usd)]));
  }

  // ------------------------------------------------------------------ navigation
  const loaded = {};
  function show(view) {
    for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
    if (loaded[view]) return;
    loaded[view] = true;
    const run = { inbox: () => loadInbox(false), settings: () => Promise.all([loadPreferences(), loadWebhooks(), loadRules()]), admin: loadAdmin }[view];
    if (run) run().catch(() => {});
  }

  function start() {
    if (!token || !claims) {
      notice("This page needs a portal link with a token. Open the portal from the application you use.", "error");
      document.body.classList.add("expired");
      return;
    }
    if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
      expired();
      return;
    }
    $("who").textContent = claims.sub;
    const admin = Array.isArray(claims.roles) ? claims.roles.includes("admin") : String(claims.roles || "").split(" ").includes("admin");
    document.querySelector('[data-view="admin"]').hidden = !admin;

    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
    $("days").addEventListener("change", () => {
      const custom = $("days").value === "custom";
      for (const el of document.querySelectorAll(".custom")) el.hidden = !custom;
      if (!custom) {
        loadUsage();
        loaded.admin = false;
      }
    });
    $("period").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadUsage();
      loaded.admin = false;
    });
    $("granularity").addEventListener("change", () => {
      try {
        loadSeries(periodQuery()).catch(() => {});
      } catch (e) {
        notice(e.message, "error");
      }
    });
    $("metric").addEventListener("change", drawChart);
    if (tagKeys.length) {
      for (const k of tagKeys) $("tag-key").appendChild(new Option(k, k));
      $("tags-panel").hidden = false;
      $("tag-key").addEventListener("change", () => {
        try {
          loadSummary(periodQuery()).catch(() => {});
        } catch (e) {
          notice(e.message, "error");
        }
      });
    }
    $("export-csv").addEventListener("click", () => download("csv").catch(() => {}));
    $("export-json").addEventListener("click", () => download("json").catch(() => {}));
    $("f-read").addEventListener("change", () => loadInbox(false).catch(() => {}));
    $("f-type").addEventListener("change", () => loadInbox(false).catch(() => {}));
    $("more").addEventListener("click", () => loadInbox(true).catch(() => {}));
    $("read-all").addEventListener("click", () => readAll().catch(() => {}));
    $("prefs").addEventListener("submit", savePreferences);
    $("add-webhook").addEventListener("submit", addWebhook);
    $("add-budget").addEventListener("submit", saveBudget);
    $("add-rule").addEventListener("submit", saveRule);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawChart, 150);
    });

    loadUsage();
    loadBudgets().catch(() => {});
    pollUnread().catch(() => {});
    // Polling only while the page is visible; a 304 costs one small read and no body.
    setInterval(() => {
      if (!stopped && document.visibilityState === "visible") pollUnread().catch(() => {});
    }, 15000);
    // A token that runs out while the page is open says so instead of failing silently.
    const left = typeof claims.exp === "number" ? claims.exp * 1000 - Date.now() : Infinity;
    if (left < 2147483647) setTimeout(expired, Math.max(0, left));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
