"""Releases' objects are named ``releases.<model>`` now: their content types (and so the admin
permissions attached to them) and the review requests that target them follow. The activity log is a
hash chain: its entries keep the name they were written with (``releases.selectors.release_history``
reads both)."""

from django.db import migrations

MODELS = ["promotionrequest", "releasegatecheck", "rollout", "rolloutstep", "experiment", "experimentvariant",
          "experimentsnapshot", "shadowcomparison", "shadowreport"]


def forwards(apps, schema_editor):
    _rename(apps, old="recommender", new="releases")


def backwards(apps, schema_editor):
    _rename(apps, old="releases", new="recommender")


def _rename(apps, *, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    ReviewRequest = apps.get_model("portal", "ReviewRequest")
    for model in MODELS:
        old_type = ContentType.objects.filter(app_label=old, model=model).first()
        if old_type is not None:
            # post_migrate may already have made the new one (an earlier migrate stopped half-way): keep the
            # old row, whose id the permissions and the admin's log entries point at.
            ContentType.objects.filter(app_label=new, model=model).delete()
            old_type.app_label = new
            old_type.save(update_fields=["app_label"])
        ReviewRequest.objects.filter(target_type=f"{old}.{model}").update(target_type=f"{new}.{model}")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("portal", "0007_schedules_clear_headers_disable_unlisted"),
        ("releases", "0001_initial"),
        ("recommender", "0013_releases_moved_to_their_app"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
