"""The training run and snapshot forms: a refused form comes back (400) with everything typed, the
error beside its field and a summary at the top, and nothing stored; the API refuses the same value
with a 400 naming the same field (one rule, in the service)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.form_testing import read_form, signed_in
from recommender.models import DatasetSnapshot, TrainingRun
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.snapshots import snapshot_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(users):
    synthetic_ratings(n_users=30, n_items=25, density=0.4)
    return snapshot_create(actor=None, system="test", name="forms")


def _train(client, chosen, **overrides):
    data = {"snapshot": chosen.pk, "algorithm": ["svd"], "hyperparameters": "", "split_kind": "random",
            "test_fraction": "0.2", "n": "1", "folds": "5", "seed": "3"}
    data.update(overrides)
    return client.post(reverse("recommender:training_runs"), data)


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"hyperparameters": "n_factors=abc"}, "hyperparameters", "n_factors: must be a whole number",
     {"hyperparameters": {"n_factors": "abc"}}),
    ({"hyperparameters": "n_factors=-3"}, "hyperparameters", "n_factors",
     {"hyperparameters": {"n_factors": -3}}),
    ({"test_fraction": "1.5"}, "test_fraction", "test_fraction must be a number between 0 and 1",
     {"split": {"kind": "random", "test_fraction": 1.5}}),
    ({"split_kind": "kfold", "folds": "1"}, "folds", "folds must be a whole number from 2 to 20",
     {"split": {"kind": "kfold", "folds": 1}}),
    ({"split_kind": "leave_last_n", "n": "0"}, "n", "n must be a whole number from 1 to 1000",
     {"split": {"kind": "leave_last_n", "n": 0}}),
    ({"seed": "-1"}, "seed", "seed must be a whole number", {"seed": -1}),
])
def test_a_refused_training_form_keeps_what_was_typed(users, snapshot, client_for, overrides, field, words, api):
    response = _train(signed_in(users["data_scientist"]), snapshot, **overrides)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "train-form")
    assert words in form.error(field), form.fields[field]
    assert words in form.summary
    assert form.fields["algorithm"].checked == ["svd"]
    assert form.value("snapshot") == str(snapshot.pk)
    sent = {"hyperparameters": "", "split_kind": "random", "test_fraction": "0.2", "n": "1", "folds": "5",
            "seed": "3", **overrides}
    for name, value in sent.items():
        assert form.value(name) == value, name
    others = [name for name, f in form.fields.items() if f.error and name != field]
    assert others == []
    assert not TrainingRun.objects.exists()

    # the same value through the API: a 400 naming the same input
    answer = client_for("data_scientist").post("/api/v1/training-runs", {"snapshot": snapshot.pk, "algorithm": "svd",
                                                                         **api}, format="json")
    assert answer.status_code == 400
    assert words in answer.json()["error"]
    assert not TrainingRun.objects.exists()


def test_the_fields_parse_before_the_service_is_asked(users, snapshot):
    response = _train(signed_in(users["data_scientist"]), snapshot, algorithm=[], seed="x", test_fraction="a fifth")

    assert response.status_code == 400
    form = read_form(response.content.decode(), "train-form")
    assert "choose at least one algorithm" in form.error("algorithm")
    assert form.error("seed") and form.value("seed") == "x"
    assert form.error("test_fraction") and form.value("test_fraction") == "a fifth"
    assert not TrainingRun.objects.exists()


def test_hyperparameters_with_several_algorithms_are_refused_not_dropped(users, snapshot):
    response = _train(signed_in(users["data_scientist"]), snapshot, algorithm=["svd", "nmf"],
                      hyperparameters="n_factors=5")

    form = read_form(response.content.decode(), "train-form")
    assert response.status_code == 400 and "one algorithm" in form.error("hyperparameters")
    assert sorted(form.fields["algorithm"].checked) == ["nmf", "svd"]
    assert not TrainingRun.objects.exists()


def test_an_unknown_snapshot_or_algorithm_is_a_known_choice_error(users, snapshot):
    response = _train(signed_in(users["data_scientist"]), snapshot, snapshot="999", algorithm=["svd", "magic"])

    form = read_form(response.content.decode(), "train-form")
    assert response.status_code == 400
    assert "999" in form.error("snapshot") and "magic" in form.error("algorithm")
    assert not TrainingRun.objects.exists()


def test_several_algorithms_are_queued_all_or_none(users, snapshot):
    client = signed_in(users["data_scientist"])
    response = _train(client, snapshot, algorithm=["svd", "popularity"], split_kind="kfold", folds="30")
    assert response.status_code == 400 and not TrainingRun.objects.exists()

    response = _train(client, snapshot, algorithm=["svd", "popularity"], split_kind="kfold", folds="3")
    assert response.status_code == 302
    assert sorted(TrainingRun.objects.values_list("algorithm", flat=True)) == ["popularity", "svd"]


# --- snapshots ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"min_viewer_ratings": "-2"}, "min_viewer_ratings", "'min_viewer_ratings' must be a whole number ≥ 0",
     {"filters": {"min_viewer_ratings": -2}}),
    ({"window_start": "2030-01-02T10:00", "window_end": "2030-01-01T10:00"}, "window_start",
     "window_start (2030-01-02T10:00:00+00:00) must be before window_end",
     {"window_start": "2030-01-02T10:00:00Z", "window_end": "2030-01-01T10:00:00Z"}),
])
def test_a_refused_snapshot_form_keeps_what_was_typed(users, client_for, overrides, field, words, api):
    synthetic_ratings(n_users=5, n_items=5, density=1.0)
    data = {"name": "mine", "window_start": "", "window_end": "", "min_viewer_ratings": "", "min_movie_ratings": "3",
            "include_implicit": "on", **overrides}
    response = signed_in(users["data_scientist"]).post(reverse("recommender:training_snapshots"), data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "snapshot-form")
    assert words in form.error(field) and words in form.summary
    for name in ("name", "window_start", "window_end", "min_viewer_ratings", "min_movie_ratings"):
        assert form.value(name) == data[name], name
    assert form.fields["include_implicit"].checked == ["on"]
    assert not DatasetSnapshot.objects.exists()

    answer = client_for("data_scientist").post("/api/v1/snapshots", api, format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert not DatasetSnapshot.objects.exists()


def test_a_snapshot_date_that_is_not_a_date_is_named(users):
    response = signed_in(users["data_scientist"]).post(reverse("recommender:training_snapshots"),
                                                     {"name": "x", "window_start": "yesterday"})
    form = read_form(response.content.decode(), "snapshot-form")
    assert response.status_code == 400 and form.error("window_start") and form.value("window_start") == "yesterday"
    assert not DatasetSnapshot.objects.exists()


# --- the registry ------------------------------------------------------------------------------------------


def test_an_alias_move_without_a_reason_keeps_the_choices(users, client_for):
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    response = signed_in(users["operator"]).post(reverse("recommender:registry"),
                                               {"alias": "shadow", "version": str(version.pk), "reason": " "})
    form = read_form(response.content.decode(), "move-alias")
    assert response.status_code == 400 and "a reason is required" in form.error("reason")
    assert form.value("alias") == "shadow" and form.value("version") == str(version.pk)

    answer = client_for("operator").post("/api/v1/aliases/shadow", {"version": version.pk, "reason": " "},
                                         format="json")
    assert answer.status_code == 400 and "a reason is required" in answer.json()["error"]


def test_a_tag_too_long_is_refused_beside_the_tags(users, client_for):
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory(tags=["old"])
    long_tag = "t" * 51
    response = signed_in(users["data_scientist"]).post(reverse("recommender:registry_version", args=[version.pk]),
                                                     {"action": "edit", "description": "mine", "tags": f"ok, {long_tag}"})
    form = read_form(response.content.decode(), "edit-version")
    assert response.status_code == 400 and "a tag is at most 50 characters" in form.error("tags")
    assert form.value("tags") == f"ok, {long_tag}" and form.value("description") == "mine"
    version.refresh_from_db()
    assert version.tags == ["old"]

    answer = client_for("data_scientist").patch(f"/api/v1/model-versions/{version.pk}", {"tags": ["ok", long_tag]},
                                                format="json")
    assert answer.status_code == 400 and "a tag is at most 50 characters" in answer.json()["error"]
    version.refresh_from_db()
    assert version.tags == ["old"]


def test_archiving_without_a_reason_is_refused_beside_the_reason(users):
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    response = signed_in(users["data_scientist"]).post(reverse("recommender:registry_version", args=[version.pk]),
                                                     {"action": "archive", "reason": ""})
    form = read_form(response.content.decode(), "archive-version")
    assert response.status_code == 400 and "a reason is required" in form.error("reason")
    version.refresh_from_db()
    assert version.status != "archived"
