"""The recommender's part of ``/readyz`` (found by ``portal.contrib.app_modules("health")``): a readiness
check (``readiness_checks``) and the detail signed-in callers see (``readiness_detail``)."""

from __future__ import annotations

from collections.abc import Callable


class ServingNotReady(RuntimeError):
    """This process cannot answer ``/recommend`` by the contract yet."""


def _check_serving() -> None:
    """Ready when this process's serving runtime has loaded the deployment and holds a fallback list
    (or the catalog has no movies at all): from then on every ``/recommend/<id>`` is a non-empty line."""
    from recommender.serving.runtime import get_runtime

    runtime = get_runtime()
    runtime.ensure_loaded()  # gunicorn loaded it before the first request; runserver and tests load here
    state = runtime.readiness()
    if not state["ok"]:
        raise ServingNotReady(state["error"])


def readiness_checks() -> dict[str, Callable[[], None]]:
    """Checks ``/readyz`` runs beside the database and the broker (each bounded by its timeout)."""
    return {"serving": _check_serving}


def readiness_detail() -> dict:
    """Whether everything that serves viewers went through an approved promotion (serving goes on
    either way: this is detail for signed-in callers, not readiness), and what this process serves."""
    from recommender.serving.runtime import get_runtime
    from recommender.serving.selectors import deployment_review_state

    return {"deployment": deployment_review_state(), "serving": get_runtime().readiness()}
