"""Jobs and their stems. The database is the source of truth for every state; broker
messages only wake workers. `clearstem.jobs.lifecycle.transition` is the only writer of
`Job.state` and holds the allowed moves. A job whose upload holds plausible but unproven
evidence of a catalog recording waits in `review` for that recording's rights holder
(`JobReview`, decided in `clearstem.jobs.reviews`)."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from sharedcore.media import DELIVERY_FORMATS

JOB_STATES = ["received", "identifying", "review", "cleared", "denied", "queued", "separating", "done", "failed",
              "cancelled"]
REVIEW_OUTCOMES = ["pending", "released", "refused"]


class Job(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received"
        IDENTIFYING = "identifying"
        REVIEW = "review"
        CLEARED = "cleared"
        DENIED = "denied"
        QUEUED = "queued"
        SEPARATING = "separating"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = frozenset({State.DENIED, State.DONE, State.FAILED, State.CANCELLED})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    upload = models.ForeignKey("uploads.Upload", on_delete=models.PROTECT, related_name="jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="jobs")
    stems = models.JSONField(help_text="requested stems")
    purpose = models.CharField(max_length=32)
    commercial = models.BooleanField(default=False)
    territory = models.CharField(max_length=2)
    attestation = models.JSONField(null=True, blank=True, help_text="the uploader's signed ownership statement")
    model = models.CharField(max_length=64)

    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED, db_index=True)
    progress = models.FloatField(default=0.0)
    decision = models.JSONField(null=True, blank=True, help_text="rights decision with reasons and evidence")
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="last time a message was sent")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=JOB_STATES), name="job_state_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0), name="job_progress_range"
            ),
            models.CheckConstraint(
                condition=~models.Q(state="done") | models.Q(finished_at__isnull=False),
                name="job_done_has_finished_at",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.state})"

    def reasons(self) -> list[dict]:
        """Every reason the job was refused, held or stopped, each with a `code` and a `message`
        (and the recording, title and rights holder it is about, where known): the decision's
        reasons, led by `error_code` when the job stopped for a reason the decision does not hold
        (a failure, a cancellation, a license stopped mid-run)."""
        decision = self.decision or {}
        out = [{"code": r["code"], "message": r.get("detail", ""),
                **{k: v for k, v in r.items() if k not in ("code", "detail")}}
               for r in decision.get("reasons", []) if not decision.get("allowed")]
        if self.error_code and not (out and out[0]["code"] == self.error_code):
            out.insert(0, {"code": self.error_code, "message": self.error_message})
        return out


class Stem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="stem_files")
    name = models.CharField(max_length=32)
    file = models.FileField(max_length=500)
    sha256 = models.CharField(max_length=64, db_index=True)  # auditors find stems by hash prefix (a range scan)
    size = models.BigIntegerField()
    format = models.CharField(max_length=8)
    sample_rate = models.PositiveIntegerField()
    bits_per_sample = models.PositiveSmallIntegerField()
    channels = models.PositiveSmallIntegerField()
    duration_s = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "name"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="stem_unique_per_job"),
            models.CheckConstraint(condition=models.Q(size__gt=0), name="stem_size_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.job_id}"


class JobReviewQuerySet(models.QuerySet):
    def awaiting(self):
        """Reviews someone still has to decide: pending, of a job still in review (a job
        refused over another suspect, or cancelled, leaves its other reviews pending)."""
        return self.filter(outcome=JobReview.Outcome.PENDING, job__state=Job.State.REVIEW)


class JobReview(models.Model):
    """One suspected recording of a job in review, and the rights holder's verdict on it.

    Identification reported evidence below its acceptance threshold (a `suspect`): too weak to
    refuse the producer on, too strong to let an ownership statement through. The recording's
    rights holder (or platform staff) looks at `evidence` and releases it (judged not present)
    or refuses the job. The row is kept after the decision: it is what the ledger entry and the
    job's decision refer to."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        RELEASED = "released"
        REFUSED = "refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="reviews")
    recording = models.ForeignKey("licensing.Recording", on_delete=models.PROTECT, related_name="reviews")
    rights_holder = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="reviews")
    evidence = models.JSONField(help_text="the suspect as identification reported it (source, score, segment, reason)")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="reviews_decided")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="the refusal's reason, or the releasing reviewer's note")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "recording"], name="job_review_unique_recording"),
            models.CheckConstraint(condition=models.Q(outcome__in=REVIEW_OUTCOMES), name="job_review_outcome_valid"),
            models.CheckConstraint(
                condition=models.Q(outcome="pending", decided_at__isnull=True)
                | (~models.Q(outcome="pending") & models.Q(decided_at__isnull=False)),
                name="job_review_decided_at_iff_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.recording_id} in {self.job_id} ({self.outcome})"


class StemFingerprint(models.Model):
    """A stem's Chromaprint items and landmark print, indexed in the stems indexes so that a
    copy found in the wild leads back to it (`clearstem.jobs.stem_prints`). The integer id is
    the index key."""

    id = models.BigAutoField(primary_key=True)
    stem = models.OneToOneField(Stem, on_delete=models.PROTECT, related_name="fingerprint")
    items = models.BinaryField(help_text="raw Chromaprint items, uint32 LE")
    landmarks = models.BinaryField(help_text="fingerprint.landmarks.pack_print, kind reference")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"print of {self.stem}"


DELIVERY_FORMAT_KEYS = list(DELIVERY_FORMATS)


class StemRendition(models.Model):
    """A stem as delivered in one format, with its C2PA content credentials embedded; made on
    the first delivery in that format and reused, so every delivery of (stem, format) hands out
    the same bytes, whose hash the delivery's ledger entry records (`clearstem.jobs.renditions`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stem = models.ForeignKey(Stem, on_delete=models.PROTECT, related_name="renditions")
    format = models.CharField(max_length=8)
    file = models.FileField(max_length=500)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    bits_per_sample = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None for MP3")
    content_credentials = models.BooleanField(help_text="a signed C2PA manifest is embedded")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stem", "format"]
        constraints = [
            models.UniqueConstraint(fields=["stem", "format"], name="stem_rendition_unique_format"),
            models.CheckConstraint(condition=models.Q(format__in=DELIVERY_FORMAT_KEYS), name="stem_rendition_format_valid"),
            models.CheckConstraint(condition=models.Q(size__gt=0), name="stem_rendition_size_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.stem} as {self.format}"
