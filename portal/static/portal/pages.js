/* Usher portal pages: the charts and live progress bars of the catalog, training and releases pages,
   every chart drawn by the portal's chart helper (charts.js). Loaded from a file (never inline) so the Content-Security-Policy needs no 'unsafe-inline'.
   Data comes from <script type="application/json"> elements written by Django's json_script filter
   and is read with JSON.parse(textContent): an upstream label is data here, never markup. Chart.js is
   unfold's bundled copy, loaded by its layout. */
(function () {
  "use strict";

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  /* Every chart through the portal's one helper (portal/static/portal/charts.js): axis titles with
     units, tick values, legend, the portal's colours, and the container's empty message when the
     data has no point. */
  function chart(id, spec) {
    return window.UsherCharts ? window.UsherCharts.draw(id, spec) : null;
  }

  const pct = (values) => (values || []).map((v) => (v === null || v === undefined ? null : Math.round(v * 100000) / 1000));

  // --- catalog: a movie's rating histogram, the quarantine's reasons ---------------------------------
  function movieHistogram() {
    const h = readJson("histogram-data");
    if (!h) return;
    chart("histogram", {type: "bar", labels: h.labels, datasets: [{label: "current ratings", data: h.values}],
                        zero_is_empty: true, x: {title: "rating (stars)"}, y: {title: "ratings", integer: true}});
  }

  function quarantineReasons() {
    const r = readJson("reasons-data");
    if (!r) return;
    chart("reasons", {type: "bar", horizontal: true, labels: r.labels,
                      datasets: [{label: "quarantined lines and records", data: r.values}],
                      zero_is_empty: true, x: {title: "reason code"}, y: {title: "quarantined (count)", integer: true}});
  }

  // --- training: comparing versions, live progress of runs -------------------------------------------
  function compareVersions() {
    const d = readJson("compare-chart");
    if (!d) return;
    const x = {title: "training run"};
    const bar = (id, sets, y) => chart(id, {type: "bar", labels: d.labels, datasets: sets, x: x, y: y});
    bar("chart-error", [{label: "RMSE", data: d.rmse}, {label: "MAE", data: d.mae}],
        {title: "error (stars)"});
    bar("chart-ranking", [{label: "NDCG@20", data: d.ndcg}, {label: "Precision@20", data: d.precision},
                          {label: "Recall@20", data: d.recall}], {title: "score (0–1)", min: 0});
    bar("chart-training", [{label: "fit", data: d.fit}, {label: "whole run", data: d.total}],
        {title: "time (s)", unit: "s"});
    bar("chart-memory", [{label: "peak RSS", data: d.memory}], {title: "peak RSS (MiB)", unit: "MiB"});
    bar("chart-inference", [{label: "p50", data: d.p50}, {label: "p99", data: d.p99}],
        {title: "latency (ms)", unit: "ms"});
    bar("chart-size", [{label: "artifact", data: d.size}], {title: "size (KiB)", unit: "KiB"});
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
            p.status === "running" ? `Running · ${p.stage} ${Math.round(p.percent)}%`
              : p.status.charAt(0).toUpperCase() + p.status.slice(1).replace(/_/g, " ");
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
    const x = {title: "analysis (UTC)"};
    chart("rate", {type: "line", labels: d.labels, x: x, y: {title: "watched (%)", unit: "%"},
                   datasets: arms.map((a) => ({label: a, data: pct(d.rate[a]), spanGaps: true}))});
    chart("trials", {type: "line", labels: d.labels, x: x, y: {title: "lists served", integer: true},
                     datasets: arms.map((a) => ({label: a, data: d.trials[a]})), zero_is_empty: true});
    const sets = [];
    Object.keys(d.difference).forEach((a) => {
      const s = d.difference[a];
      const n = sets.length / 3;
      const colour = ["primary-600", "orange-500", "green-600", "blue-500"][n % 4];
      sets.push({label: a + " − control", data: pct(s.difference), color: colour});
      sets.push({label: a + " interval low", data: pct(s.low), color: colour, borderDash: [4, 4], pointRadius: 0, spanGaps: true});
      sets.push({label: a + " interval high", data: pct(s.high), color: colour, borderDash: [4, 4], pointRadius: 0, spanGaps: true});
    });
    if (sets.length) sets.push({label: "no difference", guide: true, color: "base-400", data: d.labels.map(() => 0)});
    chart("diff", {type: "line", labels: d.labels, datasets: sets, x: x,
                   y: {title: "difference (pp)", unit: "pp", min: null}});
  }

  function shadow() {
    const d = readJson("shadow-chart");
    if (!d) return;
    chart("agreement", {type: "line", labels: d.labels, x: {title: "report window end (UTC)"},
                        y: {title: "agreement (−1 to 1)", min: -1, max: 1}, datasets: [
      {label: "overlap@20", data: d.overlap},
      {label: "Kendall τ", data: d.kendall},
      {label: "Spearman ρ", data: d.spearman}]});
  }

  function rollout() {
    const d = readJson("rollout-chart");
    if (!d) return;
    const x = {title: "decision (revision, time UTC)"};
    chart("share", {type: "line", labels: d.labels, x: x, y: {title: "canary share (%)", unit: "%", min: 0, max: 100},
                    datasets: [{label: "canary share", data: d.percent, stepped: true}]});
    chart("quality", {type: "line", labels: d.labels, x: x, y: {title: "watched (%)", unit: "%"}, datasets: [
      {label: "canary", data: pct(d.canary), tone: "primary", spanGaps: true},
      {label: "production", data: pct(d.production), tone: "reference", spanGaps: true}]});
  }

  // --- audits: a run's charts, each a spec from audits/views.py (drawn by charts.js itself) ----------

  // Loaded at the end of the page's content (templates/portal/base.html): its elements are there.
  [movieHistogram, quarantineReasons, compareVersions, pollRuns, experiment, shadow, rollout]
    .forEach((start) => start());
})();
