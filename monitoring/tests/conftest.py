"""Fixtures of the monitoring tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitoring.tests.factories import make_catalog


@pytest.fixture
def catalog(db):
    """40 enriched movies and 60 enriched viewers."""
    return make_catalog()


@pytest.fixture
def t0() -> datetime:
    """A fixed minute to build event histories around."""
    return datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The role users' passwords are hashed with a fast hasher: these tests are not about passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
