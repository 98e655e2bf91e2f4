from datetime import UTC

from django import template
from django.utils import timezone

from clearstem.web import present
from sharedcore.media import codec_label

register = template.Library()


@register.filter
def err(errors, field):
    """The message for one field of a form's error dict (or '')."""
    return (errors or {}).get(field, "")


@register.filter
def mmss(seconds):
    return present.mmss(seconds)


@register.filter
def short(value, n=12):
    return str(value or "")[: int(n)]


@register.filter
def purpose_label(code):
    return present.PURPOSE_LABELS.get(code, code)


@register.filter
def stem_label(code):
    return present.STEM_LABELS.get(code, code)


@register.filter
def humansize(n):
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


@register.filter
def codec_name(codec):
    """FFmpeg's decoder name as people know the codec ("MP3", not "mp3float")."""
    return codec_label(codec)


@register.filter
def eta(job):
    """Time left for a separating job at the rate it has made progress so far ("about 2 min
    left"), or "" until there is a rate to go by."""
    progress = float(job.progress or 0)
    if job.state != "separating" or not job.started_at or not 0.02 <= progress < 1:
        return ""
    elapsed = (timezone.now() - job.started_at).total_seconds()
    if elapsed < 2:
        return ""
    left = round(elapsed * (1 - progress) / progress)
    if left < 60:
        return f"about {max(5, 5 * round(left / 5))} s left"
    minutes = round(left / 60)
    return f"about {minutes} min left" if minutes < 60 else f"about {minutes // 60} h {minutes % 60} min left"


@register.filter
def percent(x):
    return f"{100 * float(x or 0):.0f}"


@register.filter
def cap(value):
    """A remaining cap: None means no limit."""
    return "no limit" if value is None else value


@register.filter
def contains(seq, item):
    return item in (seq or ())


@register.filter
def join_codes(seq):
    return ", ".join(seq or ())


@register.filter
def dtlocal(value):
    """A datetime (or the string a form sent back) as a datetime-local input value, in UTC."""
    if not value:
        return ""
    if isinstance(value, str):
        return value[:16]
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M")


@register.filter
def state_class(state):
    return {"denied": "bad", "failed": "bad", "done": "ok"}.get(state, state)
