"""The reconciler's loop, shared by `manage.py reconcile_jobs --every N` and the embedded
default's thread. It must outlive the things it repairs: a database or broker outage is
logged and retried with backoff (1, 2, 4 … seconds, at most the interval), never a reason to
exit, since a job stuck `separating` waits for it."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import dramatiq.errors
import redis.exceptions
from django.db import DatabaseError, connections

from clearstem.storage import sweep_partials

from .services import do_reconcile_jobs
from .signals import reconciler_pass

log = logging.getLogger("clearstem.reconciler")

#: Outages a pass can meet: the database (OperationalError, InterfaceError are DatabaseErrors)
#: or the broker going away.
TRANSIENT = (DatabaseError, dramatiq.errors.BrokerConnectionError, redis.exceptions.ConnectionError,
             redis.exceptions.TimeoutError)


#: How often a pass also sweeps storage for files of writers that died mid-write (a walk of all
#: local storage: not every minute).
PARTIAL_SWEEP_EVERY_S = 900.0
_last_sweep: float | None = None


def reconcile_once() -> dict:
    """One pass: the jobs, now and then the dead writers' partial files (`partials_swept`, only in
    the passes that sweep), then whatever listens to `reconciler_pass` (webhook deliveries)."""
    global _last_sweep
    counts = do_reconcile_jobs()
    if _last_sweep is None or time.monotonic() - _last_sweep >= PARTIAL_SWEEP_EVERY_S:
        _last_sweep = time.monotonic()
        try:
            counts["partials_swept"] = sweep_partials()
        except OSError:  # a storage hiccup must not stop the job repairs; the next sweep retries
            log.warning("sweeping partial files failed", exc_info=True)
    reconciler_pass.send(sender=None)
    return counts


def run_reconciler(every_s: float, stop: threading.Event, report: Callable[[dict], None] | None = None) -> None:
    """Reconcile every `every_s` seconds until `stop` is set."""
    failures = 0
    while True:
        try:
            counts = reconcile_once()
            failures = 0
            if report:
                report(counts)
        except TRANSIENT as exc:
            failures += 1
            log.warning("reconciler pass failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc,
                        _backoff(failures, every_s))
            connections.close_all()  # drop the broken connection; the next pass opens a new one
        except Exception:  # a bug must not stop the repairs either; it is logged in full
            failures += 1
            log.exception("reconciler pass failed")
        if stop.wait(_backoff(failures, every_s) if failures else every_s):
            return


def _backoff(failures: int, every_s: float) -> float:
    return min(float(2 ** (failures - 1)), max(every_s, 1.0))
