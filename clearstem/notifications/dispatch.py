"""Notification messages, addressed by name (the actors import the services that send)."""
from __future__ import annotations

from clearstem.messaging import send

QUEUE = "default"
DELIVER_WEBHOOK = "deliver_webhook"
EMAIL_EVENT = "email_event"


def send_deliver_webhook(delivery_id) -> None:
    send(QUEUE, DELIVER_WEBHOOK, str(delivery_id))


def send_email_event(event_id) -> None:
    send(QUEUE, EMAIL_EVENT, str(event_id))
