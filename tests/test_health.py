"""Health endpoints and the reconciler's resilience."""
from __future__ import annotations

from django.core.management import call_command
from django.test import Client


def test_healthz_and_readyz(db):
    web = Client()
    r = web.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = web.get("/readyz")
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "detail": "postgresql"}
    assert body["checks"]["broker"] == {"ok": True, "detail": "redis"}
    assert body["checks"]["storage"]["ok"]


def test_readyz_says_which_component_is_down(db, settings, caplog):
    """Storage that cannot be reached (an S3 endpoint where nothing listens): 503, naming it in
    words; the exception itself goes to the operators' log, not to whoever asks."""
    from botocore.config import Config

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": "nowhere", "endpoint_url": "http://127.0.0.1:9", "access_key": "x", "secret_key": "y",
        "client_config": Config(connect_timeout=1, retries={"max_attempts": 1})}}}
    r = Client().get("/readyz")
    body = r.json()
    assert r.status_code == 503 and r["Retry-After"]
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["storage"] == {"ok": False, "detail": "the file storage did not answer"}
    assert "storage check failed" in caplog.text and "Connect" in caplog.text


def test_reconcile_once_reports(db, capsys):
    call_command("reconcile_jobs")
    assert "requeued=0" in capsys.readouterr().out
