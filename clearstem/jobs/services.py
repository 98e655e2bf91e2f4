"""The job pipeline's write paths: create, identify-and-decide, cancel, reconcile."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from clearstem.api.errors import ApiError
from fingerprint.services import do_identify_upload
from licensing.engine import ALL_STEMS, PURPOSES
from licensing.services import do_decide_job
from separation.registry import ModelUnavailable, model_info

from .dispatch import send_on_commit, send_process_job, send_separate_job
from .models import Job

log = logging.getLogger("clearstem.jobs")

ATTESTATION_TEXT = (
    "I own or control all rights in this audio, or hold permission to separate it for the stated purpose."
)


def expand_stems(stems) -> list[str]:
    out = []
    for s in stems:
        for x in (("drums", "bass", "other") if s == "instrumental" else (s,)):
            if x not in out:
                out.append(x)
    return out


def do_create_job(user, upload, *, stems, purpose, commercial, territory, attestation=None, model=None) -> Job:
    from provenance.services import sign_statement

    if not user.is_producer or not user.can_write:
        raise ApiError("permission_denied", "only producers with write access can request separations", 403)
    model = model or settings.CLEARSTEM_DEFAULT_MODEL
    try:
        info = model_info(model, settings.CLEARSTEM_MODEL_DIR)
    except ModelUnavailable as exc:
        raise ApiError("model_unavailable", str(exc)) from exc
    wanted = expand_stems(stems)
    unknown = [s for s in wanted if s not in info.stems]
    if not wanted or unknown:
        raise ApiError("invalid_stems", f"choose stems from {list(ALL_STEMS) + ['instrumental']}")
    if purpose not in PURPOSES:
        raise ApiError("invalid_purpose", f"purpose must be one of {list(PURPOSES)}")
    if commercial and not info.commercial_use:
        raise ApiError("model_not_licensed_for_commercial_use",
                       f"model {model!r} is licensed for non-commercial use only ({info.weights_licence})", 403)
    signed_attestation = None
    if attestation:
        if not attestation.get("accepted"):
            raise ApiError("invalid_attestation", "an attestation must have accepted=true")
        statement = {
            "statement": attestation.get("statement") or ATTESTATION_TEXT,
            "upload_sha256": upload.sha256, "user": user.username, "organisation": user.organisation.slug,
            "at": timezone.now().isoformat(),
        }
        signed_attestation = {**statement, "envelope": sign_statement(statement)}
    with transaction.atomic():
        job = Job.objects.create(
            upload=upload, requested_by=user, organisation=user.organisation, stems=wanted, purpose=purpose,
            commercial=bool(commercial), territory=territory.upper(), attestation=signed_attestation, model=model,
            dispatched_at=timezone.now(),
        )
        send_on_commit(send_process_job, job.pk)
    return job


def _finish(job: Job, state: str, code: str = "", message: str = "") -> None:
    job.state = state
    job.finished_at = timezone.now()
    if code:
        job.error_code, job.error_message = code, message


def do_process_job(job_id) -> Job | None:
    """identify the upload (once), decide rights, and queue separation — or deny with reasons."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in (Job.State.RECEIVED, Job.State.IDENTIFYING):
            return job
        job.state = Job.State.IDENTIFYING
        job.save(update_fields=["state"])
    upload = do_identify_upload(job.upload_id)
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("upload", "requested_by__organisation").get(pk=job_id)
        if job.state != Job.State.IDENTIFYING:
            return job
        decision = do_decide_job(job)
        now = timezone.now()
        matches = upload.identification.get("matches", [])
        job.decision = {**decision.as_dict(), "matches": matches,
                        "identification_note": upload.identification.get("note")}
        by_recording = {m["recording"]: m for m in matches}
        for reason in job.decision["reasons"]:  # say which recording and whom to ask
            if (m := by_recording.get(reason.get("recording"))):
                reason.update(title=m["title"], isrc=m["isrc"], rights_holder=m["rights_holder"])
        job.decided_at = now
        if decision.allowed:
            job.state = Job.State.QUEUED  # cleared, and queued in the same transaction
            job.queued_at = job.dispatched_at = now
            send_on_commit(send_separate_job, job.pk, upload.duration_s)
        else:
            first = decision.reasons[0]
            _finish(job, Job.State.DENIED, first.code, first.detail)
        job.save()
    return job


def do_cancel_job(job_id, user) -> Job:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in Job.TERMINAL:
            raise ApiError("job_not_cancellable", f"the job is already {job.state}", status.HTTP_409_CONFLICT)
        if job.state == Job.State.SEPARATING:
            job.cancel_requested = True  # the worker stops between chunks
            job.save(update_fields=["cancel_requested"])
        else:
            _finish(job, Job.State.CANCELLED, "cancelled", f"cancelled by {user.username}")
            job.save()
    return job


def do_reconcile_jobs(now=None) -> dict:
    """Find work a broker lost or a worker dropped, and put it back in motion.

    - received/identifying or queued longer than CLEARSTEM_JOB_RESEND_AFTER_S since the last
      message: send it again;
    - separating with no heartbeat for CLEARSTEM_JOB_LEASE_S: the worker died; re-queue while
      attempts remain, else fail with `worker_lost`;
    - uploads whose identification message was lost: send it again (identification is
      idempotent, and a job's own processing would identify the upload anyway).
    """
    from clearstem.uploads.models import Upload
    from fingerprint.dispatch import send_identify_upload

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CLEARSTEM_JOB_RESEND_AFTER_S)
    lease = now - timedelta(seconds=settings.CLEARSTEM_JOB_LEASE_S)
    counts = {"resent_process": 0, "resent_separation": 0, "requeued": 0, "failed": 0, "resent_identify": 0}
    for job in Job.objects.filter(state__in=["received", "identifying"], dispatched_at__lt=stale):
        Job.objects.filter(pk=job.pk).update(dispatched_at=now)
        send_process_job(job.pk)
        counts["resent_process"] += 1
    for job in Job.objects.filter(state="queued", dispatched_at__lt=stale).select_related("upload"):
        Job.objects.filter(pk=job.pk).update(dispatched_at=now)
        send_separate_job(job.pk, job.upload.duration_s)
        counts["resent_separation"] += 1
    recent_pending = Upload.objects.filter(  # a day of tries; jobs identify their upload anyway
        identification_status="pending", created_at__lt=stale, created_at__gt=now - timedelta(days=1))
    for upload_id in recent_pending.values_list("id", flat=True):
        send_identify_upload(upload_id)
        counts["resent_identify"] += 1
    for job_id in Job.objects.filter(state="separating", heartbeat_at__lt=lease).values_list("id", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update(of=("self",)).select_related("upload").get(pk=job_id)
            if job.state != Job.State.SEPARATING or job.heartbeat_at >= lease:
                continue
            if job.attempts >= settings.CLEARSTEM_JOB_MAX_ATTEMPTS:
                _finish(job, Job.State.FAILED, "worker_lost", f"no worker heartbeat after {job.attempts} attempts")
                counts["failed"] += 1
            else:
                job.state, job.progress, job.dispatched_at = Job.State.QUEUED, 0.0, now
                send_on_commit(send_separate_job, job.pk, job.upload.duration_s)
                counts["requeued"] += 1
            job.save()
    if any(counts.values()):
        log.info("reconciler: %s", counts)
    return counts


def do_export_job(user, job_id):
    """A zip of a finished job's stems with their provenance bundles and a manifest.

    Every stem is checked and metered as an export, all or nothing, and each export is appended
    to the ledger. Returns an open temporary file positioned at the start.
    """
    import json
    import shutil
    import tempfile
    import zipfile

    from django.core.files.storage import default_storage

    from licensing.models import UsageEvent
    from licensing.services import do_authorize_download
    from provenance.services import stem_bundle

    job = Job.objects.get(pk=job_id)
    if job.state != Job.State.DONE:
        raise ApiError("job_not_done", f"the job is {job.state}; only finished jobs can be exported", status.HTTP_409_CONFLICT)
    stems = list(job.stem_files.select_related("provenance__ledger_entry"))
    with transaction.atomic():
        for stem in stems:
            do_authorize_download(user, stem, kind=UsageEvent.Kind.EXPORT)
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        manifest = {"job": str(job.id), "upload_sha256": job.upload.sha256, "stems": []}
        for stem in stems:
            name = f"{stem.name}.{stem.format}"
            with default_storage.open(stem.file.name, "rb") as src, zf.open(name, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            zf.writestr(f"{stem.name}.provenance.json", json.dumps(stem_bundle(stem), indent=2))
            manifest["stems"].append({"name": stem.name, "file": name, "sha256": stem.sha256,
                                      "bundle": f"{stem.name}.provenance.json"})
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    out.seek(0)
    return out
