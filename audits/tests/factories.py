"""Factories for the audits' tests: runs, findings, and event data for the abuse checks."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from audits.conf import configured_settings
from audits.models import AuditFinding, AuditRun
from recommender.models import Movie, RatingEvent, Viewer


class AuditRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditRun

    kind = AuditRun.Kind.SECURITY
    target = AuditRun.Target.LIVE
    target_repr = "live deployment"
    trigger = AuditRun.Trigger.MANUAL
    status = AuditRun.Status.SUCCEEDED
    passed = False
    requested_label = "system:test"
    window_start = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=24))
    window_end = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    # Recorded with the configured settings (the gate reads such runs); pass params= for others.
    params = factory.LazyFunction(lambda: {"overrides": {}, "config": configured_settings(), "window_hours": 24})


class AuditFindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditFinding
        skip_postgeneration_save = True

    run = factory.SubFactory(AuditRunFactory)
    kind = factory.SelfAttribute("run.kind")
    check_name = "security.scraping"
    fingerprint = factory.Sequence(lambda n: f"security.scraping:client=10.0.0.{n}")
    severity = "high"
    title = factory.Sequence(lambda n: f"Scraping: client 10.0.0.{n}")
    evidence = factory.LazyFunction(lambda: {"client": "10.0.0.1", "distinct_viewers": 500})
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def observed(self, create, extracted, **kwargs):
        if create:
            self.runs.add(self.run)


def rating_events(rows: list[tuple[int, str, int, dt.datetime]]) -> None:
    """Create viewers, movies and rating events (viewer id, movie id, rating, time) in bulk."""
    viewers = {v for v, _, _, _ in rows}
    movies = {m for _, m, _, _ in rows}
    Viewer.objects.bulk_create([Viewer(id=v) for v in viewers], ignore_conflicts=True)
    Movie.objects.bulk_create([Movie(id=m, title=m.replace("+", " ").title()) for m in movies], ignore_conflicts=True)
    RatingEvent.objects.bulk_create([RatingEvent(viewer_id=v, movie_id=m, rating=r, time=t) for v, m, r, t in rows])
