import dramatiq
from django.conf import settings

from .dispatch import PROCESS_JOB, SEPARATE_JOB, SEPARATION_QUEUE
from .separation import do_separate_job
from .services import do_process_job, do_reconcile_jobs


@dramatiq.actor(actor_name=PROCESS_JOB, queue_name="default", max_retries=5, min_backoff=1000,
                time_limit=10 * 60 * 1000)
def process_job(job_id: str) -> None:
    do_process_job(job_id)


@dramatiq.actor(actor_name=SEPARATE_JOB, queue_name=SEPARATION_QUEUE, max_retries=settings.CLEARSTEM_JOB_MAX_ATTEMPTS,
                min_backoff=2000, time_limit=60 * 60 * 1000)
def separate_job(job_id: str) -> None:
    do_separate_job(job_id)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=5 * 60 * 1000)
def reconcile_jobs() -> None:
    do_reconcile_jobs()
