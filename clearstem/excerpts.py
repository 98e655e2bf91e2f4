"""Short excerpts of catalog recordings, for producers browsing the open catalog.

A producer hears a few seconds (stereo MP3, the page's preview quality) before asking for a
license; never the whole reference audio, which is the label's master. Rendered once per
recording and audio, then served from storage. A recording whose reference audio is gone or
cannot be decoded has no excerpt: NotFound `excerpt_unavailable`, never a server error."""
from __future__ import annotations

import logging
import os
import tempfile

import av
import numpy as np
import soundfile as sf
from django.conf import settings
from django.core.files.storage import default_storage

from sharedcore.errors import NotFound
from sharedcore.media import open_container

from .jobs.listening import save_preview
from .storage import local_path

log = logging.getLogger("clearstem.excerpts")


def excerpt_window(duration_s: float, seconds: float) -> tuple[float, float]:
    """Where the excerpt starts and how long it is: from a third of the way in (past most
    intros), never running off the end."""
    length = min(seconds, duration_s)
    start = max(0.0, min(duration_s / 3, duration_s - length))
    return start, length


def _cut(src: str, dst_wav: str, start_s: float, length_s: float) -> None:
    """Decode `length_s` seconds from `start_s` into a float WAV (the source's rate, mono or stereo)."""
    with open_container(src) as inp:
        if not inp.streams.audio:
            raise ValueError("no audio stream")
        stream = inp.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = 1 if stream.codec_context.channels == 1 else 2
        resampler = av.AudioResampler(format="flt", layout="mono" if channels == 1 else "stereo", rate=rate)
        first, last = int(start_s * rate), int((start_s + length_s) * rate)
        pieces, seen = [], 0
        for frame in inp.decode(stream):
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1, channels)
                a, b = max(first - seen, 0), min(last - seen, len(pcm))
                if b > a:
                    pieces.append(pcm[a:b])
                seen += len(pcm)
            if seen >= last:
                break
    if not pieces:
        raise ValueError("no audio in the excerpt window")
    sf.write(dst_wav, np.concatenate(pieces), rate, subtype="FLOAT")


def excerpt_storage_name(recording) -> str:
    """Where the recording's excerpt is kept: a new reference audio or excerpt length is a new name."""
    seconds = settings.CLEARSTEM_EXCERPT_SECONDS
    return f"excerpts/{recording.id}-{recording.audio_sha256[:16]}-{seconds:g}s.mp3"


def excerpt_length_s(recording) -> float:
    """How long the recording's excerpt plays."""
    return excerpt_window(recording.duration_s, settings.CLEARSTEM_EXCERPT_SECONDS)[1]


def excerpt_name(recording, replace: bool = False) -> str:
    """The storage name of the recording's excerpt, rendered now if it is not there yet (or, with
    `replace`, rendered again over a damaged one, which stays if rendering fails).

    Raises NotFound `excerpt_unavailable` when the reference audio is missing or undecodable."""
    name = excerpt_storage_name(recording)
    if default_storage.exists(name) and not replace:
        return name
    unavailable = NotFound("excerpt_unavailable", "no excerpt of this recording can be played right now")
    if not recording.reference_audio:
        raise unavailable
    start, length = excerpt_window(recording.duration_s, settings.CLEARSTEM_EXCERPT_SECONDS)
    fd, wav = tempfile.mkstemp(suffix=".wav", prefix="clearstem-excerpt-")
    os.close(fd)
    try:
        with local_path(recording.reference_audio.name) as src:
            _cut(src, wav, start, length)
        save_preview(wav, name, replace=replace)
    except (av.error.FFmpegError, OSError, ValueError) as exc:  # gone, unreadable, or no audio there
        log.warning("no excerpt of recording %s: %s", recording.id, exc)
        raise unavailable from exc
    finally:
        os.unlink(wav)
    return name
