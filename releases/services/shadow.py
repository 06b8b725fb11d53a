"""Shadow: a candidate computes recommendations for mirrored requests off the request path;
its agreement with production (overlap@20, Kendall's tau, Spearman's rho) is recorded per request
and summarised in reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction

from portal.errors import Conflict, ValidationError
from portal.permissions import require
from portal.services import activity_log_record
from portal.stats import ranking_agreement
from recommender.models import ModelVersion
from releases import clock, integrations
from releases.conf import release_setting
from releases.models import ShadowComparison, ShadowReport
from releases.services._common import actor_label, require_reason


def shadow_start(*, version: ModelVersion, actor: Any, reason: str) -> None:
    """Mirror production's requests to ``version`` (the shadow alias), off the request path."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    if version.status in (ModelVersion.Status.REJECTED, ModelVersion.Status.ARCHIVED):
        raise ValidationError(f"{version} is {version.status} and cannot run in shadow")
    production = integrations.production_version()
    if production is not None and production.pk == version.pk:
        raise Conflict(f"{version} is production; a shadow is a different version")
    with transaction.atomic():
        integrations.deployment_set_shadow(version=version, actor=actor, system=None, reason=reason)
        activity_log_record(actor=actor, action="release.shadow.started", target=version, data={"reason": reason})


def shadow_stop(*, actor: Any, reason: str) -> None:
    """Stop mirroring requests."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    current = integrations.alias_version("shadow")
    if current is None:
        raise Conflict("no version is running in shadow")
    with transaction.atomic():
        integrations.deployment_set_shadow(version=None, actor=actor, system=None, reason=reason)
        activity_log_record(actor=actor, action="release.shadow.stopped", target=current, data={"reason": reason})


def shadow_comparisons_record(*, comparisons: Iterable[dict]) -> int:
    """Store mirrored requests with their agreement. Each dict: ``request_id, viewer_id,
    production_version_id, production_items, shadow_version_id, shadow_items`` and optionally
    ``shadow_latency_ms``. Called in batches by serving's shadow worker (never on the request path)."""
    k = int(release_setting("SHADOW_K"))
    rows = []
    for c in comparisons:
        agreement = ranking_agreement(c["production_items"], c["shadow_items"], k=k)
        rows.append(ShadowComparison(
            request_id=str(c["request_id"]), viewer_id=int(c["viewer_id"]),
            production_version_id=c.get("production_version_id"), shadow_version_id=c["shadow_version_id"],
            production_items=list(c["production_items"])[:k], shadow_items=list(c["shadow_items"])[:k],
            overlap=agreement.overlap, kendall_tau=agreement.kendall_tau, spearman_rho=agreement.spearman_rho,
            shadow_latency_ms=c.get("shadow_latency_ms"),
        ))
    ShadowComparison.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def shadow_report_create(*, version: ModelVersion | None = None, since: datetime | None = None,
                         until: datetime | None = None, actor: Any | None = None,
                         system: str | None = None) -> ShadowReport | None:
    """Summarise the agreement of a shadow version with production over a window (default: the
    current shadow over the last hour). None when there were no mirrored requests."""
    require(actor, "release.operate", system=system)
    until = until or clock.now()
    since = since or until - timedelta(hours=1)
    if since >= until:
        raise ValidationError("'since' must be before 'until'")
    version = version or integrations.alias_version("shadow")
    if version is None:
        return None
    rows = list(ShadowComparison.objects.filter(shadow_version=version, created_at__gte=since, created_at__lt=until)
                .values_list("overlap", "kendall_tau", "spearman_rho", "shadow_latency_ms", "production_version_id"))
    if not rows:
        return None
    overlap = np.array([r[0] for r in rows], dtype=float)
    taus = np.array([r[1] for r in rows if r[1] is not None], dtype=float)
    rhos = np.array([r[2] for r in rows if r[2] is not None], dtype=float)
    lat = np.array([r[3] for r in rows if r[3] is not None], dtype=float)
    prod_ids = [r[4] for r in rows if r[4] is not None]
    production_id = max(set(prod_ids), key=prod_ids.count) if prod_ids else None
    histogram, _ = np.histogram(overlap, bins=10, range=(0.0, 1.0))
    with transaction.atomic():
        report = ShadowReport.objects.create(
            shadow_version=version, production_version_id=production_id, window_start=since, window_end=until,
            requests=len(rows), mean_overlap=float(overlap.mean()),
            mean_kendall_tau=float(taus.mean()) if taus.size else None,
            mean_spearman_rho=float(rhos.mean()) if rhos.size else None,
            p50_shadow_latency_ms=float(np.median(lat)) if lat.size else None,
            overlap_histogram=[int(x) for x in histogram], created_by_label=actor_label(actor, system),
        )
        activity_log_record(actor=actor, system=system, action="release.shadow.reported", target=report,
                            data={"version": version.pk, "production": production_id, "requests": len(rows),
                                  "mean_overlap": report.mean_overlap, "mean_kendall_tau": report.mean_kendall_tau,
                                  "mean_spearman_rho": report.mean_spearman_rho})
    return report
