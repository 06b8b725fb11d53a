"""Shadow comparisons stored off the request path, and the agreement reports made from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import ActivityLogEntry
from recommender.tests.factories_training import VersionFactory
from releases import services
from releases.models import ShadowComparison
from releases.shadow_observer import ShadowRecorder

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Comparison:  # the shape serving's shadow thread hands to observers
    viewer_id: int
    shadow_version_id: int
    served_version_id: int | None
    served: tuple
    shadow: tuple | None
    overlap: float | None = None
    rank_correlation: float | None = None


def test_recorder_batches_comparisons_and_skips_unknown_viewers():
    production, shadow = VersionFactory(), VersionFactory()
    items = tuple(f"m{i}" for i in range(20))
    recorder = ShadowRecorder(batch=3, seconds=3600)
    recorder(Comparison(1, shadow.pk, production.pk, items, items))
    recorder(Comparison(2, shadow.pk, production.pk, items, None))  # unknown viewer: nothing to compare
    recorder(Comparison(3, shadow.pk, production.pk, items, items[::-1]))
    assert ShadowComparison.objects.count() == 0  # buffered
    recorder(Comparison(4, shadow.pk, production.pk, items, items[:10] + tuple(f"x{i}" for i in range(10))))
    assert ShadowComparison.objects.count() == 3 and recorder.written == 3
    rows = {c.viewer_id: c for c in ShadowComparison.objects.all()}
    assert rows[1].overlap == 1.0 and rows[1].kendall_tau == pytest.approx(1.0)
    assert rows[3].overlap == 1.0 and rows[3].kendall_tau == pytest.approx(-1.0)
    assert rows[4].overlap == 0.5


def test_report_summarises_agreement_over_a_window(users):
    production, shadow = VersionFactory(), VersionFactory()
    items = [f"m{i}" for i in range(20)]
    services.shadow_comparisons_record(comparisons=[
        {"request_id": "", "viewer_id": v, "production_version_id": production.pk, "shadow_version_id": shadow.pk,
         "production_items": items, "shadow_items": items if v % 2 else items[:10] + [f"x{i}" for i in range(10)],
         "shadow_latency_ms": 3.0}
        for v in range(10)
    ])
    report = services.shadow_report_create(version=shadow, actor=users["operator"],
                                           since=timezone.now() - timedelta(minutes=5))
    assert report.requests == 10 and report.mean_overlap == pytest.approx(0.75)
    assert report.production_version_id == production.pk and sum(report.overlap_histogram) == 10
    assert report.mean_kendall_tau is not None and report.p50_shadow_latency_ms == 3.0
    assert ActivityLogEntry.objects.get(action="release.shadow.reported").actor_label == "operator_user"
    assert services.shadow_report_create(version=VersionFactory(), actor=users["operator"]) is None
