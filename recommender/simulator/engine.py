"""The simulation engine: a discrete-event loop over simulated time that writes the event stream.

A visit: the viewer's client asks for recommendations (the recommendation line), then may watch a
movie (one line per minute), rate it afterwards, and rate a few movies seen elsewhere. What was
recommended raises the chance of being chosen (``follow_probability``, scaled by how appealing the
list is to that viewer: ``follow_chance``): a feedback loop. Backfill runs the
loop as fast as it can over a span of simulated time, with a built-in popularity server standing in
for Usher; live mode runs on the wall clock against a running Usher.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time as _time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from recommender.simulator import lines as L
from recommender.simulator.client import RecommendResult
from recommender.simulator.scenarios import Drift, PlantedBias, Scraping, Shilling
from recommender.simulator.sinks import ListSink, Sink
from recommender.simulator.world import GENRES, World

logger = logging.getLogger(__name__)

Recommend = Callable[[int], RecommendResult]

TIMEOUT_ERROR = ("HTTPConnectionPool(host='{host}', port={port}): Read timed out. (read timeout={timeout:g}), "
                 "url: http://{host}:{port}/recommend/{viewer}")
MALFORMED_KINDS = ("truncated", "missing_field", "bad_rating", "unknown_type", "bad_timestamp")


@dataclass
class SimulationConfig:
    """Behaviour knobs of a run (the world's shape is in ``WorldConfig``)."""

    seed: int = 7
    server: str = "usher-sim:8082"
    watch_probability: float = 0.6
    rate_probability: float = 0.5
    extra_ratings_per_visit: float = 2.0
    follow_probability: float = 0.3  # a watch is picked from an appealing recommendation list this often
    # ... and from a less appealing one in proportion: chance = follow_probability × min(1, appeal /
    # follow_full_appeal), appeal ∈ [0, 1] being the list's choice weight for the viewer relative to the best
    # list of the same length (``list_appeal``). 0 = every list is followed at follow_probability.
    follow_full_appeal: float = 0.2
    popularity_exponent: float = 0.1
    taste_temperature: float = 2.0
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    timeout_rate: float = 0.005
    request_timeout_s: float = 0.6
    max_active_sessions: int = 0
    batch_lines: int = 2000
    scenarios: list = field(default_factory=list)
    # Days of viewing each viewer has behind them before the first simulated moment: their ``seen`` set
    # starts with that many days' worth of movies (drawn by taste and popularity, as visits pick them),
    # none of it in the stream. 0: every viewer starts with nothing seen and works down from their
    # favourites, so a week's ratings fall (docs/simulator.md); with a history the week is about stationary.
    history_days: float = 0.0


class Simulator:
    """Runs a ``World``: ``run_backfill(days=7)`` or ``run_live(rate=5, duration_s=60)``.

    ``recommend`` is how a viewer's client gets recommendations: ``UsherClient(url)`` in live mode,
    any callable returning ``RecommendResult`` in-process, or None for the built-in popularity server.
    """

    def __init__(self, world: World, config: SimulationConfig | None = None, sink: Sink | None = None,
                 recommend: Recommend | None = None, scraper: Recommend | None = None) -> None:
        self.world = world
        self.config = config or SimulationConfig()
        self.sink = sink if sink is not None else ListSink()
        self.recommend = recommend
        self.scraper = scraper
        self.rng = np.random.default_rng(self.config.seed)
        self.heap: list[tuple[float, int, str, tuple]] = []  # (time, seq, kind, data)
        self.seq = itertools.count()
        n_v, n_m = len(world.viewer_ids), len(world.movie_ids)
        self.seen: list[set[int]] = [set() for _ in range(n_v)]
        self.last_recs: dict[int, dict[int, int]] = {}
        self.visit_weights = world.activity.astype(float).copy()
        self._cum_weights = np.cumsum(self.visit_weights)
        self.taste_bonus: list[tuple[np.ndarray, np.ndarray]] = []  # (viewer mask, per-movie bonus)
        self.bias_ratings: list[tuple[np.ndarray, float]] = []
        self.bias_timeouts: list[tuple[np.ndarray, float]] = []
        self.watch_counts = np.zeros(n_m)
        self._house_ranking = np.argsort(-world.popularity)
        self._house_refreshed = -math.inf
        self.movie_index = world.movie_index()
        self.active_sessions = 0
        self.stats: Counter = Counter()
        self._batch: list[str] = []
        self.now = 0.0
        if self.config.history_days > 0:
            self._fill_history(self.config.history_days)

    def _fill_history(self, days: float) -> None:
        """Each viewer's ``seen`` set gets ``days`` of viewing: a Poisson count of the movies a visit adds
        (a watch, the extra ratings) at the viewer's visit rate, drawn without replacement by the same
        weights a visit chooses by (at most half the catalog)."""
        cfg = self.config
        per_visit = cfg.watch_probability + cfg.extra_ratings_per_visit
        n_m = len(self.world.movie_ids)
        for u in range(len(self.world.viewer_ids)):
            expected = float(self.visit_weights[u]) * self.world.config.visits_per_viewer_per_day * days * per_visit
            count = min(int(self.rng.poisson(expected)), n_m // 2)
            if count == 0:
                continue
            weights = self._choice_weights(u, self.world.scores(u))
            positive = int((weights > 0).sum())
            count = min(count, positive)
            if count:
                picked = self.rng.choice(n_m, size=count, replace=False, p=weights / weights.sum())
                self.seen[u].update(int(m) for m in picked)
        self.stats["history_movies"] = sum(len(s) for s in self.seen)

    # --- scheduling -----------------------------------------------------------------------------
    def _push(self, t: float, kind: str, *data) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, data))

    def _at(self, value, start: float) -> float:
        if isinstance(value, timedelta):
            return start + value.total_seconds()
        return value.timestamp()

    def _schedule_scenarios(self, start: float) -> None:
        for scenario in self.config.scenarios:
            self._push(self._at(scenario.at, start), "scenario", scenario)

    # --- lines ------------------------------------------------------------------------------------
    def _time_text(self, t: float) -> L.Stamp:
        """The platform's time: mostly whole seconds (``:SS`` dropped at zero), some micro/nanoseconds."""
        roll = self.rng.random()
        if roll < 0.7:
            return L.Stamp(t, "seconds")
        if roll < 0.9:
            return L.Stamp(t, "micro")
        return L.Stamp(t, "nano", int(self.rng.integers(1000)))

    def _timeout_error(self, server: str, viewer_id: int) -> str:
        host, _, port = server.rpartition(":")
        if not port.isdigit():
            host, port = server, "80"
        return TIMEOUT_ERROR.format(host=host, port=port, timeout=self.config.request_timeout_s, viewer=viewer_id)

    def _corrupt(self, line: str) -> str:
        kind = MALFORMED_KINDS[int(self.rng.integers(len(MALFORMED_KINDS)))]
        self.stats[f"malformed_{kind}"] += 1
        time_text, _, rest = line.partition(",")
        if kind == "truncated":
            return line[: max(1, int(len(line) * self.rng.uniform(0.2, 0.8)))]
        if kind == "missing_field":
            return rest  # the time is gone
        if kind == "bad_rating":
            viewer = rest.partition(",")[0]
            return f"{time_text},{viewer},GET /rate/{self.world.movie_ids[0]}={int(self.rng.choice([0, 6, 7, 10]))}"
        if kind == "unknown_type":
            viewer = rest.partition(",")[0]
            return f"{time_text},{viewer},GET /browse/home"
        return "2022-13-01T25:61:00" + line[len(time_text):]

    def _emit(self, t: float, line: str, kind: str) -> None:
        cfg = self.config
        if cfg.malformed_rate and self.rng.random() < cfg.malformed_rate:
            line, kind = self._corrupt(line), "malformed"
        self._batch.append(line)
        self.stats[f"lines_{kind}"] += 1
        self.stats["lines"] += 1
        if cfg.duplicate_rate and kind != "malformed" and self.rng.random() < cfg.duplicate_rate:
            self._push(t + float(self.rng.uniform(0, 30)), "duplicate", line)
        if len(self._batch) >= cfg.batch_lines:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self.sink.write(batch)

    # --- behaviour --------------------------------------------------------------------------------
    def _pick_viewer(self) -> int:
        x = self.rng.random() * self._cum_weights[-1]
        return int(np.searchsorted(self._cum_weights, x, side="right"))

    def _scores(self, u: int) -> np.ndarray:
        scores = self.world.scores(u)
        for mask, bonus in self.taste_bonus:
            if mask[u]:
                scores = scores + bonus
        return scores

    def _choice_weights(self, u: int, scores: np.ndarray, recs: dict[int, int] | None = None) -> np.ndarray:
        """Weights of choosing each movie: popularity and taste; from ``recs`` only, when given
        (taste, and the list's order: position p weighs 1 / (1 + p/5)). Seen movies weigh 0."""
        cfg = self.config
        w = self.world.popularity**cfg.popularity_exponent * np.exp(cfg.taste_temperature * (scores - scores.max()))
        if recs:
            in_list = np.zeros_like(w)
            for movie, position in recs.items():
                in_list[movie] = w[movie] / (1.0 + position / 5.0)
            w = in_list
        if self.seen[u]:
            w[list(self.seen[u])] = 0.0
        return w

    def list_appeal(self, u: int, scores: np.ndarray, recs: dict[int, int]) -> float:
        """How appealing the list ``recs`` (movie index → position) is to viewer ``u``, in [0, 1]: its
        weight under the viewer's own choice model (taste, popularity, position p weighing 1/(1+p/5);
        seen movies weigh 0) divided by that of the best list of the same length for this viewer
        (their favourite unseen movies, in order). A list of their favourites is near 1, a random
        list of a 300-movie catalog about 0.06, a list of movies they dislike or have seen 0."""
        if not recs:
            return 0.0
        weights = self._choice_weights(u, scores)
        position_weight = 1.0 / (1.0 + np.arange(len(recs)) / 5.0)
        best = float(np.sort(weights)[::-1][: len(recs)] @ position_weight)
        if best <= 0:
            return 0.0
        listed = sum(float(weights[movie]) / (1.0 + position / 5.0) for movie, position in recs.items())
        return min(1.0, listed / best)

    def follow_chance(self, u: int, scores: np.ndarray, recs: dict[int, int]) -> float:
        """The chance that a watch is picked from ``recs``: ``follow_probability`` for a list at least
        ``follow_full_appeal`` appealing (``list_appeal``), proportionally less for a worse one."""
        cfg = self.config
        if not recs:
            return 0.0
        if cfg.follow_full_appeal <= 0:
            return cfg.follow_probability
        return cfg.follow_probability * min(1.0, self.list_appeal(u, scores, recs) / cfg.follow_full_appeal)

    def _sample(self, weights: np.ndarray) -> int | None:
        total = weights.sum()
        if total <= 0:
            return None
        x = self.rng.random() * total
        return int(min(np.searchsorted(np.cumsum(weights), x, side="right"), len(weights) - 1))

    def _house_recommend(self, u: int, t: float) -> RecommendResult:
        """The built-in server of backfill mode: the most watched (then most popular) unseen movies."""
        if t - self._house_refreshed > 3600:
            prior = self.world.popularity / self.world.popularity.sum()
            observed = self.watch_counts / max(1.0, self.watch_counts.sum())
            self._house_ranking = np.argsort(-(prior + observed), kind="stable")
            self._house_refreshed = t
        top = [int(i) for i in self._house_ranking[:100] if int(i) not in self.seen[u]]
        if len(top) > 20:  # a little variety between viewers: 20 of the top 100, weighted by rank
            weights = 1.0 / (np.arange(len(top)) + 5.0)
            picked = self.rng.choice(len(top), size=20, replace=False, p=weights / weights.sum())
            top = [top[i] for i in sorted(picked)]
        items = top[:20]
        ms = int(self.rng.lognormal(math.log(40), 0.5))
        if self.rng.random() < self.config.timeout_rate:
            return RecommendResult(0, [], int(self.config.request_timeout_s * 1000),
                                   self._timeout_error(self.config.server, int(self.world.viewer_ids[u])))
        return RecommendResult(200, [self.world.movie_ids[i] for i in items], min(ms, 599))

    def _visit(self, u: int, t: float) -> None:
        self.stats["visits"] += 1
        viewer_id = int(self.world.viewer_ids[u])
        if self.recommend is None:
            result, server = self._house_recommend(u, t), self.config.server
        else:
            result, server = self.recommend(viewer_id), getattr(self.recommend, "server", self.config.server)
        self._after_recommend(u, t, result, server)

    def _after_recommend(self, u: int, t: float, result: RecommendResult, server: str) -> None:
        viewer_id = int(self.world.viewer_ids[u])
        for mask, probability in self.bias_timeouts:
            if mask[u] and self.rng.random() < probability:
                ms = int(self.config.request_timeout_s * 1000)
                result = RecommendResult(0, [], ms, self._timeout_error(server, viewer_id))
                self.stats["bias_timeouts"] += 1
        if result.status == 200:
            self.stats["recommendations_ok"] += 1
            line = L.recommendation_line(self._time_text(t), viewer_id, server, 200, result.items, result.response_ms)
        else:
            self.stats["recommendations_failed"] += 1
            line = L.recommendation_line(self._time_text(t), viewer_id, server, 0, result.error or "error",
                                         result.response_ms)
        self._emit(t, line, "recommendation")
        recs = {self.movie_index[m]: pos for pos, m in enumerate(result.items) if m in self.movie_index}
        self.last_recs[u] = recs
        t += result.response_ms / 1000.0
        cfg = self.config
        scores = self._scores(u)
        if self.rng.random() < cfg.watch_probability and (
            not cfg.max_active_sessions or self.active_sessions < cfg.max_active_sessions
        ):
            movie = None
            if recs and self.rng.random() < self.follow_chance(u, scores, recs):  # the feedback loop
                movie = self._sample(self._choice_weights(u, scores, recs))
                self.stats["follows"] += int(movie is not None)
            if movie is None:
                movie = self._sample(self._choice_weights(u, scores))
            if movie is not None:
                self._start_session(u, movie, t + float(self.rng.uniform(5, 90)), scores[movie], movie in recs)
        for _ in range(int(self.rng.poisson(cfg.extra_ratings_per_visit))):
            movie = self._sample(self._choice_weights(u, scores))
            if movie is None:
                break
            self.seen[u].add(movie)
            self._push(t + float(self.rng.uniform(10, 300)), "rate", u, movie)

    def _start_session(self, u: int, movie: int, t: float, score: float, recommended: bool) -> None:
        self.seen[u].add(movie)
        self.watch_counts[movie] += 1
        self.active_sessions += 1
        self.stats["sessions"] += 1
        self.stats["sessions_from_recommendations"] += int(recommended)
        liking = 1.0 / (1.0 + math.exp(-2.0 * (score - 3.0)))
        completion = min(1.0, max(0.03, liking * float(self.rng.uniform(0.6, 1.2))))
        minutes = max(1, int(self.world.runtimes[movie] * completion))
        self._push(t, "minute", u, movie, 0, minutes - 1)

    def _minute(self, t: float, u: int, movie: int, minute: int, last: int) -> None:
        viewer_id = int(self.world.viewer_ids[u])
        self._emit(t, L.watch_line(self._time_text(t), viewer_id, self.world.movie_ids[movie], minute), "watch")
        if minute < last:
            self._push(t + 60.0, "minute", u, movie, minute + 1, last)
            return
        self.active_sessions -= 1
        if self.rng.random() < self.config.rate_probability:
            self._push(t + float(self.rng.exponential(120)) + 1, "rate", u, movie)

    def _rate(self, t: float, u: int, movie: int) -> None:
        shift = 0.0
        for mask, strength in self.bias_ratings:
            if mask[u] and movie in self.last_recs.get(u, {}):
                shift -= strength
                self.stats["bias_ratings"] += 1
        for mask, bonus in self.taste_bonus:
            if mask[u]:
                shift += float(bonus[movie])
        stars = self.world.rating(u, movie, self.rng, shift)
        self.stats["ratings"] += 1
        self._emit(t, L.rate_line(self._time_text(t), int(self.world.viewer_ids[u]), self.world.movie_ids[movie],
                                  stars), "rating")

    # --- scenarios ----------------------------------------------------------------------------------
    def _apply(self, t: float, scenario) -> None:
        world = self.world
        self.stats[f"scenario_{type(scenario).__name__.lower()}"] += 1
        logger.info("simulator: scenario %s at %s", scenario, datetime.fromtimestamp(t, tz=UTC))
        if isinstance(scenario, Drift):
            mask = world.group_mask(scenario.group)
            if scenario.kind == "taste":
                if scenario.genre not in GENRES:
                    raise ValueError(f"drift: unknown genre {scenario.genre!r}; genres: {', '.join(GENRES)}")
                bonus = np.array([scenario.strength if scenario.genre in g else 0.0 for g in world.movie_genres])
                self.taste_bonus.append((mask, bonus))
            elif scenario.kind == "audience":
                self.visit_weights[mask] *= scenario.strength
                self._cum_weights = np.cumsum(self.visit_weights)
            else:
                raise ValueError(f"drift: kind must be taste or audience, not {scenario.kind!r}")
        elif isinstance(scenario, PlantedBias):
            mask = world.group_mask(scenario.group)
            if scenario.kind == "ratings":
                self.bias_ratings.append((mask, scenario.strength))
            elif scenario.kind == "timeouts":
                self.bias_timeouts.append((mask, min(1.0, scenario.strength)))
            else:
                raise ValueError(f"bias: kind must be ratings or timeouts, not {scenario.kind!r}")
        elif isinstance(scenario, Shilling):
            self._shill(t, scenario)
        elif isinstance(scenario, Scraping):
            client = self.scraper
            if client is None:
                self.stats["scraping_skipped"] += 1
                logger.warning("simulator: scraping needs a server to call (live mode); skipped")
                return
            start_id = scenario.start_id or int(world.viewer_ids[0])
            for j in range(scenario.requests):
                self._push(t + j / max(scenario.rate, 0.001), "scrape", start_id + j)

    def shilling_target(self, scenario: Shilling) -> str:
        if scenario.movie:
            return scenario.movie
        order = np.argsort(self.world.popularity)
        return self.world.movie_ids[int(order[len(order) // 5])]  # an unpopular movie, deterministically

    def _shill(self, t: float, scenario: Shilling) -> None:
        world = self.world
        target = self.shilling_target(scenario)
        id_start = scenario.id_start or int(world.viewer_ids[-1]) + 1_000_001
        popular = np.argsort(-world.popularity)[:50]
        for a in range(scenario.accounts):
            viewer_id = id_start + a
            when = t + float(self.rng.uniform(0, scenario.window_minutes * 60))
            for movie in self.rng.choice(popular, size=min(scenario.filler, len(popular)), replace=False):
                stars = int(min(5, max(1, round(world.mu + world.b_i[movie]))))
                self._push(when, "line", L.rate_line(self._time_text(when), viewer_id, world.movie_ids[movie], stars),
                           "rating")
                when += float(self.rng.uniform(5, 60))
            self._push(when, "line", L.rate_line(self._time_text(when), viewer_id, target, scenario.rating), "rating")
            self.stats["shilling_ratings"] += 1

    # --- the loop -----------------------------------------------------------------------------------
    def _handle(self, event: tuple[float, int, str, tuple]) -> None:
        t, _, kind, data = event
        self.now = t
        if kind == "minute":
            self._minute(t, *data)
        elif kind == "rate":
            self._rate(t, *data)
        elif kind == "visit":
            self._visit(data[0], t)
        elif kind == "line":
            self._emit(t, data[0], data[1])
        elif kind == "duplicate":
            self._batch.append(data[0])
            self.stats["lines_duplicate"] += 1
            self.stats["lines"] += 1
        elif kind == "scenario":
            self._apply(t, data[0])
        elif kind == "scrape":
            self._scrape(data[0])

    def _scrape(self, viewer_id: int) -> None:
        result = self.scraper(viewer_id)
        self.stats["scrape_requests"] += 1
        self.stats[f"scrape_status_{result.status}"] += 1

    def run_backfill(self, *, days: float | None = None, start: datetime | None = None,
                     until: datetime | None = None, progress: Callable[[Counter, float], None] | None = None) -> Counter:
        """Simulate from ``start`` (default: the world's start) for ``days`` (or ``until``), as fast as possible."""
        start_t = (start or self.world.config.start).timestamp()
        end_t = until.timestamp() if until else start_t + (days if days is not None else 7.0) * 86400
        self.scraper = self.scraper or (self.recommend if self.recommend is not None else None)
        self._schedule_scenarios(start_t)
        per_day = self.world.config.visits_per_viewer_per_day
        next_visit = start_t + float(self.rng.exponential(86400.0 / (self.visit_weights.sum() * per_day)))
        reported = start_t
        while True:
            if next_visit < end_t and (not self.heap or next_visit <= self.heap[0][0]):
                t = next_visit
                next_visit += float(self.rng.exponential(86400.0 / (self.visit_weights.sum() * per_day)))
                self.now = t
                self._visit(self._pick_viewer(), t)
            elif self.heap and self.heap[0][0] < end_t:
                self._handle(heapq.heappop(self.heap))
            else:
                break
            if progress and self.now - reported >= 6 * 3600:
                reported = self.now
                progress(self.stats, (self.now - start_t) / max(1.0, end_t - start_t))
        self.flush()
        self.sink.flush()
        return self.stats

    def run_live(self, *, rate: float = 5.0, duration_s: float | None = None,
                 stop: Callable[[], bool] | None = None, workers: int = 8) -> Counter:
        """Run on the wall clock: ``rate`` visits per second, each asking ``recommend`` (in a thread pool).

        Stops after ``duration_s`` seconds or when ``stop()`` is true; lines are flushed every second.
        """
        if self.config.max_active_sessions == 0:
            self.config.max_active_sessions = 500
        started = _time.time()
        self._schedule_scenarios(started)
        next_visit = started + float(self.rng.exponential(1.0 / rate))
        last_flush = started
        pending: list[tuple[int, float, Future, str]] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simulate") as pool:
            while True:
                now = _time.time()
                if (duration_s is not None and now - started >= duration_s) or (stop and stop()):
                    break
                while next_visit <= now:
                    u = self._pick_viewer()
                    self.stats["visits"] += 1
                    if self.recommend is None:
                        self._after_recommend(u, next_visit, self._house_recommend(u, next_visit), self.config.server)
                    else:
                        server = getattr(self.recommend, "server", self.config.server)
                        pending.append((u, next_visit, pool.submit(self.recommend, int(self.world.viewer_ids[u])),
                                        server))
                    next_visit += float(self.rng.exponential(1.0 / rate))
                still = []
                for u, t, future, server in pending:
                    if future.done():
                        self._after_recommend(u, t, future.result(), server)
                    else:
                        still.append((u, t, future, server))
                pending = still
                while self.heap and self.heap[0][0] <= now:
                    event = heapq.heappop(self.heap)
                    if event[2] == "scrape":
                        pool.submit(self._scrape, event[3][0])
                    else:
                        self._handle(event)
                if now - last_flush >= 1.0:
                    self.flush()
                    self.sink.flush()
                    last_flush = now
                wake = min([next_visit, now + 0.05] + ([self.heap[0][0]] if self.heap else []))
                _time.sleep(max(0.0, min(0.05, wake - _time.time())))
        self.flush()
        self.sink.flush()
        return self.stats
