import dramatiq

from .dispatch import DELIVER_WEBHOOK, EMAIL_EVENT, QUEUE
from .services import do_attempt_delivery, do_email_event


# The delivery row counts attempts and says when to stop (CLEARSTEM_WEBHOOK_MAX_ATTEMPTS);
# Dramatiq's own retry count is only a backstop for crashes.
@dramatiq.actor(actor_name=DELIVER_WEBHOOK, queue_name=QUEUE, max_retries=50, time_limit=2 * 60 * 1000)
def deliver_webhook(delivery_id: str) -> None:
    wait_s = do_attempt_delivery(delivery_id)
    if wait_s is not None:
        raise dramatiq.Retry("the receiver did not accept the delivery", delay=int(wait_s * 1000))


@dramatiq.actor(actor_name=EMAIL_EVENT, queue_name=QUEUE, max_retries=5, min_backoff=5000, time_limit=2 * 60 * 1000)
def email_event(event_id: str) -> None:
    do_email_event(event_id)
