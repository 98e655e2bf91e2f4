"""The embedded default's in-process Dramatiq worker and reconciler thread.

Production runs `manage.py rundramatiq` (GPU workers with `--queues separation`) and
`manage.py reconcile_jobs --every 60` instead; this module is for one-process installs.
"""
from __future__ import annotations

import importlib
import logging
import threading
import weakref

import dramatiq

from clearstem.jobs.reconciler import run_reconciler

log = logging.getLogger("clearstem.worker")
_booted: weakref.WeakSet = weakref.WeakSet()  # the brokers whose process_boot was emitted here
ACTOR_MODULES = ("clearstem.uploads.actors", "clearstem.jobs.actors", "provenance.actors",
                 "clearstem.notifications.actors")


def import_actors() -> None:
    for name in ACTOR_MODULES:
        importlib.import_module(name)


def start_worker(threads: int = 2) -> dramatiq.Worker:
    """Start a real Dramatiq worker in this process on the configured broker."""
    import_actors()
    broker = dramatiq.get_broker()
    # Without process_boot the TimeLimit watchdog never starts (measured: time limits silently do
    # nothing). Once per broker and process: its watchdog thread serves every later worker, and a
    # second boot fails to start it again (logged as CRITICAL by Dramatiq).
    if broker not in _booted:
        broker.emit_after("process_boot")
        _booted.add(broker)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.start()
    return worker


def stop_worker(worker: dramatiq.Worker, timeout_ms: int = 10_000) -> None:
    """Stop a worker started here and take its middleware off the broker: Dramatiq leaves it
    there, and on every queue declared later it would add a consumer to the stopped worker,
    which then takes that queue's messages and never runs them (measured: a second worker in
    the same process never got a message of a queue declared after the first one stopped)."""
    worker.stop(timeout=timeout_ms)
    broker = worker.broker
    broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]


def start_reconciler(every_s: float = 60.0) -> threading.Event:
    """Run the reconciler every `every_s` seconds in a daemon thread; set the event to stop."""
    stop = threading.Event()
    threading.Thread(target=run_reconciler, args=(every_s, stop), name="clearstem-reconciler", daemon=True).start()
    return stop
