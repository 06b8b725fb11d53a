"""One promotion path: pending reviews of the registry's own ``model_promotion`` shape (a review whose
target is a model version, not a promotion request) become promotion requests of the releases.

Each such pending review is closed (``cancelled``, with the reason in its decision comment) and, when its
version can still be promoted, a ``PromotionRequest`` is filed in the same requester's name with the
status ``gate_pending``: the releases' repair pass (every minute) queues its release gate, then a reviewer
who is not the requester decides it, then the canary runs, like any other request. Nothing is lost and
nothing skips the gate. A review whose version is gone, rejected, archived, already in production or
already has an open promotion request is only closed, saying so. Decided reviews are history and stay.
"""

from django.db import migrations
from django.utils import timezone

OPEN = ("gate_pending", "gate_running", "awaiting_review", "approved", "rolling_out")


def move_pending_registry_reviews(apps, schema_editor):
    ReviewRequest = apps.get_model("portal", "ReviewRequest")
    ModelVersion = apps.get_model("recommender", "ModelVersion")
    ModelAlias = apps.get_model("recommender", "ModelAlias")
    PromotionRequest = apps.get_model("recommender", "PromotionRequest")
    now = timezone.now()
    production = ModelAlias.objects.filter(name="production").values_list("version_id", flat=True).first()
    pending = ReviewRequest.objects.filter(kind="model_promotion", target_type="recommender.modelversion",
                                           status="pending").order_by("created_at", "pk")
    for review in pending:
        version = ModelVersion.objects.filter(pk=int(review.target_id)).first() if review.target_id.isdigit() else None
        open_one = PromotionRequest.objects.filter(version=version, status__in=OPEN).first() if version else None
        prefix = "closed by migration (one promotion path: the registry's own promotion review is gone)"
        if version is None:
            comment = f"{prefix}: the model version no longer exists"
        elif version.status in ("rejected", "archived"):
            comment = f"{prefix}: the version is {version.status}"
        elif version.pk == production:
            comment = f"{prefix}: the version is already in production"
        elif open_one is not None:
            comment = f"{prefix}: superseded by promotion request #{open_one.pk}"
        else:
            reason = str((review.evidence or {}).get("reason") or review.title)
            promotion = PromotionRequest.objects.create(
                version=version, baseline_version_id=production, status="gate_pending",
                reason=f"moved from the registry's promotion review #{review.pk}: {reason}"[:2000],
                requested_by_id=review.requester_id, requested_label=review.requester_label or "system:usher",
                canary_steps=[],
            )
            comment = (f"{prefix}: moved to promotion request #{promotion.pk} "
                       "(release gate → review by someone other than the requester → canary)")
        review.status = "cancelled"
        review.decision_comment = comment
        review.decided_at = now
        review.save(update_fields=["status", "decision_comment", "decided_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0011_training_repair_requeues"),
        ("portal", "0003_verify_activity_log_schedule"),
    ]

    operations = [migrations.RunPython(move_pending_registry_reviews, migrations.RunPython.noop)]
