"""Running a separation job: claim it, separate, write stems and their signed provenance
atomically (no stem without its record; no half-written stem ever visible)."""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from clearstem.jobs.models import Job, Stem
from sharedcore.hashing import file_sha256
from clearstem.storage import delete_quietly, local_path
from provenance.services import do_record_stem_provenance

from .audio_io import AudioReadError
from .engine import Cancelled
from .registry import ModelUnavailable, get_engine
from .run import is_out_of_memory, separate_file_adaptive

log = logging.getLogger("clearstem.separation")
OUTPUT_FORMAT = "wav"


class RetryableJobError(Exception):
    """A transient failure: the job went back to `queued` and the message should be retried."""


def _claim(job_id) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != Job.State.QUEUED:
            return None  # already running, done, or cancelled: a duplicate message
        now = timezone.now()
        if job.cancel_requested:
            job.state, job.finished_at = Job.State.CANCELLED, now
            job.save()
            return None
        job.state, job.started_at, job.heartbeat_at = Job.State.SEPARATING, now, now
        job.attempts += 1
        job.progress = 0.0
        job.save()
    return Job.objects.select_related("upload", "requested_by", "organisation").get(pk=job_id)


def _progress_reporter(job_id):
    last = [0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and fraction < 1.0:
            return
        last[0] = now
        Job.objects.filter(pk=job_id, state=Job.State.SEPARATING).update(
            progress=min(max(fraction, 0.0), 0.99), heartbeat_at=timezone.now()
        )
        if Job.objects.filter(pk=job_id, cancel_requested=True).exists():
            raise Cancelled()

    return report


def _fail(job_id, code: str, message: str, state=Job.State.FAILED) -> None:
    Job.objects.filter(pk=job_id, state=Job.State.SEPARATING).update(
        state=state, error_code=code, error_message=message[:2000], finished_at=timezone.now()
    )


def do_separate_job(job_id) -> Job | None:
    job = _claim(job_id)
    if job is None:
        return None
    saved: list[str] = []
    try:
        engine = get_engine(job.model, settings.CLEARSTEM_MODEL_DIR, device=settings.CLEARSTEM_SEPARATION_DEVICE)
        rows = []
        with tempfile.TemporaryDirectory(prefix="clearstem-stems-") as tmp, local_path(job.upload.file.name) as src:
            outputs, used = separate_file_adaptive(engine, src, Path(tmp), stems=list(job.stems), fmt=OUTPUT_FORMAT,
                                          source_bits=job.upload.bits_per_sample,
                                          progress=_progress_reporter(job.pk))
            for out in outputs:
                with open(out.path, "rb") as fh:
                    stored = default_storage.save(f"stems/{job.pk}/{out.name}.{OUTPUT_FORMAT}", fh)
                saved.append(stored)
                rows.append(Stem(
                    job=job, name=out.name, file=stored, sha256=file_sha256(out.path), size=os.path.getsize(out.path),
                    format=OUTPUT_FORMAT, sample_rate=out.sample_rate, bits_per_sample=out.bits, channels=out.channels,
                    duration_s=out.duration_s,
                ))
        model_info = {**engine.info.as_dict(), "inference": used}
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            if locked.state != Job.State.SEPARATING or locked.cancel_requested:
                raise Cancelled()
            for row in rows:
                row.save()
                do_record_stem_provenance(job, row, model_info)
            locked.state, locked.progress, locked.finished_at = Job.State.DONE, 1.0, timezone.now()
            locked.save(update_fields=["state", "progress", "finished_at"])
        return locked
    except Cancelled:
        delete_quietly(saved)
        _fail(job.pk, "cancelled", "cancelled during separation", state=Job.State.CANCELLED)
    except (ModelUnavailable, AudioReadError) as exc:
        delete_quietly(saved)
        _fail(job.pk, "model_unavailable" if isinstance(exc, ModelUnavailable) else "corrupt_audio", str(exc))
    except Exception as exc:
        delete_quietly(saved)
        if is_out_of_memory(exc):  # even one chunk at a time did not fit: retrying will not help
            _fail(job.pk, "out_of_memory", f"the model does not fit on this worker's device: {exc}")
            return None
        log.exception("separation of job %s failed (attempt %s)", job.pk, job.attempts)
        if job.attempts < settings.CLEARSTEM_JOB_MAX_ATTEMPTS:
            Job.objects.filter(pk=job.pk, state=Job.State.SEPARATING).update(
                state=Job.State.QUEUED, progress=0.0, error_code="retrying", error_message=str(exc)[:2000]
            )
            raise RetryableJobError(str(exc)) from exc
        _fail(job.pk, "separation_error", str(exc))
    return None
