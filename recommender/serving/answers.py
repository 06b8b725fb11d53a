"""Answering a viewer: one service every entry point calls.

Three doors ask for a viewer's recommendations: ``GET /recommend/<userid>`` (``handlers.recommend_plain``,
one line of movie ids), ``GET /api/v1/recommendations/<userid>`` (``api.serving.RecommendationsApi``,
JSON with explanations) and the provenance page's "ask for recommendations" (``pages.ProvenanceView``).
Each door reads its own input and refuses it in its own form (a one-line 400, a JSON 400, a message on
the page); the id is read by one parser, ``parse_viewer_id``. Then every door calls ``recommend_answer``:
the routed model's answer, or the fallback when the serving code itself fails (a well-formed request
never gets a 5xx), optionally explained, and its prediction-log record.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from recommender.serving import selectors
from recommender.serving.runtime import POPULAR_REASONS, Answer, get_runtime

logger = logging.getLogger(__name__)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_VIEWER_ID = re.compile(r"-?[0-9]{1,20}")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


class InvalidViewerId(ValueError):
    """The user id is not a 64-bit integer."""


def parse_viewer_id(raw: str) -> int:
    """A decimal integer within 64 bits (ASCII digits, optional minus), else ``InvalidViewerId``."""
    if not _VIEWER_ID.fullmatch(raw):
        shown = _PRINTABLE.sub("?", raw[:40])
        raise InvalidViewerId(f"user id must be an integer, got '{shown}'" if raw else "user id is missing")
    value = int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidViewerId(f"user id {raw[:40]} is out of range (64-bit integers only)")
    return value


@dataclass(frozen=True)
class ServedAnswer:
    """What a door formats: the runtime's answer, its items explained (when asked) and the latency logged."""

    answer: Answer
    items: list[dict] | None
    latency_ms: float


def recommend_answer(
    *, viewer_id: int, k: int, endpoint: str, client: str, started: float, explain: bool = False
) -> ServedAnswer:
    """Recommend ``k`` items to ``viewer_id`` (an id ``parse_viewer_id`` accepted), or fall back to the
    popular list when the serving code fails, explain them when ``explain``, and append the answer's
    prediction-log record (status 200; ``endpoint`` "plain" or "api"; the latency since ``started``, a
    ``time.perf_counter()`` reading taken when the request arrived)."""
    runtime = get_runtime()
    try:
        answer = runtime.recommend(viewer_id, k)
    except Exception as exc:  # noqa: BLE001 - a well-formed request gets the fallback, never a 5xx
        logger.exception("serving: recommend failed for viewer %s", viewer_id)
        answer = runtime.fallback_answer(viewer_id, k, f"{type(exc).__name__}: {exc}")
    items = answer_explain(answer=answer) if explain else None
    latency_ms = (time.perf_counter() - started) * 1000
    runtime.log(answer=answer, endpoint=endpoint, client=client, status=200, latency_ms=latency_ms)
    return ServedAnswer(answer, items, latency_ms)


def answer_explain(*, answer: Answer) -> list[dict]:
    """Per item, its rank, title, score and why: the viewer's watched or rated movies nearest to it in
    the model's space, or "popular and recent" for the fallback's list."""
    popular = answer.fallback_reason in POPULAR_REASONS or answer.version is None
    model = None if popular else answer.version.model
    because: dict[str, list[str]] = {}
    if model is not None and answer.seen:
        for item in answer.items:
            try:
                because[item] = model.nearest_items(item, answer.seen, 2)
            except Exception:  # noqa: BLE001 - an explanation is optional
                because[item] = []
    titles = selectors.movie_titles(movie_ids=set(answer.items) | {m for near in because.values() for m in near})
    out = []
    for rank, item in enumerate(answer.items, start=1):
        near = because.get(item, [])
        if popular:
            text = "Popular and recent on the platform (you are new to the model, or no model is deployed)."
        elif near:
            text = "Close to " + " and ".join(f"'{titles.get(m, m)}'" for m in near) + ", which you watched or rated."
        else:
            text = "Matches your taste profile in the model."
        score = answer.scores[rank - 1] if rank - 1 < len(answer.scores) else None
        out.append(
            {
                "rank": rank,
                "movie_id": item,
                "title": titles.get(item, ""),
                "score": score,
                "explanation": {"text": text, "because": near},
            }
        )
    return out
