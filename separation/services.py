"""Separation as a service of plain values: the configured engine, a local source file, a
folder for the stems. The platform (`clearstem.jobs.separation`) claims the job, stores the
stems and records their provenance; this part knows only audio and models.

Each worker process keeps one `SeparationPipeline` per loaded model for its lifetime (the model
stays resident, decoder processes stay up), and every job on the worker's threads submits to
it, so jobs running at once share the device's batches."""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from .pipeline import PipelineConfig, Request, SeparationPipeline
from .registry import averages_passes, get_engine
from .run import StemOutput

OUTPUT_FORMAT = "wav"

_PIPELINES: dict[int, SeparationPipeline] = {}
_LOCK = threading.Lock()


def resident_pipeline(engine) -> SeparationPipeline:
    with _LOCK:
        pipeline = _PIPELINES.get(id(engine))
        if pipeline is None or pipeline.broken is not None:
            pipeline = SeparationPipeline(engine, PipelineConfig(
                decoders=settings.CLEARSTEM_SEPARATION_DECODERS, batch=settings.CLEARSTEM_SEPARATION_BATCH or None,
                threads=settings.CLEARSTEM_SEPARATION_THREADS))
            _PIPELINES[id(engine)] = pipeline
        return pipeline


def separate_to_folder(model: str, src: str, out_dir: Path, *, stems: list[str], source_bits: int | None,
                       progress: Callable[[float], None]) -> tuple[list[StemOutput], dict]:
    """Separate `src` with the installed model `model` on this worker's device. Returns the
    stems written and the model facts for provenance (name, weights hash and licence, and the
    inference parameters that worked; the worker's `CLEARSTEM_SEPARATION_PASSES` for models that
    average passes). Raises ModelUnavailable, AudioReadError, Cancelled
    (from `progress`, which runs on the caller's thread) or the engine's own errors."""
    passes = settings.CLEARSTEM_SEPARATION_PASSES if averages_passes(model, settings.CLEARSTEM_MODEL_DIR) else 1
    engine = get_engine(model, settings.CLEARSTEM_MODEL_DIR, device=settings.CLEARSTEM_SEPARATION_DEVICE,
                        passes=passes)
    handle = resident_pipeline(engine).submit(Request(src, out_dir, stems=stems, fmt=OUTPUT_FORMAT,
                                                      source_bits=source_bits))
    outputs, used = handle.result(progress)
    return outputs, {**engine.info.as_dict(), "inference": used}
