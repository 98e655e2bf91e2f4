from django.db import models


class ProvenanceRecord(models.Model):
    """The signed provenance of one stem (a DSSE envelope over RFC 8785 canonical JSON)."""

    stem = models.OneToOneField("jobs.Stem", on_delete=models.PROTECT, related_name="provenance")
    ledger_entry = models.OneToOneField("LedgerEntry", on_delete=models.PROTECT, related_name="provenance_record")
    schema = models.CharField(max_length=64)
    envelope = models.JSONField()
    payload_sha256 = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)


class LedgerState(models.Model):
    """One row: the log's size and frontier. Its row lock serialises appends across processes."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    frontier = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_state_singleton"),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="ledger_state_size_nonnegative"),
        ]


class LedgerEntry(models.Model):
    """An append-only log entry: its canonical JSON body and RFC 9162 leaf hash."""

    class Kind(models.TextChoices):
        STEM = "stem"
        LICENSE_GRANTED = "license_granted"
        LICENSE_AMENDED = "license_amended"
        LICENSE_REVOKED = "license_revoked"
        LICENSE_SUSPENDED = "license_suspended"
        LICENSE_REINSTATED = "license_reinstated"
        DOWNLOAD = "download"
        EXPORT = "export"
        REVIEW_RELEASED = "review_released"
        REVIEW_REFUSED = "review_refused"
        RECORDING_EDITED = "recording_edited"

    index = models.BigIntegerField(primary_key=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject = models.CharField(max_length=80, db_index=True, help_text="what it is about, e.g. stem:<id>")
    body = models.BinaryField()
    leaf_hash = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["index"]
        constraints = [models.CheckConstraint(condition=models.Q(index__gte=0), name="ledger_entry_index_nonnegative")]
        # auditors find an entry by a prefix of its leaf hash: a range scan on this index
        indexes = [models.Index(fields=["leaf_hash"], name="ledger_entry_leaf_hash")]


class LedgerNode(models.Model):
    """Hash of the perfect subtree (level, index), key = level << 56 | index."""

    key = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField()


class TreeHead(models.Model):
    """A signed tree head (and its C2SP checkpoint note)."""

    size = models.BigIntegerField(primary_key=True)
    root_hash = models.BinaryField()
    timestamp = models.BigIntegerField(help_text="milliseconds since the Unix epoch")
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)
    checkpoint = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-size"]


class LedgerVerification(models.Model):
    """One full verification of the ledger (`verify_ledger`): when, by whom, and its verdict.
    Auditors see the latest on the ledger health page."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True, help_text="null while running")
    size = models.BigIntegerField(default=0)
    heads_checked = models.BigIntegerField(default=0)
    first_bad_index = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)
    elapsed_s = models.FloatField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True, help_text="user name, or the command line")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ok__isnull=True) | models.Q(finished_at__isnull=False),
                                   name="ledger_verification_verdict_when_finished"),
        ]
