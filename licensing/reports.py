"""Usage reports for rights holders and licensees: per license version and recording, per
day, and as CSV rows. Read-only aggregates over UsageEvent."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import UsageEvent

USAGE_KINDS = ("separation", "download", "export")


def usage_rows(grants) -> list[dict]:
    """Usage per license version and recording: separations, downloads, exports."""
    rows = (UsageEvent.objects.filter(grant__in=grants)
            .values("grant_id", "grant__family", "grant__version", "recording_id", "recording__isrc",
                    "recording__title", "kind")
            .annotate(n=Count("id")).order_by("grant__family", "grant__version", "recording__title"))
    table: dict = {}
    for r in rows:
        key = (r["grant_id"], r["recording_id"])
        row = table.setdefault(key, {
            "license": str(r["grant__family"]), "grant": str(r["grant_id"]), "version": r["grant__version"],
            "recording": str(r["recording_id"]), "isrc": r["recording__isrc"], "title": r["recording__title"],
            "separation": 0, "download": 0, "export": 0})
        row[r["kind"]] = r["n"]
    return list(table.values())


def usage_by_day(events, days: int = 30, today=None) -> list[dict]:
    """Daily counts of each usage kind over the last `days` days (zeros included), from a
    UsageEvent queryset already scoped to the grants or recordings in question. Caps count
    acts, so a mashup's per-recording events for one act count once here too."""
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = (events.filter(created_at__date__gte=first).annotate(day=TruncDate("created_at"))
            .values("day", "kind").annotate(n=Count("act", distinct=True)))
    table = {first + timedelta(days=i): dict.fromkeys(USAGE_KINDS, 0) for i in range(days)}
    for r in rows:
        if r["day"] in table:
            table[r["day"]][r["kind"]] = r["n"]
    return [{"day": day, **counts} for day, counts in table.items()]


def usage_event_rows(events) -> list[dict]:
    """One CSV row per day, license version, recording and kind (for spreadsheets)."""
    rows = (events.annotate(day=TruncDate("created_at"))
            .values("day", "grant__family", "grant__version", "grant_id", "recording_id", "recording__isrc",
                    "recording__title", "kind", "user__username")
            .annotate(n=Count("id")).order_by("day", "grant__family", "grant__version", "recording__title", "kind"))
    return [{"date": r["day"].isoformat(), "license": str(r["grant__family"]), "version": r["grant__version"],
             "grant": str(r["grant_id"]), "recording": str(r["recording_id"]), "isrc": r["recording__isrc"] or "",
             "title": r["recording__title"], "kind": r["kind"], "user": r["user__username"], "count": r["n"]}
            for r in rows]
