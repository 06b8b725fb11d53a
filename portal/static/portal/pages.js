/* Usher portal pages: the charts and live progress bars of the catalog, training, releases and audit
   pages. Loaded from a file (never inline) so the Content-Security-Policy needs no 'unsafe-inline'.
   Data comes from <script type="application/json"> elements written by Django's json_script filter
   and is read with JSON.parse(textContent): an upstream label is data here, never markup. Chart.js is
   unfold's bundled copy, loaded by its layout. */
(function () {
  "use strict";

  const COLOURS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function chart(id, config) {
    const canvas = typeof id === "string" ? document.getElementById(id) : id;
    if (!canvas || typeof Chart === "undefined") return null;
    return new Chart(canvas, config);
  }

  // --- catalog: a movie's rating histogram, the quarantine's reasons ---------------------------------
  function movieHistogram() {
    const h = readJson("histogram-data");
    if (!h) return;
    chart("histogram", {type: "bar", data: {labels: h.labels, datasets: [{label: "ratings", data: h.values}]},
                        options: {plugins: {legend: {display: false}}}});
  }

  function quarantineReasons() {
    const r = readJson("reasons-data");
    if (!r) return;
    chart("reasons", {type: "bar", data: {labels: r.labels, datasets: [{label: "quarantined", data: r.values}]},
                      options: {indexAxis: "y", plugins: {legend: {display: false}}}});
  }

  // --- training: comparing versions, live progress of runs -------------------------------------------
  function compareVersions() {
    const d = readJson("compare-chart");
    if (!d) return;
    const bar = (id, sets) => chart(id, {type: "bar", data: {labels: d.labels, datasets: sets},
                                         options: {responsive: true, plugins: {legend: {position: "bottom"}}}});
    bar("chart-error", [{label: "RMSE", data: d.rmse}, {label: "MAE", data: d.mae}]);
    bar("chart-ranking", [{label: "NDCG@20", data: d.ndcg}, {label: "Precision@20", data: d.precision},
                          {label: "Recall@20", data: d.recall}]);
    bar("chart-training", [{label: "fit (s)", data: d.fit}, {label: "whole run (s)", data: d.total}]);
    bar("chart-memory", [{label: "peak RSS (MiB)", data: d.memory}]);
    bar("chart-inference", [{label: "p50 (ms)", data: d.p50}, {label: "p99 (ms)", data: d.p99}]);
    bar("chart-size", [{label: "artifact (KiB)", data: d.size}]);
  }

  /* Every running or queued run's bar polls its JSON endpoint until it ends; a page that shows one
     run (data-reload-on-end on its <main> marker) reloads when it does. */
  function pollRuns() {
    const bars = document.querySelectorAll("[data-run-progress]");
    if (!bars.length) return;
    const terminal = new Set(["succeeded", "failed", "cancelled"]);
    const reloadOnEnd = document.querySelector("[data-reload-on-end]") !== null;
    function poll(el) {
      const id = encodeURIComponent(el.dataset.runProgress);
      fetch(`/api/v1/training-runs/${id}/progress`, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then((r) => r.json())
        .then((p) => {
          el.querySelector("[data-bar]").style.width = `${Number(p.percent)}%`;
          el.querySelector("[data-label]").textContent =
            p.status === "running" ? `running · ${p.stage} ${Math.round(p.percent)}%` : p.status;
          el.dataset.status = p.status;
          if (terminal.has(p.status)) { if (reloadOnEnd) { window.location.reload(); } return; }
          setTimeout(() => poll(el), 1500);
        })
        .catch(() => setTimeout(() => poll(el), 5000));
    }
    bars.forEach((el) => { if (!terminal.has(el.dataset.status)) { poll(el); } });
  }

  // --- releases: experiment, shadow, rollout ----------------------------------------------------------
  function experiment() {
    const d = readJson("experiment-chart");
    if (!d) return;
    const arms = Object.keys(d.rate);
    chart("rate", {type: "line", data: {labels: d.labels, datasets: arms.map((a, i) => (
      {label: a + " online quality", data: d.rate[a], borderColor: COLOURS[i % 4], spanGaps: true}))}});
    chart("trials", {type: "line", data: {labels: d.labels, datasets: arms.map((a, i) => (
      {label: a + " lists", data: d.trials[a], borderColor: COLOURS[i % 4]}))}});
    const sets = [];
    Object.keys(d.difference).forEach((a, i) => {
      const s = d.difference[a];
      const colour = COLOURS[(i + 1) % 4];
      sets.push({label: a + " − control", data: s.difference, borderColor: colour});
      sets.push({label: a + " CS low", data: s.low, borderColor: colour, borderDash: [4, 4], pointRadius: 0, spanGaps: true});
      sets.push({label: a + " CS high", data: s.high, borderColor: colour, borderDash: [4, 4], pointRadius: 0, spanGaps: true});
    });
    chart("diff", {type: "line", data: {labels: d.labels, datasets: sets}});
  }

  function shadow() {
    const d = readJson("shadow-chart");
    if (!d) return;
    chart("agreement", {type: "line", data: {labels: d.labels, datasets: [
      {label: "overlap@20", data: d.overlap, borderColor: "#2563eb"},
      {label: "Kendall τ", data: d.kendall, borderColor: "#ea580c"},
      {label: "Spearman ρ", data: d.spearman, borderColor: "#16a34a"}]}, options: {scales: {y: {min: -1, max: 1}}}});
  }

  function rollout() {
    const d = readJson("rollout-chart");
    if (!d) return;
    chart("share", {type: "line", data: {labels: d.labels, datasets: [
      {label: "canary share (%)", data: d.percent, stepped: true, borderColor: "#9333ea"}]},
      options: {scales: {y: {min: 0, max: 100}}}});
    chart("quality", {type: "line", data: {labels: d.labels, datasets: [
      {label: "canary online quality", data: d.canary, borderColor: "#ea580c", spanGaps: true},
      {label: "production online quality", data: d.production, borderColor: "#2563eb", spanGaps: true}]}});
  }

  // --- audits: a run's charts, each configured by its own json_script element ------------------------
  function auditCharts() {
    document.querySelectorAll("canvas[data-chart-config]").forEach((canvas) => {
      const config = readJson(canvas.dataset.chartConfig);
      if (config) chart(canvas, config);
    });
  }

  // Loaded at the end of the page's content (templates/portal/base.html): its elements are there.
  [movieHistogram, quarantineReasons, compareVersions, pollRuns, experiment, shadow, rollout, auditCharts]
    .forEach((start) => start());
})();
