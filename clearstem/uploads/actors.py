import dramatiq

from .dispatch import IDENTIFY_UPLOAD
from .services import do_identify_upload


@dramatiq.actor(actor_name=IDENTIFY_UPLOAD, queue_name="default", max_retries=5, min_backoff=1000,
                time_limit=10 * 60 * 1000)
def identify_upload(upload_id: str) -> None:
    do_identify_upload(upload_id)
