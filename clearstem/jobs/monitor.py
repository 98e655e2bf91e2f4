"""What the job system is doing, for the auditors' job monitor: queue depths on the broker and
job counts, failures and retries from the database (the source of truth)."""
from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from .dispatch import SEPARATION_QUEUE
from .models import Job


def queue_depths() -> list[dict]:
    """Per declared queue: waiting, being worked on, waiting to be retried, dead-lettered.
    None where the broker cannot tell (the stub broker has no in-flight count)."""
    broker = dramatiq.get_broker()
    rows = []
    known = set(broker.get_declared_queues()) | {"default", SEPARATION_QUEUE}
    for name in sorted(q for q in known if not q.endswith((".DQ", ".XQ"))):
        if hasattr(broker, "client"):  # Redis
            ns, client = broker.namespace, broker.client
            waiting = client.llen(f"{ns}:{name}")
            total = client.hlen(f"{ns}:{name}.msgs")
            rows.append({"queue": name, "waiting": waiting, "in_flight": max(total - waiting, 0),
                         "delayed": client.hlen(f"{ns}:{name}.DQ.msgs"), "dead": client.hlen(f"{ns}:{name}.XQ.msgs")})
        else:  # the embedded default's stub broker
            queues = getattr(broker, "queues", {})
            dead = getattr(broker, "dead_letters_by_queue", {})
            rows.append({"queue": name, "waiting": queues[name].qsize() if name in queues else 0, "in_flight": None,
                         "delayed": queues[f"{name}.DQ"].qsize() if f"{name}.DQ" in queues else 0,
                         "dead": len(dead.get(name, []))})
    return rows


def job_overview(now=None) -> dict:
    now = now or timezone.now()
    day = now - timedelta(days=1)
    lease = now - timedelta(seconds=settings.CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S)
    counts = dict.fromkeys([s for s, _ in Job.State.choices], 0)
    counts.update(dict(Job.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n")))
    recent = dict.fromkeys(counts, 0)
    recent.update(dict(Job.objects.filter(created_at__gte=day).values_list("state").annotate(n=Count("id"))
                       .values_list("state", "n")))
    jobs = Job.objects.select_related("upload", "organisation")
    return {
        "counts": counts, "recent": recent,
        "failed": jobs.filter(state=Job.State.FAILED).order_by("-finished_at")[:50],
        "retried": jobs.filter(attempts__gt=1).order_by("-created_at")[:50],
        "stalled": jobs.filter(state=Job.State.SEPARATING, heartbeat_at__lt=lease),
        "active": jobs.filter(state__in=["received", "identifying", "review", "cleared", "queued", "separating"])
                      .order_by("created_at")[:50],
        "max_attempts": settings.CLEARSTEM_JOB_MAX_ATTEMPTS,
    }
