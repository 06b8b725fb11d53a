"""The `snapshot` and `train` commands, and the bootstrap's first-model step."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from portal.models import ActivityLogEntry
from recommender.models import DatasetSnapshot, ModelAlias, TrainingRun
from recommender.tests.factories_training import VersionFactory, synthetic_ratings
from recommender.training.bootstrap import first_model_step

pytestmark = pytest.mark.django_db


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_train_inline_prints_run_id_and_metrics():
    synthetic_ratings(n_users=30, n_items=20, density=0.5)
    out = run_command("train", "--algorithm", "svd", "--param", "n_factors=8", "--param", "n_epochs=5",
                      "--inline", "--seed", "2")
    run = TrainingRun.objects.get()
    assert f"run #{run.pk} queued" in out and "rmse" in out and "registered movie-recommender v1" in out
    assert run.hyperparameters["n_factors"] == 8 and run.seed == 2 and run.status == "succeeded"


def test_train_refuses_bad_input_before_queueing():
    synthetic_ratings(n_users=30, n_items=20, density=0.5)
    snapshot_out = run_command("snapshot", "--name", "cli", "--json")
    snapshot_id = DatasetSnapshot.objects.get(name="cli").pk
    assert f'"id": {snapshot_id}' in snapshot_out
    with pytest.raises(CommandError, match="unknown algorithm"):
        run_command("train", "--algorithm", "magic", "--snapshot", str(snapshot_id))
    with pytest.raises(CommandError, match="n_factors"):
        run_command("train", "--algorithm", "svd", "--param", "n_factors=-3", "--snapshot", str(snapshot_id))
    with pytest.raises(CommandError, match="name=value"):
        run_command("train", "--algorithm", "svd", "--param", "n_factors", "--snapshot", str(snapshot_id))
    with pytest.raises(CommandError, match="does not exist"):
        run_command("train", "--algorithm", "svd", "--snapshot", "999")
    assert not TrainingRun.objects.exists()


def test_snapshot_command_refuses_an_empty_window():
    with pytest.raises(CommandError, match="no ratings"):
        run_command("snapshot", "--until", "2001-01-01")


def test_bootstrap_puts_a_first_model_in_production_once():
    synthetic_ratings(n_users=30, n_items=20, density=0.5)
    lines = list(first_model_step())
    alias = ModelAlias.objects.get(name="production")
    assert alias.version is not None and "in production" in lines[-1]
    entry = ActivityLogEntry.objects.get(action="model_alias.moved")
    assert entry.actor_label == "system:bootstrap" and "bootstrap" in entry.data["reason"]
    again = list(first_model_step())
    assert "skipped" in again[0] and TrainingRun.objects.count() == 1


def test_bootstrap_leaves_an_existing_production_alone():
    version = VersionFactory(status="approved")
    ModelAlias.objects.create(name="production", version=version)
    assert "skipped" in list(first_model_step())[0]
    assert not TrainingRun.objects.filter(origin="bootstrap").exists()


def test_bootstrap_without_data_skips():
    assert "too few ratings" in list(first_model_step())[0]
