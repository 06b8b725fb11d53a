"""/healthz, /readyz (bounded checks of the database and the broker) and /metrics."""

from __future__ import annotations

import socket
import threading

import pytest
from django.test import Client

from portal.celery import app as celery_app


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_without_a_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"database": {"ok": True}, "broker": {"ok": True},
                                                         "serving": {"ok": True}}}


@pytest.fixture
def broker_at(monkeypatch):
    """Point the Celery app's broker at a given URL for one test."""

    def _point(url: str) -> None:
        # broker_write_url is derived from broker_url: patching it too would leak on undo.
        monkeypatch.setattr(celery_app.conf, "broker_url", url)

    return _point


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def operator_client(users) -> Client:
    """Error texts of /readyz are for signed-in operators and admins."""
    client = Client()
    client.force_login(users["operator"])
    return client


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_broker_refuses(operator_client, broker_at, settings):
    # Given a broker URL on a closed port
    settings.USHER = {**settings.USHER, "READYZ_TIMEOUT_SECONDS": 5.0}
    broker_at(f"redis://127.0.0.1:{_closed_port()}/0")
    # When an operator asks for readiness
    response = operator_client.get("/readyz")
    # Then it is 503, naming the failing check and keeping the healthy one
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is False
    assert "refused" in body["checks"]["broker"]["error"].lower()


@pytest.mark.timeout(30)
@pytest.mark.django_db(transaction=True)
def test_readyz_does_not_hang_on_a_broker_that_never_answers(operator_client, broker_at, settings):
    # Given a "broker" that accepts connections and never says a word
    settings.USHER = {**settings.USHER, "READYZ_TIMEOUT_SECONDS": 0.5}
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept_and_hold() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept_and_hold, daemon=True)
    acceptor.start()
    broker_at(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    try:
        # When readiness is asked, the answer comes back (bounded by the check timeout; the
        # test's own timeout fails it if the view hangs) and says the broker timed out
        response = operator_client.get("/readyz")
        assert response.status_code == 503
        broker = response.json()["checks"]["broker"]
        assert broker["ok"] is False and "timed out" in broker["error"]
    finally:
        stop.set()
        acceptor.join()
        for conn in held:
            conn.close()
        silent.close()


@pytest.mark.django_db
def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "# TYPE django_http_requests_before_middlewares_total counter" in text
    assert "django_http_responses_total_by_status_total" in text


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(tmp_path):
    # A real process whose DATABASE_URL points at a closed port: no mock of the connection. Nobody
    # can sign in without the database, so the answer carries the flags only; the error is logged.
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = ("import django, json; django.setup(); from django.test import Client; "
              "r = Client().get('/readyz'); print(json.dumps({'status': r.status_code, 'body': r.json()}))")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "USHER_VAR_DIR": str(tmp_path),
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_closed_port()}/usher"})
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503 and answer["body"]["ready"] is False
    assert answer["body"]["checks"]["database"] == {"ok": False}
    assert "readyz: database not ready: OperationalError" in done.stderr
    assert answer["body"]["checks"]["broker"] == {"ok": True}  # the embedded broker is still fine
