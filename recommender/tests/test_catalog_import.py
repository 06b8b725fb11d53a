"""import_catalog: schema, coercion, range checks, quarantine, enrichment of stubs, idempotency, HTTP fetch."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from portal.models import ActivityLogEntry
from recommender.catalog import services
from recommender.catalog.schema import RecordError, validate_movie, validate_viewer
from recommender.models import Movie, QuarantinedLine, Viewer

MOVIE = {
    "id": "the+shawshank+redemption+1994", "tmdb_id": 278, "imdb_id": "tt0111161",
    "title": "The Shawshank Redemption", "original_title": "The Shawshank Redemption", "adult": "False",
    "genres": [{"id": 18, "name": "Drama"}, {"id": 80, "name": "Crime"}], "release_date": "1994-09-23",
    "runtime": "142", "original_language": "en", "popularity": "4.02059", "vote_average": 8.5,
    "vote_count": "8358", "budget": "25000000", "revenue": 28341469, "status": "Released",
    "homepage": "", "belongs_to_collection": {},
}
VIEWER = {"user_id": "284508", "age": "34", "occupation": "technician/engineer", "gender": "M"}


def test_movie_record_coerces_numbers_sent_as_strings():
    clean = validate_movie(MOVIE)
    assert clean["popularity"] == pytest.approx(4.02059)
    assert clean["runtime"] == 142 and clean["vote_count"] == 8358 and clean["budget"] == 25_000_000
    assert clean["adult"] is False and clean["genres"] == ["Drama", "Crime"]
    assert clean["release_date"] == date(1994, 9, 23) and clean["year"] == 1994
    assert clean["extra"] == {"homepage": "", "belongs_to_collection": {}}


def test_viewer_record_coerces_id_and_age():
    assert validate_viewer(VIEWER) == {"id": 284508, "age": 34, "occupation": "technician/engineer", "gender": "M"}


@pytest.mark.parametrize(
    ("change", "reason", "code"),
    [
        ({"vote_average": 11.5}, "vote_average 11.5 outside 0–10", "catalog.out_of_range"),
        ({"runtime": "-5"}, "runtime '-5' outside 0–1000", "catalog.out_of_range"),
        ({"popularity": "lots"}, "popularity 'lots' is not a number", "catalog.bad_number"),
        ({"popularity": "NaN"}, "popularity 'NaN' is not a finite number", "catalog.bad_number"),
        ({"release_date": "2022-13-01"}, "release_date '2022-13-01' is not a date (YYYY-MM-DD)", "catalog.bad_date"),
        ({"release_date": "1066-10-14"}, "release_date 1066-10-14 outside 1870–2100", "catalog.out_of_range"),
        ({"id": None}, "movie record has no id", "catalog.missing_field"),
        ({"id": "two words"}, "id 'two words' is not a movie id (a slug without spaces)", "catalog.bad_value"),
        ({"genres": "Drama"}, "genres 'Drama' is not a list", "catalog.bad_value"),
    ],
)
def test_bad_movie_fields_are_named(change, reason, code):
    with pytest.raises(RecordError) as err:
        validate_movie({**MOVIE, **change})
    assert err.value.reason == reason and err.value.code == code


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"age": 300}, "age 300 outside 5–110"),
        ({"age": "12.5"}, "age '12.5' is not a whole number"),
        ({"gender": "X"}, "gender 'X' is not M or F"),
        ({"user_id": "abc"}, "user_id 'abc' is not a number"),
    ],
)
def test_bad_viewer_fields_are_named(change, reason):
    with pytest.raises(RecordError, match="^" + reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$"):
        validate_viewer({**VIEWER, **change})


def _write(tmp_path, rows) -> str:
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


@pytest.mark.django_db
def test_file_import_stores_good_records_quarantines_bad_and_is_idempotent(tmp_path):
    # Given a stub viewer and movie, as the event stream creates them, and a file with good and bad records
    Viewer.objects.create(id=284508)
    Movie.objects.create(id="the+shawshank+redemption+1994")
    path = _write(tmp_path, [
        VIEWER, MOVIE, {"user_id": 7, "age": 300, "gender": "F"}, "{not json", {"name": "nothing"},
        {"id": "audition+1999", "title": "Audition", "vote_average": "7.1", "release_date": "1999-10-06"},
    ])
    # When it is imported
    summary = services.catalog_import_file(path=path, system="test")
    # Then the stubs are enriched, the new movie created, and each bad record quarantined with a reason
    assert summary.as_dict() | {"reasons": None} == {
        "records": 6, "viewers_created": 0, "viewers_updated": 1, "movies_created": 1, "movies_updated": 1,
        "unchanged": 0, "quarantined": 3, "reasons": None,
    }
    viewer = Viewer.objects.get(id=284508)
    assert (viewer.age, viewer.gender, viewer.occupation) == (34, "M", "technician/engineer")
    assert viewer.enriched_at is not None
    movie = Movie.objects.get(id="the+shawshank+redemption+1994")
    assert movie.title == "The Shawshank Redemption" and movie.popularity == pytest.approx(4.02059)
    assert Movie.objects.get(id="audition+1999").year == 1999
    quarantined = {q.position: (q.reason, q.reason_code, q.source) for q in QuarantinedLine.objects.all()}
    assert quarantined["3"][:2] == ("age 300 outside 5–110", "catalog.out_of_range")
    assert quarantined["4"][1] == "catalog.bad_json" and quarantined["4"][0].startswith("not valid JSON")
    assert quarantined["5"][:2] == ("record is neither a viewer (user_id) nor a movie (id)", "catalog.unknown_record")
    assert quarantined["3"][2] == f"catalog:{path}"
    enriched_at = viewer.enriched_at

    # When the same file is imported again, nothing changes
    again = services.catalog_import_file(path=path, system="test")
    assert (again.viewers_created, again.viewers_updated, again.movies_created, again.movies_updated) == (0, 0, 0, 0)
    assert again.unchanged == 3 and again.quarantined == 3
    assert QuarantinedLine.objects.count() == 3
    assert Viewer.objects.get(id=284508).enriched_at == enriched_at
    assert ActivityLogEntry.objects.filter(action="catalog.imported").count() == 2


@pytest.mark.django_db
def test_a_changed_record_updates_only_that_row(tmp_path):
    services.catalog_import_file(path=_write(tmp_path, [VIEWER, MOVIE]), system="test")
    summary = services.catalog_import_file(path=_write(tmp_path, [{**VIEWER, "age": 35}, MOVIE]), system="test")
    assert (summary.viewers_updated, summary.movies_updated, summary.unchanged) == (1, 0, 1)
    assert Viewer.objects.get(id=284508).age == 35


@pytest.mark.django_db
def test_command_prints_summary(tmp_path, capsys):
    call_command("import_catalog", _write(tmp_path, [VIEWER, {"user_id": 1, "gender": "Q"}]), "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["viewers_created"] == 1 and out["reasons"] == {"catalog.bad_value": 1}


class _Platform(BaseHTTPRequestHandler):
    """A tiny stand-in for the platform's metadata API with faults on cue."""

    records: dict[str, dict] = {}
    flaky: dict[str, int] = {}  # path -> how many 503s to answer before succeeding
    paths_seen: list[str] = []
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            self.paths_seen.append(self.path)
            left = self.flaky.get(self.path, 0)
            if left:
                self.flaky[self.path] = left - 1
        if left:
            self.send_response(503 if left % 2 else 429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        record = self.records.get(self.path)
        if record is None:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def platform():
    _Platform.records = {
        f"/user/{i}": {"user_id": i, "age": str(20 + i), "gender": "MF"[i % 2], "occupation": "writer"}
        for i in range(1, 21)
    }
    _Platform.records["/movie/monsters_+inc.+2001"] = {"id": "monsters_+inc.+2001", "title": "Monsters, Inc.",
                                                       "runtime": "92", "release_date": "2001-11-01"}
    _Platform.records["/user/13"] = {"user_id": 13, "age": 999}
    _Platform.flaky = {"/user/3": 2, "/user/4": 1}
    _Platform.paths_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_url_import_retries_rate_limits_and_quarantines(platform):
    # Given stub viewers 1..22 (21 and 22 unknown to the platform) and a stub movie
    Viewer.objects.bulk_create([Viewer(id=i) for i in range(1, 23)])
    Movie.objects.create(id="monsters_+inc.+2001")
    # When the stubs are fetched with 4 in flight and retries
    call_command("import_catalog", "--base-url", platform, "--concurrency", "4", "--rate", "200", "--retries", "3")
    # Then flaky answers were retried, and the rest stored or quarantined
    assert _Platform.paths_seen.count("/user/3") == 3 and _Platform.paths_seen.count("/user/4") == 2
    assert Viewer.objects.filter(enriched_at__isnull=False).count() == 19
    assert Viewer.objects.get(id=3).age == 23
    assert Movie.objects.get(id="monsters_+inc.+2001").runtime == 92
    reasons = dict(QuarantinedLine.objects.values_list("position", "reason"))
    assert reasons == {"/user/13": "age 999 outside 5–110", "/user/21": "GET /user/21: HTTP 404",
                       "/user/22": "GET /user/22: HTTP 404"}


@pytest.mark.django_db(transaction=True)
def test_url_import_gives_up_after_retries(platform):
    _Platform.flaky = {"/user/5": 10}
    summary = services.catalog_import_url(base_url=platform, viewer_ids=[5], retries=2, rate_per_s=0, system="test")
    assert summary.quarantined == 1
    q = QuarantinedLine.objects.get()
    assert q.reason == "GET /user/5 failed after 3 attempts: HTTP 429" and q.reason_code == "catalog.fetch_failed"


def test_rate_limiter_spaces_request_starts():
    import time

    from recommender.catalog.http import RateLimiter

    # A lower bound only (a sleep never ends early), so a slow machine cannot make this fail.
    limiter = RateLimiter(rate_per_s=50)
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - started >= 10 / 50


@pytest.mark.django_db
def test_refuses_a_connection_gracefully():
    summary = services.catalog_import_url(base_url="http://127.0.0.1:9", viewer_ids=[1], retries=1, rate_per_s=0,
                                          system="test")
    assert summary.quarantined == 1
    assert "connection failed" in QuarantinedLine.objects.get().reason
