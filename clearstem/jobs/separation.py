"""Running a separation job: claim it, separate, then write the stems and their signed
provenance atomically (no stem without its record; no half-written stem ever visible).

Each claim is one attempt (`Job.attempts`). While it runs, a thread beats every
CLEARSTEM_JOB_HEARTBEAT_S seconds; a worker that dies stops beating and the reconciler
re-queues the job after CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S. If the first worker was only slow, not
dead, its attempt is fenced off: it writes nothing once the job belongs to a newer attempt."""
from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clearstem.storage import delete_quietly, local_path, scratch_folder, sweep_scratch
from provenance.services import do_record_stem_provenance
from separation.audio_io import AudioReadError
from separation.engine import Cancelled
from separation.registry import ModelUnavailable
from separation.run import is_out_of_memory
from separation.services import OUTPUT_FORMAT, separate_to_folder
from sharedcore.hashing import file_sha256

from .lifecycle import transition
from .listening import warm_waveforms
from .models import Job, Stem, StemFingerprint
from .stem_prints import stem_prints

log = logging.getLogger("clearstem.separation")


class RetryableJobError(Exception):
    """A transient failure: the job went back to `queued` and the message should be retried."""


class Superseded(Cancelled):
    """This attempt no longer owns the job (it was re-queued and claimed again): stop, write
    nothing, and leave the job to the newer attempt."""


def _mine(job_id, attempt: int):
    return Job.objects.filter(pk=job_id, state=Job.State.SEPARATING, attempts=attempt)


class Heartbeat:
    """Beat for one attempt from a thread of its own, so a long model load or a slow chunk
    never looks like a dead worker. Database errors are logged and retried at the next beat."""

    def __init__(self, job_id, attempt: int, every_s: float):
        self.job_id, self.attempt, self.every_s = job_id, attempt, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    _mine(self.job_id, self.attempt).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    log.warning("heartbeat of job %s failed; retrying in %.0f s", self.job_id, self.every_s)
        finally:
            connection.close()  # this thread's own connection


def _claim(job_id) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != Job.State.QUEUED:
            return None  # already running, done, or cancelled: a duplicate message
        if job.cancel_requested:
            transition(job, Job.State.CANCELLED, code="cancelled", message="cancelled before separation started")
            return None
        transition(job, Job.State.SEPARATING)
    return Job.objects.select_related("upload", "requested_by", "organisation").get(pk=job_id)


def _progress_reporter(job_id, attempt: int):
    last = [0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and fraction < 1.0:
            return
        last[0] = now
        if not _mine(job_id, attempt).update(progress=min(max(fraction, 0.0), 0.99), heartbeat_at=timezone.now()):
            raise Superseded()
        if Job.objects.filter(pk=job_id, cancel_requested=True).exists():
            raise Cancelled()

    return report


def _end(job_id, attempt: int, state: str, code: str, message: str) -> None:
    """End the attempt this worker was running (unless something else already moved the job)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state == Job.State.SEPARATING and job.attempts == attempt:
            transition(job, state, code=code, message=message)


#: the prefix of a separation attempt's scratch folder (under settings.CLEARSTEM_SCRATCH_DIR)
SCRATCH_PREFIX = "stems-"


def do_separate_job(job_id) -> Job | None:
    job = _claim(job_id)
    if job is None:
        return None
    try:  # what attempts killed on this machine left behind (a listing: cheap per job)
        if swept := sweep_scratch(SCRATCH_PREFIX, settings.CLEARSTEM_SCRATCH_DIR, settings.CLEARSTEM_SCRATCH_MAX_AGE_S):
            log.warning("removed %s scratch folder(s) of separations killed mid-job", swept)
    except OSError:
        log.warning("sweeping scratch folders failed", exc_info=True)
    saved: list[str] = []
    attempt = job.attempts
    try:
        rows, prints = [], {}
        with (Heartbeat(job.pk, attempt, settings.CLEARSTEM_JOB_HEARTBEAT_S),
              scratch_folder(SCRATCH_PREFIX, settings.CLEARSTEM_SCRATCH_DIR) as tmp,
              local_path(job.upload.file.name) as src):
            outputs, model_info = separate_to_folder(job.model, src, tmp, stems=list(job.stems),
                                                     source_bits=job.upload.bits_per_sample,
                                                     progress=_progress_reporter(job.pk, attempt))
            for out in outputs:
                if settings.CLEARSTEM_STEM_PRINTS:
                    prints[out.name] = stem_prints(out.path)
                with open(out.path, "rb") as fh:
                    stored = default_storage.save(f"stems/{job.pk}/{out.name}.{OUTPUT_FORMAT}", fh)
                saved.append(stored)
                rows.append(Stem(
                    job=job, name=out.name, file=stored, sha256=file_sha256(out.path), size=os.path.getsize(out.path),
                    format=OUTPUT_FORMAT, sample_rate=out.sample_rate, bits_per_sample=out.bits, channels=out.channels,
                    duration_s=out.duration_s,
                ))
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            if locked.state != Job.State.SEPARATING or locked.attempts != attempt:
                raise Superseded()
            if locked.cancel_requested:
                raise Cancelled()
            for row in rows:
                row.save()
                do_record_stem_provenance(job, row, model_info)
                if prints.get(row.name):
                    StemFingerprint.objects.create(stem=row, **prints[row.name])
            transition(locked, Job.State.DONE)
        warm_waveforms(locked)  # drawn here, on the worker, not on the first view of the job page
        return locked
    except Superseded:
        delete_quietly(saved)
        log.warning("job %s: attempt %s was superseded (re-queued meanwhile); it wrote nothing", job.pk, attempt)
    except Cancelled:
        delete_quietly(saved)
        _end(job.pk, attempt, Job.State.CANCELLED, "cancelled", "cancelled during separation")
    except (ModelUnavailable, AudioReadError) as exc:
        delete_quietly(saved)
        _end(job.pk, attempt, Job.State.FAILED, "model_unavailable" if isinstance(exc, ModelUnavailable) else "corrupt_audio",
             str(exc))
    except Exception as exc:
        delete_quietly(saved)
        if is_out_of_memory(exc):  # even one chunk at a time did not fit: retrying will not help
            log.warning("job %s: out of memory on the worker's device: %s", job.pk, exc)
            _end(job.pk, attempt, Job.State.FAILED, "out_of_memory",
                 "the model does not fit in this worker's memory, even one chunk at a time")
            return None
        log.exception("separation of job %s failed (attempt %s)", job.pk, job.attempts)
        if job.attempts < settings.CLEARSTEM_JOB_MAX_ATTEMPTS:
            _end(job.pk, attempt, Job.State.QUEUED, "retrying", failure_in_words(exc))
            raise RetryableJobError(str(exc)) from exc
        _end(job.pk, attempt, Job.State.FAILED, "separation_error", failure_in_words(exc))
    return None


def failure_in_words(exc: Exception) -> str:
    """An unexpected failure as the job page and the API say it: no errno numbers, no exception
    class names (the worker's log keeps the traceback)."""
    if isinstance(exc, OSError):
        return f"the worker could not read or write a file ({(exc.strerror or 'input/output error').lower()})"
    text = str(exc).strip()
    if not text or text.startswith(("[Errno", "<", "'")) or "Error:" in text:
        return "an unexpected error on the worker (its log has the details)"
    return text
