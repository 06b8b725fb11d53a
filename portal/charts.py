"""One chart helper for every chart of the portal.

A chart is described by a *spec* (a plain dict, JSON-safe) and drawn by ``portal/static/portal/
charts.js`` with unfold's bundled Chart.js: axis titles with units, y-axis tick values, a legend, the
portal's colours (unfold's ``--color-primary-*`` / ``--color-base-*`` variables, resolved in the
browser), and, when there is nothing to draw, an empty state that says why instead of a blank canvas.

Markup (``templates/portal/_chart.html``, rendered by ``{% usher_chart %}`` from
``portal.templatetags.portal_charts``)::

    <section data-chart="<id>" data-chart-points="<n>" data-empty-message="No data yet — …">
      <h3>title</h3>
      <div><canvas id="<id>" data-usher-chart …></canvas>
           <p data-chart-empty>No data yet — …</p>   (only while the chart has no data point)
      </div>
    </section>

A chart container always carries either data points (``data-chart-points`` > 0, kept up to date by
charts.js when a live chart refreshes) or a visible ``[data-chart-empty]`` message.

Spec keys: ``id``, ``title``, ``type`` ("bar" | "line"), ``labels``, ``datasets`` (``label``,
``data``; optional ``tone`` — "primary", "reference", "good", "bad", "guide" — or ``color``, a
palette name such as "primary-600" or a list of them per bar; ``guide: True`` for threshold lines,
which are not data), ``x`` and ``y`` (``title``, ``unit``; y also ``min``, ``max``, ``cap``,
``integer`` — counts, whole-number ticks),
``empty`` (the message), ``points`` (numbers drawn, guides excluded), ``zero_is_empty`` (counts:
all zeros is shown as the empty state), ``description``, ``href``, ``horizontal``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

_ID = re.compile(r"[^a-zA-Z0-9_-]+")


def count_points(datasets: Iterable[dict], *, zero_is_empty: bool = False) -> int:
    """Finite numbers in the datasets that are data (threshold and objective lines are not); with
    ``zero_is_empty`` (counts: fourteen days of nothing is no data), zeros do not count."""
    n = 0
    for dataset in datasets:
        if dataset.get("guide"):
            continue
        for value in dataset.get("data") or []:
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value) and not (zero_is_empty and value == 0):
                n += 1
    return n


def axis_title(title: str, unit: str = "") -> str:
    """"Latency (ms)": the title, with its unit in brackets when it has one."""
    return f"{title} ({unit})" if unit else title


def chart_spec(
    *,
    title: str,
    labels: Sequence,
    datasets: Sequence[dict],
    x_title: str,
    y_title: str,
    empty: str,
    kind: str = "line",
    y_unit: str = "",
    x_unit: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    y_cap: float | None = None,
    y_integer: bool = False,
    horizontal: bool = False,
    zero_is_empty: bool = False,
    description: str = "",
    href: str | None = None,
    id: str | None = None,  # noqa: A002 - the DOM id
) -> dict:
    """A chart's spec; raises ``ValueError`` naming the field when an axis title or the empty
    message is missing, so no chart reaches a page without them.

    ``y_cap``: values above it are drawn at the cap (so one huge value does not flatten the rest);
    the true values stay in each dataset's ``raw`` list, shown by the tooltip."""
    for field, value in (("title", title), ("x_title", x_title), ("y_title", y_title), ("empty", empty)):
        if not str(value or "").strip():
            raise ValueError(f"chart {field} is required")
    if kind not in ("bar", "line"):
        raise ValueError(f"chart kind must be 'bar' or 'line', not {kind!r}")
    sets = []
    for dataset in datasets:
        if not str(dataset.get("label") or "").strip():
            raise ValueError("chart dataset label is required")
        ds = dict(dataset)
        ds["data"] = [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
                      for v in ds.get("data") or []]
        if y_cap is not None and not ds.get("guide"):
            raw = ds["data"]
            if any(v is not None and v > y_cap for v in raw):
                ds["raw"] = raw
                ds["data"] = [None if v is None else min(v, y_cap) for v in raw]
        sets.append(ds)
    y: dict = {"title": axis_title(y_title, y_unit), "unit": y_unit}
    if y_min is not None:
        y["min"] = y_min
    if y_max is not None:
        y["max"] = y_max
    if y_cap is not None:
        y["cap"] = y_cap
    if y_integer or zero_is_empty:
        y["integer"] = True
    return {
        "id": _ID.sub("-", id or title.lower()).strip("-")[:80] or "chart",
        "title": title,
        "type": kind,
        "labels": list(labels),
        "datasets": sets,
        "x": {"title": axis_title(x_title, x_unit), "unit": x_unit},
        "y": y,
        "empty": empty,
        "points": count_points(sets, zero_is_empty=zero_is_empty),
        "zero_is_empty": zero_is_empty,
        "horizontal": horizontal,
        "description": description,
        "href": href,
    }
