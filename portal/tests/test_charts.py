"""The portal's one chart helper: specs carry axis titles with units and an empty message; the
include renders either a canvas with data or the empty state, never a blank canvas."""

import pytest
from django.template import Context, Template, TemplateSyntaxError

from portal.charts import chart_spec, count_points


def _spec(**kw) -> dict:
    args = {"title": "Latency", "labels": ["10:00", "11:00"], "datasets": [{"label": "p95", "data": [12.5, None]}],
            "x_title": "hour", "x_unit": "UTC", "y_title": "latency", "y_unit": "ms",
            "empty": "No data yet — the platform's requests are measured here."}
    return chart_spec(**{**args, **kw})


def _render(text: str, **context) -> str:
    return Template("{% load portal_charts %}" + text).render(Context(context))


def test_a_spec_has_axis_titles_with_units_and_counts_its_points():
    spec = _spec()
    assert spec["x"]["title"] == "hour (UTC)" and spec["y"]["title"] == "latency (ms)" and spec["y"]["unit"] == "ms"
    assert spec["points"] == 1 and spec["id"] == "latency" and "integer" not in spec["y"]
    assert _spec(y_integer=True)["y"]["integer"] is True


@pytest.mark.parametrize("field", ["x_title", "y_title", "empty", "title"])
def test_a_spec_without_an_axis_title_or_an_empty_message_is_refused(field):
    with pytest.raises(ValueError, match=field):
        _spec(**{field: ""})


def test_guides_and_zero_counts_are_not_data():
    datasets = [{"label": "n", "data": [0, 0, None]}, {"label": "limit", "guide": True, "data": [5, 5, 5]}]
    assert count_points(datasets) == 2 and count_points(datasets, zero_is_empty=True) == 0
    assert _spec(datasets=datasets, zero_is_empty=True)["points"] == 0


def test_values_above_the_cap_are_drawn_at_the_cap_and_kept_for_the_tooltip():
    spec = _spec(datasets=[{"label": "score", "data": [0.4, 150.0, None]}], y_cap=5)
    assert spec["datasets"][0]["data"] == [0.4, 5, None] and spec["datasets"][0]["raw"] == [0.4, 150.0, None]


def test_an_empty_spec_renders_the_empty_state_and_no_spec_to_draw():
    spec = _spec(datasets=[{"label": "p95", "data": [None, None]}])
    html = _render("{% usher_chart spec %}", spec=spec)
    assert 'data-chart="latency"' in html and 'data-chart-points="0"' in html
    assert "<p " in html and "data-chart-empty>No data yet — the platform&#x27;s requests are measured here.</p>" in html
    assert "canvas" in html and " hidden" in html and 'id="latency-spec"' not in html


def test_a_spec_with_data_renders_a_canvas_and_its_spec_for_charts_js():
    html = _render("{% usher_chart spec %}", spec=_spec())
    assert 'data-chart-points="1"' in html and "data-chart-empty" not in html
    assert 'data-usher-chart="latency-spec"' in html and '<script id="latency-spec" type="application/json">' in html


def test_a_chart_drawn_by_a_page_script_names_its_empty_message():
    html = _render('{% usher_chart id="rate" title="Rate" empty="No data yet — lists are being served." %}')
    assert 'data-chart="rate"' in html and 'data-empty-message="No data yet — lists are being served."' in html
    assert '<canvas id="rate"' in html and "data-usher-chart" not in html
    # a missing message is logged, and the page still says something rather than failing
    assert 'data-empty-message="No data yet."' in _render('{% usher_chart id="rate" title="Rate" empty=nothing %}')
    with pytest.raises(TemplateSyntaxError, match="spec or an id"):
        _render('{% usher_chart title="Rate" %}')


def test_every_dashboard_chart_builder_gives_axes_and_an_empty_message(rf, users):
    from portal.contrib import app_modules
    from portal.dashboard import _portal_charts

    request = rf.get("/portal/")
    request.user = users["viewer"]
    builders = [_portal_charts] + [m.charts for m in app_modules("dashboard") if hasattr(m, "charts")]
    raws = [raw for build in builders for raw in build(request)]
    assert len(raws) >= 5
    for raw in raws:
        spec = chart_spec(title=raw["title"], kind=raw["type"], labels=raw["data"]["labels"],
                          datasets=raw["data"]["datasets"], x_title=raw.get("x_title", ""),
                          y_title=raw.get("y_title", ""), y_unit=raw.get("y_unit", ""), empty=raw.get("empty", ""))
        assert spec["empty"].startswith("No data yet — ") and spec["y"]["title"], raw["title"]


def test_the_dashboard_of_an_empty_portal_says_why_each_chart_is_empty(web_client_for):
    import re

    from django.urls import reverse

    html = web_client_for("viewer").get(reverse("admin:index")).content.decode()
    boxes = re.findall(r'<section[^>]*data-chart="([^"]+)"[^>]*data-chart-points="(\d+)"[^>]*>(.*?)</section>', html, re.S)
    assert len(boxes) >= 5
    for chart_id, points, body in boxes:
        assert int(points) > 0 or re.search(r"data-chart-empty>No data yet — \w", body), chart_id
    # with nothing logged and no request served, the counts and the traffic are empty states
    empty = {chart_id for chart_id, points, _ in boxes if points == "0"}
    assert any(i.startswith("dashboard-monitoring-recommendation-requests") for i in empty), empty
