"""Helpers over Django's storage API: web and workers share files only through it."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.core.files.storage import default_storage

from sharedcore.media import extension_for


@contextlib.contextmanager
def local_path(name: str):
    """A local filesystem path for a stored file: the file itself when storage is local,
    otherwise a streamed temporary copy (deleted afterwards)."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    suffix = Path(name).suffix
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="clearstem-")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        os.unlink(tmp)


def delete_quietly(names) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(name)


def storage_name(prefix: str, object_id, container: str) -> str:
    """`prefix/<id>.<ext>`, the extension from the container the decoder found, never from the
    client's file name (a `.wav` that is really an MP3 is stored as `.mp3`)."""
    return f"{prefix}/{object_id}{extension_for(container)}"
