"""The serving runtime of one process: models in memory, routing, the seen index, the fallback,
the prediction log, and the background threads that keep them fresh.

The request path reads one immutable ``ServingState`` (a single attribute read, so a swap is
atomic), scores with numpy on memory-mapped arrays, and appends its record to the prediction log
buffer. It never queries the database. Background threads:

- ``serving-deployment`` polls the deployment and the registry aliases every ``POLL_SECONDS``; on a
  change it loads the new versions (sha256-checked, memory-mapped) *before* swapping the state, so
  requests during a change are answered by the old state or the new one, never by nothing. A
  version that fails to load leaves the last good model serving. The state is also written to
  ``STATE_DIR/deployment-<name>.json`` so a worker starting while the database is away still
  serves the last deployment.
- ``serving-seen`` adopts new seen-index snapshots, reads the ratings and watch sessions added since
  into a delta, and starts a snapshot build (a child process, one per machine) when it is stale.
- the prediction log flusher (``predlog.PredictionLogger``) and the shadow thread (``shadow``).

``runtime_start()`` is called by gunicorn's ``post_worker_init`` hook and ``runtime_stop()`` by
``worker_exit`` (so SIGTERM flushes the prediction log before the process exits).

Never an empty answer while the catalog has movies: until the first seen-index snapshot exists the
fallback is the **start-up list** (the catalog's movies by popularity, read once at load, kept in
``STATE_DIR/fallback-startup.json`` for a start without the database, else ranked from the loaded
model's artifact). ``readiness()`` says whether this process can answer
the contract; ``/readyz`` is 503 until it can.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from recommender.serving import bucketing
from recommender.serving.conf import ServingSettings, serving_settings
from recommender.serving.predlog import PredictionLogger, PredictionRecord, new_request_id
from recommender.serving.ratelimit import make_limiter
from recommender.serving.scoring import Scorer
from recommender.serving.shadow import ShadowRunner
from recommender.serving.snapshot import BuildLock, SeenDelta, SeenSnapshot, current_snapshot_dir

logger = logging.getLogger(__name__)

# Why an answer is not the routed model's own personalised list.
FALLBACK_UNKNOWN_VIEWER = "unknown_viewer"  # the model has no factors for this viewer: popular list
FALLBACK_NO_MODEL = "no_model"  # nothing deployed (or nothing loadable): popular list
FALLBACK_MODEL_ERROR = "model_error"  # every model raised: popular list
FALLBACK_INTERNAL_ERROR = "internal_error"  # the serving code itself failed: popular list
LAST_GOOD_MODEL = "last_good_model"  # the deployed version failed; the last good one answered
ARM_UNAVAILABLE = "arm_unavailable"  # the viewer's arm could not answer; production did
POPULAR_REASONS = frozenset({FALLBACK_UNKNOWN_VIEWER, FALLBACK_NO_MODEL, FALLBACK_MODEL_ERROR, FALLBACK_INTERNAL_ERROR})
FALLBACK_LABEL = "fallback"


@dataclass(frozen=True)
class LoadedVersion:
    """A model version held in memory: its id, label and the memory-mapped model."""

    version_id: int
    label: str
    sha256: str
    directory: str
    model: object  # recommender.registry.artifacts.ServingModel
    scorer: Scorer
    loaded_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ServingState:
    """What one deployment revision serves; replaced whole, never mutated."""

    revision: int
    fingerprint: tuple
    layout: bucketing.Layout
    routes: dict  # route name → LoadedVersion
    shadow: LoadedVersion | None
    errors: dict  # route name → why its version is not serving
    source: str  # "database", "cache file" or "empty"
    loaded_at: float = field(default_factory=time.time)

    @classmethod
    def empty(cls) -> ServingState:
        return cls(revision=0, fingerprint=(), layout=bucketing.Layout(salt="", ranges=()), routes={}, shadow=None,
                   errors={}, source="empty")


@dataclass
class Answer:
    """What the runtime answers for one viewer (before it is formatted for an endpoint)."""

    request_id: str
    viewer_id: int
    items: list[str]
    scores: list[float]
    arm: str
    version: LoadedVersion | None
    fallback_reason: str = ""
    error: str = ""
    revision: int = 0
    snapshot: SeenSnapshot | None = None
    seen_codes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    seen_extra: frozenset = frozenset()

    @property
    def seen(self) -> list[str]:
        """The viewer's watched or rated movies (snapshot and since), as ids."""
        seen = self.snapshot.seen(self.viewer_id) if self.snapshot is not None else []
        known = set(seen)
        return seen + [m for m in self.seen_extra if m not in known]

    @property
    def served_by(self) -> str:
        if self.fallback_reason in POPULAR_REASONS or self.version is None:
            return FALLBACK_LABEL
        return self.version.label


def version_label(version) -> str:
    return f"{version.registered_model.name} v{version.version}"


class Runtime:
    """Everything one process needs to answer recommendation requests."""

    def __init__(self, config: ServingSettings | None = None) -> None:
        self.config = config or serving_settings()
        self.state: ServingState = ServingState.empty()
        self.last_good: LoadedVersion | None = None
        self.snapshot: SeenSnapshot = SeenSnapshot.empty()
        self.delta = SeenDelta(rating_from=0, session_from=0)
        self.predlog = PredictionLogger(
            spill_dir=self.config.spill_dir, batch=self.config.log_batch, flush_seconds=self.config.log_flush_seconds,
            replay_seconds=self.config.log_replay_seconds, max_buffer=self.config.log_max_buffer,
        )
        self.recommend_limiter = make_limiter(backend="local", rate=self.config.recommend_rate,
                                              burst=self.config.recommend_burst, scope="recommend")
        self.api_limiter = make_limiter(backend=self.config.rate_limit_backend, rate=self.config.api_rate,
                                        burst=self.config.api_burst, scope="api")
        self.shadow = ShadowRunner(maxsize=self.config.shadow_queue)
        self.started = False
        self.started_at = time.time()
        self.served = 0
        self.errors: dict[str, str] = {}
        self.last_poll_ok_at: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._models: dict[int, LoadedVersion] = {}
        self._refresh_lock = threading.Lock()
        self._builder: subprocess.Popen | None = None
        self._loaded_once = False
        self._load_done = False  # the first refresh_all finished (readiness)
        # The fallback before the first snapshot: [(movie_id, score)] and where it came from.
        self.startup_fallback: list[tuple[str, float]] = []
        self.startup_fallback_source = ""
        self.catalog_empty = False  # the database said so: an empty line is then the only answer
        self._startup_fallback_tried_at = 0.0
        self._artifact_rankings: dict[int, list[tuple[str, float]]] = {}

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load what is needed to answer (database, else the local cache), then start the threads."""
        if self.started:
            return
        self.started = True
        self._stop.clear()
        self.refresh_all()
        self.predlog.start()
        self.shadow.start()
        for name, target in (("serving-deployment", self._deployment_loop), ("serving-seen", self._seen_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("serving runtime started in pid %s (revision %s, %d routes)", os.getpid(), self.state.revision,
                    len(self.state.routes))

    def stop(self) -> dict:
        """Stop the threads and flush the prediction log (database, else the spill file)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self._threads.clear()
        self.shadow.stop()
        result = self.predlog.stop()
        self._remove_status()
        self.started = False
        logger.info("serving runtime stopped in pid %s: %s", os.getpid(), result)
        return result

    def ensure_loaded(self) -> None:
        """Without the background threads (tests, one-off commands), load once on first use."""
        if self._loaded_once or self.started:
            return
        self._loaded_once = True
        self.refresh_all()

    def refresh_all(self) -> None:
        self._loaded_once = True
        try:
            self.refresh_deployment()
        except Exception as exc:  # noqa: BLE001 - no database: serve the last deployment from the cache
            self._note_error("deployment", exc)
            if not self.state.routes:
                self.load_cached_deployment()
        try:
            self.refresh_snapshot()
        except Exception as exc:  # noqa: BLE001
            self._note_error("snapshot", exc)
        if not self.snapshot.popular:
            self.load_startup_fallback()
        self._load_done = True

    # --- deployment -----------------------------------------------------------------------------
    def _read_deployment(self) -> tuple[tuple, dict]:
        """One consistent read of the deployment, its arms and the aliases (a few small queries)."""
        from recommender.models import Deployment, ModelAlias

        deployment = Deployment.objects.filter(name=self.config.deployment).first()
        aliases = dict(ModelAlias.objects.filter(version__isnull=False).values_list("name", "version_id"))
        if deployment is None:
            spec = {"revision": 0, "salt": "", "canary_percent": "0", "shadow_enabled": True, "arms": []}
        else:
            spec = {
                "revision": deployment.revision, "salt": deployment.salt,
                "canary_percent": str(deployment.canary_percent), "shadow_enabled": deployment.shadow_enabled,
                "arms": [(a.name, a.version_id, str(a.percent)) for a in deployment.arms.order_by("position", "name")],
            }
        spec["aliases"] = aliases
        fingerprint = (spec["revision"], spec["salt"], spec["canary_percent"], spec["shadow_enabled"],
                       tuple(spec["arms"]), tuple(sorted(aliases.items())))
        return fingerprint, spec

    def refresh_deployment(self, *, force: bool = False) -> bool:
        """Poll once; on a change, load and swap. Returns True when the state changed."""
        with self._refresh_lock:
            fingerprint, spec = self._read_deployment()
            self.last_poll_ok_at = time.time()
            if fingerprint == self.state.fingerprint and not force:
                return False
            wanted = self._wanted_versions(spec)
            from recommender.models import ModelVersion

            versions = {
                v.pk: v for v in ModelVersion.objects.select_related("registered_model").filter(pk__in=set(wanted.values()))
            }
            descriptors = {}
            for vid, v in versions.items():
                from recommender.registry.artifacts import artifact_abspath

                try:
                    directory = str(artifact_abspath(v.artifact_path))
                except Exception as exc:  # noqa: BLE001 - a bad path is a load failure like any other
                    directory = f"<invalid: {exc}>"
                descriptors[vid] = {"version_id": vid, "label": version_label(v), "sha256": v.artifact_sha256,
                                    "directory": directory}
            state = self._build_state(fingerprint=fingerprint, spec=spec, wanted=wanted, descriptors=descriptors,
                                      source="database")
            self._swap(state)
            self._write_cache(spec=spec, wanted=wanted, descriptors=descriptors, fingerprint=fingerprint)
            return True

    @staticmethod
    def _wanted_versions(spec: dict) -> dict[str, int]:
        aliases = spec["aliases"]
        wanted: dict[str, int] = {}
        if aliases.get("production"):
            wanted[bucketing.PRODUCTION] = aliases["production"]
        if aliases.get("canary") and float(spec["canary_percent"]) > 0:
            wanted[bucketing.CANARY] = aliases["canary"]
        for name, version_id, _ in spec["arms"]:
            wanted[f"arm:{name}"] = version_id
        if aliases.get("shadow") and spec["shadow_enabled"]:
            wanted["shadow"] = aliases["shadow"]
        return wanted

    def _load(self, descriptor: dict) -> LoadedVersion:
        vid = descriptor["version_id"]
        cached = self._models.get(vid)
        if cached is not None and cached.sha256 == descriptor["sha256"]:
            return cached
        from recommender.registry.artifacts import load_serving_model

        model = load_serving_model(directory=descriptor["directory"], expected_sha256=descriptor["sha256"])
        loaded = LoadedVersion(version_id=vid, label=descriptor["label"], sha256=descriptor["sha256"],
                               directory=descriptor["directory"], model=model, scorer=Scorer(model))
        self._models[vid] = loaded
        return loaded

    def _build_state(self, *, fingerprint: tuple, spec: dict, wanted: dict, descriptors: dict, source: str) -> ServingState:
        routes: dict[str, LoadedVersion] = {}
        errors: dict[str, str] = {}
        shadow = None
        for route, vid in wanted.items():
            descriptor = descriptors.get(vid)
            if descriptor is None:
                errors[route] = f"version #{vid} does not exist"
                continue
            try:
                loaded = self._load(descriptor)
            except Exception as exc:  # noqa: BLE001 - a broken artifact must not take serving down
                errors[route] = f"version #{vid} ({descriptor['label']}) failed to load: {exc}"[:500]
                logger.error("serving: %s", errors[route])
                continue
            if route == "shadow":
                shadow = loaded
            else:
                routes[route] = loaded
        if bucketing.PRODUCTION in routes:
            self.last_good = routes[bucketing.PRODUCTION]
        try:
            arms = [(name, percent) for name, _, percent in spec["arms"]]
            layout = bucketing.build_layout(salt=spec["salt"], canary_percent=spec["canary_percent"], arms=arms)
        except ValueError as exc:
            errors["layout"] = str(exc)
            layout = bucketing.Layout(salt=spec["salt"], ranges=())
        return ServingState(revision=spec["revision"], fingerprint=fingerprint, layout=layout, routes=routes,
                            shadow=shadow, errors=errors, source=source)

    def _swap(self, state: ServingState) -> None:
        old = self.state
        self.state = state  # one reference assignment: requests see the old state or the new one
        keep = {lv.version_id for lv in state.routes.values()}
        if state.shadow:
            keep.add(state.shadow.version_id)
        if self.last_good:
            keep.add(self.last_good.version_id)
        for vid in list(self._models):
            if vid not in keep:
                del self._models[vid]  # unmapped once the last request holding the old state is done
        before = (old.revision, {r: lv.version_id for r, lv in old.routes.items()})
        if before != (state.revision, {r: lv.version_id for r, lv in state.routes.items()}):
            logger.info("serving: revision %s → %s (%s)", old.revision, state.revision,
                        {r: lv.label for r, lv in state.routes.items()})

    # --- local cache of the deployment, for a start without the database ---------------------------
    @property
    def cache_path(self) -> Path:
        return self.config.state_dir / f"deployment-{self.config.deployment}.json"

    def _write_cache(self, *, spec: dict, wanted: dict, descriptors: dict, fingerprint: tuple) -> None:
        payload = {"spec": {**spec, "aliases": spec["aliases"]}, "wanted": wanted,
                   "descriptors": {str(k): v for k, v in descriptors.items()}, "written_at": time.time()}
        try:
            self.config.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(payload, default=str))
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            self._note_error("cache", exc)

    def load_cached_deployment(self) -> bool:
        """Serve the last deployment this machine saw (artifacts still sha256-checked)."""
        try:
            payload = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return False
        spec = payload["spec"]
        spec["arms"] = [tuple(a) for a in spec.get("arms", [])]
        wanted = {k: int(v) for k, v in payload["wanted"].items()}
        descriptors = {int(k): v for k, v in payload["descriptors"].items()}
        state = self._build_state(fingerprint=("cache",), spec=spec, wanted=wanted, descriptors=descriptors,
                                  source="cache file")
        self._swap(state)
        return True

    # --- seen index and fallback ------------------------------------------------------------------
    def refresh_snapshot(self) -> bool:
        """Adopt a newer snapshot if there is one; returns True when it changed."""
        directory = current_snapshot_dir(self.config.snapshot_dir)
        if directory is None or directory.name == self.snapshot.name:
            return False
        snapshot = SeenSnapshot.load(directory)
        delta = SeenDelta(rating_from=int(snapshot.meta.get("rating_max_id", 0)),
                          session_from=int(snapshot.meta.get("session_max_id", 0)))
        try:
            delta.poll()
        except Exception as exc:  # noqa: BLE001 - the delta catches up on the next poll
            self._note_error("seen delta", exc)
        self.snapshot, self.delta = snapshot, delta
        return True

    def snapshot_stale(self) -> bool:
        return self.snapshot.meta.get("empty") or self.snapshot.age_seconds > self.config.snapshot_refresh_seconds

    def start_snapshot_build(self) -> bool:
        """Start ``manage.py serving_snapshot`` as a low-priority child, unless one is running here or
        in another process of this machine (the build lock)."""
        if self._builder is not None and self._builder.poll() is None:
            return False
        if BuildLock(self.config.snapshot_dir).is_held_elsewhere():
            return False
        manage = Path(settings.BASE_DIR) / "manage.py"
        command = [sys.executable, str(manage), "serving_snapshot", "--if-stale"]
        if shutil.which("nice"):
            command = ["nice", "-n", "10", *command]  # the build must not slow the answers down
        self.config.snapshot_dir.mkdir(parents=True, exist_ok=True)
        with open(self.config.snapshot_dir / "build.log", "ab") as log:
            self._builder = subprocess.Popen(  # noqa: S603 - our own command
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return True

    # --- the start-up fallback (before the first snapshot) ------------------------------------------
    @property
    def startup_fallback_path(self) -> Path:
        return self.config.state_dir / "fallback-startup.json"

    def load_startup_fallback(self) -> bool:
        """Fill ``startup_fallback`` so that unknown viewers get a list before the first snapshot: the
        catalog's movies by popularity (one indexed query, so a worker's start does not grow with the
        events; the snapshot's popular-and-recent list replaces it within seconds), else the last one
        this machine read, else the loaded model's own item ranking. Returns True when there is one."""
        from recommender.serving.snapshot import catalog_popularity

        self._startup_fallback_tried_at = time.monotonic()
        try:
            ranked, meta = catalog_popularity(size=self.config.fallback_size)
            if ranked:
                self._set_startup_fallback(ranked, f"database ({meta['source']})")
                self._write_startup_fallback(ranked, meta)
                return True
            self.catalog_empty = True  # no movies: nothing to recommend, an empty line is the answer
            return False
        except Exception as exc:  # noqa: BLE001 - no database: the local copy, else the artifact
            self._note_error("fallback", exc)
        try:
            payload = json.loads(self.startup_fallback_path.read_text())
            ranked = [(str(m), float(v)) for m, v in payload["items"]]
            if ranked:
                self._set_startup_fallback(ranked, "local copy (fallback-startup.json)")
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        model = self.state.routes.get(bucketing.PRODUCTION) or self.last_good
        ranked = artifact_ranking(model.model, self.config.fallback_size) if model is not None else []
        if ranked:
            self._set_startup_fallback(ranked, f"model artifact ({model.label})")
            return True
        return False

    def _set_startup_fallback(self, ranked: list[tuple[str, float]], source: str) -> None:
        self.startup_fallback = list(ranked)  # swapped whole: request threads never see a list change
        self.startup_fallback_source = source
        self.catalog_empty = False
        self.errors.pop("fallback", None)
        logger.info("serving: start-up fallback of %d movies from %s", len(ranked), source)

    def _write_startup_fallback(self, ranked: list[tuple[str, float]], meta: dict) -> None:
        try:
            self.config.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.startup_fallback_path.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"items": [[m, round(float(v), 6)] for m, v in ranked], **meta,
                                       "written_at": time.time()}, default=str))
            os.replace(tmp, self.startup_fallback_path)
        except OSError as exc:
            self._note_error("cache", exc)

    def fallback_ranking(self) -> list[tuple[str, float]]:
        """The popular-and-recent list: the snapshot's, else the start-up list."""
        return self.snapshot.popular or self.startup_fallback

    def popular(self, k: int, exclude: set[str]) -> tuple[list[str], list[float]]:
        """The fallback's top ``k`` leaving out ``exclude``. When that leaves nothing (a viewer who has
        seen every movie of the list), the production model's own item ranking leaving out ``exclude``,
        and failing that the list as it is: a poor answer beats an empty one."""
        ranking = self.fallback_ranking()
        items, scores = _top(ranking, k, exclude)
        if items or k <= 0:
            return items, scores
        model = self.state.routes.get(bucketing.PRODUCTION) or self.last_good
        if model is not None:
            items, scores = _top(self._artifact_ranking(model), k, exclude)
        if not items:
            items, scores = _top(ranking, k, set())
        return items, scores

    def _artifact_ranking(self, loaded: LoadedVersion) -> list[tuple[str, float]]:
        cached = self._artifact_rankings.get(loaded.version_id)
        if cached is None:
            if len(self._artifact_rankings) > 8:
                self._artifact_rankings.clear()
            cached = self._artifact_rankings[loaded.version_id] = artifact_ranking(loaded.model,
                                                                                   self.config.fallback_size)
        return cached

    def readiness(self) -> dict:
        """Whether this process can answer ``/recommend`` by the contract: loaded, with a model or a
        fallback list (or a catalog with no movies, where an empty line is the only answer)."""
        state = self.state
        model = state.routes.get(bucketing.PRODUCTION) or self.last_good
        fallback = len(self.fallback_ranking())
        ok = self._load_done and (fallback > 0 or self.catalog_empty)
        out = {"ok": ok, "model": model.label if model else None, "fallback_items": fallback,
               "fallback_source": "snapshot" if self.snapshot.popular else self.startup_fallback_source or None}
        if not self._load_done:
            out["error"] = "still loading the deployment and the fallback list"
        elif not ok:
            problems = "; ".join(f"{what}: {error}" for what, error in self.errors.items())
            out["error"] = f"no fallback list yet ({problems})" if problems else "no fallback list yet"
        return out

    # --- answering ----------------------------------------------------------------------------------
    def recommend(self, viewer_id: int, k: int) -> Answer:
        """The answer for one viewer: the routed model, else production, else the last good model,
        else the popular-and-recent fallback. Never raises for a model or data problem."""
        if not self.started:
            self.ensure_loaded()
        state = self.state
        snapshot = self.snapshot
        request_id = new_request_id()
        route = state.layout.route(viewer_id)
        seen_codes = snapshot.seen_codes(viewer_id)
        seen_extra = self.delta.seen(viewer_id)
        answer = Answer(request_id, viewer_id, [], [], route, None, "", "", state.revision, snapshot, seen_codes,
                        seen_extra)
        candidates: list[tuple[LoadedVersion, str]] = []
        routed = state.routes.get(route)
        if routed is not None:
            candidates.append((routed, ""))
        production = state.routes.get(bucketing.PRODUCTION)
        if production is not None and production is not routed:
            candidates.append((production, ARM_UNAVAILABLE))
        last_good = self.last_good
        if last_good is not None and all(last_good is not c for c, _ in candidates):
            candidates.append((last_good, LAST_GOOD_MODEL))
        errors: list[str] = []
        if route in state.errors:
            errors.append(state.errors[route])
        for loaded, reason in candidates:
            try:
                result = loaded.scorer.recommend(viewer_id, k, snapshot=snapshot, seen_codes=seen_codes,
                                                 extra_seen=seen_extra)
            except Exception as exc:  # noqa: BLE001 - next candidate, then the fallback
                errors.append(f"{loaded.label}: {type(exc).__name__}: {exc}")
                logger.exception("serving: %s failed for viewer %s", loaded.label, viewer_id)
                continue
            answer.version = loaded
            answer.error = "; ".join(errors)[:255]
            if result is None:
                # The model does not know this viewer: the popular-and-recent fallback answers.
                answer.items, answer.scores = self.popular(k, set(answer.seen))
                answer.fallback_reason = FALLBACK_UNKNOWN_VIEWER
                return answer
            answer.items, answer.scores = result
            answer.fallback_reason = reason
            if not answer.items and k > 0:
                # The model has nothing left for this viewer (every item seen): the fallback's list.
                answer.items, answer.scores = self.popular(k, set(answer.seen))
            if state.shadow is not None:
                self.shadow.offer(loaded=state.shadow, viewer_id=viewer_id, k=k, served=answer.items,
                                  served_version_id=loaded.version_id, exclude=answer.seen, request_id=request_id)
            return answer
        answer.items, answer.scores = self.popular(k, set(answer.seen))
        answer.fallback_reason = FALLBACK_MODEL_ERROR if candidates else FALLBACK_NO_MODEL
        answer.error = "; ".join(errors)[:255]
        return answer

    def fallback_answer(self, viewer_id: int | None, k: int, error: str) -> Answer:
        """For when the serving code itself failed: the popular list, with no per-viewer work."""
        try:
            items, scores = self.popular(k, set())
        except Exception:  # noqa: BLE001
            items, scores = [], []
        return Answer(new_request_id(), viewer_id or 0, items, scores, "", None, FALLBACK_INTERNAL_ERROR,
                      error[:255], getattr(self.state, "revision", 0))

    def log(self, *, answer: Answer | None, endpoint: str, client: str, latency_ms: float, status: int,
            request_id: str | None = None, viewer_id: int | None = None, error: str = "") -> None:
        """Append the prediction-log record of one answer (or refusal) to the buffer."""
        self.served += 1
        if answer is None:
            record = PredictionRecord(request_id or new_request_id(), time.time(), endpoint, client[:100], viewer_id,
                                      None, "", 0, "", [], None, round(latency_ms, 3), status, "", error[:255])
        else:
            version = answer.version
            record = PredictionRecord(
                answer.request_id, time.time(), endpoint, client[:100], answer.viewer_id,
                version.version_id if version else None, version.label[:150] if version else FALLBACK_LABEL,
                answer.revision, answer.arm, tuple(answer.items), tuple(answer.scores), round(latency_ms, 3), status,
                answer.fallback_reason, (answer.error or error)[:255],
            )
        self.predlog.append(record)

    # --- background loops ---------------------------------------------------------------------------
    def _deployment_loop(self) -> None:
        next_status = 0.0
        while not self._stop.wait(self.config.poll_seconds):
            try:
                close_old_connections()
                self.refresh_deployment()
                self.errors.pop("deployment", None)
            except Exception as exc:  # noqa: BLE001 - keep serving what is loaded
                self._note_error("deployment", exc)
                _drop_connection()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + 2.0
                self.write_status()

    def _seen_loop(self) -> None:
        while not self._stop.wait(self.config.seen_delta_seconds):
            try:
                close_old_connections()
                if not self.refresh_snapshot():
                    self.delta.poll()
                self.errors.pop("seen", None)
            except Exception as exc:  # noqa: BLE001
                self._note_error("seen", exc)
                _drop_connection()
            try:
                if self.snapshot_stale():
                    self.start_snapshot_build()
            except Exception as exc:  # noqa: BLE001
                self._note_error("snapshot build", exc)
            if not self.fallback_ranking() and time.monotonic() - self._startup_fallback_tried_at >= 10.0:
                self.load_startup_fallback()  # the database or the catalog was not there at start

    def _note_error(self, what: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"[:300]
        if self.errors.get(what) != message:
            logger.warning("serving %s: %s", what, message)
        self.errors[what] = message

    # --- status, for the deployments page ---------------------------------------------------------
    def status(self) -> dict:
        state = self.state
        return {
            "pid": os.getpid(), "host": socket.gethostname(), "started_at": self.started_at, "written_at": time.time(),
            "revision": state.revision, "source": state.source, "loaded_at": state.loaded_at,
            "routes": {r: {"version_id": lv.version_id, "label": lv.label} for r, lv in state.routes.items()},
            "shadow": {"version_id": state.shadow.version_id, "label": state.shadow.label} if state.shadow else None,
            "layout": [{"route": r.route, "start": r.start, "end": r.end} for r in state.layout.ranges],
            "load_errors": state.errors,
            "last_good": self.last_good.label if self.last_good else None,
            "last_poll_ok_at": self.last_poll_ok_at, "errors": dict(self.errors),
            "snapshot": {"name": self.snapshot.name,
                         "age_seconds": None if self.snapshot.meta.get("empty") else round(self.snapshot.age_seconds, 1),
                         "viewers": int(self.snapshot.viewers.shape[0]), "pairs": self.snapshot.pairs,
                         "fallback_items": len(self.snapshot.popular)},
            "startup_fallback": {"items": len(self.startup_fallback), "source": self.startup_fallback_source},
            "ready": self.readiness()["ok"],
            "delta_pairs": self.delta.pairs, "served": self.served,
            "prediction_log": {**self.predlog.stats.__dict__, "buffered": len(self.predlog.buffer)},
            "shadow_stats": self.shadow.summary(),
        }

    @property
    def status_path(self) -> Path:
        return self.config.workers_dir / f"{socket.gethostname()}-{os.getpid()}.json"

    def write_status(self) -> None:
        try:
            self.config.workers_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status(), default=str))
            os.replace(tmp, self.status_path)
        except OSError as exc:
            self._note_error("status", exc)

    def _remove_status(self) -> None:
        try:
            self.status_path.unlink()
        except OSError:
            pass


def _top(ranking: list[tuple[str, float]], k: int, exclude: set[str]) -> tuple[list[str], list[float]]:
    items: list[str] = []
    scores: list[float] = []
    for movie_id, score in ranking:
        if movie_id in exclude:
            continue
        items.append(movie_id)
        scores.append(score)
        if len(items) >= k:
            break
    return items, scores


def artifact_ranking(model, size: int) -> list[tuple[str, float]]:
    """A model's items ranked without a viewer, for a fallback when nothing better is at hand: by the
    item bias (factor and bias models), the item scores (popularity), the item mean (co-clustering),
    else in the artifact's item order."""
    try:
        arrays = getattr(model, "_a", {})  # the artifact's arrays (memory-mapped, read only)
        item_ids = list(getattr(model, "item_ids", []))
        for name in ("item_bias", "item_scores", "item_mean"):
            values = arrays.get(name)
            if values is not None and len(values) == len(item_ids):
                values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1e9, posinf=1e9, neginf=-1e9)
                order = np.lexsort((np.arange(len(item_ids)), -values))[:size]
                return [(item_ids[i], round(float(values[i]), 6)) for i in order.tolist()]
        return [(item, 0.0) for item in item_ids[:size]]
    except Exception:  # noqa: BLE001 - a last resort must not be the thing that fails
        logger.exception("serving: could not rank the artifact's items")
        return []


def _drop_connection() -> None:
    from django.db import connection

    try:
        connection.close()
    except Exception:  # noqa: BLE001
        pass


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime (created on first use; started by gunicorn's hook or, outside tests and
    with ``AUTOSTART``, on first use)."""
    global _runtime
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime()
                if _runtime.config.autostart and "PYTEST_VERSION" not in os.environ:
                    _runtime.start()
            runtime = _runtime
    return runtime


def runtime_start() -> Runtime:
    """Create and start this process's runtime (gunicorn ``post_worker_init``)."""
    runtime = get_runtime()
    runtime.start()
    return runtime


def runtime_stop() -> dict | None:
    """Stop this process's runtime and flush its prediction log (gunicorn ``worker_exit``)."""
    if _runtime is None:
        return None
    return _runtime.stop()


def runtime_reset(config: ServingSettings | None = None) -> Runtime:
    """Replace this process's runtime (tests)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None and _runtime.started:
            _runtime.stop()
        _runtime = Runtime(config)
    return _runtime
