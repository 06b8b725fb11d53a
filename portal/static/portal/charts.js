/* Usher's one chart helper (window.UsherCharts), used by every chart of the portal: the dashboard's,
   monitoring's (monitoring.js) and the pages' (pages.js). It draws a spec (portal/charts.py) with
   unfold's bundled Chart.js: axis titles with units, y-axis tick values, a legend at the bottom, the
   portal's colours (unfold's --color-primary-* / --color-base-* variables, resolved here, never
   Chart.js's defaults) and, when the data holds no point, the empty state: the canvas is hidden and
   the container ([data-chart]) shows a [data-chart-empty] message saying why. The container's
   data-chart-points always holds the number of points drawn.
   Loaded after the page's elements (templates/portal/base.html, templates/admin/index.html); it draws
   every canvas[data-usher-chart] at once, from its json_script spec. */
(function () {
  "use strict";
  if (window.UsherCharts) return;

  // Series colours in order: the theme's primary, then its neutral, then unfold's accent colours.
  const PALETTE = ["primary-600", "base-500", "primary-300", "orange-500", "green-600", "blue-500", "red-500",
                   "primary-900"];
  const TONES = {primary: "primary-600", reference: "base-400", good: "green-600", bad: "red-600",
                 warn: "orange-500", guide: "red-500", muted: "base-300"};
  const cache = {};

  /* [r, g, b] of a palette name ("primary-600"), a CSS variable ("var(--color-…)") or any CSS colour.
     The browser computes the variable (unfold's are oklch) and a 1×1 canvas turns it into sRGB bytes,
     which Chart.js's own colour maths understands. */
  function rgb(name) {
    if (cache[name]) return cache[name];
    const css = /^[a-z]+-\d+$/.test(name) ? `var(--color-${name})` : name;
    const probe = document.createElement("span");
    probe.style.display = "none";
    probe.style.color = "rgb(107, 114, 128)";
    probe.style.color = css;
    document.body.appendChild(probe);
    const computed = getComputedStyle(probe).color;
    probe.remove();
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 1;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    ctx.fillStyle = "rgb(107, 114, 128)";
    ctx.fillStyle = computed;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    cache[name] = [d[0], d[1], d[2]];
    return cache[name];
  }

  function colour(name, alpha) {
    const [r, g, b] = rgb(name);
    return alpha === undefined ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }

  function isPoint(v) { return typeof v === "number" && Number.isFinite(v); }

  /* Data points (threshold and objective lines, guide: true, are not data; with zero_is_empty, as for
     counts, zeros are not either). */
  function countPoints(datasets, zeroIsEmpty) {
    let n = 0;
    (datasets || []).forEach((d) => {
      if (!d.guide) (d.data || []).forEach((v) => { if (isPoint(v) && !(zeroIsEmpty && v === 0)) n += 1; });
    });
    return n;
  }

  /* A value as people read it: a few significant digits, the unit after it. */
  function format(v, unit) {
    if (!isPoint(v)) return "no data";
    const a = Math.abs(v);
    const digits = a === 0 || a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    const text = a !== 0 && a < 0.001 ? v.toExponential(1) : v.toLocaleString("en", {maximumFractionDigits: digits});
    if (!unit) return text;
    return unit === "%" ? text + "%" : `${text} ${unit}`;
  }

  function tickUnit(unit) {
    return !unit || unit.startsWith("per ") || unit.length > 5 ? "" : unit;
  }

  function emptyBox(box, message, show) {
    if (!box) return;
    let p = box.querySelector("[data-chart-empty]");
    if (!show) { if (p) p.remove(); return; }
    if (!p) {
      p = document.createElement("p");
      p.setAttribute("data-chart-empty", "");
      p.className = "absolute inset-0 flex items-center justify-center text-center px-6 text-font-subtle-light " +
        "dark:text-font-subtle-dark border border-dashed border-base-200 dark:border-base-700 rounded-default";
      const canvas = box.querySelector("canvas");
      (canvas ? canvas.parentNode : box).appendChild(p);
    }
    p.textContent = message || box.dataset.emptyMessage || "No data yet.";
  }

  function isDark() { return document.documentElement.classList.contains("dark"); }

  /* Ticks, titles and grid lines in the theme's neutral colours, for the light or the dark theme. */
  function axisColours() {
    return isDark() ? {tick: colour("base-400"), grid: colour("base-800")} : {tick: colour("base-500"), grid: colour("base-200")};
  }

  function config(spec) {
    const type = spec.type || "line";
    const x = spec.x || {};
    const y = spec.y || {};
    const horizontal = !!spec.horizontal;
    let next = 0;
    const datasets = (spec.datasets || []).map((d) => {
      const ds = Object.assign({}, d);
      const dsType = ds.type || type;
      const name = d.color || (d.tone ? TONES[d.tone] : null) || (d.guide ? TONES.guide : PALETTE[next++ % PALETTE.length]);
      if (Array.isArray(name)) {
        ds.backgroundColor = name.map((n) => colour(n, 0.85));
        ds.borderColor = name.map((n) => colour(n));
      } else {
        ds.borderColor = colour(name);
        ds.backgroundColor = colour(name, dsType === "bar" ? 0.85 : 0.15);
      }
      if (d.guide) {
        // A threshold line; with a single category a line has no length, so it is drawn as a dash.
        const single = (spec.labels || []).length < 2;
        Object.assign(ds, {type: "line", borderDash: d.borderDash || [6, 4], fill: false, borderWidth: 1.5,
                           pointRadius: single ? 14 : 0, pointStyle: single ? "line" : "circle", pointBorderWidth: 2});
      } else if (dsType === "line") {
        ds.pointRadius = d.pointRadius ?? 2;
        ds.borderWidth = d.borderWidth ?? 2;
        ds.spanGaps = d.spanGaps ?? false;
      } else {
        ds.borderRadius = d.borderRadius ?? 3;
        ds.maxBarThickness = d.maxBarThickness ?? 28;
      }
      delete ds.tone; delete ds.color; delete ds.guide;
      return ds;
    });
    const {tick, grid} = axisColours();
    const value = {
      type: "linear",
      beginAtZero: y.min === undefined || y.min === null,
      title: {display: true, text: y.title || "", color: tick},
      // tick values carry a short unit ("ms", "%"); a rate ("per hour") stays in the axis title
      ticks: {display: true, color: tick, callback: (v) => format(v, tickUnit(y.unit))},
      grid: {color: grid},
    };
    if (y.integer || spec.zero_is_empty) value.ticks.precision = 0;  // counts: no 0.5 of a rating
    if (isPoint(y.min)) value.min = y.min;
    if (isPoint(y.max)) value.max = y.max;
    const category = {
      // a line chart of one or two points draws them in the middle of their category, not at the edges
      offset: type === "bar" || (spec.labels || []).length < 3,
      title: {display: true, text: x.title || "", color: tick},
      ticks: {color: tick, autoSkip: true, maxRotation: 0},
      grid: {display: false},
    };
    return {
      type: type,
      data: {labels: spec.labels || [], datasets: datasets},
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: {mode: "index", intersect: false},
        scales: horizontal ? {x: value, y: category} : {x: category, y: value},
        plugins: {
          legend: {display: true, position: "bottom",
                   labels: {color: tick, usePointStyle: true, boxWidth: 8, boxHeight: 8}},
          tooltip: {callbacks: {label: (ctx) => {
            const raw = ctx.dataset.raw ? ctx.dataset.raw[ctx.dataIndex] : (horizontal ? ctx.parsed.x : ctx.parsed.y);
            const capped = ctx.dataset.raw && isPoint(y.cap) && raw > y.cap ? ` (drawn at ${format(y.cap)})` : "";
            return `${ctx.dataset.label}: ${format(raw, y.unit)}${capped}`;
          }}},
        },
      },
    };
  }

  /* Draw (or redraw in place) a spec on a canvas (element or id); with no data point, hide the
     canvas and show the empty state instead. Returns the Chart, or null when nothing is drawn. */
  function draw(target, spec) {
    const canvas = typeof target === "string" ? document.getElementById(target) : target;
    if (!canvas) return null;
    const box = canvas.closest("[data-chart]");
    const points = countPoints(spec.datasets, spec.zero_is_empty);
    if (box) box.dataset.chartPoints = String(points);
    const existing = typeof Chart === "undefined" ? null : Chart.getChart(canvas);
    if (!points) {
      if (existing) existing.destroy();
      canvas.hidden = true;
      emptyBox(box, spec.empty, true);
      return null;
    }
    emptyBox(box, null, false);
    canvas.hidden = false;
    if (typeof Chart === "undefined") return null;
    const built = config(spec);
    if (existing) {
      existing.data = built.data;
      existing.options = built.options;
      existing.update("none");
      return existing;
    }
    Chart.defaults.font.family = "Inter";
    Chart.defaults.font.size = 12;
    return new Chart(canvas, built);
  }

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  window.UsherCharts = {draw: draw, countPoints: countPoints, format: format, colour: colour, readJson: readJson};

  // unfold's theme switch toggles html.dark: recolour the axes of every chart drawn here.
  const drawn = new Set();
  const track = draw;
  window.UsherCharts.draw = function (target, spec) {
    const chart = track(target, spec);
    if (chart) drawn.add(chart.canvas);
    return chart;
  };
  new MutationObserver(() => {
    const {tick, grid} = axisColours();
    drawn.forEach((canvas) => {
      const chart = typeof Chart === "undefined" ? null : Chart.getChart(canvas);
      if (!chart) { drawn.delete(canvas); return; }
      Object.values(chart.options.scales).forEach((scale) => {
        scale.ticks.color = tick;
        scale.title.color = tick;
        if (scale.grid.display !== false) scale.grid.color = grid;
      });
      chart.options.plugins.legend.labels.color = tick;
      chart.update("none");
    });
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["class"]});

  document.querySelectorAll("canvas[data-usher-chart]").forEach((canvas) => {
    const spec = readJson(canvas.dataset.usherChart);
    if (spec) window.UsherCharts.draw(canvas, spec);
  });
})();
