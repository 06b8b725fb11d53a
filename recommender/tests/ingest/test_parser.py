"""The event-line parser: every quirk of the platform's format, round trips, and no input that makes it raise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recommender.ingest.parser import (
    RatingEvent,
    RecommendationEvent,
    Rejected,
    WatchEvent,
    format_event,
    format_time,
    parse_line,
    parse_time,
)

# --- strategies ------------------------------------------------------------------------------
slug_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789+_.-'&!:")
slugs = st.text(slug_chars, min_size=1, max_size=60)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
) | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(second=0, microsecond=0)  # the minute-precision form
)
user_ids = st.integers(min_value=0, max_value=2**63 - 1)
servers = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.-:"), min_size=1, max_size=40)
# Error texts of failed calls: anything on one line, ':' and ',' included.
errors = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")) | st.sampled_from(":,"), max_size=80).map(
    str.strip
)

ratings = st.builds(RatingEvent, times, user_ids, slugs, st.integers(1, 5))
watches = st.builds(WatchEvent, times, user_ids, slugs, st.integers(0, 100_000))
ok_recommendations = st.builds(
    RecommendationEvent,
    times,
    user_ids,
    servers,
    st.just(200),
    st.lists(slugs, max_size=20).map(tuple),
    st.integers(0, 2**31 - 1),
    st.just(""),
)
failed_recommendations = st.builds(
    RecommendationEvent,
    times,
    user_ids,
    servers,
    st.sampled_from([0, 404, 500, 503]),
    st.just(()),
    st.integers(0, 2**31 - 1),
    errors,
)
events = ratings | watches | ok_recommendations | failed_recommendations


@settings(max_examples=500)
@given(events)
def test_valid_events_round_trip_through_format_and_parse(event) -> None:
    line = format_event(event)
    assert parse_line(line) == event
    assert format_event(parse_line(line)) == line


@settings(max_examples=1000)
@given(st.text(max_size=300))
@example("\x00,\x00,\x00")
@example("2022-02-08T18:06:56,1,GET /rate/caf\udce9+1999=3")
@example("2022-02-08T18:06:56.145104,1,recommendation request , status , result:, ms")
@example("2022-02-08T18:06:56,99999999999999999999,GET /rate/x=1")
@example("9999-12-31T23:59:59.999999999,1,GET /rate/x=1")
@example("2022-02-08T18:06:56,1,GET /data/m/" + "x" * 20_000 + "/1.mpg")
def test_no_input_makes_the_parser_raise(text: str) -> None:
    result = parse_line(text)
    assert isinstance(result, RatingEvent | WatchEvent | RecommendationEvent | Rejected)
    if isinstance(result, Rejected):
        assert result.reason and result.code.isidentifier()


@settings(max_examples=300)
@given(events, st.integers(0, 200), st.text(max_size=5))
def test_mutated_lines_never_raise(event, cut: int, junk: str) -> None:
    line = format_event(event)
    for variant in (line[:cut], line[cut:], line[:cut] + junk + line[cut:]):
        assert parse_line(variant) is not None


# --- the quirks in DESIGN.md -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-02-08T18:06:56.145104", datetime(2022, 2, 8, 18, 6, 56, 145104, tzinfo=UTC)),
        ("2025-10-17T01:33:45.122692921", datetime(2025, 10, 17, 1, 33, 45, 122692, tzinfo=UTC)),
        ("2022-02-23T19:40:32", datetime(2022, 2, 23, 19, 40, 32, tzinfo=UTC)),
        ("2024-10-14T15:22", datetime(2024, 10, 14, 15, 22, tzinfo=UTC)),
        ("2022-02-08T18:06:56.1", datetime(2022, 2, 8, 18, 6, 56, 100000, tzinfo=UTC)),
    ],
)
def test_timestamp_precisions(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2022-13-01T00:00",
        "2022-02-30T10:00",
        "2022-02-08 18:06:56",
        "2022-02-08T18:06:56Z",
        "2022-02-08",
        "2022-02-08T18:06:56.",
        "2022-02-08T18:06:56.1234567890",
        "２０２２-02-08T18:06",
        "2022-02-08T24:00",
    ],
)
def test_bad_timestamps_are_rejected(text: str) -> None:
    assert parse_time(text) is None
    result = parse_line(f"{text},1,GET /rate/x+1999=3")
    assert isinstance(result, Rejected) and result.code == "bad_timestamp"
    assert "bad timestamp '" in result.reason


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2024, 10, 14, 15, 22, tzinfo=UTC), "2024-10-14T15:22"),
        (datetime(2022, 2, 23, 19, 40, 32, tzinfo=UTC), "2022-02-23T19:40:32"),
        (datetime(2022, 2, 8, 18, 6, 0, 145104, tzinfo=UTC), "2022-02-08T18:06:00.145104"),
        (datetime(7, 1, 2, 3, 4, tzinfo=UTC), "0007-01-02T03:04"),
    ],
)
def test_format_time_drops_zero_seconds(when: datetime, text: str) -> None:
    assert format_time(when) == text


def test_rating_line() -> None:
    assert parse_line("2022-02-25T13:38:49,284508,GET /rate/audition+1999=3") == RatingEvent(
        datetime(2022, 2, 25, 13, 38, 49, tzinfo=UTC), 284508, "audition+1999", 3
    )


@pytest.mark.parametrize(
    "slug", ["monsters_+inc.+2001", "rosencrantz++guildenstern+are+dead+1991", "plynimurikauppiaat+"]
)
def test_odd_slugs_are_accepted(slug: str) -> None:
    watch = parse_line(f"2024-10-14T15:22,7,GET /data/m/{slug}/41.mpg")
    assert watch == WatchEvent(datetime(2024, 10, 14, 15, 22, tzinfo=UTC), 7, slug, 41)
    rating = parse_line(f"2024-10-14T15:22,7,GET /rate/{slug}=5")
    assert isinstance(rating, RatingEvent) and rating.movie_id == slug


def test_successful_recommendation_line() -> None:
    line = (
        "2022-02-08T18:06:56.145104,123,recommendation request 17645-team05.isri.cmu.edu:8082, status 200, "
        "result: monsters_+inc.+2001, rosencrantz++guildenstern+are+dead+1991, plynimurikauppiaat+, 286 ms"
    )
    event = parse_line(line)
    assert event == RecommendationEvent(
        datetime(2022, 2, 8, 18, 6, 56, 145104, tzinfo=UTC),
        123,
        "17645-team05.isri.cmu.edu:8082",
        200,
        ("monsters_+inc.+2001", "rosencrantz++guildenstern+are+dead+1991", "plynimurikauppiaat+"),
        286,
        "",
    )


def test_failed_recommendation_keeps_error_text_full_of_colons_and_commas() -> None:
    error = "java.net.ConnectException: Connection refused (Connection refused), at host: 10.0.0.1:8082, retry: no"
    line = f"2022-02-23T19:40:32,42,recommendation request fall2022-team03.isri.cmu.edu:8082, status 0, result: {error}, 600 ms"
    event = parse_line(line)
    assert isinstance(event, RecommendationEvent)
    assert (event.status, event.error, event.movie_ids, event.response_ms) == (0, error, (), 600)


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        ("", "empty", "empty line"),
        ("2022-02-25T13:38:49,284508", "missing_fields", "missing fields: expected <time>,<userid>,<request>"),
        ("2022-02-25T13:38:49,284508,GET /rate/audition+1999=7", "rating_out_of_range", "rating 7 outside 1–5"),
        ("2022-02-25T13:38:49,284508,GET /rate/audition+1999=0", "rating_out_of_range", "rating 0 outside 1–5"),
        ("2022-02-25T13:38:49,284508,GET /rate/audition+1999=3.5", "bad_rating", "bad rating '3.5'"),
        (
            "2022-02-25T13:38:49,284508,GET /rate/audition+1999",
            "bad_rate_request",
            "bad rate request 'GET /rate/audition+1999': no '='",
        ),
        ("2022-02-25T13:38:49,284508,GET /rate/=3", "bad_movie_id", "bad movie id ''"),
        ("2022-02-25T13:38:49,abc,GET /rate/audition+1999=3", "bad_user_id", "bad user id 'abc'"),
        ("2022-02-25T13:38:49,-5,GET /rate/audition+1999=3", "bad_user_id", "bad user id '-5'"),
        ("2022-13-01T13:38:49,1,GET /rate/audition+1999=3", "bad_timestamp", "bad timestamp '2022-13-01T13:38:49'"),
        (
            "2022-02-25T13:38:49,1,GET /data/m/audition+1999/12",
            "bad_watch_request",
            "bad watch request 'GET /data/m/audition+1999/12'",
        ),
        ("2022-02-25T13:38:49,1,GET /data/m/audition+1999/x.mpg", "bad_minute", "bad minute 'x'"),
        ("2022-02-25T13:38:49,1,GET /data/m/audition 1999/3.mpg", "bad_movie_id", "bad movie id 'audition 1999'"),
        (
            "2022-02-25T13:38:49,1,POST /rate/audition+1999=3",
            "unknown_type",
            "unknown line type 'POST /rate/audition+1999=3'",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082",
            "truncated_recommendation",
            "truncated recommendation line: no status",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status 200",
            "truncated_recommendation",
            "truncated recommendation line: no result",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status 200, result: a+1, b+2",
            "truncated_recommendation",
            "truncated recommendation line: last field is not '<n> ms'",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status 200, result: a+1, b+",
            "truncated_recommendation",
            "truncated recommendation line: last field is not '<n> ms'",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status 200, result: a+1, x ms",
            "bad_response_time",
            "bad response time 'x ms'",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status abc, result: a+1, 3 ms",
            "bad_status",
            "bad status 'abc'",
        ),
        (
            "2022-02-25T13:38:49,1,recommendation request s1:8082, status 200, result: a+1,b+2, 3 ms",
            "bad_movie_id",
            "bad movie id 'a+1,b+2' in recommendation result",
        ),
    ],
)
def test_rejections_name_what_was_wrong(line: str, code: str, reason: str) -> None:
    assert parse_line(line) == Rejected(reason, code)


def test_long_lines_are_rejected_without_echoing_them() -> None:
    result = parse_line("2022-02-25T13:38:49,1,GET /rate/" + "a" * 20_000 + "=3")
    assert isinstance(result, Rejected) and result.code == "too_long" and len(result.reason) < 80


def test_surrounding_whitespace_and_crlf_are_ignored() -> None:
    assert isinstance(parse_line("  2022-02-25T13:38:49,284508,GET /rate/audition+1999=3\r\n"), RatingEvent)
