import dramatiq

from .audit import do_verify_ledger


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=60 * 60 * 1000)
def verify_ledger(requested_by: str) -> None:
    """A full verification requested from the auditors' page (it can take minutes on a big log)."""
    do_verify_ledger(requested_by)
