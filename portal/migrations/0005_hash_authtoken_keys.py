"""Existing API tokens keep working, hashed: every key of DRF's ``authtoken_token`` table becomes an
``ApiToken`` (its sha256 and first characters), then the table of clear keys is dropped and
``rest_framework.authtoken`` (no longer installed) is forgotten. A fresh database has no such table.
"""

import hashlib
from datetime import UTC, datetime

from django.db import migrations
from django.utils.dateparse import parse_datetime

TABLE = "authtoken_token"
PREFIX_LENGTH = 8  # portal.services.tokens.PREFIX_LENGTH at the time of writing


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hash_authtoken_keys(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("portal", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {TABLE}")
        rows = cursor.fetchall()
    ApiToken.objects.bulk_create([
        ApiToken(user_id=user_id, prefix=key[:PREFIX_LENGTH], digest=hashlib.sha256(key.encode()).hexdigest(),
                 created_at=_aware(created))
        for key, user_id, created in rows
    ])
    schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(TABLE)}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_api_tokens")]
    # The clear keys are gone: going back leaves the hashed tokens in place.
    operations = [migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop)]
