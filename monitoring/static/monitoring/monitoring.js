/* Usher monitoring pages: Chart.js charts (bundled by unfold) fed by the monitoring JSON API and
   refreshed in place, without reloading the page. No network access beyond Usher itself. */
(function () {
  "use strict";

  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  const charts = {};

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function label(iso) {
    const d = new Date(iso);
    return d.toISOString().slice(5, 16).replace("T", " ");
  }

  function draw(id, type, labels, datasets, options) {
    const canvas = typeof id === "string" ? document.getElementById(id) : id;
    if (!canvas || typeof Chart === "undefined") return;
    const key = canvas.id || canvas.dataset.feature;
    datasets.forEach((ds, i) => {
      ds.borderColor = ds.borderColor || PALETTE[i % PALETTE.length];
      ds.backgroundColor = ds.backgroundColor || PALETTE[i % PALETTE.length] + (type === "bar" ? "aa" : "33");
      ds.pointRadius = ds.pointRadius ?? 0;
      ds.spanGaps = false;
    });
    if (charts[key]) {
      charts[key].data.labels = labels;
      charts[key].data.datasets = datasets;
      charts[key].update("none");
      return;
    }
    charts[key] = new Chart(canvas, {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: Object.assign({ animation: false, responsive: true, interaction: { mode: "index", intersect: false },
                               plugins: { legend: { display: true } } }, options || {}),
    });
  }

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
    draw("chart-traffic", "line", labels, [
      { label: "requests", data: points.map((p) => p.requests) },
      { label: "errors", data: points.map((p) => p.errors) },
    ]);
    draw("chart-latency", "line", labels, [
      { label: "p50", data: points.map((p) => p.latency_p50_ms) },
      { label: "p95", data: points.map((p) => p.latency_p95_ms) },
      { label: "p99", data: points.map((p) => p.latency_p99_ms) },
    ]);
    const availability = [{ label: "availability", data: points.map((p) => p.availability) }];
    if (config.availabilityObjective) {
      availability.push({ label: "objective", data: points.map(() => config.availabilityObjective), borderDash: [4, 4] });
    }
    draw("chart-availability", "line", labels, availability, { scales: { y: { suggestedMax: 1 } } });

    const byVersion = {};
    const buckets = new Set();
    for (const g of quality) {
      const name = (g.labels && g.labels.model_version) || (g.key.model_version_id ? "#" + g.key.model_version_id : "all");
      buckets.add(g.key.bucket);
      (byVersion[name] = byVersion[name] || {})[g.key.bucket] = g.rate;
    }
    const qLabels = Array.from(buckets).sort();
    draw("chart-quality", "line", qLabels.map(label), Object.entries(byVersion).map(([name, rates]) => (
      { label: name, data: qLabels.map((b) => rates[b] ?? null), pointRadius: 2 })));

    const reportTimes = drift.reports.map((r) => label(r.time));
    draw("chart-drift", "line", reportTimes, Object.entries(drift.features).map(([feature, series]) => {
      const byReport = Object.fromEntries(series.map((s) => [s.report, s.ratio]));
      return { label: feature, data: drift.reports.map((r) => byReport[r.id] ?? null), pointRadius: 2 };
    }));

    const snaps = feedback.snapshots;
    draw("chart-feedback", "line", snaps.map((s) => label(s.bucket_start)), [
      { label: "Gini recommended", data: snaps.map((s) => s.gini_recommended), pointRadius: 2 },
      { label: "Gini watched", data: snaps.map((s) => s.gini_watched), pointRadius: 2 },
      { label: "top 1% share watched", data: snaps.map((s) => s.top1_share_watched), pointRadius: 2 },
      { label: "watches after a recommendation", data: snaps.map((s) => s.share_watches_after_recommendation), pointRadius: 2 },
    ]);
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

  // --- drift report histograms ---------------------------------------------------------------------
  function startDrift() {
    const histograms = readJson("drift-histograms");
    if (!histograms) return;
    document.querySelectorAll("canvas.drift-histogram").forEach((canvas) => {
      const h = histograms[canvas.dataset.feature];
      if (!h) return;
      draw(canvas, "bar", h.labels, [
        { label: "reference", data: h.reference },
        { label: "current", data: h.current },
      ]);
    });
  }

  // --- feedback page ---------------------------------------------------------------------------------
  function startFeedback() {
    const config = readJson("feedback-config");
    if (!config) return;
    const run = () => getJson(config.url).then((data) => {
      const snaps = data.snapshots;
      draw("chart-feedback-page", "line", snaps.map((s) => label(s.bucket_start)),
           config.metrics.map((m) => ({ label: m, data: snaps.map((s) => s[m]), pointRadius: 2 })));
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
        { label: name, data: labels.map((b) => rates[b] ?? null), pointRadius: 2 })));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("monitoring-config")) startDashboard();
    if (document.getElementById("drift-histograms")) startDrift();
    if (document.getElementById("feedback-config")) startFeedback();
    if (document.getElementById("quality-config")) startQuality();
  });
})();
