"""``GET /recommend/<userid>``: the platform's endpoint, as one function both front doors share.

``recommend_plain(environ, rest)`` takes a WSGI environ (or Django's ``request.META``, which is one)
and the path after ``/recommend/`` and returns ``(status, headers, body)``. It is served:

- by ``recommender.serving.wsgi.application`` (what gunicorn runs) before Django's middleware,
  since measured on this machine the full middleware stack costs several times the recommendation
  itself (docs/serving.md has the figures); it still checks the Host header against
  ``ALLOWED_HOSTS`` and sends ``X-Content-Type-Options: nosniff``;
- by the Django view in ``recommender/serving_urls.py`` (``runserver``, the test client).

Answers: ``200`` one line of up to ``K`` movie ids, comma-separated, best first; ``400`` one line for
a user id that is not an integer (or outside 64 bits); ``405`` for methods other than GET/HEAD;
``429`` with ``Retry-After`` beyond the client's rate. Any failure behind a well-formed request is
answered from the fallback with ``200``, never ``5xx``. Every answer goes to the prediction log.
A well-formed request is answered by ``answers.recommend_answer``, the service the JSON API and the
provenance page call too; this module refuses the rest in its own one-line form.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from recommender.serving.answers import InvalidViewerId, parse_viewer_id, recommend_answer
from recommender.serving.predlog import new_request_id
from recommender.serving.ratelimit import client_address, retry_after_seconds
from recommender.serving.runtime import get_runtime

logger = logging.getLogger(__name__)

PREFIX = "/recommend/"

_allowed_hosts: list[str] | None = None


def _host_allowed(environ: dict) -> bool:
    global _allowed_hosts
    if _allowed_hosts is None:
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        _allowed_hosts = allowed
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    known = _host_verdicts.get(host)
    if known is None:
        domain, _ = split_domain_port(host)
        known = bool(domain) and validate_host(domain, _allowed_hosts)
        if len(_host_verdicts) < 256:  # the platform sends a handful of Host values; junk is not cached forever
            _host_verdicts[host] = known
    return known


_host_verdicts: dict[str, bool] = {}


def _headers(body: bytes, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *extra,
    ]


def recommend_plain(environ: dict, rest: str, *, check_host: bool = True) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer ``GET /recommend/<rest>``: (status, headers, body)."""
    started = time.perf_counter()
    runtime = get_runtime()
    config = runtime.config
    client = client_address(environ, config.trusted_proxy_count)

    def refuse(status: int, message: str, extra: list[tuple[str, str]] | None = None,
               viewer_id: int | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = new_request_id()
        body = message.encode()
        runtime.log(answer=None, endpoint="plain", client=client, status=status, request_id=request_id,
                    viewer_id=viewer_id, error=message, latency_ms=(time.perf_counter() - started) * 1000)
        return status, _headers(body, [("X-Request-Id", request_id), *(extra or [])]), body

    if check_host and not _host_allowed(environ):
        return refuse(400, "invalid Host header")
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        return refuse(405, f"method {method[:10]} not allowed: use GET", [("Allow", "GET, HEAD")])
    wait = runtime.recommend_limiter.take(client)
    if wait:
        seconds = retry_after_seconds(wait)
        return refuse(429, f"rate limit exceeded: retry after {seconds} s", [("Retry-After", str(seconds))])
    try:
        viewer_id = parse_viewer_id(rest)
    except InvalidViewerId as exc:
        return refuse(400, str(exc))
    answer = recommend_answer(viewer_id=viewer_id, k=config.k, endpoint="plain", client=client, started=started).answer
    body = ",".join(answer.items).encode()
    return 200, _headers(body, [("X-Request-Id", answer.request_id), ("X-Model-Version", answer.served_by),
                                ("X-Arm", answer.arm or "none")]), body


_REASONS = {200: "200 OK", 400: "400 Bad Request", 405: "405 Method Not Allowed", 429: "429 Too Many Requests"}


def recommend_wsgi(environ: dict, start_response):
    """The WSGI form of ``recommend_plain`` (used by ``recommender.serving.wsgi``)."""
    try:
        status, headers, body = recommend_plain(environ, environ.get("PATH_INFO", "")[len(PREFIX):])
    except Exception as exc:  # noqa: BLE001 - last line of defence: the fallback, still logged
        logger.exception("serving: /recommend failed")
        status, headers, body = 200, _headers(b"", [("X-Model-Version", "fallback")]), b""
        try:
            runtime = get_runtime()
            answer = runtime.fallback_answer(None, runtime.config.k, f"{type(exc).__name__}: {exc}")
            body = ",".join(answer.items).encode()
            headers = _headers(body, [("X-Request-Id", answer.request_id), ("X-Model-Version", "fallback")])
            runtime.log(answer=answer, endpoint="plain", client=environ.get("REMOTE_ADDR", ""), status=200,
                        latency_ms=0.0)
        except Exception:  # noqa: BLE001
            logger.exception("serving: even the fallback failed")
    start_response(_REASONS.get(status, f"{status} Error"), headers)
    if environ.get("REQUEST_METHOD") == "HEAD":
        return [b""]
    return [body]
