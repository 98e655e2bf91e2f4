import dramatiq
from django.conf import settings

from .services import do_separate_job


@dramatiq.actor(
    queue_name="separation", max_retries=settings.CLEARSTEM_JOB_MAX_ATTEMPTS, min_backoff=2000,
    time_limit=60 * 60 * 1000,
)
def separate_job(job_id: str) -> None:
    do_separate_job(job_id)
