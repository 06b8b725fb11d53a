"""Every input parsed, never a 500 (issue #14, item 8).

1. The parser itself (``portal.api.params``): what it accepts and refuses, with hypothesis.
2. Crafted values on every GET list endpoint of the API, taken from the OpenAPI schema by each
   parameter's declared type: an impossible month, an offset of +99:00, 2**63, 2**64, -1 where the
   schema says the value is not negative, "null", "1e3", "", Arabic-Indic digits, a very long
   string → 400 naming the parameter; a valid value of the same kind is not blamed.
3. Every portal page without path arguments (from the URL resolver), bare and with crafted
   filters, answers a viewer without a 5xx; list pages say which filter they ignored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import given
from hypothesis import strategies as st

from portal.api.params import INT64_MAX, InvalidParameter, parse_int, parse_int_list, parse_number, parse_time

# --- 1. the parser -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("2024-10-14T15:22", datetime(2024, 10, 14, 15, 22, tzinfo=UTC)),
    ("2022-02-23T19:40:32", datetime(2022, 2, 23, 19, 40, 32, tzinfo=UTC)),
    ("2022-02-08T18:06:56.145104", datetime(2022, 2, 8, 18, 6, 56, 145104, tzinfo=UTC)),
    ("2025-10-17T01:33:45.122692921", datetime(2025, 10, 17, 1, 33, 45, 122692, tzinfo=UTC)),
    ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
    ("2025-01-31T12:00:00+05:30", datetime(2025, 1, 31, 6, 30, tzinfo=UTC)),
    ("2025-01-31T12:00:00-0800", datetime(2025, 1, 31, 20, tzinfo=UTC)),
    ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
    ("0290-02-17T21:26:23-22:58", datetime(290, 2, 18, 20, 24, 23, tzinfo=UTC)),
])
def test_times_in_the_platforms_precisions_are_read_as_utc(raw, expected):
    assert parse_time(raw) == expected and parse_time(raw).tzinfo is UTC


@pytest.mark.parametrize("raw, why", [
    ("2024-13-01T00:00:00", "month must be in 1..12"),
    ("2024-02-30T00:00:00", "day is out of range"),
    ("2024-01-01T24:00:00", "hour must be in 0..23"),
    ("2024-01-01T00:00:00+99:00", "offsets run from -23:59 to +23:59"),
    ("2024-01-01T00:00:00+05:60", "offsets run from -23:59 to +23:59"),
    ("0001-01-01T00:30:00+05:00", "outside the supported time range"),
    ("9999-12-31T23:00:00-05:00", "outside the supported time range"),
    ("2024-01-01T00:00:00 05:00", "%2B05:00"),
    ("٢٠٢٤-01-01", "ISO-8601"),
    ("yesterday", "ISO-8601"),
    ("2024-01-01" + "0" * 5000, "ISO-8601"),
])
def test_impossible_times_are_refused_with_the_reason(raw, why):
    with pytest.raises(InvalidParameter) as caught:
        parse_time(raw)
    assert why in str(caught.value) and len(str(caught.value)) < 300


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
       st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1))
def test_any_real_time_with_any_offset_round_trips(moment, offset_minutes):
    aware = moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert parse_time(aware.isoformat()) == aware


@given(st.text(max_size=60))
def test_the_time_parser_never_raises_anything_else(raw):
    try:
        value = parse_time(raw)
    except InvalidParameter:
        return
    assert value.tzinfo is UTC


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_integers_are_read_within_the_64_bit_range(value):
    if -(2**63) <= value <= INT64_MAX:
        assert parse_int(str(value)) == value
    else:
        with pytest.raises(InvalidParameter, match="must be between"):
            parse_int(str(value))


@pytest.mark.parametrize("raw", ["null", "1e3", "", " ", "١٢", "1_000", "0x10", "1.0", "9" * 5000, "--1"])
def test_what_is_not_a_whole_number_is_refused(raw):
    with pytest.raises(InvalidParameter):
        parse_int(raw)


def test_id_lists_and_numbers():
    assert parse_int_list("1,2, 3") == [1, 2, 3]
    for raw in ("1,null", "1,18446744073709551616", "-1", ",", ",".join(["1"] * 101)):
        with pytest.raises(InvalidParameter):
            parse_int_list(raw)
    assert parse_number("1e3") == 1000.0 and parse_number(".5") == 0.5
    for raw in ("nan", "inf", "-inf", "1e999", "null", "١"):
        with pytest.raises(InvalidParameter):
            parse_number(raw)


# --- 2. crafted values on every GET list endpoint -----------------------------------------------------------

LONG = "9" * 5000
NOW = datetime.now(UTC).replace(microsecond=0)


def _schema() -> dict:
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def _kind(schema: dict) -> str:
    if schema.get("format") == "date-time":
        return "time"
    if schema.get("type") == "array":
        return "ids" if schema.get("items", {}).get("type") == "integer" else "list"
    if "enum" in schema:
        return "enum"
    return schema.get("type", "string")


def _crafted(schema: dict) -> list[str]:
    kind = _kind(schema)
    common = ["", "null", "١٢", LONG]
    if kind == "time":
        return ["2024-13-01T00:00:00", "2024-01-01T00:00:00+99:00", "2024-02-30T12:00", "1e3", *common]
    if kind == "integer":
        negative = ["-1"] if schema.get("minimum", -1) >= 0 else []
        return [str(2**63), str(2**64), *negative, "1e3", *common]
    if kind == "ids":
        return [f"1,{2**64}", "1,null", "-1", "1e3", *common]
    if kind == "number":
        return ["nan", "inf", "null", "", "١٢"]
    if kind == "boolean":
        return ["maybe", "1e3", "null", ""]
    if kind == "enum":
        return ["null", "", LONG]
    return [LONG]  # free text: bounded


def _valid(schema: dict, name: str) -> list[str]:
    kind = _kind(schema)
    if kind == "time":
        back = NOW - timedelta(hours=1)
        return [back.strftime("%Y-%m-%dT%H:%M"), back.strftime("%Y-%m-%dT%H:%M:%S.123456789"),
                back.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()]
    if kind == "integer":
        return [str(max(1, schema.get("minimum", 1)))]
    if kind == "ids":
        return ["1,2,3"]
    if kind == "list":
        return [schema["items"]["enum"][0]] if "enum" in schema["items"] else ["x"]
    if kind == "number":
        return ["1"]
    if kind == "boolean":
        return ["true", "false"]
    if kind == "enum":
        return [schema["enum"][0]]
    return ["x"]


def _list_parameters() -> list[tuple[str, str, dict]]:
    found = []
    for path, item in _schema()["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                found.append((path, parameter["name"], parameter["schema"]))
    return found


PARAMETERS = _list_parameters()


def _label(value: str) -> str:
    return repr(value if len(value) < 30 else f"{value[:6]}…({len(value)} chars)")


def test_the_issue_s_filters_are_covered():
    # The parameters named in the issue are declared with their types, so the crafted values reach them.
    declared = {(path, name): _kind(schema) for path, name, schema in PARAMETERS}
    for path in ("/api/v1/provenance", "/api/v1/monitoring/telemetry", "/api/v1/monitoring/telemetry/minutes",
                 "/api/v1/monitoring/online-quality", "/api/v1/monitoring/feedback", "/api/v1/ingest/quarantine",
                 "/api/v1/ingest/quarantine/counts", "/api/v1/activity"):
        assert declared[(path, "since")] == declared[(path, "until")] == "time", path
    for path, name in [("/api/v1/provenance", "model_version"), ("/api/v1/monitoring/incidents", "rule"),
                       ("/api/v1/monitoring/notifications", "incident"), ("/api/v1/releases/promotions", "version"),
                       ("/api/v1/releases/shadow/comparisons", "version"), ("/api/v1/training-runs", "snapshot"),
                       ("/api/v1/model-versions", "snapshot"), ("/api/v1/audits/runs", "model_version"),
                       ("/api/v1/audits/findings", "run")]:
        assert declared[(path, name)] == "integer", (path, name)
    assert declared[("/api/v1/training-runs/compare", "runs")] == "ids"


@pytest.mark.parametrize("path, name, schema", PARAMETERS, ids=[f"{p}?{n}" for p, n, _ in PARAMETERS])
def test_crafted_values_are_400_naming_the_parameter(client_for, path, name, schema):
    client = client_for("viewer")
    wrong = []
    for value in _crafted(schema):
        # Given a viewer, when a list is asked for with an impossible value for one parameter
        response = client.get(path, {name: value})
        # Then the answer is a 400 whose detail and sentence name that parameter
        body = response.json() if response.status_code < 500 else {}
        if not (response.status_code == 400 and set(body) == {"error", "detail"}
                and isinstance(body["detail"], dict) and name in body["detail"] and f"'{name}'" in body["error"]):
            wrong.append((_label(value), response.status_code, response.content[:200]))
    for value in _valid(schema, name):
        # and a sound value of the same kind is not blamed (another rule may still apply)
        response = client.get(path, {name: value})
        detail = response.json().get("detail") if response.status_code == 400 else None
        if response.status_code >= 500 or (isinstance(detail, dict) and name in detail):
            wrong.append((_label(value), response.status_code, response.content[:200]))
    assert not wrong, wrong


# --- 3. the portal's pages ---------------------------------------------------------------------------------


def _page_urls() -> list[str]:
    """Every GET page without path arguments, outside the API (the schema test covers that)."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    urls = set()
    for route in walk(get_resolver().url_patterns, ""):
        if any(c in route for c in "<(^$\\") or route.startswith(("api/", "metrics")):
            continue
        if route.endswith(("logout/",)):  # a POST-only page
            continue
        urls.add("/" + route)
    return sorted(urls)


PAGES = _page_urls()
CRAFTED_PAGE_QUERY = {"since": "2024-13-01T00:00:00", "until": "2024-01-01T00:00:00+99:00",
                      "model_version": "99999999999999999999", "snapshot": str(2**64), "version": "١٢",
                      "rule": "-1", "incident": "null", "runs": "1,18446744073709551616", "year": str(2**64),
                      "id": str(2**64), "viewer": str(2**64), "status": LONG, "hours": "nan", "page": str(2**64),
                      "baseline": "nan", "mde": "inf", "alpha": "1e999", "power": "null", "name": LONG,
                      "try_viewer": LONG, "source": "\x00", "q": LONG, "kind": "null", "severity": "١٢"}


def test_the_walk_finds_the_list_pages():
    for page in ("/portal/serving/provenance/", "/portal/ingestion/quarantine/", "/portal/activity/",
                 "/portal/monitoring/incidents/", "/portal/training/runs/", "/portal/audits/findings/"):
        assert any(url.startswith(page) for url in PAGES), page


@pytest.mark.parametrize("url", PAGES)
def test_portal_pages_answer_a_viewer_without_a_server_error(web_client_for, url):
    client = web_client_for("viewer")
    # Given a viewer, when they open the page bare and with crafted filters
    assert client.get(url).status_code < 500
    response = client.get(url, CRAFTED_PAGE_QUERY)
    # Then neither answer is a 5xx
    assert response.status_code < 500, url


@pytest.mark.parametrize("url, name, value", [
    ("/portal/serving/provenance/", "since", "2024-13-01T00:00:00"),
    ("/portal/serving/provenance/", "model_version", "99999999999999999999"),
    ("/portal/ingestion/quarantine/", "until", "2024-01-01T00:00:00+99:00"),
    ("/portal/training/runs/", "snapshot", str(2**64)),
    ("/portal/training/compare/", "snapshot", "١٢"),
    ("/portal/catalog/", "year", str(2**64)),
    ("/portal/catalog/viewers/", "id", "1e3"),
    ("/portal/monitoring/online-quality/", "hours", "nan"),
    ("/portal/monitoring/incidents/", "status", "null"),
    ("/portal/audits/findings/", "severity", "null"),
])
def test_list_pages_name_the_filter_they_ignored(web_client_for, url, name, value):
    # Given a viewer, when a list page gets an impossible filter value
    response = web_client_for("viewer").get(url, {name: value})
    # Then the page is shown (without that filter) with a message naming the parameter
    assert response.status_code == 200
    assert f"Filter &#x27;{name}&#x27; was ignored" in response.content.decode()
