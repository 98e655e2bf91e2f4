"""Separation as a service of plain values: the configured engine, a local source file, a
folder for the stems. The platform (`clearstem.jobs.separation`) claims the job, stores the
stems and records their provenance; this part knows only audio and models."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from .registry import get_engine
from .run import StemOutput, separate_file_adaptive

OUTPUT_FORMAT = "wav"


def separate_to_folder(model: str, src: str, out_dir: Path, *, stems: list[str], source_bits: int | None,
                       progress: Callable[[float], None]) -> tuple[list[StemOutput], dict]:
    """Separate `src` with the installed model `model` on this worker's device. Returns the
    stems written and the model facts for provenance (name, weights hash and licence, and the
    inference parameters that worked). Raises ModelUnavailable, AudioReadError, Cancelled
    (from `progress`) or the engine's own errors."""
    engine = get_engine(model, settings.CLEARSTEM_MODEL_DIR, device=settings.CLEARSTEM_SEPARATION_DEVICE)
    outputs, used = separate_file_adaptive(engine, src, out_dir, stems=stems, fmt=OUTPUT_FORMAT,
                                           source_bits=source_bits, progress=progress)
    return outputs, {**engine.info.as_dict(), "inference": used}
