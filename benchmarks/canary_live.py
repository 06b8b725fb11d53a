"""The demo's canary, live: how long a healthy candidate takes to reach production by itself, and a
harmful one to be rolled back by itself, under `make run` (docs/releases.md, "The demo's canary").

Drives a running Usher through its REST API (loopback only):

* **healthy** — the data scientist snapshots and trains ``--algorithm`` (SVD by default), asks for its
  promotion; the release gate runs; the reviewer approves; then nobody touches the canary. Minutes from
  the approval to each step, and the canary's and production's success rates at each check.
* **harmful** (``--harmful``) — production's model with random item factors (a broken export,
  ``releases.tests.simulation.broken_copy_register``). The release gate re-scores artifacts and
  stops such a model, and a reviewer cannot waive an offline-metrics failure, so the product offers no
  honest way to put it in front of viewers: this step is a **benchmark-only setup** that, like the
  canary tests (``releases/tests/factories.approved_promotion``), writes the approved
  promotion directly — in-process, with the running Usher's settings (run it from the same checkout
  and environment as `make run`). Beat's repair task then starts its canary like any approved
  promotion's, and the driver only watches through the API.

    python benchmarks/canary_live.py --url http://127.0.0.1:8000 \\
        --data-scientist demo_data_scientist:PASSWORD --reviewer demo_reviewer:PASSWORD [--harmful]

Every loop is bounded (``--timeout-minutes``); the figures go into docs/benchmarks.md and
docs/releases.md by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import machine  # noqa: E402

FINISHED = ("completed", "rolled_back", "cancelled", "failed")


class Api:
    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        response = self.session.post(f"{self.url}/auth/token", json={"username": username, "password": password},
                                     timeout=30)
        if response.status_code != 201:
            raise SystemExit(f"cannot sign in as {username}: HTTP {response.status_code} {response.text[:200]}")
        self.session.headers["Authorization"] = f"Token {response.json()['token']}"

    def get(self, path: str) -> dict:
        response = self.session.get(f"{self.url}/{path}", timeout=60)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> dict:
        response = self.session.post(f"{self.url}/{path}", json=body, timeout=60)
        if response.status_code >= 400:
            raise SystemExit(f"POST {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json()


def wait_for(what: str, fetch, done, *, timeout_s: float, every_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout_s / 60:.0f} minutes: {value}")
        time.sleep(every_s)


def minutes_since(t0: float) -> float:
    return (time.time() - t0) / 60.0


def _rates(step: dict) -> str:
    metrics = step.get("metrics") or {}
    canary, production = metrics.get("canary") or {}, metrics.get("production") or {}
    if canary.get("rate") is None or production.get("rate") is None:
        return ""
    return (f" canary {canary['rate']:.3f} ({canary.get('trials', '?')} lists) vs production "
            f"{production['rate']:.3f} ({production.get('trials', '?')} lists)")


def watch_rollout(api: Api, promotion_id: int, t0: float, *, timeout_s: float) -> dict:
    """Follow the promotion's rollout until it finishes; print each new step with its minute."""
    promotion = wait_for("the canary to start", lambda: api.get(f"releases/promotions/{promotion_id}"),
                         lambda p: p.get("rollout"), timeout_s=timeout_s)
    rollout_id = promotion["rollout"]
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        rollout = api.get(f"releases/rollouts/{rollout_id}")
        for step in rollout["step_records"]:
            if step["revision"] in seen:
                continue
            seen.add(step["revision"])
            at = (datetime.fromisoformat(step["created_at"]).timestamp() - t0) / 60.0
            print(f"  {at:5.1f} min  {step['outcome']:<11} {step['from_percent']}→{step['to_percent']} %"
                  f"{_rates(step)}  — {step['reason'][:150]}", flush=True)
        if rollout["state"] in FINISHED or rollout["state"] == "paused":
            rollout["minutes"] = minutes_since(t0)
            return rollout
        if time.monotonic() > deadline:
            rollout["minutes"] = minutes_since(t0)
            print(f"  still {rollout['state']} at {rollout['applied_percent']} % after {timeout_s / 60:.0f} minutes: "
                  f"{(rollout.get('evidence') or {}).get('message', '')}", flush=True)
            return rollout
        time.sleep(15)


def healthy(scientist: Api, reviewer: Api, *, algorithm: str, timeout_s: float) -> dict:
    t_start = time.time()
    snapshot = scientist.post("snapshots", {"name": "canary_live"})
    snapshot = wait_for("the snapshot", lambda: scientist.get(f"snapshots/{snapshot['id']}"),
                        lambda s: s["status"] in ("ready", "deleted"), timeout_s=timeout_s)
    if snapshot["status"] != "ready":
        raise SystemExit(f"snapshot #{snapshot['id']} {snapshot['status']}")
    run = scientist.post("training-runs", {"snapshot": snapshot["id"], "algorithm": algorithm})
    run = wait_for("the training run", lambda: scientist.get(f"training-runs/{run['id']}"),
                   lambda r: r["status"] in ("succeeded", "failed", "cancelled") and
                   (r["status"] != "succeeded" or r["model_version"]), timeout_s=timeout_s)
    if run["status"] != "succeeded":
        raise SystemExit(f"training run #{run['id']} {run['status']}: {run.get('error')}")
    print(f"healthy: {algorithm} trained (run #{run['id']}, version #{run['model_version']}) "
          f"{minutes_since(t_start):.1f} min after the snapshot was asked for", flush=True)
    promotion = scientist.post("releases/promotions/new",
                               {"version": run["model_version"], "reason": f"canary_live: {algorithm}"})
    promotion = wait_for("the release gate", lambda: scientist.get(f"releases/promotions/{promotion['id']}"),
                         lambda p: p["status"] not in ("gate_pending", "gate_running"), timeout_s=timeout_s)
    print(f"healthy: release gate {promotion['status']}; "
          + "; ".join(f"{c['name']} {c['outcome']}" for c in promotion.get("checks", [])), flush=True)
    if promotion["status"] != "awaiting_review":
        raise SystemExit("the gate did not let the healthy candidate through")
    reviewer.post(f"releases/promotions/{promotion['id']}/decide", {"decision": "approve", "comment": "canary_live"})
    t0 = time.time()
    print("healthy: approved at 0.0 min; the canary runs by itself", flush=True)
    return watch_rollout(scientist, promotion["id"], t0, timeout_s=timeout_s)


def harmful_setup(*, scientist: str, reviewer: str) -> tuple[int, int]:
    """Benchmark-only: a broken export of production and an approved promotion of it, in-process
    (the way the canary tests set it up), since the gate, rightly, stops it. Returns (promotion, version)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portal.models import ReviewRequest
    from releases import integrations
    from releases.models import PromotionRequest
    from releases.tests.simulation import broken_copy_register

    users = get_user_model().objects
    requester, approver = users.get(username=scientist), users.get(username=reviewer)
    production = integrations.production_version()
    if production is None:
        raise SystemExit("no version in production")
    broken = broken_copy_register(version=production, seed=99)
    now = timezone.now()
    promotion = PromotionRequest.objects.create(
        version=broken, baseline_version=production, status=PromotionRequest.Status.APPROVED,
        reason="benchmarks/canary_live.py: harmful candidate (random item factors); gate bypassed by the benchmark",
        requested_by=requester, requested_label=requester.get_username(), gate_attempt=1, gate_passed=True,
        gate_finished_at=now, decided_by=approver, decided_at=now,
    )
    promotion.review = ReviewRequest.objects.create(
        kind="model_promotion", title=f"Promote {broken} to production (benchmark)",
        target_type="releases.promotionrequest", target_id=str(promotion.pk), target_repr=str(promotion)[:255],
        requester=requester, requester_label=requester.get_username(), assigned_role="reviewer", status="approved",
        decided_by=approver, decided_at=now, evidence={"promotion": promotion.pk, "version": broken.pk},
    )
    promotion.save(update_fields=["review"])
    return promotion.pk, broken.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running Usher (loopback only)")
    parser.add_argument("--data-scientist", default="demo_data_scientist:", help="USER:PASSWORD")
    parser.add_argument("--reviewer", default="demo_reviewer:", help="USER:PASSWORD")
    parser.add_argument("--algorithm", default="svd")
    parser.add_argument("--skip-healthy", action="store_true")
    parser.add_argument("--promotion", type=int, help="only watch this promotion's canary (minutes from its approval)")
    parser.add_argument("--harmful", action="store_true", help="then the benchmark-only harmful candidate")
    parser.add_argument("--timeout-minutes", type=float, default=40.0, help="per phase")
    args = parser.parse_args()
    host = urlparse(args.url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--url must be a loopback address, not {host!r}")
    timeout_s = args.timeout_minutes * 60
    scientist_user, _, scientist_password = args.data_scientist.partition(":")
    reviewer_user, _, reviewer_password = args.reviewer.partition(":")
    scientist = Api(args.url, scientist_user, scientist_password)
    reviewer = Api(args.url, reviewer_user, reviewer_password)
    load = os.getloadavg()
    print(f"machine: {machine()}; nproc {os.cpu_count()}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
          flush=True)
    if args.promotion:
        promotion = scientist.get(f"releases/promotions/{args.promotion}")
        t0 = datetime.fromisoformat(promotion["decided_at"]).timestamp()
        rollout = watch_rollout(scientist, args.promotion, t0, timeout_s=timeout_s)
        print(f"promotion #{args.promotion}: {rollout['state']} at {rollout['applied_percent']} % after "
              f"{rollout['minutes']:.1f} min from approval", flush=True)
    elif not args.skip_healthy:
        rollout = healthy(scientist, reviewer, algorithm=args.algorithm, timeout_s=timeout_s)
        print(f"healthy: {rollout['state']} at {rollout['applied_percent']} % after {rollout['minutes']:.1f} min "
              f"from approval", flush=True)
    if args.harmful:
        promotion_id, version_id = harmful_setup(scientist=scientist_user, reviewer=reviewer_user)
        t0 = time.time()
        print(f"harmful: broken copy of production registered as version #{version_id}, promotion #{promotion_id} "
              "approved by the benchmark's setup at 0.0 min; beat's repair starts its canary", flush=True)
        rollout = watch_rollout(scientist, promotion_id, t0, timeout_s=timeout_s)
        print(f"harmful: {rollout['state']} at {rollout['applied_percent']} % after {rollout['minutes']:.1f} min",
              flush=True)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)


if __name__ == "__main__":
    main()
