"""Opening media with PyAV across its versions (plain Python, no Django)."""
from __future__ import annotations

import av


def open_container(path):
    """`av.open` for reading, tolerant of undecodable tag text.

    PyAV up to 18 raises on metadata that is not UTF-8 unless told `metadata_errors="ignore"`;
    PyAV 19 dropped the argument (and no longer raises). Uploads carry arbitrary tags, so a bad
    title must never make a good audio file unreadable.
    """
    try:
        return av.open(str(path), metadata_errors="ignore")
    except TypeError:  # PyAV >= 19
        return av.open(str(path))
