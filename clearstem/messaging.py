"""Sending work to Dramatiq actors. The database says what should run; a message only wakes a
worker, so sending twice is harmless (actors are idempotent by object id).

Messages are addressed by queue and actor name, so the code that sends never imports the
actors (which import the services that send: a cycle otherwise)."""
from __future__ import annotations

import dramatiq
from django.db import transaction


def send(queue: str, actor: str, *args, **options) -> None:
    broker = dramatiq.get_broker()
    broker.declare_queue(queue)  # the embedded stub broker refuses undeclared queues
    broker.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options=options))


def send_on_commit(send_fn, *args) -> None:
    """Send after commit; a broker error is logged, not raised (the reconciler re-sends).

    Callers record `dispatched_at` in the transaction that changes the state: if the process
    dies in between, or the broker is down, the reconciler finds the work by that timestamp."""
    transaction.on_commit(lambda: send_fn(*args), robust=True)
