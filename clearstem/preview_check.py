"""Finding kept previews that were cut short, and making them again (`manage.py check_previews`).

Why: until stop 48 previews were written with `default_storage.save`, which creates the file and
then fills it, so a worker killed in between left the first part of a preview under its real
name; `stored_preview` and `excerpt_name` only ask whether the name exists, so such a preview
plays cut short for good. Writes are whole since then (`keep_once`); this finds the older ones.
A preview is damaged when it cannot be decoded, or when it plays shorter than what it previews
(the upload's or stem's `duration_s`, the excerpt's window) by more than the slack below — MP3
adds a few milliseconds of padding, never loses whole frames. Every preview is decoded, which
costs CPU (a few seconds per hour of audio), so this is an operator's command, not a per-request
check. Waveform files need none of this: a damaged one is drawn again when a page reads it."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
from django.core.files.storage import default_storage

from clearstem.excerpts import excerpt_length_s, excerpt_name, excerpt_storage_name
from clearstem.jobs.listening import stem_preview, stem_preview_name, upload_preview, upload_preview_name
from clearstem.jobs.models import Stem
from clearstem.storage import local_path
from clearstem.uploads.models import Upload
from licensing.models import Recording
from sharedcore.errors import NotFound
from sharedcore.media import decoded_seconds

log = logging.getLogger("clearstem.previews")

#: A preview may play this much shorter than its source (seconds, or this share of its length,
#: whichever is more) and still be whole: resampling and frame rounding, not lost data.
SHORT_SLACK_S = 0.5
SHORT_SLACK_SHARE = 0.01


@dataclass
class PreviewFinding:
    """One damaged preview: what it previews, how long it should and does play (None: undecodable),
    and whether it was made again (or why not)."""
    kind: str  # "upload", "stem" or "excerpt"
    name: str
    expected_s: float
    found_s: float | None
    repaired: bool = False
    error: str = ""


def is_cut_short(found_s: float, expected_s: float) -> bool:
    return found_s < expected_s - max(SHORT_SLACK_S, SHORT_SLACK_SHARE * expected_s)


def _kept_previews() -> Iterator[tuple[str, str, float, Callable[[], object]]]:
    """(kind, storage name, expected seconds, remake) of every preview that exists in storage."""
    for upload in Upload.objects.order_by("created_at").iterator():
        name = upload_preview_name(upload)
        if default_storage.exists(name):
            yield "upload", name, upload.duration_s, lambda u=upload: upload_preview(u, replace=True)
    for stem in Stem.objects.order_by("created_at").iterator():
        name = stem_preview_name(stem)
        if default_storage.exists(name):
            yield "stem", name, stem.duration_s, lambda s=stem: stem_preview(s, replace=True)
    for recording in Recording.objects.exclude(reference_audio="").order_by("pk").iterator():
        name = excerpt_storage_name(recording)
        if default_storage.exists(name):
            yield "excerpt", name, excerpt_length_s(recording), lambda r=recording: excerpt_name(r, replace=True)


def _played_seconds(name: str) -> float | None:
    try:
        with local_path(name) as path:
            return decoded_seconds(path)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def do_check_previews(repair: bool = False) -> tuple[int, list[PreviewFinding]]:
    """How many kept previews were checked, and the damaged ones; with `repair`, each is made
    again from its source (the damaged file is replaced only once the new one is encoded, so a
    source that is gone leaves it as it was, reported with the reason)."""
    checked, findings = 0, []
    for kind, name, expected_s, remake in _kept_previews():
        checked += 1
        found_s = _played_seconds(name)
        if found_s is not None and not is_cut_short(found_s, expected_s):
            continue
        finding = PreviewFinding(kind, name, expected_s, found_s)
        findings.append(finding)
        if not repair:
            continue
        try:
            remake()
        except (NotFound, av.error.FFmpegError, OSError, ValueError) as exc:
            finding.error = str(exc) or type(exc).__name__
            log.warning("preview %s not made again: %s", name, finding.error)
            continue
        again = _played_seconds(name)
        finding.repaired = again is not None and not is_cut_short(again, expected_s)
        if not finding.repaired:
            finding.error = f"made again but plays {again if again is not None else 'not at all'} s"
    return checked, findings
