"""Scratch folders for benchmarks, removed when the benchmark's process exits.

A benchmark renders songs and writes every engine's stems: about 1 GB a run for `bench.separate`.
Left in /tmp, a few dozen runs filled the disk that CI's fresh install then needed (stop 39's CI
failed with "No space left on device"). So each benchmark's folder goes when its process does,
on success, on an error and on Ctrl-C alike; only a killed process leaves one behind.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new empty folder under the system's temp dir, deleted at interpreter exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
