"""File digests (plain Python, no Django): uploads, model weights and stems are all hashed the
same way, streaming, so a multi-gigabyte file never sits in memory."""
from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
