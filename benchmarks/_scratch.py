"""A benchmark's scratch Usher: its own folder, database and artifact root, Django set up and migrated.

Every benchmark that needs the product's code paths starts here, so they all isolate themselves the
same way: nothing they write lands in ``var/`` or in a database somebody uses.

- SQLite (the default): a database file in a fresh temporary folder.
- PostgreSQL: when a benchmark names a scratch database (``pg_name``) and ``DATABASE_URL`` (or
  ``database_url``) is a PostgreSQL URL, that server's database ``pg_name`` is dropped and created empty;
  ``Scratch.drop()`` drops it at the end.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def pg_admin(url: str, *statements: str) -> None:
    """Run statements on the ``postgres`` database of the server ``url`` names (autocommit)."""
    import psycopg2

    conn = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


@dataclass
class Scratch:
    folder: Path
    database_url: str
    pg_name: str | None = None

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.pg_name else "SQLite (temporary file)"

    def drop(self) -> None:
        """Drop the scratch PostgreSQL database (nothing to do for SQLite: the folder is temporary)."""
        if not self.pg_name:
            return
        from django.db import connections

        connections.close_all()
        pg_admin(self.database_url, f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def scratch_configure(prefix: str, *, pg_name: str | None = None, database_url: str | None = None,
                      env: dict[str, str] | None = None, redis: bool = False) -> Scratch:
    """The scratch folder and database, in ``os.environ`` (for this process and any child it starts).

    ``database_url`` given is used as it is (SQLite or an existing PostgreSQL database); otherwise
    ``pg_name`` with a PostgreSQL ``DATABASE_URL`` makes a fresh database of that name on that server,
    and anything else is SQLite in the folder. ``redis=False`` drops ``REDIS_URL`` (the embedded
    default: local cache and the filesystem broker). ``env`` adds settings.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"usher-bench-{prefix}-"))
    base = os.environ.get("DATABASE_URL", "")
    name = None
    if database_url:
        url = database_url
    elif pg_name and _is_postgres(base):
        url, name = base.rsplit("/", 1)[0] + f"/{pg_name}", pg_name
        pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    else:
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.update({
        "DATABASE_URL": url,
        "USHER_VAR_DIR": str(folder / "var"),
        "USHER_ARTIFACT_ROOT": str(folder / "artifacts"),
        **(env or {}),
    })
    if not redis:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    return Scratch(folder=folder, database_url=url, pg_name=name)


def scratch_django(prefix: str, *, migrate: bool = True, **kwargs) -> Scratch:
    """``scratch_configure``, then ``django.setup()`` and the migrations."""
    scratch = scratch_configure(prefix, **kwargs)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    return scratch
