"""The check lives in the service: every state-changing service refuses a role that may not do its
work (``portal.roles.WORK``) with ``PermissionDenied``, changes nothing, and logs ``permission.refused``
with who tried. The API, the portal's forms, the admin's actions and the commands all call these
services, so the refusal holds on every route (the page and admin tests below show two of them).

Each case builds what the service acts on, names a role the table refuses, and says what "nothing
changed" means for it (a tuple read before and after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.utils import timezone

from portal.errors import PermissionDenied
from portal.models import ActivityLogEntry


def _cleared(version):
    """``version`` with the approved promotion the one door to live traffic asks for."""
    from releases.tests.factories import approved_promotion

    approved_promotion(version)
    return version

pytestmark = pytest.mark.django_db


@dataclass
class Case:
    work: str
    call: Callable  # (user) -> None
    state: Callable  # () -> comparable


# --- training and the registry -----------------------------------------------------------------------

def _snapshot_create(users):
    from recommender.models import DatasetSnapshot
    from recommender.training.snapshots import snapshot_create

    return Case("model.build", lambda u: snapshot_create(actor=u, name="x"),
                lambda: DatasetSnapshot.objects.count())


def _training_run_create(users):
    from recommender.models import TrainingRun
    from recommender.tests.factories_training import SnapshotFactory
    from recommender.training.runs import training_run_create

    snapshot = SnapshotFactory()
    return Case("model.build", lambda u: training_run_create(actor=u, snapshot=snapshot, algorithm="svd"),
                lambda: TrainingRun.objects.count())


def _training_run_cancel(users):
    from recommender.models import TrainingRun
    from recommender.tests.factories_training import RunFactory
    from recommender.training.runs import training_run_cancel

    run = RunFactory(status=TrainingRun.Status.QUEUED)
    return Case("model.build", lambda u: training_run_cancel(run=run, actor=u, reason="mine now"),
                lambda: TrainingRun.objects.filter(pk=run.pk).values_list("status", "cancel_requested").get())


def _retraining_start(users):
    from recommender.models import DatasetSnapshot, TrainingRun
    from recommender.training.retraining import retraining_start

    return Case("model.build", lambda u: retraining_start(actor=u, system="portal"),
                lambda: (DatasetSnapshot.objects.count(), TrainingRun.objects.count(),
                         ActivityLogEntry.objects.filter(action="retraining.skipped").count()))


def _version_update(users):
    from recommender.models import ModelVersion
    from recommender.registry.services import model_version_update
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory(tags=["a"], description="before")
    return Case("model.build", lambda u: model_version_update(version=version, actor=u, tags=["b"], description="x"),
                lambda: ModelVersion.objects.filter(pk=version.pk).values_list("tags", "description").get())


def _version_archive(users):
    from recommender.models import ModelVersion
    from recommender.registry.services import model_version_set_status
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    return Case("model.build",
                lambda u: model_version_set_status(version=version, status="archived", actor=u, reason="old"),
                lambda: ModelVersion.objects.get(pk=version.pk).status)


# --- serving and releases -----------------------------------------------------------------------------

def _production(users):
    """Production served v1, then v2: a rollback to v1 is possible."""
    from recommender.registry.services import model_alias_move
    from recommender.tests.factories_training import VersionFactory

    first, second = _cleared(VersionFactory()), _cleared(VersionFactory())
    model_alias_move(alias="production", version=first, actor=users["operator"], reason="first")
    model_alias_move(alias="production", version=second, actor=users["operator"], reason="second")
    return first, second


def _alias_state():
    from recommender.models import Deployment, ModelAlias

    return (sorted(ModelAlias.objects.values_list("name", "version_id")),
            sorted(Deployment.objects.values_list("name", "revision")))


def _deployment_rollback(users):
    from recommender.serving.services import deployment_rollback

    _production(users)
    return Case("release.operate", lambda u: deployment_rollback(actor=u, reason="from the admin list"), _alias_state)


def _production_rollback(users):
    from releases.services import production_rollback

    _production(users)
    return Case("release.operate", lambda u: production_rollback(actor=u, reason="complaints"), _alias_state)


def _shadow_start(users):
    from recommender.tests.factories_training import VersionFactory
    from releases.services import shadow_start

    candidate = VersionFactory()
    return Case("release.operate", lambda u: shadow_start(version=candidate, actor=u, reason="mirror it"), _alias_state)


def _experiment(users, *, start: bool = False):
    from recommender.registry.services import model_alias_move
    from recommender.tests.factories_training import VersionFactory
    from releases import services

    production = _cleared(VersionFactory())
    model_alias_move(alias="production", version=production, actor=users["operator"], reason="first")
    experiment = services.experiment_create(
        name="svd-vs-pop", actor=users["operator"], minimum_detectable_effect=0.03,
        arms=[{"name": "control", "version": _cleared(VersionFactory()).pk, "allocation": 50, "is_control": True},
              {"name": "svd", "version": _cleared(VersionFactory()).pk, "allocation": 50}])
    if start:
        experiment = services.experiment_start(experiment=experiment, actor=users["operator"])
    return experiment


def _experiment_create(users):
    from recommender.tests.factories_training import VersionFactory
    from releases.models import Experiment
    from releases.services import experiment_create

    a, b = VersionFactory(), VersionFactory()
    arms = [{"name": "control", "version": a.pk, "allocation": 50, "is_control": True},
            {"name": "b", "version": b.pk, "allocation": 50}]
    return Case("experiment.manage", lambda u: experiment_create(name="ab", arms=arms, actor=u),
                lambda: Experiment.objects.count())


def _experiment_analyze(users):
    from releases.models import ExperimentSnapshot
    from releases.services import experiment_analyze

    experiment = _experiment(users, start=True)
    return Case("experiment.manage", lambda u: experiment_analyze(experiment=experiment, actor=u, system=None),
                lambda: ExperimentSnapshot.objects.count())


def _experiment_stop(users):
    from releases.models import Experiment
    from releases.services import experiment_stop

    experiment = _experiment(users, start=True)
    return Case("experiment.manage", lambda u: experiment_stop(experiment=experiment, actor=u, reason="enough"),
                lambda: (Experiment.objects.get(pk=experiment.pk).status, _alias_state()))


def _promotion_request(users):
    from recommender.tests.factories_training import VersionFactory
    from releases.models import PromotionRequest
    from releases.services import promotion_request_create

    version = VersionFactory()
    return Case("promotion.request", lambda u: promotion_request_create(version=version, actor=u, reason="better"),
                lambda: PromotionRequest.objects.count())


# --- monitoring ---------------------------------------------------------------------------------------

def _incident():
    from monitoring.models import AlertRule, Incident

    rule = AlertRule.objects.create(name="r", metric="error_rate", threshold=0.1, severity="critical")
    now = timezone.now()
    return Incident.objects.create(rule=rule, title="errors at 50%", severity="critical", opened_at=now,
                                   last_fired_at=now, value=0.5, evidence={})


def _incident_state(incident):
    from monitoring.models import Incident, IncidentNote

    return (Incident.objects.filter(pk=incident.pk).values_list("status", "acknowledged_by", "resolved_by").get(),
            IncidentNote.objects.count())


def _incident_acknowledge(users):
    from monitoring.services.incidents import incident_acknowledge

    incident = _incident()
    return Case("incident.handle", lambda u: incident_acknowledge(incident=incident, actor=u, comment="mine"),
                lambda: _incident_state(incident))


def _incident_annotate(users):
    from monitoring.services.incidents import incident_annotate

    incident = _incident()
    return Case("incident.handle", lambda u: incident_annotate(incident=incident, actor=u, text="a note"),
                lambda: _incident_state(incident))


def _incident_resolve(users):
    from monitoring.services.incidents import incident_resolve

    incident = _incident()
    return Case("incident.handle", lambda u: incident_resolve(incident=incident, actor=u, resolution="fixed"),
                lambda: _incident_state(incident))


def _alert_rule_create(users):
    from monitoring.models import AlertRule
    from monitoring.services.alerts import alert_rule_create

    return Case("config.manage",
                lambda u: alert_rule_create(actor=u, name="r2", metric="error_rate", threshold=0.2, severity="warning"),
                lambda: AlertRule.objects.count())


def _alert_rule_update(users):
    from monitoring.models import AlertRule
    from monitoring.services.alerts import alert_rule_update

    rule = AlertRule.objects.create(name="r", metric="error_rate", threshold=0.1, severity="critical")
    return Case("config.manage", lambda u: alert_rule_update(rule=rule, actor=u, threshold=0.9, enabled=False),
                lambda: AlertRule.objects.filter(pk=rule.pk).values_list("threshold", "enabled").get())


def _alert_rules_evaluate(users):
    from monitoring.models import AlertRule, Incident
    from monitoring.services.alerts import alert_rules_evaluate

    AlertRule.objects.create(name="r", metric="error_rate", threshold=0.1, severity="critical", no_data_fires=True)
    return Case("incident.handle", lambda u: alert_rules_evaluate(actor=u, system=None),
                lambda: (list(AlertRule.objects.values_list("state", "last_evaluated_at")), Incident.objects.count()))


def _slo_save(users):
    from monitoring.models import SLO
    from monitoring.services.config import config_save

    return Case("config.manage",
                lambda u: config_save(instance=SLO(), actor=u, data={"name": "avail", "objective": 0.99}),
                lambda: SLO.objects.count())


def _channel_delete(users):
    from monitoring.models import NotificationChannel
    from monitoring.services.config import config_delete

    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="http://127.0.0.1:9/")
    return Case("config.manage", lambda u: config_delete(instance=channel, actor=u),
                lambda: NotificationChannel.objects.count())


def _channel_test(users):
    from monitoring.models import Notification, NotificationChannel
    from monitoring.services.notifications import notification_channel_test

    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="http://127.0.0.1:9/")
    return Case("config.manage", lambda u: notification_channel_test(channel=channel, actor=u),
                lambda: Notification.objects.count())


def _notification_retry(users):
    from monitoring.models import Notification
    from monitoring.services.notifications import notification_retry

    later = timezone.now() + timezone.timedelta(hours=1)
    notification = Notification.objects.create(kind="webhook", target="http://127.0.0.1:9/", event="fired",
                                               payload={}, next_attempt_at=later)
    return Case("incident.handle", lambda u: notification_retry(notification=notification, actor=u),
                lambda: Notification.objects.filter(pk=notification.pk)
                .values_list("status", "attempts", "next_attempt_at").get())


def _drift_report(users):
    from monitoring.models import DriftReport
    from monitoring.services.drift import drift_report_create

    return Case("config.manage", lambda u: drift_report_create(actor=u), lambda: DriftReport.objects.count())


def _data_quality_report(users):
    from monitoring.models import DataQualityReport
    from monitoring.services.data_quality import data_quality_report_create

    return Case("config.manage", lambda u: data_quality_report_create(actor=u),
                lambda: DataQualityReport.objects.count())


def _feedback_update(users):
    from monitoring.models import FeedbackLoopSnapshot
    from monitoring.services.feedback import feedback_snapshots_update

    return Case("config.manage", lambda u: feedback_snapshots_update(actor=u, buckets=1),
                lambda: FeedbackLoopSnapshot.objects.count())


def _backfill(users):
    from monitoring.models import DriftReport
    from monitoring.services.backfill import monitoring_backfill

    return Case("config.manage", lambda u: monitoring_backfill(actor=u, system=None),
                lambda: DriftReport.objects.count())


# --- catalog, ingest, audits --------------------------------------------------------------------------

def _catalog_import(users):
    from recommender.catalog.schema import RawRecord
    from recommender.catalog.services import catalog_records_import
    from recommender.models import Viewer

    records = [RawRecord(position="1", data={"user_id": 7, "age": 30, "gender": "F", "occupation": "writer"})]
    return Case("config.manage", lambda u: catalog_records_import(records=records, source="catalog:test", actor=u),
                lambda: Viewer.objects.count())


def _events_submit(users):
    from recommender.ingest.services import events_submit
    from recommender.models import IngestSource, RatingEvent

    line = "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3"
    return Case("events.ingest", lambda u: events_submit(lines=[line], source="http:test", actor=u),
                lambda: (RatingEvent.objects.count(), IngestSource.objects.count()))


def _finding_acknowledge(users):
    from audits.models import AuditFinding
    from audits.services import finding_acknowledge
    from audits.tests.factories import AuditFindingFactory

    finding = AuditFindingFactory()
    return Case("finding.acknowledge", lambda u: finding_acknowledge(finding=finding, actor=u, comment="mine"),
                lambda: AuditFinding.objects.get(pk=finding.pk).status)


CASES = [
    # (builder, a role the table refuses for that work)
    (_snapshot_create, "viewer"), (_snapshot_create, "operator"),
    (_training_run_create, "viewer"), (_training_run_create, "reviewer"),
    (_training_run_cancel, "viewer"), (_training_run_cancel, "operator"),
    (_retraining_start, "viewer"),
    (_version_update, "viewer"), (_version_update, "operator"),
    (_version_archive, "viewer"), (_version_archive, "operator"),
    (_deployment_rollback, "viewer"), (_deployment_rollback, "data_scientist"),
    (_production_rollback, "viewer"), (_production_rollback, "reviewer"),
    (_shadow_start, "data_scientist"),
    (_experiment_create, "data_scientist"), (_experiment_create, "viewer"),
    (_experiment_analyze, "viewer"), (_experiment_analyze, "data_scientist"),
    (_experiment_stop, "viewer"),
    (_promotion_request, "viewer"), (_promotion_request, "admin"),
    (_incident_acknowledge, "viewer"), (_incident_annotate, "data_scientist"), (_incident_resolve, "reviewer"),
    (_alert_rule_create, "viewer"), (_alert_rule_update, "data_scientist"), (_alert_rules_evaluate, "viewer"),
    (_slo_save, "viewer"), (_channel_delete, "viewer"), (_channel_test, "viewer"), (_notification_retry, "viewer"),
    (_drift_report, "viewer"), (_data_quality_report, "viewer"), (_feedback_update, "viewer"), (_backfill, "viewer"),
    (_catalog_import, "viewer"), (_catalog_import, "data_scientist"),
    (_events_submit, "viewer"), (_events_submit, "data_scientist"),
    (_finding_acknowledge, "viewer"),
]


@pytest.mark.parametrize("build, role", [pytest.param(b, r, id=f"{b.__name__.lstrip('_')}-{r}") for b, r in CASES])
def test_a_refused_role_changes_nothing_and_the_attempt_is_logged(users, build, role):
    from portal.roles import WORK

    case = build(users)
    assert role not in WORK[case.work]  # the table itself refuses this role
    before = case.state()
    refusals = ActivityLogEntry.objects.filter(action="permission.refused").count()
    with pytest.raises(PermissionDenied, match="needs the role"):
        case.call(users[role])
    assert case.state() == before
    entries = ActivityLogEntry.objects.filter(action="permission.refused").order_by("seq")
    assert entries.count() == refusals + 1
    entry = entries.last()
    assert entry.actor_label == f"{role}_user" and entry.data["work"] == case.work


@pytest.mark.parametrize("build", [_snapshot_create, _catalog_import, _deployment_rollback, _experiment_create])
def test_code_acting_as_nobody_must_name_itself(users, build):
    """A schedule or a command passes ``actor=None, system=<its name>``; neither is refused too."""
    case = build(users)
    before = case.state()
    with pytest.raises(PermissionDenied, match="a signed-in user or a system name is required"):
        case.call(None)
    assert case.state() == before


def test_any_model_builder_may_cancel_another_users_run_and_the_log_says_whose(users):
    from conftest import make_user
    from recommender.models import TrainingRun
    from recommender.tests.factories_training import RunFactory
    from recommender.training.runs import training_run_cancel

    run = RunFactory(status=TrainingRun.Status.QUEUED, created_by=users["data_scientist"],
                     created_by_label="data_scientist_user")
    colleague = make_user("data_scientist", "colleague")
    cancelled = training_run_cancel(run=run, actor=colleague, reason="wrong snapshot")
    assert cancelled.status == "cancelled"
    entry = ActivityLogEntry.objects.get(action="training_run.cancel_requested")
    assert entry.actor_label == "colleague" and entry.data["run_created_by"] == "data_scientist_user"
