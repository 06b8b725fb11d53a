/* Usher monitoring pages: charts fed by the monitoring JSON API and refreshed in place, without
   reloading the page, drawn by the portal's chart helper (portal/static/portal/charts.js, unfold's
   bundled Chart.js). No network access beyond Usher itself. */
(function () {
  "use strict";

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function label(iso) {
    const d = new Date(iso);
    return d.toISOString().slice(5, 16).replace("T", " ");
  }

  /* Every chart through the portal's one helper (portal/static/portal/charts.js): axis titles with
     units, tick values, legend, the portal's colours, and the empty state when there is no point. */
  function draw(id, type, labels, datasets, axes) {
    return window.UsherCharts.draw(id, Object.assign({type: type, labels: labels, datasets: datasets}, axes));
  }

  const TIME = {title: "time (UTC)"};

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response.json();
  }

  function pct(v) { return v === null || v === undefined ? "no data" : (100 * v).toFixed(2) + "%"; }
  function num(v, d) { return v === null || v === undefined ? "no data" : Number(v).toFixed(d ?? 0); }

  // --- the dashboard -------------------------------------------------------------------------------
  async function refreshDashboard(config) {
    const hours = document.getElementById("range").value;
    const q = "hours=" + hours;
    const [summary, telemetry, quality, drift, feedback] = await Promise.all([
      getJson(config.urls.summary),
      getJson(config.urls.telemetry + "?source=client&" + q),
      getJson(config.urls.quality + "?source=auto&group_by=model_version_id,bucket&bucket_minutes=" +
              Math.max(15, Math.round(hours * 60 / 48)) + "&" + q).catch(() => []),
      getJson(config.urls.drift),
      getJson(config.urls.feedback),
    ]);
    const cards = document.getElementById("summary-cards");
    const hour = summary.last_hour;
    cards.querySelector("[data-field=requests]").textContent = hour.no_data ? "no data" : hour.requests;
    cards.querySelector("[data-field=availability]").textContent = hour.no_data ? "no data" : pct(hour.availability);
    cards.querySelector("[data-field=p95]").textContent = hour.no_data ? "no data" : num(hour.latency_p95_ms) + " ms";
    cards.querySelector("[data-field=incidents]").textContent = summary.incidents_active;

    const rows = document.getElementById("slo-rows");
    rows.innerHTML = "";
    for (const s of summary.slos) {
      const tr = document.createElement("tr");
      tr.className = "border-t";
      const burn = ["5m", "60m", "360m"].map((w) => s.burn_rates[w] === null ? "–" : s.burn_rates[w].toFixed(2) + "×");
      for (const text of [s.slo, s.status, s.sli === null ? "no data" : s.sli.toFixed(4), s.objective,
                          s.budget_remaining === null ? "no data" : s.budget_remaining.toFixed(3), burn.join(" / ")]) {
        const td = document.createElement("td");
        td.className = "p-2";
        td.textContent = text;
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }

    const points = telemetry.points;
    const labels = points.map((p) => label(p.time));
    const noTraffic = "No data yet — no recommendation request in this range (the simulator or the event stream sends them).";
    draw("chart-traffic", "line", labels, [
      { label: "requests", data: points.map((p) => p.requests) },
      { label: "errors", data: points.map((p) => p.errors), tone: "bad" },
    ], { x: TIME, y: { title: "requests (per point)", integer: true }, empty: noTraffic });
    draw("chart-latency", "line", labels, [
      { label: "p50", data: points.map((p) => p.latency_p50_ms) },
      { label: "p95", data: points.map((p) => p.latency_p95_ms) },
      { label: "p99", data: points.map((p) => p.latency_p99_ms) },
    ], { x: TIME, y: { title: "latency (ms)", unit: "ms" }, empty: noTraffic });
    const pct100 = (v) => (v === null || v === undefined ? null : Math.round(v * 100000) / 1000);
    const availability = [{ label: "availability", data: points.map((p) => pct100(p.availability)) }];
    if (config.availabilityObjective) {
      availability.push({ label: "objective", guide: true, data: points.map(() => pct100(config.availabilityObjective)) });
    }
    draw("chart-availability", "line", labels, availability,
         { x: TIME, y: { title: "availability (%)", unit: "%", max: 100 }, empty: noTraffic });

    const byVersion = {};
    const buckets = new Set();
    for (const g of quality) {
      const name = (g.labels && g.labels.model_version) || (g.key.model_version_id ? "#" + g.key.model_version_id : "all");
      buckets.add(g.key.bucket);
      (byVersion[name] = byVersion[name] || {})[g.key.bucket] = g.rate;
    }
    const qLabels = Array.from(buckets).sort();
    draw("chart-quality", "line", qLabels.map(label), Object.entries(byVersion).map(([name, rates]) => (
      { label: name, data: qLabels.map((b) => pct100(rates[b] ?? null)) })),
         { x: TIME, y: { title: "watched (%)", unit: "%" },
           empty: "No data yet — online quality needs served lists and the watches that follow them." });

    /* One reading direction: the drift score, higher = more drift, above 1 = drifted. Scores above
       the cap are drawn at the cap; the tooltip gives the true value. */
    const cap = config.driftCap;
    const reportTimes = drift.reports.map((r) => label(r.time));
    const driftSets = Object.entries(drift.features).map(([feature, series]) => {
      const byReport = Object.fromEntries(series.map((s) => [s.report, s.drift_score]));
      const raw = drift.reports.map((r) => byReport[r.id] ?? null);
      return { label: feature, raw: raw, data: raw.map((v) => (v === null ? null : Math.min(v, cap))) };
    });
    if (driftSets.length) driftSets.push({ label: "threshold (1)", guide: true, data: reportTimes.map(() => 1) });
    draw("chart-drift", "line", reportTimes, driftSets,
         { x: { title: "drift report (UTC)" }, y: { title: `drift score (capped at ${cap})`, cap: cap },
           empty: "No data yet — drift reports are made by beat every hour, or on the Drift page." });

    const snaps = feedback.snapshots;
    draw("chart-feedback", "line", snaps.map((s) => label(s.bucket_start)), [
      { label: "Gini recommended", data: snaps.map((s) => s.gini_recommended) },
      { label: "Gini watched", data: snaps.map((s) => s.gini_watched) },
      { label: "top 1% share watched", data: snaps.map((s) => s.top1_share_watched) },
      { label: "watches after a recommendation", data: snaps.map((s) => s.share_watches_after_recommendation) },
    ], { x: { title: "feedback bucket start (UTC)" }, y: { title: "share or Gini (0–1)", min: 0, max: 1 },
         empty: "No data yet — feedback-loop snapshots are made by beat once a bucket of served lists and watches has closed." });
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  }

  function startDashboard() {
    const config = readJson("monitoring-config");
    if (!config) return;
    document.getElementById("refresh-seconds").textContent = config.refreshSeconds;
    const run = () => refreshDashboard(config).catch((e) => {
      document.getElementById("updated").textContent = "failed: " + e.message;
    });
    document.getElementById("range").addEventListener("change", run);
    run();
    setInterval(run, config.refreshSeconds * 1000);
  }

  // --- feedback page ---------------------------------------------------------------------------------
  function startFeedback() {
    const config = readJson("feedback-config");
    if (!config) return;
    const run = () => getJson(config.url).then((data) => {
      const snaps = data.snapshots;
      draw("chart-feedback-page", "line", snaps.map((s) => label(s.bucket_start)),
           config.metrics.map((m) => ({ label: m.replace(/_/g, " "), data: snaps.map((s) => s[m]) })),
           { x: { title: "feedback bucket start (UTC)" }, y: { title: "share or Gini (0–1)", min: 0 },
             empty: "No data yet — feedback-loop snapshots are made by beat once a bucket of served lists and watches has closed." });
    });
    run();
    setInterval(run, config.refreshSeconds * 1000);
  }

  // --- online quality page ---------------------------------------------------------------------------
  function startQuality() {
    const config = readJson("quality-config");
    if (!config) return;
    getJson(config.url + "?group_by=model_version_id,bucket&bucket_minutes=60&hours=" + config.hours +
            "&source=" + config.source).then((groups) => {
      const byVersion = {};
      const buckets = new Set();
      for (const g of groups) {
        const name = (g.labels && g.labels.model_version) || "all";
        buckets.add(g.key.bucket);
        (byVersion[name] = byVersion[name] || {})[g.key.bucket] = g.rate;
      }
      const labels = Array.from(buckets).sort();
      draw("chart-quality-page", "line", labels.map(label), Object.entries(byVersion).map(([name, rates]) => (
        { label: name, data: labels.map((b) => (rates[b] === null || rates[b] === undefined ? null : Math.round(rates[b] * 100000) / 1000)) })),
           { x: { title: "hour (UTC)" }, y: { title: "watched (%)", unit: "%" },
             empty: "No data yet — online quality needs served lists and the watches that follow them." });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("monitoring-config")) startDashboard();
    if (document.getElementById("feedback-config")) startFeedback();
    if (document.getElementById("quality-config")) startQuality();
  });
})();
