from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Upload(models.Model):
    """An uploaded audio file: probe facts, its SHA-256, its fingerprint and identification."""

    class Identification(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="uploads")
    file = models.FileField(max_length=500)
    original_name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    container = models.CharField(max_length=32)
    codec = models.CharField(max_length=32)
    sample_rate = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    bits_per_sample = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_s = models.FloatField()
    peak_dbfs = models.FloatField(null=True, blank=True)
    fingerprint = models.BinaryField(editable=False, help_text="raw Chromaprint items, uint32 little-endian")
    fingerprint_algorithm = models.PositiveSmallIntegerField(default=1)
    fingerprint_variants = models.BinaryField(
        editable=False, default=b"", blank=True,
        help_text="the fingerprint at other speeds, for speed-changed copies (fingerprint.scan.pack_variants)",
    )
    landmarks = models.BinaryField(
        editable=False, default=b"", blank=True,
        help_text="the landmark print for finding catalog songs in mixtures (fingerprint.landmarks.pack_print)",
    )
    identification_status = models.CharField(
        max_length=16, choices=Identification.choices, default=Identification.PENDING
    )
    identification = models.JSONField(default=dict, blank=True, help_text="matches and evidence, for audit")
    identified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gt=0), name="upload_size_positive"),
            models.CheckConstraint(condition=models.Q(duration_s__gt=0), name="upload_duration_positive"),
            models.CheckConstraint(
                condition=models.Q(identification_status__in=["pending", "done", "failed"]),
                name="upload_identification_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.sha256[:12]})"
