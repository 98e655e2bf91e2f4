"""The platform's answers to domain events."""
from __future__ import annotations

from .services import do_stop_jobs_under_license


def stop_jobs_when_license_stops(sender, *, grant, code: str, message: str, job_ids, **_) -> None:
    do_stop_jobs_under_license(job_ids, code, message)
