"""The world simulator: determinism, exact line formats, scenarios with measurable effects, sinks, live mode."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from django.core.management import call_command

from recommender.ingest.parser import RatingEvent, RecommendationEvent, Rejected, WatchEvent, parse_line
from recommender.simulator import Drift, PlantedBias, Scraping, Shilling, SimulationConfig, Simulator, World
from recommender.simulator.client import UsherClient
from recommender.simulator.scenarios import parse_scenario
from recommender.simulator.sinks import ListSink, RedisSink, open_sink

START = datetime(2025, 3, 1, tzinfo=UTC)


def small_world(**kw) -> World:
    return World.build(seed=kw.pop("seed", 3), viewers=kw.pop("viewers", 120), movies=kw.pop("movies", 80),
                       start=START, **kw)


def backfill(world: World, days: float = 1.0, **config) -> Simulator:
    sim = Simulator(world, SimulationConfig(seed=config.pop("seed", 5), **config))
    sim.run_backfill(days=days)
    return sim


def parsed(lines):
    return [parse_line(line) for line in lines]


def test_same_seed_same_lines_and_another_seed_differs():
    a = backfill(small_world(), malformed_rate=0.02, duplicate_rate=0.02).sink.lines
    b = backfill(small_world(), malformed_rate=0.02, duplicate_rate=0.02).sink.lines
    c = backfill(small_world(), seed=6).sink.lines
    assert a == b and len(a) > 1000
    assert a != c


def test_world_mixes_look_like_the_platform():
    world = World.build(seed=1, viewers=4000, movies=1000)
    share_f = (world.genders == "F").mean()
    assert 0.25 < share_f < 0.33
    occupations = Counter(world.occupations)
    assert occupations.most_common(1)[0][0] in {"college/grad student", "other or not specified",
                                                 "executive/managerial"}
    assert set(occupations) <= set(__import__("recommender.catalog.schema", fromlist=["x"]).OCCUPATIONS)
    assert (world.occupations[world.ages < 18] == "K-12 student").all()
    # a long tail: the top 10% of movies hold most of the popularity mass
    pop = np.sort(world.popularity)[::-1]
    assert pop[:100].sum() / pop.sum() > 0.4
    assert len(set(world.movie_ids)) == 1000 and all(" " not in m for m in world.movie_ids)


def test_lines_are_in_the_platforms_format_and_in_time_order():
    sim = backfill(small_world())
    events = parsed(sim.sink.lines)
    assert not [e for e in events if isinstance(e, Rejected)]
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["WatchEvent"] > kinds["RatingEvent"] > 0 and kinds["RecommendationEvent"] > 0
    times = [e.time.replace(microsecond=0) for e in events]  # whole-second lines are truncated
    assert times == sorted(times)
    assert all(START <= t < START + timedelta(days=1, hours=4) for t in times)
    assert all(1 <= e.rating <= 5 for e in events if isinstance(e, RatingEvent))
    recs = [e for e in events if isinstance(e, RecommendationEvent) and e.status == 200]
    assert all(1 <= len(e.movie_ids) <= 20 for e in recs)
    # watch sessions are one line per minute: consecutive minutes 60 s apart
    session = [e for e in events if isinstance(e, WatchEvent)
               and (e.user_id, e.movie_id) == (events[1].user_id, events[1].movie_id)] if isinstance(
        events[1], WatchEvent) else []
    if len(session) > 1:
        assert [e.minute for e in session] == list(range(len(session)))
    precisions = Counter(len(line.split(",")[0]) for line in sim.sink.lines)
    assert {16, 19, 26, 29} & set(precisions) >= {19, 26, 29}


def test_malformed_and_duplicate_rates():
    sim = backfill(small_world(), malformed_rate=0.05, duplicate_rate=0.05)
    events = parsed(sim.sink.lines)
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert len(rejected) == sim.stats["lines_malformed"] > 0
    assert len(rejected) / len(events) == pytest.approx(0.05, abs=0.015)
    assert {r.code for r in rejected} >= {"unknown_type", "rating_out_of_range", "bad_timestamp"}
    repeated = sum(n - 1 for n in Counter(sim.sink.lines).values() if n > 1)
    assert repeated >= sim.stats["lines_duplicate"] > 0


def _ratings(lines, after=None, before=None):
    out = [e for e in parsed(lines) if isinstance(e, RatingEvent)]
    return [e for e in out if (after is None or e.time >= after) and (before is None or e.time < before)]


def test_shilling_accounts_rate_the_target_five():
    world = small_world()
    scenario = Shilling(at=timedelta(hours=6), accounts=25, filler=2)
    sim = backfill(world, scenarios=[scenario])
    target = sim.shilling_target(scenario)
    shill_ids = set(range(int(world.viewer_ids[-1]) + 1_000_001, int(world.viewer_ids[-1]) + 1_000_026))
    ratings = _ratings(sim.sink.lines)
    shill = [e for e in ratings if e.user_id in shill_ids]
    assert {e.user_id for e in shill if e.movie_id == target and e.rating == 5} == shill_ids
    assert len(shill) == 25 * 3
    assert min(e.time for e in shill) >= START + timedelta(hours=6)
    plain = _ratings(backfill(small_world()).sink.lines)
    assert sum(e.movie_id == target and e.rating == 5 for e in ratings) >= 25 + sum(
        e.movie_id == target and e.rating == 5 for e in plain) - 2


def test_taste_drift_raises_the_genres_ratings():
    world = small_world(viewers=300, movies=120)
    genre = "Drama"
    at = START + timedelta(days=2)
    sim = backfill(world, days=4, scenarios=[Drift(at=timedelta(days=2), kind="taste", genre=genre, strength=2.0)])
    index = world.movie_index()

    def mean_genre_rating(events):
        values = [e.rating for e in events if genre in world.movie_genres[index[e.movie_id]]]
        return np.mean(values), len(values)

    before, n_before = mean_genre_rating(_ratings(sim.sink.lines, before=at))
    after, n_after = mean_genre_rating(_ratings(sim.sink.lines, after=at + timedelta(hours=3)))
    assert n_before > 50 and n_after > 50
    assert after - before > 0.3


def test_audience_drift_shifts_the_mix():
    world = small_world(viewers=300)
    at = START + timedelta(days=1)
    sim = backfill(world, days=2, scenarios=[Drift(at=timedelta(days=1), kind="audience", group="age:<25",
                                                   strength=6.0)])
    young = set(world.viewer_ids[world.ages < 25].tolist())
    recs = [e for e in parsed(sim.sink.lines) if isinstance(e, RecommendationEvent)]
    share = lambda evs: np.mean([e.user_id in young for e in evs])  # noqa: E731
    assert share([e for e in recs if e.time >= at]) > share([e for e in recs if e.time < at]) + 0.2


def test_planted_bias_timeouts_hit_only_the_group():
    world = small_world(viewers=300)
    sim = backfill(world, days=1, scenarios=[PlantedBias(at=timedelta(0), group="gender:F", kind="timeouts",
                                                         strength=0.5)])
    women = set(world.viewer_ids[world.genders == "F"].tolist())
    recs = [e for e in parsed(sim.sink.lines) if isinstance(e, RecommendationEvent)]
    fail = lambda evs: np.mean([e.status == 0 for e in evs])  # noqa: E731
    assert fail([e for e in recs if e.user_id in women]) > 0.35
    assert fail([e for e in recs if e.user_id not in women]) < 0.05
    timed_out = next(e for e in recs if e.status == 0)
    assert "Read timed out" in timed_out.error and timed_out.response_ms == 600
    assert timed_out.error.endswith(f":8082/recommend/{timed_out.user_id}")


def test_planted_bias_ratings_lowers_the_groups_ratings_of_recommended_movies():
    def group_mean(strength):
        world = small_world(viewers=300)
        scenarios = [PlantedBias(at=timedelta(0), group="gender:F", kind="ratings", strength=strength)]
        sim = backfill(world, days=2, scenarios=scenarios)
        women = set(world.viewer_ids[world.genders == "F"].tolist())
        return np.mean([e.rating for e in _ratings(sim.sink.lines) if e.user_id in women]), sim.stats["bias_ratings"]

    base, _ = group_mean(0.0)
    biased, affected = group_mean(1.5)
    assert affected > 20 and biased < base - 0.1


def test_scenarios_parse_from_the_command_line():
    assert parse_scenario("shilling:at=+2d,accounts=10,movie=audition+1999") == Shilling(
        at=timedelta(days=2), accounts=10, movie="audition+1999")
    assert parse_scenario("bias:at=2025-03-01T06:00,group=gender:F,kind=timeouts,strength=0.3").at == START + \
        timedelta(hours=6)
    with pytest.raises(ValueError, match="unknown setting 'colour=red'"):
        parse_scenario("drift:at=+1d,colour=red")
    with pytest.raises(ValueError, match="unknown scenario 'flood'"):
        parse_scenario("flood:at=+1d")
    with pytest.raises(ValueError, match="needs at="):
        parse_scenario("drift:kind=taste")


def test_the_feedback_loop_follows_recommendations():
    world = small_world()
    favourite = world.movie_ids[-1]

    def push_one_movie(viewer_id):
        from recommender.simulator.client import RecommendResult

        return RecommendResult(200, [favourite], 5)

    # Viewers who follow any list (follow_full_appeal 0): the loop alone, whatever the movie's appeal.
    sim = Simulator(world, SimulationConfig(seed=5, follow_probability=0.8, follow_full_appeal=0),
                    recommend=push_one_movie)
    sim.run_backfill(days=1)
    plain = backfill(small_world())
    watched = lambda s: len({(e.user_id) for e in parsed(s.sink.lines)  # noqa: E731
                             if isinstance(e, WatchEvent) and e.movie_id == favourite})
    assert watched(sim) > 3 * max(1, watched(plain))


def _follows(world: World, pick, days: float = 2.0, **config) -> tuple[int, int]:
    """Follows and visits of a backfill whose server answers each viewer with ``pick(sim, u)``
    (20 movie indexes chosen from the viewer's unseen movies by their true scores)."""
    from recommender.simulator.client import RecommendResult

    sim = Simulator(world, SimulationConfig(seed=5, timeout_rate=0.0, **config))
    index = {int(v): u for u, v in enumerate(world.viewer_ids)}

    def recommend(viewer_id):
        u = index[viewer_id]
        unseen = np.array([i for i in range(len(world.movie_ids)) if i not in sim.seen[u]])
        return RecommendResult(200, [world.movie_ids[i] for i in pick(sim, u, unseen)], 5)

    sim.recommend = recommend
    stats = sim.run_backfill(days=days)
    return stats["follows"], stats["visits"]


def test_viewers_follow_a_list_as_much_as_it_appeals_to_them():
    world = small_world(viewers=200, movies=300, visits_per_viewer_per_day=6.0)  # ~2,400 visits
    rng = np.random.default_rng(11)

    def by_score(sim, u, unseen):
        return unseen[np.argsort(-sim._scores(u)[unseen])]

    favourites, visits = _follows(world, lambda sim, u, unseen: by_score(sim, u, unseen)[:20])
    disliked, _ = _follows(world, lambda sim, u, unseen: by_score(sim, u, unseen)[-20:])
    random_list, _ = _follows(world, lambda sim, u, unseen: rng.choice(unseen, size=min(20, len(unseen)), replace=False))
    # A personalized list (their favourites) is followed about as often as follow_probability says:
    # 0.3 of the 0.6 of visits with a watch.
    assert visits > 2000 and 0.75 * 0.18 * visits < favourites < 1.25 * 0.18 * visits
    # Movies the viewer dislikes are nearly never followed; a random list far less than a personalized one.
    assert disliked < 0.05 * favourites
    assert random_list < 0.7 * favourites and disliked < random_list
    # follow_full_appeal = 0: every list is followed at follow_probability, whatever is on it.
    indifferent, _ = _follows(world, lambda sim, u, unseen: by_score(sim, u, unseen)[-20:], follow_full_appeal=0)
    assert indifferent > 0.75 * 0.18 * visits


def test_list_appeal_is_relative_to_the_viewers_best_list():
    world = small_world()
    sim = Simulator(world, SimulationConfig(seed=1))
    scores = sim._scores(0)
    order = np.argsort(-sim._choice_weights(0, scores))
    assert sim.list_appeal(0, scores, {int(m): p for p, m in enumerate(order[:10])}) == pytest.approx(1.0)
    assert sim.list_appeal(0, scores, {int(m): p for p, m in enumerate(order[-10:])}) < 0.01
    assert sim.list_appeal(0, scores, {}) == 0.0
    sim.seen[0].update(int(m) for m in order[:10])  # seen movies weigh nothing
    assert sim.list_appeal(0, scores, {int(m): p for p, m in enumerate(order[:10])}) == 0.0
    assert sim.follow_chance(0, scores, {int(m): p for p, m in enumerate(order[10:20])}) == pytest.approx(0.3)


# --- sinks --------------------------------------------------------------------------------------
def test_file_sink_and_command(tmp_path, capsys):
    out = tmp_path / "events.txt"
    catalog = tmp_path / "catalog.jsonl"
    call_command("simulate", "--days", "0.25", "--start", "2025-03-01T00:00", "--sink", str(out), "--viewers", "50",
                 "--movies", "40", "--catalog-out", str(catalog), "--scenario", "shilling:at=+1h,accounts=3")
    lines = out.read_text().splitlines()
    assert lines and not [line for line in lines if isinstance(parse_line(line), Rejected)]
    assert len(catalog.read_text().splitlines()) == 90
    again = tmp_path / "again.txt"
    call_command("simulate", "--days", "0.25", "--start", "2025-03-01T00:00", "--sink", str(again), "--viewers", "50",
                 "--movies", "40", "--scenario", "shilling:at=+1h,accounts=3")
    assert again.read_text() == out.read_text()


def test_unknown_sink_is_named():
    with pytest.raises(ValueError, match="unknown sink 'ftp://x'"):
        open_sink("ftp://x")


@pytest.mark.django_db(transaction=True)
def test_usher_sink_ingests_and_catalog_is_imported(tmp_path):
    from recommender.models import IngestSource, Movie, Rating, RecommendationRequest, Viewer, WatchSession

    call_command("simulate", "--days", "0.5", "--start", "2025-03-01T00:00", "--sink", "usher:", "--viewers", "60",
                 "--movies", "50", "--malformed-rate", "0.01")
    assert Viewer.objects.filter(enriched_at__isnull=False).count() == 60
    assert Movie.objects.filter(enriched_at__isnull=False).count() == 50
    assert Rating.objects.exists() and WatchSession.objects.exists() and RecommendationRequest.objects.exists()
    source = IngestSource.objects.get(name="simulator")
    assert source.quarantined > 0 and source.lines_stored > 1000


@pytest.mark.django_db(transaction=True)
def test_a_live_run_starts_from_what_the_viewers_saw_in_usher():
    from recommender.models import Rating, WatchSession
    from recommender.simulator.services import simulator_backfill, simulator_history_load
    from recommender.simulator.sinks import UsherSink

    world = World.build(seed=3, viewers=60, movies=50, start=START)
    backfilled = simulator_backfill(world=world, days=0.5, sink=UsherSink(source="simulator"),
                                    end=START + timedelta(days=0.5))
    assert backfilled["sessions"] > 0 and backfilled["ratings"] > 0
    # A new process (the live simulator) knows nothing of it until it reads Usher's history back:
    fresh = Simulator(world, SimulationConfig(seed=9))
    assert not any(fresh.seen)
    marked = simulator_history_load(simulator=fresh)
    expected = {(int(v), m) for v, m in Rating.objects.values_list("viewer_id", "movie_id")}
    expected |= {(int(v), m) for v, m in WatchSession.objects.values_list("viewer_id", "movie_id")}
    got = {(int(world.viewer_ids[u]), world.movie_ids[m]) for u, seen in enumerate(fresh.seen) for m in seen}
    assert marked == len(got) == len(expected) > 50 and got == expected
    assert simulator_history_load(simulator=fresh) == 0  # idempotent


@pytest.mark.redis
def test_redis_sink_xadds_lines():
    import os
    from urllib.parse import urlparse

    url = urlparse(os.environ["REDIS_URL"])
    db = (url.path or "/0").strip("/") or "0"
    stream = f"usher-test-{uuid.uuid4().hex[:8]}"
    sink = RedisSink(f"redis://{url.hostname}:{url.port or 6379}/{stream}?db={db}")
    try:
        sim = Simulator(small_world(viewers=20, movies=20), SimulationConfig(seed=1), sink)
        sim.run_backfill(days=0.1)
        entries = sink.client.xrange(stream)
        assert len(entries) == sim.stats["lines"] > 0
        assert isinstance(parse_line(entries[0][1][b"line"].decode()), RecommendationEvent)
    finally:
        sink.client.delete(stream)


@pytest.mark.slow
def test_kafka_sink_produces_to_a_topic_on_the_mock_cluster():
    from confluent_kafka import Consumer, Producer, TopicPartition

    from recommender.simulator.sinks import KafkaSink

    # librdkafka's built-in mock cluster: the real broker protocol on loopback, no Kafka install
    holder = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = ",".join(f"{b.host}:{b.port}" for b in holder.list_topics(timeout=10).brokers.values())
    sink = KafkaSink(f"kafka://{brokers}/events", extra_config={"log_level": 3})
    sim = Simulator(small_world(viewers=20, movies=20), SimulationConfig(seed=1), sink)
    sim.run_backfill(days=0.5)
    sink.close()
    assert not sink.errors
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "t", "log_level": 3})
    partitions = consumer.list_topics("events", timeout=10).topics["events"].partitions
    ends = [consumer.get_watermark_offsets(TopicPartition("events", p), timeout=10)[1] for p in partitions]
    assert sum(ends) == sim.stats["lines"] > 0
    first = [TopicPartition("events", p, 0) for p, end in zip(partitions, ends, strict=True) if end][:1]
    consumer.assign(first)
    msg = None
    for _ in range(50):
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            break
    consumer.close()
    assert msg is not None and not isinstance(parse_line(msg.value().decode()), Rejected)
    del holder


# --- live mode -------------------------------------------------------------------------------------
class _Usher(BaseHTTPRequestHandler):
    """A stand-in Usher: /recommend answers the first movies, slowly for some viewers; /readyz ok."""

    movies: list[str] = []
    slow_viewers: set[int] = set()
    agents: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            self.agents[self.headers.get("User-Agent", "")] += 1
        if self.path == "/readyz":
            body = b"ok"
        elif self.path.startswith("/recommend/"):
            viewer = int(self.path.rsplit("/", 1)[1])
            if viewer in self.slow_viewers:
                import time

                time.sleep(1.0)
            body = ",".join(self.movies[:20]).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass


@pytest.fixture
def usher_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Usher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_live_mode_calls_usher_and_records_timeouts(usher_server):
    world = small_world(viewers=30, movies=40)
    _Usher.movies = world.movie_ids[:20]
    _Usher.slow_viewers = set(world.viewer_ids[:6].tolist())
    _Usher.agents = Counter()
    # Viewers who follow any list (follow_full_appeal 0): live mode's wiring, whatever the fake server's list.
    sim = Simulator(world, SimulationConfig(seed=2, watch_probability=1.0, follow_probability=0.9, follow_full_appeal=0),
                    recommend=UsherClient(usher_server, timeout_s=0.4),
                    scraper=UsherClient(usher_server, user_agent="usher-sim-scraper/1.0"))
    sim.config.scenarios = [Scraping(at=timedelta(seconds=0.5), requests=15, rate=100)]
    stats = sim.run_live(rate=25, duration_s=3)
    recs = [e for e in parsed(sim.sink.lines) if isinstance(e, RecommendationEvent)]
    assert len(recs) > 20
    ok = [e for e in recs if e.status == 200]
    failed = [e for e in recs if e.status == 0]
    assert ok and failed
    assert all(e.user_id not in _Usher.slow_viewers for e in ok)
    assert all(e.user_id in _Usher.slow_viewers and "timed out" in e.error.lower() for e in failed)
    assert {e.server for e in recs} == {usher_server.removeprefix("http://")}
    assert stats["scrape_requests"] == 15 and _Usher.agents["usher-sim-scraper/1.0"] == 15
    # what was recommended is what gets watched (sessions start a few seconds after the visit)
    # (half the catalog is recommended; without the boost about half the sessions would come from it)
    ok_share = len(ok) / len(recs)
    # with follow_probability 0.9, at least 9 in 10 sessions after a good answer come from the list
    assert stats["sessions"] > 10
    assert stats["sessions_from_recommendations"] / stats["sessions"] > 0.7 * ok_share


def test_live_mode_survives_usher_being_down():
    world = small_world(viewers=10, movies=20)
    sim = Simulator(world, SimulationConfig(seed=2), recommend=UsherClient("http://127.0.0.1:9", timeout_s=0.2))
    sim.run_live(rate=30, duration_s=1.0)
    recs = [e for e in parsed(sim.sink.lines) if isinstance(e, RecommendationEvent)]
    assert recs and all(e.status == 0 and "ConnectionError" in e.error for e in recs)


def test_list_sink_is_the_default():
    assert isinstance(Simulator(small_world(viewers=5, movies=5)).sink, ListSink)


def test_backfill_can_ask_a_real_server(usher_server, tmp_path):
    world = small_world(viewers=20, movies=40)
    _Usher.movies = world.movie_ids[:20]
    _Usher.slow_viewers = set()
    _Usher.agents = Counter()
    out = tmp_path / "events.txt"
    call_command("simulate", "--days", "0.2", "--start", "2025-03-01T00:00", "--sink", str(out), "--seed", "3",
                 "--viewers", "20", "--movies", "40", "--usher-url", usher_server,
                 "--scenario", "scraping:at=+1h,requests=5,rate=50")
    recs = [e for e in parsed(out.read_text().splitlines()) if isinstance(e, RecommendationEvent)]
    assert recs and {e.server for e in recs} == {usher_server.removeprefix("http://")}
    assert all(list(e.movie_ids) == _Usher.movies for e in recs if e.status == 200)
    assert _Usher.agents["usher-sim-scraper/1.0"] >= 5


def test_a_history_before_the_first_day_keeps_the_week_about_stationary():
    # With nothing seen, viewers work down from their favourites and a week's ratings fall; a month of
    # history (SimulationConfig.history_days) starts them where a platform's viewers are.
    world = small_world(viewers=300, movies=300)
    fresh = backfill(world, days=7)
    warm = Simulator(world, SimulationConfig(seed=5, history_days=30))
    history = [set(s) for s in warm.seen]
    assert warm.stats["history_movies"] == sum(map(len, history)) > 300 * 30  # ~2.6 movies a visit-day
    assert "history_movies" not in fresh.stats
    warm.run_backfill(days=7)
    # none of the history is in the stream: no viewer rates or watches a movie of their history
    index = world.movie_index()
    viewer_of = {int(v): u for u, v in enumerate(world.viewer_ids)}
    events = [e for e in parsed(warm.sink.lines) if isinstance(e, (RatingEvent, WatchEvent))]
    assert events and not any(index[e.movie_id] in history[viewer_of[e.user_id]] for e in events)

    def fall(sim):  # mean rating of the first day minus the last day's
        first = [e.rating for e in _ratings(sim.sink.lines, before=START + timedelta(days=1))]
        last = [e.rating for e in _ratings(sim.sink.lines, after=START + timedelta(days=6))]
        return np.mean(first) - np.mean(last), len(first), len(last)

    fresh_fall, n_first, n_last = fall(fresh)
    warm_fall, *_ = fall(warm)
    assert n_first > 500 and n_last > 500
    assert fresh_fall > 0.3
    assert warm_fall < fresh_fall / 2
