"""Every webhook is signed: webhook channels saved without a secret get a generated one.

The new secrets are shown to no one here; the channel's owner rotates the secret (admin action or
``POST /api/v1/monitoring/channels/<id>/rotate-secret``) to see one and give it to the receiver."""

import secrets

from django.db import migrations, models


def generate_missing_secrets(apps, schema_editor):
    NotificationChannel = apps.get_model("monitoring", "NotificationChannel")
    for channel in NotificationChannel.objects.filter(kind="webhook", secret=""):
        channel.secret = secrets.token_urlsafe(32)
        channel.save(update_fields=["secret"])


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0004_late_rollup_schedule"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notificationchannel",
            name="secret",
            field=models.CharField(
                blank=True,
                help_text="Webhook: HMAC-SHA256 key for the X-Usher-Signature header. Generated when left empty, "
                "shown once to whoever made or rotated it, never rendered again.",
                max_length=200,
            ),
        ),
        migrations.RunPython(generate_missing_secrets, migrations.RunPython.noop),
    ]
