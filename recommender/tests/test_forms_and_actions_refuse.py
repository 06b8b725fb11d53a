"""The holes of issue #14 closed where they were found: as a viewer, the portal's forms (model version
edit, archive, snapshot, training run, run cancel, experiment analysis) and the admin actions
(``rollback_production``, ``send_test``) change nothing. The page answers with the refusal as a
message (never a 500), the buttons are hidden from roles without the work, and each attempt is in
the activity log as ``permission.refused``."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse

from portal.form_testing import signed_in
from portal.models import ActivityLogEntry
from recommender.models import DatasetSnapshot, ModelVersion, TrainingRun
from recommender.tests.factories_training import RunFactory, VersionFactory, synthetic_ratings
from releases.models import ExperimentSnapshot


def _cleared(version):
    """``version`` with the approved promotion the one door to live traffic asks for."""
    from releases.tests.factories import approved_promotion

    approved_promotion(version)
    return version

pytestmark = pytest.mark.django_db


def _refusals(role: str) -> list[str]:
    return list(ActivityLogEntry.objects.filter(action="permission.refused", actor_label=f"{role}_user")
                .values_list("data__work", flat=True))


def _refused_page(response) -> str:
    assert response.status_code == 200  # followed back to the page, not a 500
    html = response.content.decode()
    assert "needs the role" in html
    return html


# --- the model version page ------------------------------------------------------------------------------

def test_a_viewer_cannot_edit_or_archive_a_version_from_its_page(users):
    version = VersionFactory(tags=["baseline"], description="first")
    url = reverse("recommender:registry_version", args=[version.pk])
    viewer = signed_in(users["viewer"])

    _refused_page(viewer.post(url, {"action": "edit", "tags": "hacked", "description": "pwned"}, follow=True))
    _refused_page(viewer.post(url, {"action": "archive", "reason": "gone"}, follow=True))

    version.refresh_from_db()
    assert (version.tags, version.description, version.status) == (["baseline"], "first", "candidate")
    assert _refusals("viewer") == ["model.build", "model.build"]


def test_the_version_page_shows_each_role_only_its_own_buttons(users):
    version = VersionFactory()
    url = reverse("recommender:registry_version", args=[version.pk])
    buttons = {role: signed_in(users[role]).get(url).content.decode() for role in ("viewer", "data_scientist", "operator")}
    assert 'value="edit"' not in buttons["viewer"] and 'value="archive"' not in buttons["viewer"]
    assert 'data-testid="request-promotion"' not in buttons["viewer"]
    assert 'value="edit"' in buttons["data_scientist"] and 'value="archive"' in buttons["data_scientist"]
    # an operator may request a promotion (promotion.request: a link to the releases' form) but not
    # edit or archive (model.build)
    assert 'data-testid="request-promotion"' in buttons["operator"] and 'value="archive"' not in buttons["operator"]


def test_a_data_scientist_still_edits_and_archives_from_the_page(users):
    version = VersionFactory()
    url = reverse("recommender:registry_version", args=[version.pk])
    client = signed_in(users["data_scientist"])
    client.post(url, {"action": "edit", "tags": "good, fast", "description": "svd"})
    client.post(url, {"action": "archive", "reason": "superseded"})
    version.refresh_from_db()
    assert (version.tags, version.description, version.status) == (["fast", "good"], "svd", "archived")


# --- snapshots and training runs -------------------------------------------------------------------------

def test_a_viewer_cannot_take_a_snapshot_from_the_form(users):
    synthetic_ratings(n_users=5, n_items=5, density=1.0)  # enough for a snapshot, were it allowed
    response = signed_in(users["viewer"]).post(reverse("recommender:training_snapshots"), {"name": "form"}, follow=True)
    _refused_page(response)
    assert not DatasetSnapshot.objects.exists()
    assert _refusals("viewer") == ["model.build"]
    assert 'name="include_implicit"' not in signed_in(users["viewer"]).get(reverse("recommender:training_snapshots")).content.decode()


@pytest.fixture
def snapshot():
    from recommender.training.snapshots import snapshot_create

    synthetic_ratings(n_users=30, n_items=25, density=0.4)
    return snapshot_create(actor=None, system="test", name="forms")


def test_a_viewer_cannot_queue_training_runs_or_the_retraining(users, snapshot):
    viewer = signed_in(users["viewer"])
    url = reverse("recommender:training_runs")
    _refused_page(viewer.post(url, {"snapshot": snapshot.pk, "algorithm": ["svd", "popularity"]}, follow=True))
    html = _refused_page(viewer.post(url, {"action": "retrain"}, follow=True))
    assert "Nothing to retrain" not in html  # a refusal is said as such
    assert not TrainingRun.objects.exists() and DatasetSnapshot.objects.count() == 1
    assert _refusals("viewer") == ["model.build"] * 2  # one per form sent: the runs are queued all or none
    page = viewer.get(url).content.decode()
    assert 'name="hyperparameters"' not in page and 'value="retrain"' not in page
    page = signed_in(users["data_scientist"]).get(url).content.decode()
    assert 'name="hyperparameters"' in page and 'value="retrain"' in page


def test_a_viewer_cannot_cancel_another_users_run(users):
    run = RunFactory(status=TrainingRun.Status.QUEUED, created_by=users["data_scientist"])
    url = reverse("recommender:training_run", args=[run.pk])
    viewer = signed_in(users["viewer"])
    assert 'data-testid="cancel"' not in viewer.get(url).content.decode()
    _refused_page(viewer.post(url, {"reason": "mine now"}, follow=True))
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("queued", False)
    assert _refusals("viewer") == ["model.build"]


# --- experiments -------------------------------------------------------------------------------------------

def test_a_viewer_cannot_run_an_experiment_analysis_from_its_page(users):
    from recommender.registry.services import model_alias_move
    from releases import services

    model_alias_move(alias="production", version=_cleared(VersionFactory()), actor=users["operator"],
                     reason="first")
    experiment = services.experiment_create(
        name="ab", actor=users["operator"],
        arms=[{"name": "control", "version": _cleared(VersionFactory()).pk, "allocation": 50, "is_control": True},
              {"name": "b", "version": _cleared(VersionFactory()).pk, "allocation": 50}])
    experiment = services.experiment_start(experiment=experiment, actor=users["operator"])
    url = reverse("releases:experiment", args=[experiment.pk])
    viewer = signed_in(users["viewer"])
    assert 'value="analyze"' not in viewer.get(url).content.decode()

    _refused_page(viewer.post(url, {"action": "analyze"}, follow=True))
    assert not ExperimentSnapshot.objects.exists()
    assert _refusals("viewer") == ["experiment.manage"]

    signed_in(users["operator"]).post(url, {"action": "analyze"})  # the operator's analysis is recorded under their name
    assert ExperimentSnapshot.objects.count() == 1


# --- admin actions: the service refuses whatever the admin lets through ---------------------------------

def _admin_request(user):
    request = RequestFactory().post("/portal/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_a_viewers_rollback_production_admin_action_changes_nothing(users):
    from recommender.models import Deployment, ModelAlias
    from recommender.registry.services import model_alias_move
    from recommender.serving.services import deployment_get_or_create

    first, second = _cleared(VersionFactory()), _cleared(VersionFactory())
    model_alias_move(alias="production", version=first, actor=users["operator"], reason="first")
    model_alias_move(alias="production", version=second, actor=users["operator"], reason="second")
    deployment = deployment_get_or_create()
    before = Deployment.objects.get(pk=deployment.pk).revision
    changes = ActivityLogEntry.objects.filter(action="deployment.changed").count()

    # Called directly, as if the action's admin permission were missing: the service still refuses.
    model_admin = admin.site._registry[Deployment]
    request = _admin_request(users["viewer"])
    model_admin.rollback_production(request, Deployment.objects.filter(pk=deployment.pk))

    assert ModelAlias.objects.get(name="production").version_id == second.pk
    assert Deployment.objects.get(pk=deployment.pk).revision == before
    assert ActivityLogEntry.objects.filter(action="deployment.changed").count() == changes
    assert _refusals("viewer") == ["release.operate"]
    assert any("needs the role" in str(m) for m in request._messages)


def test_a_viewers_send_test_admin_action_sends_nothing(users):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from monitoring.models import Notification, NotificationChannel

    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel = NotificationChannel.objects.create(
            name="hook", kind="webhook", target=f"http://127.0.0.1:{server.server_address[1]}/hook", secret="k3y")
        model_admin = admin.site._registry[NotificationChannel]
        request = _admin_request(users["viewer"])
        model_admin.send_test(request, NotificationChannel.objects.filter(pk=channel.pk))
    finally:
        server.shutdown()
        server.server_close()

    assert received == [] and not Notification.objects.exists()
    assert _refusals("viewer") == ["config.manage"]
    assert any("needs the role" in str(m) for m in request._messages)


def test_the_version_admin_archive_action_refuses_a_viewer(users):
    version = VersionFactory()
    model_admin = admin.site._registry[ModelVersion]
    request = _admin_request(users["viewer"])
    model_admin.archive_selected(request, ModelVersion.objects.filter(pk=version.pk))
    version.refresh_from_db()
    assert version.status == "candidate" and _refusals("viewer") == ["model.build"]
