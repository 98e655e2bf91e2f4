"""Reviews of suspected recordings: the rights holder (or platform staff) releases or refuses.

Identification can report a recording as *suspected*: evidence too weak to accept it as
present (and so to refuse a producer on it), too strong to let an ownership statement through.
Such a job waits in `review` (`services.enter_review`) with one `JobReview` per suspected
recording. Here the recording's rights holder decides:

- **release**: the recording is judged not present. When every review of the job is released,
  the job gets the normal licensing decision (`services.decide_job`) on the recordings that
  identification accepted — the released ones are not among them — and is queued or denied.
- **refuse**: the job is denied at once (`refused_in_review`), with the reason.

Each verdict runs in one transaction that locks the job first (the order every job writer
uses: job, then grants, then the ledger) and appends a signed `review_released` or
`review_refused` entry to the ledger. Who may decide: write-capable members of the recording's
rights holder, or of the platform. Others do not see the review (NotFound), except the producer
whose job it is, who sees it read-only (PermissionDenied), as do read-only members."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from provenance.ledger import do_record_event
from provenance.models import LedgerEntry
from sharedcore.errors import Conflict, DomainError, NotFound, PermissionDenied

from .lifecycle import transition
from .models import Job, JobReview
from .services import decide_job, queue_cleared

#: The longest note or reason kept (the API's serializers refuse longer ones first).
MAX_NOTE = 4000


def can_see_review(user, review: JobReview) -> bool:
    """The API's and the web's scope (`clearstem.accounts.scoping.visible_reviews`) in one
    object's terms: the rights holder, platform staff, and the producer whose job it is."""
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return False
    if user.is_platform:
        return True
    if user.is_label:
        return review.rights_holder_id == user.organisation_id
    if user.is_producer:
        return review.job.organisation_id == user.organisation_id
    return False


def can_decide_review(user, review: JobReview) -> bool:
    """Write-capable members of the suspected recording's rights holder, or of the platform."""
    if not can_see_review(user, review) or not user.can_write:
        return False
    return user.is_platform or (user.is_label and review.rights_holder_id == user.organisation_id)


def do_release_review(review_id, user, note: str = "") -> JobReview:
    """The rights holder judges the suspected recording not present in the upload."""
    return _decide(review_id, user, JobReview.Outcome.RELEASED, (note or "").strip())


def do_refuse_review(review_id, user, reason: str) -> JobReview:
    """The rights holder judges the suspected recording present: the job is denied."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "say why the job is refused: the producer sees the reason")
    return _decide(review_id, user, JobReview.Outcome.REFUSED, reason)


def _decide(review_id, user, outcome: str, note: str) -> JobReview:
    if len(note) > MAX_NOTE:
        raise DomainError("invalid", f"at most {MAX_NOTE} characters")
    found = JobReview.objects.select_related("job").filter(pk=review_id).first()
    if found is None or not can_see_review(user, found):
        raise NotFound("not_found", "no such review")
    if not can_decide_review(user, found):
        raise PermissionDenied("permission_denied",
                               "only members of the rights holder with write access, or platform staff, decide reviews")
    with transaction.atomic():
        job = (Job.objects.select_for_update(of=("self",)).select_related("upload", "requested_by__organisation")
               .get(pk=found.job_id))
        reviews = list(JobReview.objects.select_for_update(of=("self",))
                       .select_related("recording", "rights_holder", "decided_by").filter(job=job).order_by("id"))
        review = next(r for r in reviews if r.pk == found.pk)
        if review.outcome != JobReview.Outcome.PENDING:
            raise Conflict("review_already_decided",
                           f"this review was already {review.outcome} by {review.decided_by.username if review.decided_by else 'someone'}")
        if job.state != Job.State.REVIEW:
            raise Conflict("job_not_in_review", f"the job is {job.state} now; there is nothing to decide")
        review.outcome, review.decided_by, review.decided_at, review.note = outcome, user, timezone.now(), note
        review.save(update_fields=["outcome", "decided_by", "decided_at", "note"])
        verdicts = [_verdict(r) for r in reviews]
        if outcome == JobReview.Outcome.REFUSED:
            _refuse_job(job, review, verdicts)
        elif all(r.outcome == JobReview.Outcome.RELEASED for r in reviews):
            job = decide_job(job, job.upload, reviews=verdicts)  # grants are locked before the ledger
            if job.state == Job.State.CLEARED:
                queue_cleared(job)
        do_record_event(LedgerEntry.Kind.REVIEW_REFUSED if outcome == JobReview.Outcome.REFUSED
                        else LedgerEntry.Kind.REVIEW_RELEASED, f"review:{review.pk}", review_event(review, job))
    return review


def _refuse_job(job: Job, review: JobReview, verdicts: list[dict]) -> Job:
    holder, rec = review.rights_holder, review.recording
    detail = f"{holder.name} refused in review that “{rec.title}” may be separated: {review.note}"
    record = {**(job.decision or {}), "allowed": False, "basis": "none", "pending_review": False, "grants": [],
              "reasons": [{"code": "refused_in_review", "detail": detail, "recording": str(rec.pk), "title": rec.title,
                           "isrc": rec.isrc, "rights_holder": holder.slug, "reason": review.note}],
              "reviews": verdicts}
    return transition(job, Job.State.DENIED, code="refused_in_review", message=detail, decision=record,
                      decided_at=timezone.now())


def _verdict(review: JobReview) -> dict:
    """A review's verdict as the job's decision keeps it."""
    return {"review": str(review.pk), "recording": str(review.recording_id), "title": review.recording.title,
            "isrc": review.recording.isrc, "rights_holder": review.rights_holder.slug, "outcome": review.outcome,
            "decided_by": review.decided_by.username if review.decided_by else None,
            "decided_at": review.decided_at.isoformat() if review.decided_at else None, "note": review.note}


def review_event(review: JobReview, job: Job) -> dict:
    """The signed ledger record of a review's verdict: what was suspected, on which evidence,
    who decided what and why, and where the job went."""
    evidence = review.evidence or {}
    user = review.decided_by
    return {
        "schema": "clearstem.review-event/v1", "event": review.outcome, "review": str(review.pk),
        "job": str(job.pk), "job_state": job.state, "upload_sha256": job.upload.sha256,
        "recording": str(review.recording_id), "isrc": review.recording.isrc, "title": review.recording.title,
        "rights_holder": review.rights_holder.slug,
        "decided_by": {"user": user.username, "organisation": user.organisation.slug if user.organisation_id else None},
        "outcome": review.outcome, "reason": review.note,
        "evidence": {"source": evidence.get("source"), "score": evidence.get("score"), "reason": evidence.get("reason")},
        "at": review.decided_at.isoformat(),
    }
