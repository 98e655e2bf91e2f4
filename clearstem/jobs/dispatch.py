"""Sending job messages. The database says what should run; a message only wakes a worker,
so sending twice is harmless (actors are idempotent by job id)."""
from __future__ import annotations

from django.utils import timezone


def separation_time_limit_ms(duration_s: float) -> int:
    """Proportional to the audio: 10 min base + 2 s per second of audio."""
    return int((600 + 2 * duration_s) * 1000)


def send_process_job(job) -> None:
    from .actors import process_job
    from .models import Job

    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())
    process_job.send(str(job.pk))


def send_separate_job(job) -> None:
    from separation.actors import separate_job

    from .models import Job

    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())
    separate_job.send_with_options(
        args=(str(job.pk),), time_limit=separation_time_limit_ms(job.upload.duration_s)
    )
