import dramatiq

from .services import do_process_job, do_reconcile_jobs


@dramatiq.actor(queue_name="default", max_retries=5, min_backoff=1000, time_limit=10 * 60 * 1000)
def process_job(job_id: str) -> None:
    do_process_job(job_id)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=5 * 60 * 1000)
def reconcile_jobs() -> None:
    do_reconcile_jobs()
