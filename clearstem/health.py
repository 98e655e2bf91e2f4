"""Health endpoints for load balancers and the compose file.

`/healthz`: the process answers (no database, no broker: a restart would not help them).
`/readyz`: the database, the broker and the storage are reachable; 503 with each component's
state otherwise, so traffic goes elsewhere until they are back. No authentication, no data: a
failure is named in words, and its exception (class, host, message) goes to the log only."""
from __future__ import annotations

import logging

import dramatiq
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

PROBE_NAME = "health/readyz-probe"
log = logging.getLogger("clearstem.health")
#: What /readyz says when a component's check fails.
DOWN = {"database": "the database did not answer", "broker": "the message broker did not answer",
        "storage": "the file storage did not answer"}


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _broker() -> str:
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        return "in-process"
    client.ping()
    return "redis"


def _storage() -> str:
    default_storage.exists(PROBE_NAME)  # a stat locally, a HEAD request on S3
    return type(default_storage).__name__


CHECKS = {"database": _database, "broker": _broker, "storage": _storage}


def readiness() -> tuple[bool, dict]:
    """Each component's state: {"database": {"ok": True, "detail": "postgresql"}, ...}."""
    out = {}
    for name, check in CHECKS.items():
        try:
            out[name] = {"ok": True, "detail": check()}
        except Exception:  # noqa: BLE001 - any failure means not ready; say which
            log.warning("readiness: %s check failed", name, exc_info=True)
            out[name] = {"ok": False, "detail": DOWN[name]}
    return all(c["ok"] for c in out.values()), out


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    ready, checks = readiness()
    response = JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                            status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = "5"
    return response
