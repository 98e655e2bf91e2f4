"""The embedded default's in-process Dramatiq worker and reconciler thread.

Production runs `manage.py rundramatiq` (GPU workers with `--queues separation`) and
`manage.py reconcile_jobs --every 60` instead; this module is for one-process installs.
"""
from __future__ import annotations

import importlib
import logging
import threading

import dramatiq

from clearstem.jobs.reconciler import run_reconciler

log = logging.getLogger("clearstem.worker")
ACTOR_MODULES = ("clearstem.uploads.actors", "clearstem.jobs.actors", "provenance.actors",
                 "clearstem.notifications.actors")


def import_actors() -> None:
    for name in ACTOR_MODULES:
        importlib.import_module(name)


def start_worker(threads: int = 2) -> dramatiq.Worker:
    """Start a real Dramatiq worker in this process on the configured broker."""
    import_actors()
    broker = dramatiq.get_broker()
    # Without process_boot the TimeLimit watchdog never starts (measured: time limits silently do nothing).
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.start()
    return worker


def start_reconciler(every_s: float = 60.0) -> threading.Event:
    """Run the reconciler every `every_s` seconds in a daemon thread; set the event to stop."""
    stop = threading.Event()
    threading.Thread(target=run_reconciler, args=(every_s, stop), name="clearstem-reconciler", daemon=True).start()
    return stop
