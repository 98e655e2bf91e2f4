"""The job pipeline's write paths: create, identify-and-decide (or hold for review), cancel,
stop under a license that ended, reconcile, and license requests from a refused job. Every
state change goes through `lifecycle.transition`; reviewers' verdicts are in `reviews`."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clearstem.messaging import send_on_commit
from clearstem.uploads.dispatch import send_identify_upload
from clearstem.uploads.models import Upload
from clearstem.uploads.services import do_identify_upload
from licensing.catalog import open_catalog
from licensing.engine import ALL_STEMS, PURPOSES
from licensing.metering import check_separation, do_decide_separation
from licensing.models import Recording
from licensing.requests import do_create_license_requests
from provenance.services import sign_statement
from separation.registry import ModelUnavailable, default_model, model_info
from sharedcore.errors import Conflict, DomainError, NotFound, PermissionDenied

from .dispatch import send_process_job, send_separate_job
from .lifecycle import request_stop, transition
from .models import Job, JobReview

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
    if not user.is_producer or not user.can_write:
        raise PermissionDenied("permission_denied", "only producers with write access can request separations")
    model = model or default_model(settings.CLEARSTEM_MODEL_DIR, settings.CLEARSTEM_DEFAULT_MODEL)
    try:
        info = model_info(model, settings.CLEARSTEM_MODEL_DIR)
    except ModelUnavailable as exc:
        raise DomainError("model_unavailable", str(exc)) from exc
    wanted = expand_stems(stems)
    unknown = [s for s in wanted if s not in info.stems]
    if not wanted or unknown:
        raise DomainError("invalid_stems", f"choose stems from {list(ALL_STEMS) + ['instrumental']}")
    if purpose not in PURPOSES:
        raise DomainError("invalid_purpose", f"purpose must be one of {list(PURPOSES)}")
    if commercial and not info.commercial_use:
        raise PermissionDenied("model_not_licensed_for_commercial_use",
                               f"model {model!r} is licensed for non-commercial use only ({info.weights_licence})")
    if not attestation and _identified_as_unmatched(upload):
        # known now, so said now (a form error), rather than a job created only to be denied
        raise DomainError("attestation_required",
                          "This audio matches nothing in the licensed catalog: confirm that you own or control "
                          "it (the ownership statement) to separate it.")
    signed_attestation = None
    if attestation:
        if not attestation.get("accepted"):
            raise DomainError("invalid_attestation", "an attestation must have accepted=true")
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


def _identified_as_unmatched(upload: Upload) -> bool:
    """Identification has run and found no catalog recording, not even a suspected one: only
    the uploader's ownership statement can clear a job on it."""
    ident = upload.identification or {}
    return (upload.identification_status == Upload.Identification.DONE
            and not ident.get("matches") and not ident.get("suspects"))


def _decision_record(decision, upload: Upload) -> dict:
    """The decision as stored on the job: every reason, naming the recording and whom to ask."""
    matches = upload.identification.get("matches", [])
    record = {**decision.as_dict(), "matches": matches, "identification_note": upload.identification.get("note")}
    by_recording = {m["recording"]: m for m in matches}
    for reason in record["reasons"]:
        if (m := by_recording.get(reason.get("recording"))):
            reason.update(title=m["title"], isrc=m["isrc"], rights_holder=m["rights_holder"])
    return record


def do_process_job(job_id) -> Job | None:
    """Identify the upload (once), decide rights, and queue separation — or deny with reasons,
    or hold the job for review when identification suspects catalog recordings it could not
    prove (see `enter_review`).

    Idempotent by job id: a repeated message picks up where the last one stopped (a `cleared`
    job whose queueing was lost is queued now; a job in review waits for its reviewers)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in (Job.State.RECEIVED, Job.State.IDENTIFYING, Job.State.CLEARED):
            return job
        if job.state == Job.State.RECEIVED:
            transition(job, Job.State.IDENTIFYING)
    if job.state == Job.State.IDENTIFYING:
        upload = do_identify_upload(job.upload_id)
        with transaction.atomic():
            job = (Job.objects.select_for_update(of=("self",)).select_related("upload", "requested_by__organisation")
                   .get(pk=job_id))
            if job.state != Job.State.IDENTIFYING:
                return job
            # suspects go to review before the licensing decision: no cap is spent on a job that
            # may be refused, and no ownership statement stands in for the rights holder's judgement
            suspects = suspects_of(upload)
            if suspects and _licensed_for(job, upload, suspects):
                # the producer's license covers every suspected recording for these terms:
                # decided (and metered) as if they were present, with no reviewer to wait for
                job = decide_job(job, upload, with_suspects=suspects)
            elif suspects and _could_clear(job, upload):
                job = enter_review(job, upload)
            else:
                job = decide_job(job, upload)
            if job.state != Job.State.CLEARED:
                return job
    return _queue(job_id)


def _could_clear(job: Job, upload: Upload) -> bool:
    """Whether the recordings accepted as present would let the job clear now (nothing spent):
    a job that is refused on them anyway is refused at once, not put before a reviewer."""
    return check_separation(
        job.requested_by, _present_recordings(upload), stems=job.stems,
        purpose=job.purpose, commercial=job.commercial, territory=job.territory,
        attested=bool(job.attestation)).allowed


def _licensed_for(job: Job, upload: Upload, suspects: list[dict]) -> bool:
    """Whether licenses the producer holds cover every suspected recording (and the accepted
    ones) for this job's terms, judged without the ownership statement: a reviewer would only
    be asked whether a recording the producer may separate anyway is there."""
    return check_separation(
        job.requested_by, _present_recordings(upload, [s["recording"] for s in suspects]), stems=job.stems,
        purpose=job.purpose, commercial=job.commercial, territory=job.territory, attested=False).allowed


def _present_recordings(upload: Upload, extra=()) -> list[str]:
    return list(dict.fromkeys([*(m["recording"] for m in upload.identification.get("matches", [])), *extra]))


def suspects_of(upload: Upload) -> list[dict]:
    """Recordings identification found plausible but did not accept (none on old uploads), one
    per recording, never one it accepted as present."""
    ident = upload.identification or {}
    matched = {m["recording"] for m in ident.get("matches", [])}
    out, seen = [], set()
    for suspect in ident.get("suspects") or []:
        rec = suspect.get("recording")
        if rec and rec not in matched and rec not in seen:
            seen.add(rec)
            out.append(suspect)
    return out


def enter_review(job: Job, upload: Upload) -> Job:
    """identifying → review (job locked by the caller): one pending `JobReview` per suspected
    recording, for its rights holder, created in the same transaction as the move. The decision
    names the suspects and whom the job waits for.

    A suspect whose recording left the catalog since identification has nobody to review it and
    is dropped; if none is left the job is decided as if there had been none."""
    suspects = {key: s for s in suspects_of(upload) if (key := _uuid(s["recording"])) is not None}
    recordings = Recording.objects.select_related("rights_holder").in_bulk(list(suspects))
    reviews = []
    for rec_id, suspect in suspects.items():
        rec = recordings.get(rec_id)
        if rec is None:
            log.warning("job %s: suspected recording %s is no longer in the catalog", job.pk, rec_id)
            continue
        reviews.append(JobReview(job=job, recording=rec, rights_holder=rec.rights_holder, evidence=suspect))
    if not reviews:
        return decide_job(job, upload)
    JobReview.objects.bulk_create(reviews)
    reasons = [{"code": "review_required", "recording": str(r.recording_id), "title": r.recording.title,
                "isrc": r.recording.isrc, "rights_holder": r.rights_holder.slug,
                "detail": f"waiting for review by {r.rights_holder.name}: {r.evidence.get('reason') or 'partial evidence'}"}
               for r in reviews]
    record = {"allowed": None, "basis": "none", "pending_review": True, "reasons": reasons, "grants": [],
              "matches": upload.identification.get("matches", []), "suspects": [r.evidence for r in reviews],
              "identification_note": upload.identification.get("note")}
    return transition(job, Job.State.REVIEW, decision=record)


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def decide_job(job: Job, upload: Upload, *, reviews: list[dict] | None = None,
               with_suspects: list[dict] = ()) -> Job:
    """The licensing decision (job locked by the caller, inside its transaction): identifying
    or review → cleared (a separation use metered per recording) or denied with every reason.

    Decides on the recordings identification accepted as present: suspects that reviewers
    released were judged not present. `with_suspects` are suspected recordings the producer's
    licenses cover (see `_licensed_for`): decided and metered as present, and named in the
    decision as `licensed_suspects`. `reviews` (their verdicts) is kept in the decision."""
    decision = do_decide_separation(
        job.requested_by, _present_recordings(upload, [s["recording"] for s in with_suspects]), stems=job.stems,
        purpose=job.purpose, commercial=job.commercial, territory=job.territory,
        attested=bool(job.attestation), job_id=job.pk)
    record = _decision_record(decision, upload)
    if reviews:
        record["reviews"] = reviews
    if with_suspects:
        record["licensed_suspects"] = list(with_suspects)
    if not decision.allowed:
        first = decision.reasons[0]
        return transition(job, Job.State.DENIED, code=first.code, message=first.detail, decision=record,
                          decided_at=timezone.now())
    return transition(job, Job.State.CLEARED, decision=record, decided_at=timezone.now())


def queue_cleared(job: Job) -> Job:
    """cleared → queued (job locked by the caller, `upload` loaded); the separation message is
    sent when the transaction commits."""
    transition(job, Job.State.QUEUED)
    send_on_commit(send_separate_job, job.pk, job.upload.duration_s)
    return job


def _queue(job_id) -> Job:
    """cleared → queued, and the separation message is sent when that commits."""
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("upload").get(pk=job_id)
        if job.state != Job.State.CLEARED:
            return job
        return queue_cleared(job)


def _requestable(user, job: Job | None, recordings) -> list[Recording]:
    ids = {str(getattr(r, "pk", r)) for r in recordings}
    if job is not None:
        ident = job.upload.identification or {}
        named = {str(m.get("recording")) for key in ("matches", "suspects") for m in ident.get(key) or []}
        named |= {str(r.get("recording")) for r in (job.decision or {}).get("reasons", []) if r.get("recording")}
        found = list(Recording.objects.filter(id__in=ids & named))
    else:
        found = list(open_catalog().filter(id__in=ids))
    if len(found) != len(ids):
        raise NotFound("not_found", "no such recording: name recordings open for requests in the catalog, or "
                                    "identified in the job's upload")
    return found


def do_cancel_job(job_id, user) -> Job:
    """The producer cancels: at once if not yet separating, else between two chunks."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in Job.TERMINAL:
            raise Conflict("job_not_cancellable", f"the job is already {job.state}")
        return request_stop(job, "cancelled", f"cancelled by {user.username}")


def do_stop_jobs_under_license(job_ids, code: str, message: str) -> int:
    """Stop the unfinished jobs cleared under a license that was revoked or suspended, each
    with that reason. Each job is locked in its own transaction (dispatch locks a job before
    its grants, so no grant is held while jobs are locked here)."""
    stopped = 0
    for job_id in job_ids:
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.state not in Job.TERMINAL:
                request_stop(job, code, message)
                stopped += 1
    return stopped


def do_reconcile_jobs(now=None) -> dict:
    """Find work a broker lost or a worker dropped, and put it back in motion.

    - received/identifying/cleared or queued longer than CLEARSTEM_JOB_RESEND_AFTER_S since the
      last message: send it again;
    - separating with no heartbeat for CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S: the worker died; re-queue while
      attempts remain, else fail with `worker_lost`;
    - uploads whose identification message was lost: send it again (identification is
      idempotent, and a job's own processing would identify the upload anyway).

    Jobs in `review` are left alone: they wait for people, not for a message.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CLEARSTEM_JOB_RESEND_AFTER_S)
    lease = now - timedelta(seconds=settings.CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S)
    counts = {"resent_process": 0, "resent_separation": 0, "requeued": 0, "failed": 0, "resent_identify": 0}
    waiting = Job.objects.filter(state__in=["received", "identifying", "cleared"], dispatched_at__lt=stale)
    for job_id in waiting.values_list("id", flat=True):
        Job.objects.filter(pk=job_id).update(dispatched_at=now)
        send_process_job(job_id)
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
                transition(job, Job.State.FAILED, code="worker_lost",
                           message=f"no worker heartbeat after {job.attempts} attempts")
                counts["failed"] += 1
            else:
                transition(job, Job.State.QUEUED)
                send_on_commit(send_separate_job, job.pk, job.upload.duration_s)
                counts["requeued"] += 1
    if any(counts.values()):
        log.info("reconciler: %s", counts)
    return counts


def do_request_licenses(user, *, job: Job | None = None, recordings=None, stems=None, purpose=None,
                        commercial=None, territory=None, message: str = "") -> list:
    """License requests, one per rights holder. From a denied job, everything defaults to what
    the job asked for and the recordings that blocked it.

    `recordings` (objects or ids) may name only what the producer can know of: recordings
    identified in the job's upload, or, without a job, recordings open for requests in the
    catalog. Anything else is NotFound, so closed recordings are neither requestable nor
    probed by id."""
    if recordings:
        recordings = _requestable(user, job, recordings)
    if job is not None:
        blocked = [r["recording"] for r in (job.decision or {}).get("reasons", []) if r.get("recording")]
        recordings = recordings or list(Recording.objects.filter(id__in=blocked))
        stems = stems or job.stems
        purpose = purpose or job.purpose
        commercial = job.commercial if commercial is None else commercial
        territory = territory or job.territory
    return do_create_license_requests(user, recordings=recordings, stems=stems, purpose=purpose,
                                      commercial=commercial, territory=territory, message=message,
                                      job_id=job.pk if job is not None else None)
