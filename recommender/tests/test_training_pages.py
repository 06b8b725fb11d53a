"""Portal pages of training and the registry: reachable from the sidebar, render, forms call services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.form_testing import signed_in
from recommender.models import DatasetSnapshot, ModelAlias, TrainingRun
from recommender.tests.factories_training import VersionFactory, synthetic_ratings
from recommender.training.runs import training_run_create, training_run_execute
from recommender.training.snapshots import snapshot_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(users):
    synthetic_ratings(n_users=30, n_items=25, density=0.4)
    snapshot = snapshot_create(actor=None, system="test", name="pages")
    runs = []
    for algorithm in ("svd", "popularity"):
        run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm=algorithm,
                                  hyperparameters={"n_factors": 5} if algorithm == "svd" else {}, enqueue=False)
        runs.append(training_run_execute(run_id=run.pk))
    return snapshot, runs


def test_pages_are_in_the_sidebar(users):
    from recommender.navigation import sections

    class Request:
        user = users["viewer"]

    links = [str(item["link"]) for section in sections(Request()) for item in section["items"]]
    for name in ("training_runs", "training_snapshots", "training_compare", "registry"):
        assert reverse(f"recommender:{name}") in links


def test_every_page_renders(users, trained):
    snapshot, runs = trained
    version = runs[0].model_version
    client = signed_in(users["viewer"])
    pages = [
        reverse("recommender:training_runs"), reverse("recommender:training_run", args=[runs[0].pk]),
        reverse("recommender:training_snapshots"), reverse("recommender:training_snapshot", args=[snapshot.pk]),
        reverse("recommender:training_compare") + f"?snapshot={snapshot.pk}", reverse("recommender:registry"),
        reverse("recommender:registry_version", args=[version.pk]),
        reverse("recommender:registry_lineage", args=[version.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    compare = client.get(pages[4]).content.decode()
    assert "unfold/js/chart/chart.js" in compare and "compare-chart" in compare
    assert f"#{runs[0].pk} svd" in compare and f"#{runs[1].pk} popularity" in compare
    lineage = client.get(pages[-1]).content.decode()
    assert snapshot.content_sha256 in lineage and version.artifact_sha256 in lineage
    run_page = client.get(pages[1]).content.decode()
    assert f'data-run-progress="{runs[0].pk}"' in run_page and "Per group" in run_page


def test_queue_several_algorithms_from_the_form(users, trained):
    snapshot, _ = trained
    client = signed_in(users["data_scientist"])
    response = client.post(reverse("recommender:training_runs"),
                           {"snapshot": snapshot.pk, "algorithm": ["nmf", "slopeone", "coclustering"],
                            "split_kind": "temporal", "test_fraction": "0.25", "seed": "4"})
    assert response.status_code == 302
    queued = TrainingRun.objects.filter(status="queued").order_by("algorithm")
    assert [r.algorithm for r in queued] == ["coclustering", "nmf", "slopeone"]
    assert queued[0].split == {"kind": "temporal", "test_fraction": 0.25} and queued[0].seed == 4


def test_bad_form_input_comes_back_as_a_message(users, trained):
    snapshot, _ = trained
    client = signed_in(users["data_scientist"])
    response = client.post(reverse("recommender:training_runs"),
                           {"snapshot": snapshot.pk, "algorithm": ["svd"], "hyperparameters": "n_factors=zero"},
                           follow=True)
    assert "n_factors" in response.content.decode()
    assert not TrainingRun.objects.filter(status="queued").exists()


def test_snapshot_form(users):
    synthetic_ratings(n_users=5, n_items=5, density=1.0)
    client = signed_in(users["data_scientist"])
    response = client.post(reverse("recommender:training_snapshots"), {"name": "form", "min_viewer_ratings": "2"})
    snapshot = DatasetSnapshot.objects.get(name="form")
    assert response.status_code == 302 and snapshot.filters["min_viewer_ratings"] == 2


def test_cancel_from_the_run_page(users, trained):
    snapshot, _ = trained
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    signed_in(users["data_scientist"]).post(reverse("recommender:training_run", args=[run.pk]), {"reason": "x"})
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_alias_move_form_needs_an_operator(users):
    from portal.models import ActivityLogEntry
    from releases.tests.factories import approved_promotion

    version = approved_promotion(VersionFactory(status="approved")).version
    url = reverse("recommender:registry")
    page = signed_in(users["data_scientist"]).post(url, {"alias": "production", "version": version.pk, "reason": "go"},
                                                 follow=True).content.decode()
    assert "needs the role: operator or admin" in page
    assert not ModelAlias.objects.filter(version=version).exists()
    assert ActivityLogEntry.objects.filter(action="permission.refused", actor=users["data_scientist"]).exists()
    signed_in(users["operator"]).post(url, {"alias": "production", "version": version.pk, "reason": "go"})
    assert ModelAlias.objects.get(name="production").version == version


def test_version_page_actions(users, trained):
    _, runs = trained
    version = runs[0].model_version
    client = signed_in(users["data_scientist"])
    url = reverse("recommender:registry_version", args=[version.pk])
    page = client.post(url, {"action": "verify"}, follow=True).content.decode()
    assert "Artifact verified" in page
    # One promotion path: the version page's button leads to the releases' promotion request form.
    response = client.post(url, {"action": "promote", "reason": "better ndcg"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('releases:overview')}?version={version.pk}#request-promotion"
    html = client.get(url).content.decode()
    assert f"/portal/releases/?version={version.pk}#request-promotion" in html
    form = client.get(f"{reverse('releases:overview')}?version={version.pk}").content.decode()
    assert f'<option value="{version.pk}" selected>' in form
