"""Catalog recordings (owned by label organisations), license grants and usage events."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from .engine import Terms


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

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["rights_holder", "audio_sha256"], name="recording_unique_audio_per_holder"),
        ]

    def __str__(self) -> str:
        return f"{self.title} [{self.isrc or 'no ISRC'}]"


class LicenseGrant(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        REVOKED = "revoked"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
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
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "active", "suspended", "revoked", "expired"]),
                name="grant_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"grant {self.id} v{self.version} ({self.status})"

    def terms(self, separations_used: int = 0, downloads_used: int = 0) -> Terms:
        return Terms(
            grant_id=str(self.id), version=self.version, status=self.status,
            stems=frozenset(self.stems), purposes=frozenset(self.purposes), commercial=self.commercial,
            territories=frozenset(t.upper() for t in self.territories),
            excluded_territories=frozenset(t.upper() for t in self.excluded_territories),
            valid_from=self.valid_from, valid_until=self.valid_until,
            max_separations=self.max_separations, max_downloads=self.max_downloads,
            separations_used=separations_used, downloads_used=downloads_used, attribution=self.attribution,
        )


class UsageEvent(models.Model):
    """One metered use of a grant; caps count these under a row lock on the grant."""

    class Kind(models.TextChoices):
        SEPARATION = "separation"
        DOWNLOAD = "download"
        EXPORT = "export"

    grant = models.ForeignKey(LicenseGrant, on_delete=models.PROTECT, related_name="usage")
    kind = models.CharField(max_length=16, choices=Kind.choices)
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
