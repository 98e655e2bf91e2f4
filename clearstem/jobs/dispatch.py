"""Sending job messages. The database says what should run; a message only wakes a worker,
so sending twice is harmless (actors are idempotent by job id).

Callers record `dispatched_at` in the transaction that changes the state and send on commit
(`send_on_commit`): if the process dies in between, or the broker is down, the reconciler
finds the job by that timestamp and sends again.
"""
from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger("clearstem.jobs")


def separation_time_limit_ms(duration_s: float) -> int:
    """Proportional to the audio: 10 min base + 2 s per second of audio."""
    return int((600 + 2 * duration_s) * 1000)


def send_process_job(job_id) -> None:
    from .actors import process_job

    process_job.send(str(job_id))


def send_separate_job(job_id, duration_s: float) -> None:
    from separation.actors import separate_job

    separate_job.send_with_options(args=(str(job_id),), time_limit=separation_time_limit_ms(duration_s))


def send_on_commit(send, *args) -> None:
    """Send after commit; a broker error is logged, not raised (the reconciler re-sends)."""
    transaction.on_commit(lambda: send(*args), robust=True)
