"""Catalog pages and REST endpoints: wiring, filters, shapes, query counts, navigation; one browser test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from recommender import models

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    movies = [
        models.Movie(id="the+shawshank+redemption+1994", title="The Shawshank Redemption", year=1994,
              genres=["Drama", "Crime"], runtime=142, enriched_at=T0),
        models.Movie(id="monsters_+inc.+2001", title="Monsters, Inc.", year=2001, genres=["Animation", "Family"],
              runtime=92, enriched_at=T0),
        models.Movie(id="audition+1999"),
    ] + [models.Movie(id=f"filler+{i}+2000", title=f"Filler {i}", year=2000, genres=["Comedy"]) for i in range(30)]
    models.Movie.objects.bulk_create(movies)
    models.Viewer.objects.bulk_create([models.Viewer(id=284508, age=34, gender="M", occupation="writer", enriched_at=T0)]
                               + [models.Viewer(id=i) for i in range(1, 31)])
    for i, stars in enumerate([5, 4, 5, 2]):
        models.Rating.objects.create(viewer_id=i + 1, movie_id="the+shawshank+redemption+1994", rating=stars, time=T0)
        models.RatingEvent.objects.create(viewer_id=i + 1, movie_id="the+shawshank+redemption+1994", rating=stars, time=T0)
    models.Rating.objects.create(viewer_id=284508, movie_id="monsters_+inc.+2001", rating=4, time=T0)
    models.WatchSession.objects.create(viewer_id=284508, movie_id="monsters_+inc.+2001", started_at=T0,
                                last_seen_at=T0 + timedelta(minutes=40), first_minute=0, last_minute=40,
                                highest_minute=40, minutes_watched=41)
    models.RecommendationRequest.objects.create(time=T0, viewer_id=284508, server="usher:8082", status=200,
                                         movie_ids=["audition+1999"], response_ms=42)
    models.RecommendationRequest.objects.create(time=T0, viewer_id=284508, server="usher:8082", status=0, movie_ids=[],
                                         response_ms=600, error="Read timed out. (read timeout=0.6)")
    models.IngestSource.objects.create(name="kafka://127.0.0.1:9092/events", kind="kafka", lines_read=1000,
                                lines_stored=990, quarantined=10, lag=5, rate_per_s=2500.0,
                                last_error="broker down", last_error_at=T0)
    models.QuarantinedLine.objects.bulk_create([
        models.QuarantinedLine(source="kafka://127.0.0.1:9092/events", position=str(i), raw=f"bad line {i}",
                        reason="rating 7 outside 1–5" if i % 2 else "unknown line type",
                        reason_code="rating_out_of_range" if i % 2 else "unknown_type") for i in range(10)
    ])


def test_catalog_pages_render(client_for, users, catalog, client):
    client.force_login(users["viewer"])
    page = client.get(reverse("recommender:catalog"), {"q": "shawshank"})
    assert page.status_code == 200
    assert b"The Shawshank Redemption" in page.content and b"Monsters, Inc." not in page.content
    by_genre = client.get(reverse("recommender:catalog"), {"genre": "Animation"}).content
    assert b"Monsters, Inc." in by_genre and b"Shawshank" not in by_genre
    assert b"Monsters" in client.get(reverse("recommender:catalog"), {"year": "2001"}).content

    movie = client.get(reverse("recommender:catalog_movie", args=["monsters_+inc.+2001"]))
    assert movie.status_code == 200 and b"41 minutes" in movie.content
    shawshank = client.get(reverse("recommender:catalog_movie", args=["the+shawshank+redemption+1994"]))
    assert b'"values": [0, 1, 0, 1, 2]' in shawshank.content  # the histogram's data
    assert client.get(reverse("recommender:catalog_movie", args=["no+such+movie"])).status_code == 404

    viewer = client.get(reverse("recommender:catalog_viewer", args=[284508]))
    assert viewer.status_code == 200
    assert b"writer" in viewer.content and b"Read timed out" in viewer.content and b"audition+1999" in viewer.content
    assert b"284508" in client.get(reverse("recommender:catalog_viewers"), {"occupation": "writer"}).content

    status = client.get(reverse("recommender:catalog_ingestion"))
    assert b"kafka://127.0.0.1:9092/events" in status.content and b"broker down" in status.content
    quarantine = client.get(reverse("recommender:catalog_quarantine"), {"reason_code": "unknown_type"})
    assert quarantine.status_code == 200
    assert b"bad line 0" in quarantine.content and b"bad line 1<" not in quarantine.content
    assert b'"labels": ["unknown_type"]' in quarantine.content
    bad_time = client.get(reverse("recommender:catalog_quarantine"), {"since": "yesterday"})
    assert b"Filter &#x27;since&#x27; was ignored: must be an ISO-8601 time" in bad_time.content


def test_pages_need_a_signed_in_user(client, catalog):
    response = client.get(reverse("recommender:catalog"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_navigation_reaches_every_page(rf, users):
    from recommender.navigation import sections

    request = rf.get("/")
    request.user = users["viewer"]
    links = {str(item["link"]) for section in sections(request) for item in section["items"]}
    for name in ("catalog", "catalog_viewers", "catalog_ingestion", "catalog_quarantine"):
        assert reverse(f"recommender:{name}") in links


def test_dashboard_cards_count_real_rows(rf, users, catalog):
    from recommender.catalog.dashboard import catalog_cards as cards

    request = rf.get("/")
    request.user = users["viewer"]
    values = {card["title"]: card["value"] for card in cards(request)}
    assert values["Movies"] == 33 and values["Viewers"] == 31 and values["Ratings"] == 5
    assert values["Watch sessions"] == 1 and values["Quarantined lines"] == 10


# --- REST API ---------------------------------------------------------------------------------------
def test_movie_list_filters_and_paginates(client_for, catalog, django_assert_max_num_queries):
    api = client_for("viewer")
    with django_assert_max_num_queries(4):
        body = api.get("/api/v1/movies", {"limit": 20}).json()
    assert body["count"] == 33 and len(body["results"]) == 20
    assert [m["id"] for m in api.get("/api/v1/movies", {"genre": "Drama"}).json()["results"]] == [
        "the+shawshank+redemption+1994"]
    assert [m["id"] for m in api.get("/api/v1/movies", {"q": "monsters"}).json()["results"]] == [
        "monsters_+inc.+2001"]
    assert api.get("/api/v1/movies", {"year_min": 1995, "year_max": 2001}).json()["count"] == 31
    assert [m["id"] for m in api.get("/api/v1/movies", {"stub": "true"}).json()["results"]][:1] == ["audition+1999"]
    assert api.get("/api/v1/movies", {"year": "abc"}).status_code == 400


def test_movie_detail(client_for, catalog):
    body = client_for("viewer").get("/api/v1/movies/the+shawshank+redemption+1994").json()
    assert body["title"] == "The Shawshank Redemption" and body["rating_histogram"] == {
        "1": 0, "2": 1, "3": 0, "4": 1, "5": 2}
    assert body["stats"]["ratings"] == 4 and body["stats"]["rating_events"] == 4
    missing = client_for("viewer").get("/api/v1/movies/no+such+movie+1900")
    assert missing.status_code == 404


def test_viewer_list_and_detail_with_history(client_for, catalog, django_assert_max_num_queries):
    api = client_for("viewer")
    with django_assert_max_num_queries(4):
        body = api.get("/api/v1/viewers", {"limit": 50}).json()
    assert body["count"] == 31
    assert [v["id"] for v in api.get("/api/v1/viewers", {"occupation": "writer"}).json()["results"]] == [284508]
    assert api.get("/api/v1/viewers", {"stub": "true"}).json()["count"] == 30
    with django_assert_max_num_queries(10):
        detail = api.get("/api/v1/viewers/284508").json()
    history = detail["history"]
    assert detail["age_band"] == "25-34" and history["counts"] == {"ratings": 1, "watch_sessions": 1,
                                                                   "recommendations": 2}
    assert history["watch_sessions"][0]["minutes_watched"] == 41
    assert {r["status"] for r in history["recommendations"]} == {200, 0}


def test_api_needs_a_role(api_client, catalog):
    assert api_client.get("/api/v1/movies").status_code in (401, 403)


def test_endpoints_are_in_the_schema(client_for):
    schema = client_for("viewer").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/movies", "/api/v1/movies/{id}", "/api/v1/viewers", "/api/v1/viewers/{id}"):
        assert path in schema["paths"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_opens_the_catalog_and_a_viewer(browser, live_server, catalog, tmp_path):
    from conftest import make_user

    user = make_user("viewer", "browser_viewer")
    user.set_password("a-long-browser-password-1")
    user.save()
    page = browser.new_page()
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", "browser_viewer")
    page.fill("input[name=password]", "a-long-browser-password-1")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}{reverse('recommender:catalog')}")
    page.fill("input[name=q]", "monsters")
    page.click("[data-testid=catalog-search] button")
    assert page.locator("[data-testid=movies-table] tbody tr").count() == 1
    page.click("text=monsters_+inc.+2001")
    assert page.locator("[data-testid=movie-metadata]").inner_text().startswith("Monsters, Inc. (2001)")
    page.goto(f"{live_server.url}{reverse('recommender:catalog_viewer', args=[284508])}")
    assert "Read timed out" in page.locator("[data-testid=viewer-recommendations]").inner_text()
    assert page.locator("#nav-sidebar, nav").first.is_visible()
    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    page.context.close()


def test_admin_lists_and_refresh_action_calls_the_import(client, users, catalog, settings):
    client.force_login(users["admin"])
    assert client.get("/portal/recommender/movie/").status_code == 200
    assert client.get("/portal/recommender/viewer/").status_code == 200
    settings.RECOMMENDER = {**settings.RECOMMENDER, "PLATFORM_METADATA_URL": "http://127.0.0.1:9"}
    response = client.post("/portal/recommender/viewer/", {"action": "refresh_metadata", "_selected_action": [1]},
                           follow=True)
    assert b"1 fetched" in response.content and b"catalog.fetch_failed" in response.content
    assert models.QuarantinedLine.objects.filter(source="catalog:http://127.0.0.1:9", position="/user/1").exists()
