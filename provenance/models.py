from django.db import models


class ProvenanceRecord(models.Model):
    """The signed provenance of one stem (a DSSE envelope over RFC 8785 canonical JSON)."""

    stem = models.OneToOneField("jobs.Stem", on_delete=models.PROTECT, related_name="provenance")
    schema = models.CharField(max_length=64)
    envelope = models.JSONField()
    payload_sha256 = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
