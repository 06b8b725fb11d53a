"""Shared fixtures: one user per role, API and web clients, a review kind for tests, browser
fixtures (Playwright on Debian's chromium), and skips for tests needing real services."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings

from portal.roles import ROLE_NAMES

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _playwright_importable() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items) -> None:
    db_engine = settings.DATABASES["default"]["ENGINE"]
    have = {
        "postgres": "postgresql" in db_engine,
        "redis": bool(os.environ.get("REDIS_URL")),
        # The worker runs on whichever broker is configured (Redis with REDIS_URL, else the
        # filesystem broker) against the test database, which is a file or PostgreSQL.
        "worker": True,
        "browser": chromium_path() is not None and _playwright_importable(),
    }
    why = {
        "postgres": "needs DATABASE_URL=postgres://…",
        "redis": "needs REDIS_URL",
        "worker": "",
        "browser": "needs Debian's chromium (apt-get install chromium) and playwright",
    }
    for item in items:
        for marker, ok in have.items():
            if marker in item.keywords and not ok:
                item.add_marker(pytest.mark.skip(reason=why[marker]))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """On SQLite the test database is a file (not in memory), so a worker subprocess can use it;
    one per test run, in the temp folder, so parallel runs do not collide."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = os.path.join(tempfile.gettempdir(), f"usher-test-{os.getpid()}.sqlite3")


def _clear_cache() -> None:
    """Throttle counters live in the cache: start each test from zero. On Redis only Usher's
    prefixed keys go (the broker may share the database)."""
    from django.core.cache import cache
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Artifacts and media of each test go to its own temporary folder; caches start empty;
    login lockout (django-axes) is off unless a test turns it back on."""
    settings.RECOMMENDER = {**settings.RECOMMENDER, "ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.AXES_ENABLED = False
    # Hashing each fixture user's password with the production hasher costs ~0.3 s a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _clear_cache()


def make_user(role: str, username: str | None = None):
    """A user holding ``role`` (staff and superuser for admin only, as ``user_create`` makes them);
    its random password is on ``user.raw_password``."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.roles import role_is_staff, sync_role_permissions

    if not Group.objects.filter(name=role).exists() or not Group.objects.get(name="admin").permissions.exists():
        sync_role_permissions()
    password = "pw-" + os.urandom(12).hex()
    user = get_user_model().objects.create_user(
        username=username or f"{role}_user", password=password, is_staff=role_is_staff(role),
        is_superuser=role_is_staff(role),
    )
    user.groups.add(Group.objects.get(name=role))
    user.raw_password = password
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
def client_for(users) -> Callable:
    """``client_for('operator')`` → an APIClient signed in as that role's user."""
    from rest_framework.test import APIClient

    def _make(role: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(users[role])
        return client

    return _make


@pytest.fixture
def web_client_for(users) -> Callable:
    """``web_client_for('viewer')`` → a Django test Client with a session for that role's user."""
    from portal.form_testing import signed_in

    return lambda role: signed_in(users[role])


@pytest.fixture
def review_kind() -> Iterator:
    """A review kind ``test.change`` decided by reviewers with four eyes, for inbox tests."""
    from portal.reviews import _KINDS, ReviewKind, register_review_kind

    kind = ReviewKind(name="test.change", label="Test change", decider_role="reviewer", four_eyes=True)
    previous = _KINDS.get(kind.name)
    register_review_kind(kind)
    yield kind
    if previous is None:
        _KINDS.pop(kind.name, None)
    else:
        _KINDS[kind.name] = previous


# --- browser fixtures (marker ``browser``): reused by every app's page tests ------------------


# --- real Celery workers (marker ``worker``) ---------------------------------------------------


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable]:
    """``start_worker(name, pool="solo", queues=None)``: ``celery -A portal worker`` as a subprocess,
    on this test run's database, the configured broker (Redis with REDIS_URL — its database emptied
    first, it is this run's own — else the filesystem broker) and the same artifact root; in a
    session of its own, so ``os.killpg`` reaches its pool processes; logging to ``proc.log_path``.
    Workers still running at the end get SIGTERM, then SIGKILL after 20 s."""
    import signal
    import subprocess
    import sys

    from portal.testing import database_url_of_this_run

    if os.environ.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    started: list[subprocess.Popen] = []

    def start(name: str, *, pool: str = "solo", queues: str | None = None) -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": database_url_of_this_run(), "DJANGO_SETTINGS_MODULE": "portal.settings",
               "USHER_ARTIFACT_ROOT": str(settings.RECOMMENDER["ARTIFACT_ROOT"]), "CELERY_TASK_ALWAYS_EAGER": "0",
               "DB_CONN_MAX_AGE": "0", "CACHE_URL": os.environ.get("CACHE_URL", "locmemcache://")}
        log_path = tmp_path / f"worker-{name}-{len(started)}.log"
        command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", pool, "--concurrency", "1",
                   "--loglevel", "INFO", "-n", f"{name}-{len(started)}@%h", "--without-gossip", "--without-mingle"]
        if queues:
            command += ["--queues", queues]
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=str(settings.BASE_DIR), env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def broker_down() -> Iterator[Callable[[], None]]:
    """The Celery app's broker moved to a closed loopback port — a real refused connection, not a
    mock — until the test calls the yielded ``restore()`` (the broker is back) or ends."""
    import socket

    from portal.celery import app

    original = app.conf.broker_url

    def reset_pools() -> None:
        # Celery keeps a connection pool and a producer pool per app, made on first use from
        # kombu's registry of pools by URL (closing one would close it for later users too).
        app._pool = None
        app.amqp._producer_pool = None

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reset_pools()
    app.conf.broker_url = f"redis://127.0.0.1:{port}/0"

    def restore() -> None:
        reset_pools()
        app.conf.broker_url = original

    yield restore
    restore()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """A headless Debian chromium driven by Playwright's sync API, shared by one test module.

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is started, so it must be stopped before any other code starts its own."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself in that thread are still synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A fresh browser context and page per test, with ``page.usher_url`` = the live server and
    ``page.external_requests`` = every request that tried to leave it (refused)."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    external: list[str] = []

    def _offline_only(route) -> None:
        # Usher works offline: anything not served by the live server is recorded and refused.
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    context.route("**/*", _offline_only)
    pg = context.new_page()
    pg.usher_url = live_server.url
    pg.external_requests = external
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def browser_login(page) -> Callable:
    """``browser_login(user)`` signs ``user`` in through the real login form (password
    ``user.raw_password``) and returns the page, now on the dashboard."""

    def _login(user, password: str | None = None):
        page.goto("/portal/login/?next=/portal/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", password if password is not None else user.raw_password)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        return page

    return _login
