"""Shared fixtures: one user per role, API clients, and skips for tests needing real services."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

from portal.roles import ROLE_NAMES


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items) -> None:
    db_engine = settings.DATABASES["default"]["ENGINE"]
    have = {
        "postgres": "postgresql" in db_engine,
        "redis": bool(os.environ.get("REDIS_URL")),
        "worker": bool(os.environ.get("REDIS_URL")),
        "browser": chromium_path() is not None,
    }
    why = {
        "postgres": "needs DATABASE_URL=postgres://…",
        "redis": "needs REDIS_URL",
        "worker": "needs REDIS_URL (the worker's broker)",
        "browser": "needs Debian's chromium",
    }
    for item in items:
        for marker, ok in have.items():
            if marker in item.keywords and not ok:
                item.add_marker(pytest.mark.skip(reason=why[marker]))


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Artifacts and media of each test go to its own temporary folder."""
    settings.RECOMMENDER = {**settings.RECOMMENDER, "ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.AXES_ENABLED = False


def make_user(role: str, username: str | None = None):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.roles import sync_role_permissions

    if not Group.objects.filter(name=role).exists() or not Group.objects.get(name=role).permissions.exists():
        sync_role_permissions()
    user = get_user_model().objects.create_user(
        username=username or f"{role}_user", password="x-" + os.urandom(8).hex(), is_staff=True,
        is_superuser=(role == "admin"),
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def users(db) -> dict:
    """One user per role: ``users['reviewer']`` etc."""
    return {role: make_user(role) for role in ROLE_NAMES}


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(users):
    """``client_for('operator')`` → an APIClient signed in as that role's user."""
    from rest_framework.test import APIClient

    def _make(role: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(users[role])
        return client

    return _make
