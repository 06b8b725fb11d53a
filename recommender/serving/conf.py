"""One accessor for the serving knobs in ``settings.RECOMMENDER['SERVING']``, with defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from django.conf import settings

DEFAULTS: dict = {
    "DEPLOYMENT": "default",
    "STATE_DIR": "",
    "K": 20,
    "MAX_K": 100,
    "POLL_SECONDS": 1.0,
    "SNAPSHOT_REFRESH_SECONDS": 600.0,
    "SEEN_DELTA_SECONDS": 2.0,
    "FALLBACK_SIZE": 200,
    "FALLBACK_WINDOW_DAYS": 14.0,
    "FALLBACK_HALF_LIFE_DAYS": 3.0,
    "LOG_FLUSH_SECONDS": 1.0,
    "LOG_BATCH": 2000,
    "LOG_MAX_BUFFER": 50_000,
    "LOG_REPLAY_SECONDS": 15.0,
    "RATE_LIMIT_BACKEND": "local",
    "RECOMMEND_RATE": 5000.0,
    "RECOMMEND_BURST": 10_000,
    "API_RATE": 20.0,
    "API_BURST": 60,
    "TRUSTED_PROXY_COUNT": 0,
    "SHADOW_QUEUE": 1000,
    "AUTOSTART": True,
}


@dataclass(frozen=True)
class ServingSettings:
    """The knobs, read once per runtime so the request path never looks them up."""

    deployment: str
    state_dir: Path
    k: int
    max_k: int
    poll_seconds: float
    snapshot_refresh_seconds: float
    seen_delta_seconds: float
    fallback_size: int
    fallback_window_days: float
    fallback_half_life_days: float
    log_flush_seconds: float
    log_batch: int
    log_max_buffer: int
    log_replay_seconds: float
    rate_limit_backend: str
    recommend_rate: float
    recommend_burst: int
    api_rate: float
    api_burst: int
    trusted_proxy_count: int
    shadow_queue: int
    autostart: bool

    @property
    def spill_dir(self) -> Path:
        return self.state_dir / "spill"

    @property
    def snapshot_dir(self) -> Path:
        return self.state_dir / "snapshots"

    @property
    def workers_dir(self) -> Path:
        return self.state_dir / "workers"


def serving_settings() -> ServingSettings:
    raw = {**DEFAULTS, **settings.RECOMMENDER.get("SERVING", {})}
    state_dir = Path(raw["STATE_DIR"] or Path(settings.VAR_DIR) / "serving")
    values = {f.name: raw[f.name.upper()] for f in fields(ServingSettings) if f.name != "state_dir"}
    if values["rate_limit_backend"] not in ("local", "redis"):
        raise ValueError("RECOMMENDER['SERVING']['RATE_LIMIT_BACKEND'] must be 'local' or 'redis'")
    return ServingSettings(state_dir=state_dir, **values)
