"""bootstrap: a fresh database gets a simulated backfill; a second run does nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from recommender.models import IngestSource, Movie, Rating, RecommendationRequest, Viewer


@pytest.mark.django_db(transaction=True)
def test_bootstrap_backfills_once(settings, capsys):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "BOOTSTRAP_SIMULATED_DAYS": 0.5, "SIMULATOR_VIEWERS": 40,
                            "SIMULATOR_MOVIES": 30}
    call_command("bootstrap")
    out = capsys.readouterr().out
    assert "bootstrap: simulated 0.5 days:" in out
    assert Viewer.objects.filter(enriched_at__isnull=False).count() == 40 and Movie.objects.count() >= 30
    counts = (Rating.objects.count(), RecommendationRequest.objects.count())
    assert counts[0] > 0 and counts[1] > 0
    assert IngestSource.objects.get(name="simulator").lines_stored > 0

    call_command("bootstrap")
    assert "simulated backfill skipped" in capsys.readouterr().out
    assert (Rating.objects.count(), RecommendationRequest.objects.count()) == counts


@pytest.mark.django_db
def test_bootstrap_can_be_turned_off(settings, capsys):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "BOOTSTRAP_SIMULATED_DAYS": 0}
    call_command("bootstrap")
    assert "simulated backfill off" in capsys.readouterr().out
    assert not Rating.objects.exists()
