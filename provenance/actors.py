import dramatiq

from .audit import do_verify_ledger
from .publication import do_publish_checkpoint


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=60 * 60 * 1000)
def verify_ledger(requested_by: str) -> None:
    """A full verification requested from the auditors' page (it can take minutes on a big log)."""
    do_verify_ledger(requested_by)


@dramatiq.actor(queue_name="default", max_retries=20, min_backoff=15_000, max_backoff=60 * 60 * 1000,
                time_limit=5 * 60 * 1000)
def publish_checkpoint(size: int) -> None:
    """Publish a signed tree head to the checkpoint prefix and the witnesses, retried with
    backoff while any of them fails (provenance.publication)."""
    do_publish_checkpoint(size)
