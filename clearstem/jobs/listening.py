"""What the job page needs to be listened to: waveform peaks of the upload and of each stem,
and a preview of the upload itself. Both are made once and kept in storage (peaks as JSON,
previews as MP3), so a page view decodes nothing after the first; neither is a delivery, so
nothing is metered or ledgered."""
from __future__ import annotations

import json
import logging
import os
import tempfile

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from clearstem.storage import keep_once, local_path, replace_kept
from sharedcore.media import encode_preview, waveform_peaks

log = logging.getLogger("clearstem.jobs")

#: Slices per waveform: about one per pixel of a phone-width row, a few kB of SVG.
WAVEFORM_BINS = 240
#: The SVG's height in its own units; peaks are drawn about the middle line.
WAVEFORM_HEIGHT = 48


def _cached_peaks(cache_name: str) -> list[float] | None:
    """The kept peaks, or None when there are none or they cannot be read (a file damaged by a
    crash, or by a write before `keep_once` made them atomic): then they are computed again."""
    if not default_storage.exists(cache_name):
        return None
    try:
        with default_storage.open(cache_name, "rb") as fh:
            peaks = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    if isinstance(peaks, list) and all(isinstance(p, (int, float)) for p in peaks):
        return peaks
    return None


def _peaks(file_name: str, cache_name: str) -> list[float]:
    """Peaks of a stored audio file, computed on first use and kept in storage."""
    peaks = _cached_peaks(cache_name)
    if peaks is not None:
        return peaks
    try:
        with local_path(file_name) as src:
            peaks = waveform_peaks(src, WAVEFORM_BINS)
    except (av.error.FFmpegError, OSError, ValueError) as exc:  # drawn without: the page still works
        log.warning("no waveform for %s: %s", file_name, exc)
        return []
    if not default_storage.exists(cache_name):
        keep_once(cache_name, ContentFile(json.dumps(peaks).encode()))
    elif _cached_peaks(cache_name) is None:
        # unreadable after a whole decode: a damaged file (one cut short by a crash, or written
        # before writes were atomic), replaced so that later views read it (the same peaks)
        replace_kept(cache_name, ContentFile(json.dumps(peaks).encode()))
    return peaks


def stem_peaks(stem) -> list[float]:
    return _peaks(stem.file.name, f"waveforms/stem-{stem.id}-v1.json")


def upload_peaks(upload) -> list[float]:
    return _peaks(upload.file.name, f"waveforms/upload-{upload.id}-v1.json")


def warm_waveforms(job) -> None:
    """Compute and keep the waveforms of a finished job (best effort: a page draws any missing
    one itself), so that the first view of a long upload does not wait for a decode."""
    try:
        for stem in job.stem_files.all():
            stem_peaks(stem)
        upload_peaks(job.upload)
    except Exception:  # noqa: BLE001 - a waveform never fails a separation
        log.exception("waveforms of job %s", job.pk)


def svg_path(peaks: list[float]) -> str:
    """The waveform as one closed SVG path (viewBox 0 0 len(peaks) WAVEFORM_HEIGHT): the upper
    envelope left to right, the lower one back; mirrored about the middle as editors draw it."""
    if not peaks:
        return ""
    mid = WAVEFORM_HEIGHT / 2
    top = [f"{i + 0.5:g},{mid - max(p, 0.01) * (mid - 1):.1f}" for i, p in enumerate(peaks)]
    bottom = [f"{i + 0.5:g},{mid + max(p, 0.01) * (mid - 1):.1f}" for i, p in reversed(list(enumerate(peaks)))]
    return "M" + " L".join(top + bottom) + " Z"


def save_preview(src, name: str, replace: bool = False) -> str:
    """Encode the local audio file `src` as an MP3 preview (`encode_preview`) through a temporary
    file and keep it in storage as `name` (`keep_once`: readers never find it half written, a
    racing request's copy is dropped); returns `name`. The one way previews (uploads, stems,
    catalog excerpts) reach storage. `replace`: over a damaged preview of that name, removed only
    once the new one is encoded (a failed encode leaves it as it was)."""
    fd, tmp = tempfile.mkstemp(suffix=".mp3", prefix="clearstem-preview-")
    os.close(fd)
    try:
        encode_preview(src, tmp)
        with open(tmp, "rb") as fh:
            (replace_kept if replace else keep_once)(name, fh)
    finally:
        os.unlink(tmp)
    return name


def stored_preview(file_name: str, name: str, replace: bool = False) -> str:
    """The storage name `name` of an MP3 preview of the stored audio `file_name`, made on first use
    (or made again over a damaged one, with `replace`)."""
    if replace or not default_storage.exists(name):
        with local_path(file_name) as src:
            save_preview(src, name, replace=replace)
    return name


def upload_preview_name(upload) -> str:
    return f"previews/upload-{upload.id}-v1.mp3"


def stem_preview_name(stem) -> str:
    """v2: stereo 128 kb/s; v1 previews were mono."""
    return f"previews/{stem.id}-v2.mp3"


def upload_preview(upload, replace: bool = False) -> str:
    """The storage name of an MP3 preview of the producer's own upload (made once)."""
    return stored_preview(upload.file.name, upload_preview_name(upload), replace)


def stem_preview(stem, replace: bool = False) -> str:
    """The storage name of a stem's MP3 preview for the job page's player (made once). Not a
    delivery: the caller judges it like one first."""
    return stored_preview(stem.file.name, stem_preview_name(stem), replace)


def job_listening(job, stems) -> dict:
    """Waveforms for the job page: the upload's path, and each stem's set as `stem.wave`."""
    for stem in stems:
        stem.wave = svg_path(stem_peaks(stem))
    return {"upload_wave": svg_path(upload_peaks(job.upload)), "wave_bins": WAVEFORM_BINS,
            "wave_height": WAVEFORM_HEIGHT}
