"""Where events come from: the job lifecycle's and licensing's signals. The signals are sent
inside the transaction that made the change, so each receiver records the event and its
deliveries there: they commit with the change or roll back with it (nothing is told of a
change that rolls back, and a crash after the commit loses nothing: the reconciler finds what
was not sent). Only the broker messages wait for the commit (`send_on_commit`). A failure here
is logged and rolled back to a savepoint, never raised into the change that was announced."""
from __future__ import annotations

import logging

from django.db import transaction

from clearstem.jobs.signals import job_state_changed, reconciler_pass
from licensing.signals import license_granted, license_request_answered, license_request_created, license_stopped

from . import payloads
from .services import do_publish_event, do_resend_stale_deliveries

log = logging.getLogger("clearstem.notifications")
JOB_EVENTS = {"done": "job.finished", "failed": "job.failed", "denied": "job.denied"}


def publish(build, event_type: str, object_id) -> None:
    organisation_id, summary, data = build(event_type, object_id)
    if organisation_id is not None:
        do_publish_event(event_type, organisation_id, summary, data)


def record(build, event_type: str, object_id) -> None:
    """In the announcing transaction, in a savepoint of its own."""
    try:
        with transaction.atomic():
            publish(build, event_type, object_id)
    except Exception:
        log.exception("could not record the %s event of %s", event_type, object_id)


def on_job_state(sender, *, job, state: str, **_) -> None:
    if state in JOB_EVENTS:
        record(payloads.job_event, JOB_EVENTS[state], job.pk)


def on_requests_created(sender, *, requests, **_) -> None:
    for req in requests:
        record(payloads.request_event, "license_request.created", req.pk)


def on_request_answered(sender, *, request, **_) -> None:
    record(payloads.request_event, "license_request.answered", request.pk)


def on_granted(sender, *, grant, **_) -> None:
    record(payloads.grant_event, "license.granted", grant.pk)


def on_stopped(sender, *, grant, code: str, **_) -> None:
    # licensing sends this one after its commit (the jobs are stopped then): the event is
    # recorded in a transaction of its own, right after the change
    if code in ("revoked", "suspended"):
        record(payloads.grant_event, f"license.{code}", grant.pk)


def on_reconciler_pass(sender, **_) -> None:
    counts = do_resend_stale_deliveries()
    if any(counts.values()):
        log.warning("re-sent notifications a lost message left pending: %s", counts)


def connect() -> None:
    uid = "clearstem.notifications."
    job_state_changed.connect(on_job_state, dispatch_uid=uid + "job")
    license_request_created.connect(on_requests_created, dispatch_uid=uid + "request_created")
    license_request_answered.connect(on_request_answered, dispatch_uid=uid + "request_answered")
    license_granted.connect(on_granted, dispatch_uid=uid + "granted")
    license_stopped.connect(on_stopped, dispatch_uid=uid + "stopped")
    reconciler_pass.connect(on_reconciler_pass, dispatch_uid=uid + "reconciler")
