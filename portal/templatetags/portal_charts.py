"""``{% usher_chart %}``: every chart of the portal through one include (``portal/_chart.html``).

Two forms:

- ``{% usher_chart spec %}`` — a spec from ``portal.charts.chart_spec``; the spec is written with
  ``json_script`` and drawn by ``portal/static/portal/charts.js``; a spec without data points is
  rendered as its empty state on the server.
- ``{% usher_chart id="rate" title="…" empty="No data yet — …" %}`` — a chart whose data a page
  script passes to ``UsherCharts.draw("rate", spec)``; the script shows the empty state when the data
  has no point.
"""

from __future__ import annotations

import logging

from django import template

logger = logging.getLogger(__name__)
register = template.Library()


@register.inclusion_tag("portal/_chart.html")
def usher_chart(spec: dict | None = None, *, id: str = "", title: str = "", empty: str = "",  # noqa: A002
                description: str = "", href: str = "", height: int = 220, testid: str = "") -> dict:
    spec = spec or {}
    chart_id = spec.get("id") or id
    if not chart_id:
        raise template.TemplateSyntaxError("usher_chart needs a spec or an id")
    empty = spec.get("empty") or empty
    if not empty:  # a page must not fail over a missing message; the log names the chart to fix
        logger.warning("usher_chart %r has no empty message", chart_id)
        empty = "No data yet."
    return {
        "id": chart_id,
        "spec": spec or None,
        "spec_id": f"{chart_id}-spec",
        "title": spec.get("title") or title,
        "empty": empty,
        "empty_now": bool(spec) and not spec.get("points"),
        "points": spec.get("points") if spec else None,
        "description": spec.get("description") or description,
        "href": spec.get("href") or href,
        "height": int(height),
        "testid": testid or f"chart-{chart_id}",
    }
