"""import_movielens: each layout written by the test itself, demographics, slugs, half stars, idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recommender.catalog.slugs import movie_slug, split_movielens_title
from recommender.models import IngestedLine, IngestSource, Movie, QuarantinedLine, Rating, RatingEvent, Viewer
from recommender.movielens.layouts import LayoutError, detect_layout, stars
from recommender.movielens.services import movielens_import


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("Shawshank Redemption, The (1994)", "the+shawshank+redemption+1994"),
        ("Monsters, Inc. (2001)", "monsters_+inc.+2001"),
        ("Rosencrantz & Guildenstern Are Dead (1991)", "rosencrantz++guildenstern+are+dead+1991"),
        ("Audition (Ôdishon) (1999)", "audition+1999"),
        ("Pölynimurikauppiaat", "plynimurikauppiaat+"),
        ("Star Wars: Episode IV - A New Hope (1977)", "star+wars_+episode+iv+-+a+new+hope+1977"),
        ("American President, The (1995)", "the+american+president+1995"),
    ],
)
def test_slug_rule_matches_the_platform(raw, slug):
    assert movie_slug(*split_movielens_title(raw)) == slug


@pytest.mark.parametrize(("value", "expected"), [(0.5, 1), (1.0, 1), (1.5, 2), (2.5, 3), (3.5, 4), (4.5, 5), (5.0, 5)])
def test_half_stars_round_half_up(value, expected):
    assert stars(value) == expected


def write_ml100k(folder, *, extra_ratings: list[str] = ()) -> None:
    folder.mkdir()
    flags = lambda *on: "|".join("1" if i in on else "0" for i in range(19))  # noqa: E731
    (folder / "u.item").write_bytes("\n".join([
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags(3, 4, 5)}",
        f"2|Shawshank Redemption, The (1994)|01-Jan-1994||http://x|{flags(8)}",
        f"3|Cité des enfants perdus, La (1995)|01-Jan-1995||http://x|{flags(8, 9)}",
        "4|broken line",
    ]).encode("latin-1") + b"\n")
    (folder / "u.user").write_text("\n".join([
        "1|24|M|technician|85711", "2|15|F|student|94043", "3|30|F|none|32067", "4|abc|M|writer|1",
    ]) + "\n")
    (folder / "u.data").write_text("\n".join([
        "1\t1\t5\t874965758", "1\t2\t4\t874965800", "2\t1\t3\t876893171", "3\t3\t2\t878542960",
        "2\t9\t4\t878542960", "3\t2\t7\t878542960", "3\tx\t1\t878542960", *extra_ratings,
    ]) + "\n")


@pytest.mark.django_db
def test_ml100k_import_and_idempotency(tmp_path):
    # Given an ml-100k folder with good and bad rows
    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    layout = detect_layout(folder)
    assert layout.name == "ml-100k"
    # When it is imported
    summary = movielens_import(layout=layout, chunk_size=3)
    # Then movies carry platform slugs, genres mapped; viewers carry the platform's occupations
    assert set(Movie.objects.values_list("id", flat=True)) == {
        "toy+story+1995", "the+shawshank+redemption+1994", "la+cit+des+enfants+perdus+1995"}
    toy = Movie.objects.get(id="toy+story+1995")
    assert toy.genres == ["Animation", "Family", "Comedy"] and toy.year == 1995
    assert toy.extra["movielens"] == {"ml-100k": 1}
    assert {v.id: (v.age, v.gender, v.occupation) for v in Viewer.objects.all()} == {
        1: (24, "M", "technician/engineer"), 2: (15, "F", "K-12 student"), 3: (30, "F", "unemployed")}
    assert Rating.objects.get(viewer_id=1, movie_id="toy+story+1995").rating == 5
    assert RatingEvent.objects.count() == 4 and Rating.objects.count() == 4
    assert RatingEvent.objects.get(viewer_id=3).time == datetime.fromtimestamp(878542960, tz=UTC)
    reasons = dict(QuarantinedLine.objects.values_list("position", "reason"))
    assert reasons == {
        "u.item:4": "expected 24 '|' fields, got 2",
        "u.user:4": "age 'abc' is not a whole number",
        "u.data:5": "movie 9 is not in the movies file",
        "u.data:6": "rating 7 outside 1–5",
        "u.data:7": "user, movie, rating or timestamp is not a number",
    }
    assert summary.ratings_read == 7 and summary.ratings_stored == 4 and summary.quarantined == 5
    source = IngestSource.objects.get(name=f"movielens:{folder}")
    assert (source.kind, source.lines_read, source.lines_stored, source.quarantined) == ("movielens", 7, 4, 3)

    # When it is imported again, nothing changes
    counts = lambda: (Movie.objects.count(), Viewer.objects.count(), Rating.objects.count(),  # noqa: E731
                      RatingEvent.objects.count(), IngestedLine.objects.count(), QuarantinedLine.objects.count())
    before = counts()
    again = movielens_import(layout=layout)
    assert counts() == before
    assert (again.movies_created, again.movies_updated, again.viewers_created, again.viewers_updated) == (0, 0, 0, 0)
    assert again.ratings_stored == 0 and again.duplicates == 4


@pytest.mark.django_db
def test_ml1m_latin1_and_demographic_codes(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Monsters, Inc. (2001)::Animation|Sci-Fi\n"
        "3::Cité des enfants perdus, La (1995)::Drama\n".encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::21::55117\n")
    (folder / "ratings.dat").write_text("1::1::5::978300760\n2::2::3::978302109\n2::3::4.5::978302109\n")
    summary = movielens_import(layout=detect_layout(folder))
    assert Movie.objects.get(id="monsters_+inc.+2001").genres == ["Animation", "Science Fiction"]
    assert Movie.objects.filter(id="la+cit+des+enfants+perdus+1995").exists()
    assert {v.id: (v.age, v.gender, v.occupation) for v in Viewer.objects.all()} == {
        1: (16, "F", "K-12 student"), 2: (60, "M", "self-employed")}
    assert summary.reasons == {"movielens.bad_value": 1, "movielens.bad_rating": 1}
    assert Rating.objects.count() == 2


@pytest.mark.django_db
def test_ml_latest_half_stars_quoted_titles_and_stub_viewers(tmp_path, capsys):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
        '2,"American President, The (1995)",Comedy|Drama|Romance\n3,Pölynimurikauppiaat,(no genres listed)\n',
        encoding="utf-8")
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,2,0.5,964981247\n7,3,2.5,964982224\n"
        "7,1,3.0,964982931\n7,1,5.5,964982931\n")
    call_command("import_movielens", str(folder), "--json", "--user-offset", "1000")
    out = json.loads(capsys.readouterr().out)
    assert out["layout"] == "ml-latest" and out["ratings_stored"] == 4 and out["quarantined"] == 1
    assert dict(Rating.objects.values_list("movie_id", "rating").filter(viewer_id=1001)) == {
        "toy+story+1995": 5, "the+american+president+1995": 1}
    assert Rating.objects.get(viewer_id=1007, movie_id="plynimurikauppiaat+").rating == 3
    assert Viewer.objects.get(id=1007).enriched_at is None  # ml-latest has no users file: stubs
    assert Movie.objects.get(id="plynimurikauppiaat+").genres == []


@pytest.mark.django_db
def test_latest_rating_wins_and_history_is_kept(tmp_path):
    folder = tmp_path / "ml-latest"
    folder.mkdir()
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Comedy\n")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,2.0,200\n1,1,4.0,300\n1,1,1.0,100\n")
    movielens_import(layout=detect_layout(folder), chunk_size=1)
    assert Rating.objects.get().rating == 4
    assert sorted(RatingEvent.objects.values_list("rating", flat=True)) == [1, 2, 4]


@pytest.mark.django_db
def test_platform_metadata_is_not_overwritten(tmp_path):
    Movie.objects.create(id="toy+story+1995", title="Toy Story", genres=["Animation"], runtime=81)
    Viewer.objects.create(id=1, age=40, gender="F", occupation="writer")
    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    movielens_import(layout=detect_layout(folder))
    toy = Movie.objects.get(id="toy+story+1995")
    assert (toy.genres, toy.runtime, toy.extra["movielens"]) == (["Animation"], 81, {"ml-100k": 1})
    viewer = Viewer.objects.get(id=1)
    assert (viewer.age, viewer.occupation) == (40, "writer")


def test_unknown_folder_is_named(tmp_path):
    with pytest.raises(LayoutError, match="expected u.data"):
        detect_layout(tmp_path)
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(LayoutError, match="has no movies.csv"):
        detect_layout(tmp_path)
    with pytest.raises(CommandError, match="not a folder"):
        call_command("import_movielens", str(tmp_path / "nope"))


@pytest.mark.django_db
def test_streams_ratings_in_chunks(tmp_path):
    """Bounded memory: the reader is a generator, and each chunk is written before the next is read."""
    folder = tmp_path / "ml-100k"
    write_ml100k(folder, extra_ratings=[f"{u}\t1\t4\t{900000000 + u}" for u in range(10, 60)])
    progress_calls = []
    movielens_import(layout=detect_layout(folder), chunk_size=10,
                     progress=lambda s: progress_calls.append(s.ratings_stored))
    assert len(progress_calls) == 6 and progress_calls == sorted(progress_calls)
    assert Rating.objects.count() == 54
