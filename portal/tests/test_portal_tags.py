"""The portal's template filters for figures, evidence, labels and links (portal/templatetags/portal_tags.py)."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template

from portal.templatetags.portal_tags import bytes_text, num, params_text, percent, seconds_text, value_text


@pytest.mark.parametrize(("value", "text"), [
    (0.6325110689437059, "0.6325"), (0.2852751630000512, "0.2853"), (12.345678, "12.35"), (1234.5678, "1,235"),
    (258392064.0, "258,392,064"), (2.0, "2"), (5, "5"), (4245, "4245"), (123456, "123,456"),
    (3e-06, "3.00e-06"), (0.00012345, "1.23e-04"), (-0.5, "-0.5"), (None, "—"), ("abc", "abc"), ("0.125", "0.125"),
])
def test_num_keeps_at_most_four_decimals(value, text):
    assert num(value) == text


def test_units():
    assert bytes_text(258392064) == "246.4 MiB"
    assert bytes_text(512) == "512 B"
    assert bytes_text(3 * 1024**3) == "3.0 GiB"
    assert seconds_text(0.2852751630000512) == "285 ms"
    assert seconds_text(4.31) == "4.3 s"
    assert seconds_text(252) == "4.2 min"
    assert seconds_text(7200) == "2.0 h"
    assert percent(0.6325110689437059) == "63.3 %"
    assert percent(0.5, 0) == "50 %"


def test_value_text_reads_the_unit_from_the_name():
    assert value_text(258392064.0, "peak_memory_bytes") == "246.4 MiB"
    assert value_text(0.2852751630000512, "total_seconds") == "285 ms"
    assert value_text(12.5, "latency_p99_ms") == "12.5 ms"
    assert value_text(14245, "model_version") == "14245"
    assert value_text(True, "ok") == "yes"
    assert value_text([0.123456, 2], "band") == "0.1235, 2"


def test_params_text_has_no_python_repr():
    text = params_text({"a": {"b": 0.123456789, "c": ["x", "y"]}, "rows": [{"k": 1}], "d": None})
    assert text == "a: (b: 0.1235; c: x, y); rows: (k: 1); d: —"
    assert "{" not in text and "'" not in text


@pytest.mark.django_db
def test_evidence_table_links_ids_and_formats_figures():
    evidence = {"model_version": 12, "ratio": 0.6325110689437059, "peak_memory_bytes": 258392064.0,
                "blocking_findings": [{"id": 5, "title": "26 ratings", "share": 0.41234567}],
                "skipped_runs": [{"run": 7, "reason": "exploratory"}], "window": {"hours": 24, "nested": {"x": [1, 2]}},
                "incident": 3, "rollout": 4, "promotion": 8, "snapshot": 9, "experiment": 10, "drift_report": 11}
    html = Template('{% load portal_tags %}{% evidence_table evidence "audits" %}').render(
        Context({"evidence": evidence}))
    for href in ("/portal/registry/versions/12/", "/portal/audits/findings/5/", "/portal/audits/runs/7/",
                 "/portal/monitoring/incidents/3/", "/portal/releases/rollouts/4/", "/portal/releases/promotions/8/",
                 "/portal/training/snapshots/9/", "/portal/releases/experiments/10/", "/portal/monitoring/drift/11/"):
        assert f'href="{href}"' in html, href
    text = re.sub(r"<[^>]+>", " ", html)
    assert "0.6325" in text and "246.4 MiB" in text and "0.4123" in text and "26 ratings" in text
    assert not re.search(r"\d\.\d{5,}", text)
    assert "{" not in text and "&#x27;" not in text
    # outside the audits, ``run`` is a training run
    html = Template("{% load portal_tags %}{% evidence_table evidence %}").render(Context({"evidence": {"run": 7}}))
    assert 'href="/portal/training/runs/7/"' in html
    assert "No evidence recorded" in Template("{% load portal_tags %}{% evidence_table e %}").render(Context({"e": {}}))


def test_evidence_table_escapes_text():
    html = Template("{% load portal_tags %}{% evidence_table e %}").render(Context({"e": {"t": "<script>x</script>"}}))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_labels_of_kinds_checks_and_verbs():
    out = Template("{% load portal_tags %}{{ a|label }}|{{ b|label }}|{{ c|label }}|{{ d|label }}").render(Context({
        "a": "audits.run_signoff", "b": "security.rating_velocity", "c": "review.approve", "d": "thing.was_done"}))
    assert out == "Audit sign-off|Rating velocity|Review approved|Thing was done"


@pytest.mark.django_db
def test_target_link_names_and_links_an_object_with_a_page():
    html = Template("{% load portal_tags %}{% target_link t i %}").render(
        Context({"t": "recommender.promotionrequest", "i": "42"}))
    assert html == '<a class="text-primary-600" href="/portal/releases/promotions/42/">promotion request #42</a>'
    plain = Template("{% load portal_tags %}{% target_link t i %}").render(Context({"t": "demo.thing", "i": "1"}))
    assert plain == "thing #1"


def test_a_figure_in_its_unit_drops_the_unit_from_its_name():
    html = Template("{% load portal_tags %}{% evidence_table e %}").render(
        Context({"e": {"window_seconds": 300, "peak_memory_bytes": 258392064, "label_seconds": "n/a"}}))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Window 5.0 min" in text and "Peak memory 246.4 MiB" in text and "Label seconds n/a" in text


@pytest.mark.django_db
def test_a_review_of_the_audits_links_its_run_to_the_audit_run():
    html = Template("{% load portal_tags %}{% evidence_table e kind %}").render(
        Context({"e": {"run": 7, "findings": [{"id": 5}], "production": 3}, "kind": "audits.run_signoff"}))
    assert 'href="/portal/audits/runs/7/"' in html and 'href="/portal/audits/findings/5/"' in html
    assert 'href="/portal/registry/versions/3/"' in html


def test_when_reads_an_exported_moment():
    from portal.templatetags.portal_tags import when

    assert when("2026-12-07T15:18:19.029922+00:00") == "2026-12-07 15:18:19"
    assert when(None) == "—" and when("not a date") == "not a date"


def test_kwargs_text():
    from portal.templatetags.portal_tags import kwargs_text

    assert kwargs_text('{"kind": "fairness"}') == "kind: fairness"
    assert kwargs_text("{}") == "" and kwargs_text("not json") == "not json"


# --- statuses in words and filter bars ---------------------------------------------------------------------


def _render(text: str, **context) -> str:
    return Template("{% load portal_tags %}" + text).render(Context(context))


def test_a_status_badge_shows_the_fields_label_and_keeps_the_machine_name_for_tests():
    from releases.models import PromotionRequest, Rollout

    html = _render('{% status_badge p "status" %}', p=PromotionRequest(status="rolling_out"))
    assert re.search(r'data-status="rolling_out"[^>]*>Canary running</span>', html), html
    assert 'data-tone="wait"' in html and "rolling_out<" not in html
    html = _render('{% status_badge r "state" %}', r=Rollout(state="rolled_back"))
    assert ">Rolled back</span>" in html and 'data-tone="bad"' in html


@pytest.mark.parametrize(("value", "text"), [
    ("awaiting_review", "Awaiting review"), ("invalid_srm", "Invalid srm"), ("ship:svd_pp", "Ship svd_pp"),
    ("open", "Open"), ("", "—"), (None, "—"),
])
def test_a_stored_value_outside_any_choices_reads_in_words(value, text):
    from portal.templatetags.portal_tags import choice_text

    assert choice_text(value) == text
    assert _render("{% status_badge v %}", v=value).endswith(f">{text}</span>")


def test_display_prefers_the_choice_label_and_reads_a_dict():
    from recommender.models import TrainingRun
    from releases.models import ReleaseGateCheck

    assert _render('{{ c|display:"outcome" }}', c=ReleaseGateCheck(outcome="waived")) == "Passed (findings waived)"
    assert _render('{{ r|display:"origin" }}', r=TrainingRun(origin="scheduled")) == "Scheduled"
    assert _render('{{ e|display:"verdict" }}', e={"verdict": "requires_auth"}) == "Requires auth"


def test_a_filter_select_is_unfolds_with_labels_and_keeps_the_choice():
    from portal.forms import Select

    html = _render('{% filter_select "status" value choices "any status" %}', value="gate_pending",
                   choices=[("gate_pending", "gate queued"), ("approved", "approved")])
    assert Select().attrs["class"].split()[0] in html and 'name="status"' in html
    assert re.search(r'<option value="gate_pending" selected>Gate queued</option>', html), html
    assert '<option value="">any status</option>' in html
    names = _render('{% filter_select "genre" "" genres "any genre" names=True %}', genres=["Sci-Fi", "film_noir"])
    assert ">film_noir</option>" in names  # a name is shown as written
    box = _render('{% filter_checkbox "failing" True "with an error" %}')
    assert 'name="failing"' in box and 'value="true"' in box and "checked" in box
