"""Job messages: one to identify-and-decide (`process_job`), one to separate (`separate_job`,
on the GPU queue). Actors live in `clearstem.jobs.actors` under these names."""
from __future__ import annotations

from clearstem.messaging import send

PROCESS_JOB = "process_job"
SEPARATE_JOB = "separate_job"
SEPARATION_QUEUE = "separation"


def separation_time_limit_ms(duration_s: float) -> int:
    """Proportional to the audio: 10 min base + 2 s per second of audio."""
    return int((600 + 2 * duration_s) * 1000)


def send_process_job(job_id) -> None:
    send("default", PROCESS_JOB, str(job_id))


def send_separate_job(job_id, duration_s: float) -> None:
    send(SEPARATION_QUEUE, SEPARATE_JOB, str(job_id), time_limit=separation_time_limit_ms(duration_s))
