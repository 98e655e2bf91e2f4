"""The job lifecycle: `transition()` is the only writer of `Job.state`.

    received → identifying → cleared | denied
    identifying → review → cleared | denied   (evidence below the acceptance threshold:
                                              the suspected recordings' rights holders decide)
    cleared → queued → separating → done | failed | cancelled
    separating → queued  (a retry, or a worker that stopped heart-beating)
    any unfinished state → cancelled | failed

Identification, the rights decision, licensing (a revocation stops jobs through
`licensing.signals`), the separation worker and the reconciler all move jobs through here,
so an illegal move raises instead of quietly overwriting what another writer decided (a
revocation's reason used to be overwritten by `cancelled`)."""
from __future__ import annotations

from django.utils import timezone

from sharedcore.errors import Conflict

from .models import Job
from .signals import job_state_changed

S = Job.State
ALLOWED: dict[str, frozenset] = {
    S.RECEIVED: frozenset({S.IDENTIFYING, S.CANCELLED, S.FAILED}),
    S.IDENTIFYING: frozenset({S.REVIEW, S.CLEARED, S.DENIED, S.CANCELLED, S.FAILED}),
    S.REVIEW: frozenset({S.CLEARED, S.DENIED, S.CANCELLED, S.FAILED}),
    S.CLEARED: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.QUEUED: frozenset({S.SEPARATING, S.CANCELLED, S.FAILED}),
    S.SEPARATING: frozenset({S.DONE, S.FAILED, S.CANCELLED, S.QUEUED}),
}
TERMINAL = Job.TERMINAL


class IllegalTransition(Conflict):
    def __init__(self, job: Job, to_state: str):
        super().__init__("invalid_job_transition", f"a {job.state} job cannot become {to_state}")


def can_move(job: Job, to_state: str) -> bool:
    return to_state in ALLOWED.get(job.state, ())


def transition(job: Job, to_state: str, *, code: str = "", message: str = "", **fields) -> Job:
    """Move `job` (locked by the caller with select_for_update, inside its transaction) to
    `to_state`, stamping the times that state implies, and save it with any other `fields`
    the caller sets in the same write (decision, progress, ...). `code`/`message` say why a
    job ended or was stopped; an earlier stop reason (e.g. `revoked`) is kept."""
    if not can_move(job, to_state):
        raise IllegalTransition(job, to_state)
    now = timezone.now()
    previous, job.state = job.state, to_state
    changed = {"state"}
    if to_state == S.SEPARATING:
        job.started_at = job.heartbeat_at = now
        job.attempts += 1
        job.progress = 0.0
        changed |= {"started_at", "heartbeat_at", "attempts", "progress"}
    elif to_state == S.QUEUED:
        job.queued_at = job.dispatched_at = now
        job.progress = 0.0
        changed |= {"queued_at", "dispatched_at", "progress"}
    elif to_state == S.DONE:
        job.progress = 1.0
        changed.add("progress")
    if to_state in TERMINAL:
        job.finished_at = now
        changed.add("finished_at")
        if job.cancel_requested and job.error_code and to_state == S.CANCELLED:
            code = ""  # keep the reason recorded with the stop request (revoked, suspended, a user)
    if code:
        job.error_code, job.error_message = code, message[:2000]
        changed |= {"error_code", "error_message"}
    for name, value in fields.items():
        setattr(job, name, value)
        changed.add(name)
    job.save(update_fields=sorted(changed))
    job_state_changed.send(sender=Job, job=job, state=to_state, previous=previous)
    return job


def request_stop(job: Job, code: str, message: str) -> Job:
    """Stop `job` (locked by the caller) for the reason given: at once if it has not started
    separating, else between two chunks (the worker sees `cancel_requested` and ends it with
    this very reason). Finished jobs are left alone; returns the job."""
    if job.state in TERMINAL:
        return job
    if job.state == S.SEPARATING:
        job.cancel_requested = True
        job.error_code, job.error_message = code, message[:2000]
        job.save(update_fields=["cancel_requested", "error_code", "error_message"])
        return job
    return transition(job, S.CANCELLED, code=code, message=message)
