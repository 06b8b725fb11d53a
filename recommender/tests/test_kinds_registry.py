"""The kind registries: a new artifact kind and a new algorithm are one entry each, and nothing else.

The toy below is registered by the test alone (and removed after it): it trains through the real
pipeline with real Surprise, is exported, registered, loaded by the registry, scored by serving's
``Scorer`` and offered by the form and the ``train`` command, with no other change anywhere.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from django.core.management import call_command
from surprise import AlgoBase
from surprise.prediction_algorithms.predictions import PredictionImpossible

from recommender.errors import ArtifactIntegrityError
from recommender.models import ModelVersion, TrainingRun
from recommender.registry.artifacts import load_serving_model, write_artifact
from recommender.registry.kinds import (
    ARTIFACT_KINDS,
    SEEN_ARRAYS,
    ArtifactKind,
    UnknownArtifactKind,
    artifact_kind_get,
)
from recommender.registry.selectors import model_version_load
from recommender.serving.scoring import Scorer
from recommender.serving.snapshot import SeenSnapshot, pack_pairs, snapshot_write
from recommender.tests.factories_training import synthetic_ratings
from recommender.tests.test_training_algorithms import small_trainset
from recommender.training.algorithms import (
    ALGORITHMS,
    Algorithm,
    Param,
    algorithm_build,
    algorithm_export,
    validate_hyperparameters,
)
from recommender.training.forms import TrainingRunForm
from recommender.training.runs import training_run_create, training_run_execute
from recommender.training.snapshots import snapshot_create


class ItemMeans(AlgoBase):
    """A toy Surprise algorithm: every user gets each item's mean rating, shrunk toward the global mean."""

    def __init__(self, shrink: float) -> None:
        AlgoBase.__init__(self)
        self.shrink = shrink

    def fit(self, trainset):
        AlgoBase.fit(self, trainset)
        sums, counts = np.zeros(trainset.n_items), np.zeros(trainset.n_items)
        for i, ratings in trainset.ir.items():
            sums[i] = sum(r for _, r in ratings)
            counts[i] = len(ratings)
        self.means = (sums + self.shrink * trainset.global_mean) / (counts + self.shrink)
        return self

    def estimate(self, u, i):
        if not self.trainset.knows_item(i):
            raise PredictionImpossible("unknown item")
        return float(self.means[i])


TOY_KIND = ArtifactKind(
    "toy_means", frozenset({"user_ids", "item_mean", *SEEN_ARRAYS}),
    scores=lambda model, row: np.asarray(model.arrays["item_mean"], dtype=np.float64),
    predict=lambda model, row, col: float(model.arrays["item_mean"][col]),
    predicts_ratings=True,
)


def toy_algorithm() -> Algorithm:
    return Algorithm(
        "toy_means", "Item means (a test's toy)", "toy_means",
        {"shrink": Param("float", 2.0, minimum=0, maximum=100)},
        build=lambda p, seed: ItemMeans(shrink=p["shrink"]),
        export=lambda algo, job: ({}, {"item_mean": np.asarray(algo.means, dtype=np.float32)}),
    )


@pytest.fixture
def toy():
    """The toy kind and algorithm, registered for one test and removed after it."""
    ARTIFACT_KINDS[TOY_KIND.name] = TOY_KIND
    ALGORITHMS["toy_means"] = toy_algorithm()
    try:
        yield ALGORITHMS["toy_means"]
    finally:
        del ALGORITHMS["toy_means"]
        del ARTIFACT_KINDS[TOY_KIND.name]


@pytest.mark.django_db
def test_a_registered_toy_algorithm_trains_exports_loads_and_scores(toy, users, tmp_path):
    synthetic_ratings(n_users=40, n_items=30, density=0.4)
    snapshot = snapshot_create(actor=users["data_scientist"], name="synthetic")
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="toy_means",
                              hyperparameters={"shrink": "1.5"}, seed=3, enqueue=False)
    result = training_run_execute(run_id=run.pk)

    assert result.status == TrainingRun.Status.SUCCEEDED, result.error
    assert result.hyperparameters == {"shrink": 1.5}
    assert 0 < result.metrics["rmse"] < 2.5  # predicts_ratings: evaluation scored its ratings
    version = ModelVersion.objects.get(training_run=result)
    assert version.artifact_kind == "toy_means"
    model = model_version_load(version=version)
    assert model.kind_spec is TOY_KIND and model.manifest["algorithm"] == "toy_means"

    # the model ranks items by their shrunk mean, leaving out what the viewer rated in training
    viewer = int(model.arrays["user_ids"][0])
    seen = {model.item_ids[i] for i in model.seen_items(0)}
    recs = model.recommend(viewer, 5)
    means = np.asarray(model.arrays["item_mean"], dtype=np.float64)
    best_unseen = sorted((i for i in range(len(model.item_ids)) if model.item_ids[i] not in seen),
                         key=lambda i: (-means[i], i))[:5]
    assert [item for item, _ in recs] == [model.item_ids[i] for i in best_unseen]
    assert model.predict(viewer, model.item_ids[0]) == pytest.approx(min(5.0, max(1.0, means[0])))
    assert model.recommend(987_654, 5) is None  # an unknown viewer: the kind does not serve anyone

    # serving's scorer, over a real seen-index snapshot, gives the same answer with its exclusions
    movies = list(model.item_ids)
    extra = movies[best_unseen[0]]
    v, ptr, it = pack_pairs(np.array([viewer], dtype=np.int64), np.array([best_unseen[1]], dtype=np.int32))
    snap = SeenSnapshot.load(snapshot_write(root=tmp_path / "snap", viewers=v, indptr=ptr, items=it, movies=movies,
                                            popular=[], meta={}))
    items, scores = Scorer(model).recommend(viewer, 3, snapshot=snap, seen_codes=snap.seen_codes(viewer),
                                            extra_seen=frozenset({extra}))
    expected = model.recommend(viewer, 3, exclude=[extra, movies[best_unseen[1]]])
    assert items == [m for m, _ in expected] == [movies[i] for i in best_unseen[2:5]]
    assert scores == [round(s, 5) for _, s in expected]


@pytest.mark.django_db
def test_the_form_and_the_train_command_offer_what_the_registry_holds(toy):
    assert ("toy_means", "toy_means") in TrainingRunForm().fields["algorithm"].choices
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        call_command("train", "--help")
    assert "toy_means" in out.getvalue() and "popularity" in out.getvalue()


def test_an_unregistered_toy_is_gone_and_unknown_names_are_errors(tmp_path):
    assert "toy_means" not in ALGORITHMS and "toy_means" not in ARTIFACT_KINDS
    with pytest.raises(UnknownArtifactKind, match=r"unknown artifact kind 'toy_means'; expected one of \['biases'"):
        artifact_kind_get("toy_means")
    with pytest.raises(UnknownArtifactKind, match="unknown artifact kind 'toy_means'"):
        toy_algorithm()  # an algorithm cannot name a kind that is not registered
    with pytest.raises(ValueError, match="unknown artifact kind 'toy_means'"):
        write_artifact(directory=tmp_path / "a", manifest={"kind": "toy_means"},
                       arrays={"item_ids": np.array(["m1"]), "item_mean": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match="needs exactly one of scores and ranked"):
        ArtifactKind("both", frozenset(), scores=lambda m, r: None, ranked=lambda m, r: None)


def test_an_artifact_of_a_kind_no_longer_registered_is_refused_on_load(tmp_path):
    ARTIFACT_KINDS[TOY_KIND.name] = TOY_KIND
    try:
        sha, _ = write_artifact(directory=tmp_path / "a", manifest={"kind": "toy_means"}, arrays={
            "item_ids": np.array(["m1"]), "user_ids": np.array([1], np.int64), "item_mean": np.ones(1, np.float32),
            "seen_indptr": np.zeros(2, np.int64), "seen_indices": np.zeros(0, np.int32)})
        assert load_serving_model(directory=tmp_path / "a", expected_sha256=sha).recommend(1, 1) == [("m1", 1.0)]
    finally:
        del ARTIFACT_KINDS[TOY_KIND.name]
    with pytest.raises(ArtifactIntegrityError, match="unknown artifact kind 'toy_means'"):
        load_serving_model(directory=tmp_path / "a", expected_sha256=sha)


def test_an_export_lacking_an_array_of_its_kind_is_refused(toy):
    ALGORITHMS["toy_means"] = Algorithm("toy_means", "forgets its array", "toy_means",
                                        build=lambda p, seed: ItemMeans(shrink=0.0),
                                        export=lambda algo, job: ({}, {}))
    trainset = small_trainset()
    algo = algorithm_build("toy_means", validate_hyperparameters("toy_means", {}), seed=0)
    algo.fit(trainset)
    with pytest.raises(ValueError, match=r"algorithm 'toy_means' exported no \['item_mean'\] for its artifact kind"):
        algorithm_export("toy_means", algo, trainset, topn=10)


def test_every_algorithm_names_a_registered_kind_and_every_kind_scores_one_way():
    for algorithm in ALGORITHMS.values():
        assert artifact_kind_get(algorithm.kind).name == algorithm.kind
    for kind in ARTIFACT_KINDS.values():
        assert (kind.scores is None) != (kind.ranked is None)
        assert "user_ids" in kind.arrays
