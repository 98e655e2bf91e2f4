"""Catalog recordings (owned by label organisations), license grants and usage events."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from sharedcore.errors import Conflict

from .engine import Terms, grant_status


class Recording(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rights_holder = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="recordings")
    isrc = models.CharField(max_length=12, null=True, blank=True, unique=True)
    title = models.CharField(max_length=300)
    artist = models.CharField(max_length=300, blank=True)
    reference_audio = models.FileField(max_length=500)
    audio_sha256 = models.CharField(max_length=64)
    duration_s = models.FloatField()
    territories = models.JSONField(default=list, blank=True, help_text='where the rights are held; ["WW"] = worldwide')
    created_at = models.DateTimeField(auto_now_add=True)
    revision = models.PositiveIntegerField(default=1, help_text="title/artist/ISRC version; older ones in RecordingRevision")
    # Open for remix requests: producers find it in the catalog and may ask before uploading.
    # The offer's terms are what the label usually grants (the request form starts from them).
    open_for_requests = models.BooleanField(default=False, db_index=True)
    offer_stems = models.JSONField(default=list, blank=True)
    offer_purposes = models.JSONField(default=list, blank=True)
    offer_commercial = models.BooleanField(default=False)
    offer_territories = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["rights_holder", "audio_sha256"], name="recording_unique_audio_per_holder"),
            models.CheckConstraint(condition=models.Q(revision__gte=1), name="recording_revision_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.title} [{self.isrc or 'no ISRC'}]"


class RecordingRevision(models.Model):
    """A recording's title, artist and ISRC as they were before an edit: revision n holds the
    values that revision n + 1 replaced. Rows are only ever added (the edit is ledgered too)."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    artist = models.CharField(max_length=300, blank=True)
    isrc = models.CharField(max_length=12, null=True, blank=True)
    replaced_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-revision"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "revision"], name="recording_revision_unique"),
        ]


GRANT_STATUSES = ["draft", "active", "suspended", "revoked", "expired", "superseded"]
#: The columns that make up a version's terms: immutable once the version is not a draft.
TERM_FIELDS = (
    "licensor_id", "licensee_org_id", "licensee_user_id", "open_to_verified", "version", "stems", "purposes",
    "commercial", "territories", "excluded_territories", "valid_from", "valid_until", "max_separations",
    "max_downloads", "max_separations_per_user", "max_downloads_per_user", "attribution", "revenue_share_pct",
)


class LicenseGrant(models.Model):
    """One *version* of a license. Active terms never change: an amendment is a new version in
    the same `family`, linked to the one it supersedes. Jobs record the exact version."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        REVOKED = "revoked"
        EXPIRED = "expired"
        SUPERSEDED = "superseded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="the license across its versions")
    previous = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_version")
    licensor = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="grants_given")
    licensee_org = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="grants_received", null=True, blank=True
    )
    licensee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants_received", null=True, blank=True
    )
    open_to_verified = models.BooleanField(default=False, help_text="any verified producer (open campaign)")
    recordings = models.ManyToManyField(Recording, related_name="grants")
    version = models.PositiveIntegerField(default=1)
    stems = models.JSONField()
    purposes = models.JSONField()
    commercial = models.BooleanField(default=False)
    territories = models.JSONField(default=list)
    excluded_territories = models.JSONField(default=list, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    max_separations = models.PositiveIntegerField(null=True, blank=True)
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    max_separations_per_user = models.PositiveIntegerField(null=True, blank=True)
    max_downloads_per_user = models.PositiveIntegerField(null=True, blank=True)
    attribution = models.CharField(max_length=500, blank=True)
    revenue_share_pct = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(licensee_org__isnull=False) | models.Q(licensee_user__isnull=False)
                | models.Q(open_to_verified=True),
                name="grant_has_licensee",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True) | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="grant_validity_window",
            ),
            models.CheckConstraint(
                condition=models.Q(revenue_share_pct__gte=0, revenue_share_pct__lte=100),
                name="grant_revenue_share_range",
            ),
            models.CheckConstraint(condition=models.Q(status__in=GRANT_STATUSES), name="grant_status_valid"),
            models.UniqueConstraint(fields=["family", "version"], name="grant_unique_version"),
            models.UniqueConstraint(
                fields=["family"], condition=models.Q(status__in=["active", "suspended"]),
                name="grant_one_current_version",
            ),
        ]

    def __str__(self) -> str:
        return f"grant {self.id} v{self.version} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self._refuse_thawing(kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def _refuse_thawing(self, update_fields) -> None:
        """Terms are frozen for good once a version leaves draft: it never returns to draft and
        its terms never change (amend instead). PostgreSQL's trigger refuses the same; this holds
        the rule on SQLite too, and says so as a domain error rather than a database one."""
        names = None if update_fields is None else set(update_fields)
        fields = [f for f in self._meta.concrete_fields
                  if (f.attname in TERM_FIELDS or f.name == "status") and (names is None or f.name in names
                                                                            or f.attname in names)]
        if not fields:
            return
        stored = (type(self)._base_manager.using(self._state.db).filter(pk=self.pk)
                  .values("status", *[f.attname for f in fields]).first())
        if stored is None or stored["status"] == self.Status.DRAFT:
            return
        for f in fields:
            if f.name == "status":
                if self.status == self.Status.DRAFT:
                    raise Conflict("terms_frozen", "a license that left draft never returns to draft; amend it instead")
            elif f.to_python(getattr(self, f.attname)) != f.to_python(stored[f.attname]):
                raise Conflict("terms_frozen",
                               f"license terms never change once out of draft ({f.name}); amend to create a new version")

    @property
    def current_status(self) -> str:
        """The status as it stands now, the validity window included: `scheduled` before it
        opens, `expired` after it closes (what the API and pages show)."""
        return grant_status(self.status, self.valid_from, self.valid_until, timezone.now())

    def terms(self, separations_used: int = 0, downloads_used: int = 0,
              user_separations_used: int = 0, user_downloads_used: int = 0) -> Terms:
        return Terms(
            grant_id=str(self.id), version=self.version, status=self.status,
            stems=frozenset(self.stems), purposes=frozenset(self.purposes), commercial=self.commercial,
            territories=frozenset(t.upper() for t in self.territories),
            excluded_territories=frozenset(t.upper() for t in self.excluded_territories),
            valid_from=self.valid_from, valid_until=self.valid_until,
            max_separations=self.max_separations, max_downloads=self.max_downloads,
            max_separations_per_user=self.max_separations_per_user, max_downloads_per_user=self.max_downloads_per_user,
            attribution=self.attribution, revenue_share_pct=f"{self.revenue_share_pct:.2f}",
            separations_used=separations_used, downloads_used=downloads_used,
            user_separations_used=user_separations_used, user_downloads_used=user_downloads_used,
        )


class UsageEvent(models.Model):
    """One metered use of a grant; caps count these under a row lock on the grant."""

    class Kind(models.TextChoices):
        SEPARATION = "separation"
        DOWNLOAD = "download"
        EXPORT = "export"

    grant = models.ForeignKey(LicenseGrant, on_delete=models.PROTECT, related_name="usage")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    act = models.UUIDField(default=uuid.uuid4, db_index=True,
                           help_text="one separation or delivery; its per-recording events share it, caps count acts")
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="usage")
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="usage")
    stem = models.ForeignKey("jobs.Stem", on_delete=models.PROTECT, null=True, blank=True, related_name="usage")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="usage")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["separation", "download", "export"]), name="usage_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["grant", "recording", "job"], condition=models.Q(kind="separation"),
                name="usage_one_separation_per_job",
            ),
        ]


class LicenseRequest(models.Model):
    """A producer asks a rights holder for a license; the label approves (creating a grant,
    possibly with narrower terms) or denies with a reason."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        WITHDRAWN = "withdrawn"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="license_requests")
    requester_org = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="license_requests")
    rights_holder = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="incoming_requests")
    recordings = models.ManyToManyField(Recording, related_name="license_requests")
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, null=True, blank=True, related_name="license_requests")
    stems = models.JSONField()
    purpose = models.CharField(max_length=32)
    commercial = models.BooleanField(default=False)
    territory = models.CharField(max_length=2)
    message = models.TextField(blank=True, max_length=4000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response = models.TextField(blank=True, max_length=4000)
    grant = models.OneToOneField(LicenseGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="request")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "denied", "withdrawn"]), name="request_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="approved") | models.Q(grant__isnull=False), name="request_approved_has_grant"
            ),
        ]
