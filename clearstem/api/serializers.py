from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clearstem.accounts.models import User
from clearstem.jobs.models import Job, JobReview, Stem
from clearstem.uploads.models import Upload
from licensing.engine import PURPOSES, STEM_CHOICES
from licensing.metering import remaining_caps
from licensing.models import LicenseGrant, LicenseRequest, Recording
from separation.registry import ModelUnavailable, model_info
from sharedcore.errors import DomainError
from sharedcore.media import codec_label


class UploadSerializer(serializers.ModelSerializer):
    codec_name = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = [
            "id", "original_name", "size", "sha256", "container", "codec", "codec_name", "sample_rate", "channels",
            "bits_per_sample", "duration_s", "peak_dbfs", "identification_status", "identification",
            "identified_at", "created_at",
        ]
        extra_kwargs = {"codec": {"help_text": "FFmpeg's decoder name (e.g. mp3float); codec_name is for people"}}

    def get_codec_name(self, obj) -> str:
        """The codec as people know it: "MP3", "FLAC", "PCM 24-bit"."""
        return codec_label(obj.codec)


class StemSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    provenance_url = serializers.SerializerMethodField()

    class Meta:
        model = Stem
        fields = ["id", "name", "sha256", "size", "format", "sample_rate", "bits_per_sample", "channels",
                  "duration_s", "download_url", "provenance_url"]

    def get_download_url(self, obj) -> str:
        return f"/api/v1/stems/{obj.id}/download/"

    def get_provenance_url(self, obj) -> str:
        return f"/api/v1/stems/{obj.id}/provenance/"


# --- shapes of JSON the services build (documentation for the schema; nothing is parsed) -----

class ErrorSerializer(serializers.Serializer):
    """Every error of the API: a machine-readable code and a sentence for people."""

    code = serializers.CharField(help_text="machine-readable, e.g. not_found, invalid, throttled")
    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="per-field messages (code invalid)")
    request_id = serializers.CharField(required=False, help_text="server errors: quote it when reporting")


class DecisionReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    reason = serializers.CharField(required=False, help_text="refused_in_review: the rights holder's reason")
    recording = serializers.CharField(required=False, help_text="the recording this reason is about")
    grant = serializers.CharField(required=False)
    title = serializers.CharField(required=False)
    isrc = serializers.CharField(required=False, allow_null=True)
    rights_holder = serializers.CharField(required=False, allow_null=True)


class DecisionGrantSerializer(serializers.Serializer):
    recording = serializers.CharField()
    grant = serializers.CharField(help_text="the license family")
    version = serializers.IntegerField()
    terms_digest = serializers.CharField()


class DecisionVerdictSerializer(serializers.Serializer):
    """A reviewer's verdict on one suspected recording, as the job's decision keeps it."""

    review = serializers.UUIDField()
    recording = serializers.UUIDField()
    title = serializers.CharField()
    isrc = serializers.CharField(allow_null=True)
    rights_holder = serializers.CharField(help_text="organisation slug")
    outcome = serializers.ChoiceField(choices=JobReview.Outcome.choices)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(allow_blank=True)


class DecisionSerializer(serializers.Serializer):
    """The rights decision: allowed or not, on what basis, every reason, the grants that allow
    each identified recording, and the identification it rests on. While the job waits for
    review, `allowed` is null, `pending_review` true and each reason (`review_required`) names
    a suspected recording and its rights holder."""

    allowed = serializers.BooleanField(allow_null=True, help_text="null while the job waits for review")
    basis = serializers.ChoiceField(choices=["license", "attestation", "none"])
    reasons = DecisionReasonSerializer(many=True)
    grants = DecisionGrantSerializer(many=True)
    matches = serializers.ListField(child=serializers.DictField(), help_text="identified recordings (evidence)")
    identification_note = serializers.CharField(allow_null=True, required=False)
    pending_review = serializers.BooleanField(required=False, help_text="true while suspected recordings await review")
    suspects = serializers.ListField(child=serializers.DictField(), required=False,
                                     help_text="recordings suspected below the acceptance threshold (evidence)")
    reviews = DecisionVerdictSerializer(many=True, required=False, help_text="the reviewers' verdicts")


class TreeHeadSerializer(serializers.Serializer):
    schema = serializers.CharField()
    origin = serializers.CharField()
    size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="hex")
    timestamp = serializers.IntegerField(help_text="milliseconds since the Unix epoch")
    key_id = serializers.CharField()
    signature = serializers.CharField()
    checkpoint = serializers.CharField(help_text="the same head as a C2SP checkpoint (signed note)")


class ProvenanceLedgerSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    entry = serializers.CharField(help_text="the ledger entry's body, base64")
    inclusion_proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")
    tree_head = TreeHeadSerializer()


class ProvenanceBundleSerializer(serializers.Serializer):
    """Everything needed to verify a stem offline (`clearstem-verify`)."""

    bundle = serializers.CharField(help_text="bundle format, e.g. clearstem.provenance-bundle/v2")
    stem_id = serializers.UUIDField()
    envelope = serializers.DictField(help_text="the signed provenance record (DSSE envelope)")
    ledger = ProvenanceLedgerSerializer()
    public_keys = serializers.DictField(child=serializers.CharField(), help_text="key id → PEM")


class LedgerKeySerializer(serializers.Serializer):
    keyid = serializers.CharField()
    pem = serializers.CharField()


class LedgerKeysSerializer(serializers.Serializer):
    keys = LedgerKeySerializer(many=True)


class ContentCredentialsTrustSerializer(serializers.Serializer):
    chain = serializers.CharField(help_text="PEM: the certificate chain that signs stems' C2PA manifests, leaf first")
    trust_anchors = serializers.CharField(
        help_text="PEM: the roots our own checks trust (the development CA in the embedded default; empty when "
                  "the chain is anchored in a public C2PA trust list)")


class ConsistencyProofSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")


class InclusionProofSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    size = serializers.IntegerField()
    leaf_hash = serializers.CharField(help_text="hex")
    proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")


class LedgerEntrySerializer(serializers.Serializer):
    index = serializers.IntegerField()
    kind = serializers.CharField()
    subject = serializers.CharField()
    leaf_hash = serializers.CharField(help_text="hex")
    body = serializers.DictField()


class LedgerEntriesSerializer(serializers.Serializer):
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    size = serializers.IntegerField(help_text="entries in the log now")
    entries = LedgerEntrySerializer(many=True)


class UsageRowsSerializer(serializers.Serializer):
    results = serializers.ListField(child=serializers.DictField())


@extend_schema_field(DecisionSerializer(allow_null=True))
class DecisionField(serializers.JSONField):
    """A job's stored decision, documented by DecisionSerializer."""


@extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES)))
class StemListField(serializers.JSONField):
    """A job's requested stems (stored JSON)."""


# --- resources --------------------------------------------------------------------------------

class JobReviewBriefSerializer(serializers.ModelSerializer):
    """A review of the job, as its producer sees it: which recording, whose verdict it awaits."""

    title = serializers.CharField(source="recording.title", read_only=True)
    isrc = serializers.CharField(source="recording.isrc", read_only=True, allow_null=True)
    rights_holder = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rights_holder_name = serializers.CharField(source="rights_holder.name", read_only=True)

    class Meta:
        model = JobReview
        fields = ["id", "recording", "title", "isrc", "rights_holder", "rights_holder_name", "outcome", "decided_at",
                  "note"]
        read_only_fields = fields


class JobReasonSerializer(serializers.Serializer):
    """One reason a job was refused, held for review or stopped."""

    code = serializers.CharField(help_text="machine-readable, e.g. no_license, stem_not_licensed, revoked")
    message = serializers.CharField(help_text="the reason in plain words")
    recording = serializers.CharField(required=False, help_text="the recording this reason is about")
    title = serializers.CharField(required=False)
    isrc = serializers.CharField(required=False, allow_null=True)
    rights_holder = serializers.CharField(required=False, allow_null=True, help_text="organisation slug")
    grant = serializers.CharField(required=False)
    reason = serializers.CharField(required=False, help_text="refused_in_review: the rights holder's reason")


class RenamedFields:
    """Refuses input that uses a field's old name, so old clients fail loudly (400
    `renamed_field`) instead of having the key silently ignored."""

    renamed: dict[str, str] = {}

    def to_internal_value(self, data):
        for old, new in self.renamed.items():
            if isinstance(data, Mapping) and old in data:
                raise DomainError("renamed_field", f"the field {old} was renamed to {new}: send {new} instead",
                                  extra={"field": old, "renamed_to": new})
        return super().to_internal_value(data)


class JobSerializer(serializers.ModelSerializer):
    files = StemSerializer(source="stem_files", many=True, read_only=True,
                           help_text="the stem files the separation produced")
    reasons = serializers.SerializerMethodField()
    reviews = JobReviewBriefSerializer(many=True, read_only=True,
                                       help_text="suspected recordings and their rights holders' verdicts")
    requested_stems = StemListField(source="stems", read_only=True)
    decision = DecisionField(read_only=True)
    model_fidelity = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "upload", "state", "progress", "requested_stems", "purpose", "commercial", "territory",
            "model", "model_fidelity", "decision", "reasons", "error_code", "error_message", "attempts",
            "cancel_requested", "created_at", "decided_at", "queued_at", "started_at", "finished_at", "files", "reviews",
        ]
        extra_kwargs = {"error_code": {"help_text": "the first reason's code (see reasons)"}}

    @extend_schema_field(JobReasonSerializer(many=True))
    def get_reasons(self, obj) -> list[dict]:
        """Every reason, not only the first (`error_code`)."""
        return obj.reasons()

    def get_model_fidelity(self, obj) -> str | None:
        try:
            return model_info(obj.model, settings.CLEARSTEM_MODEL_DIR).fidelity
        except ModelUnavailable:
            return None


class AttestationSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
    statement = serializers.CharField(required=False, max_length=2000)


class JobCreateSerializer(RenamedFields, serializers.Serializer):
    renamed = {"stems": "requested_stems"}

    upload = serializers.UUIDField()
    requested_stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), min_length=1,
                                            error_messages={"min_length": "choose at least one stem"})
    purpose = serializers.ChoiceField(choices=PURPOSES)
    commercial = serializers.BooleanField(default=False)
    territory = serializers.RegexField(r"^[A-Za-z]{2}$", help_text="ISO 3166-1 alpha-2 country code",
                                       error_messages={"invalid": "use a two-letter country code (ISO 3166-1 alpha-2) such as GB"})
    attestation = AttestationSerializer(required=False, allow_null=True)
    model = serializers.CharField(required=False, max_length=64)


class RemixOfferTermsSerializer(serializers.Serializer):
    """What the label usually grants for a recording open for remix requests."""

    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), source="offer_stems")
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=PURPOSES), source="offer_purposes")
    commercial = serializers.BooleanField(source="offer_commercial")
    territories = serializers.ListField(child=serializers.CharField(), source="offer_territories",
                                        help_text="ISO 3166-1 alpha-2 codes, or WW for worldwide")


class RecordingSerializer(serializers.ModelSerializer):
    rights_holder = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    offer = RemixOfferTermsSerializer(source="*", read_only=True,
                                      help_text="the usual terms, when open_for_requests (see /recordings/offer/)")

    class Meta:
        model = Recording
        fields = ["id", "rights_holder", "isrc", "title", "artist", "audio_sha256", "duration_s", "territories",
                  "revision", "open_for_requests", "offer", "created_at"]
        read_only_fields = ["revision", "open_for_requests"]


COUNTRY_CODE_ERROR = "use two-letter country codes (ISO 3166-1 alpha-2) such as GB, or WW for worldwide"


class CountryCodes(serializers.ListField):
    child = serializers.RegexField(r"^([A-Za-z]{2})$", error_messages={"invalid": COUNTRY_CODE_ERROR})


class RecordingCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    territories = CountryCodes(required=False, min_length=1,
                               help_text='where you hold the rights (ISO 3166-1 alpha-2), default ["WW"] worldwide')
    title = serializers.CharField(required=False, max_length=300, allow_blank=True)
    artist = serializers.CharField(required=False, max_length=300, allow_blank=True)
    isrc = serializers.CharField(required=False, max_length=20, allow_blank=True)


class GrantStatusField(serializers.ChoiceField):
    """In: how a grant starts, draft or active. Out: its real status, any of LicenseGrant.Status
    (the schema documents the two directions apart: clearstem.api.schema)."""

    def __init__(self, **kwargs):
        super().__init__(choices=[LicenseGrant.Status.DRAFT, LicenseGrant.Status.ACTIVE], **kwargs)


class LicenseGrantSerializer(serializers.ModelSerializer):
    recordings = serializers.PrimaryKeyRelatedField(many=True, queryset=Recording.objects.all(), allow_empty=False,
                                                    error_messages={"empty": "choose at least one recording"})
    licensee_org = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    licensor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    licensee = serializers.CharField(write_only=True, required=False, help_text="producer organisation slug")
    licensee_user = serializers.SlugRelatedField(
        slug_field="username", required=False, allow_null=True,
        queryset=User.objects.filter(organisation__kind="producer"),
        help_text="license one named producer user (their e-mail) instead of a whole organisation")
    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), min_length=1,
                                  error_messages={"min_length": "choose at least one stem"})
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=PURPOSES), min_length=1,
                                     error_messages={"min_length": "choose at least one purpose"})
    territories = CountryCodes(min_length=1, error_messages={"min_length": "name at least one territory (WW for worldwide)"})
    excluded_territories = CountryCodes(required=False)
    terms_digest = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    status = GrantStatusField(default="active", help_text="create as a draft, or active at once; then the grant's status")

    class Meta:
        model = LicenseGrant
        fields = [
            "id", "family", "version", "previous", "licensor", "licensee", "licensee_org", "licensee_user",
            "open_to_verified",
            "recordings", "stems", "purposes", "commercial", "territories", "excluded_territories", "valid_from",
            "valid_until", "max_separations", "max_downloads", "max_separations_per_user", "max_downloads_per_user",
            "attribution", "revenue_share_pct", "status", "terms_digest", "remaining", "created_at",
            "status_changed_at",
        ]
        read_only_fields = ["family", "version", "previous", "created_at", "status_changed_at"]
        # family/version are the service's to assign; the database enforces their uniqueness
        validators = []

    def get_terms_digest(self, obj) -> str:
        return obj.terms().digest()

    def get_remaining(self, obj) -> dict | None:
        """Caps left, for the licensee looking at its own grant (computed for the whole page at
        once by the view, see `remaining_caps_many`)."""
        request = self.context.get("request")
        if request is None or not request.user.is_producer or obj.status == "superseded":
            return None
        caps = self.context.get("remaining_caps")
        return caps[obj.id] if caps is not None and obj.id in caps else remaining_caps(obj, request.user)

    def to_representation(self, obj):
        data = super().to_representation(obj)
        # the real status, derived from the validity window too (scheduled, expired); the input
        # field only offers draft/active
        data["status"] = obj.current_status
        return data

    def validate(self, attrs):
        vf, vu = attrs.get("valid_from"), attrs.get("valid_until")
        if vf and vu and vu <= vf:
            raise serializers.ValidationError({"valid_until": "must be after valid_from"})
        if not self.partial and not (attrs.get("licensee") or attrs.get("licensee_user") or attrs.get("open_to_verified")):
            raise serializers.ValidationError(
                {"licensee": "name a producer organisation, a producer user (licensee_user) or set open_to_verified"})
        return attrs


class LicenseAmendSerializer(LicenseGrantSerializer):
    """An amendment: any subset of the terms; the rest carry over from the current version."""

    licensee = None  # who is licensed does not change by amendment
    licensee_user = None
    status = None

    class Meta(LicenseGrantSerializer.Meta):
        fields = [f for f in LicenseGrantSerializer.Meta.fields
                  if f not in ("licensee", "licensee_user", "status", "open_to_verified")]


class LicenseRequestSerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                             help_text="the producer user who asked (their e-mail)")
    requester_org = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rights_holder = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = LicenseRequest
        fields = ["id", "requester", "requester_org", "rights_holder", "recordings", "job", "stems", "purpose",
                  "commercial", "territory", "message", "status", "response", "grant", "created_at", "decided_at"]
        read_only_fields = fields


class LicenseRequestCreateSerializer(serializers.Serializer):
    job = serializers.UUIDField(required=False, help_text="a job denied for lack of a license: fills in the rest")
    recordings = serializers.ListField(child=serializers.UUIDField(), required=False)
    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), required=False, min_length=1)
    purpose = serializers.ChoiceField(choices=PURPOSES, required=False)
    commercial = serializers.BooleanField(required=False, allow_null=True, default=None)
    territory = serializers.RegexField(r"^[A-Za-z]{2}$", required=False)
    message = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class LicenseApproveSerializer(serializers.Serializer):
    """Optional narrower terms; anything omitted is what the producer asked for."""

    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), required=False, min_length=1,
                                  error_messages={"min_length": "keep at least one stem (or deny the request)"})
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=PURPOSES), required=False, min_length=1,
                                     error_messages={"min_length": "keep at least one purpose (or deny the request)"})
    commercial = serializers.BooleanField(required=False, allow_null=True, default=None)
    territories = CountryCodes(required=False, min_length=1)
    valid_until = serializers.DateTimeField(required=False)
    max_separations = serializers.IntegerField(required=False, min_value=0)
    max_downloads = serializers.IntegerField(required=False, min_value=0)
    max_separations_per_user = serializers.IntegerField(required=False, min_value=0)
    max_downloads_per_user = serializers.IntegerField(required=False, min_value=0)
    attribution = serializers.CharField(required=False, max_length=500)
    revenue_share_pct = serializers.DecimalField(required=False, max_digits=5, decimal_places=2, min_value=0, max_value=100)
    response = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class LicenseDenySerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


@extend_schema_field({"type": "object", "additionalProperties": True, "properties": {
    "source": {"type": "string", "enum": ["landmarks", "chromaprint"]},
    "score": {"type": "number", "minimum": 0, "maximum": 1},
    "reason": {"type": "string"}, "query_start_s": {"type": "number"}, "query_end_s": {"type": "number"},
    "ref_start_s": {"type": "number"}}})
class EvidenceField(serializers.JSONField):
    """What identification found of the suspected recording (stored JSON; more fields may follow)."""


class JobReviewSerializer(serializers.ModelSerializer):
    """A suspected recording of a job, the evidence, and the rights holder's verdict."""

    job_state = serializers.CharField(source="job.state", read_only=True)
    producer = serializers.SlugRelatedField(source="job.organisation", slug_field="slug", read_only=True,
                                            help_text="the producer organisation whose job it is")
    upload_sha256 = serializers.CharField(source="job.upload.sha256", read_only=True)
    title = serializers.CharField(source="recording.title", read_only=True)
    artist = serializers.CharField(source="recording.artist", read_only=True)
    isrc = serializers.CharField(source="recording.isrc", read_only=True, allow_null=True)
    rights_holder = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rights_holder_name = serializers.CharField(source="rights_holder.name", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    evidence = EvidenceField(read_only=True)
    awaiting = serializers.SerializerMethodField()

    class Meta:
        model = JobReview
        fields = ["id", "job", "job_state", "producer", "upload_sha256", "recording", "title", "artist", "isrc",
                  "rights_holder", "rights_holder_name", "evidence", "outcome", "awaiting", "decided_by",
                  "decided_at", "note", "created_at"]
        read_only_fields = fields

    def get_awaiting(self, obj) -> bool:
        """Pending and its job still in review: someone has to decide it."""
        return obj.outcome == JobReview.Outcome.PENDING and obj.job.state == Job.State.REVIEW


class ReviewReleaseSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="",
                                 help_text="optional; the producer sees it")


class ReviewRefuseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="",
                                   help_text="required: why the job is refused (the producer sees it); "
                                             "missing or blank answers 400 reason_required")


class FoundStemSerializer(serializers.Serializer):
    stem = serializers.UUIDField()
    name = serializers.CharField()
    job = serializers.UUIDField()
    organisation = serializers.CharField(help_text="the producer organisation that made it")
    upload_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    evidence = serializers.ListField(child=serializers.ChoiceField(["sha256", "content_credentials", "sound"]),
                                     help_text="how the file leads to this stem, strongest first")
    sound = serializers.DictField(allow_null=True, help_text="the landmark match: score, segment in the file and "
                                                             "in the stem, aligned hashes, and the `view` of the file "
                                                             "it was found in (None unless found by sound)")
    basis = serializers.CharField(allow_null=True, help_text="license | attestation")
    grants = serializers.ListField(child=serializers.DictField(), help_text="license id, version, terms digest, recording")
    provenance_url = serializers.CharField()
    audit_url = serializers.CharField()


class AuditFindSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    seconds = serializers.FloatField(help_text="length of the audio sent")
    sound_views = serializers.ListField(child=serializers.CharField(),
                                        help_text="what was matched by sound: the file itself (mix) and its separated "
                                                  "parts (vocals, drums, bass, other; none for long files)")
    content_credentials = serializers.DictField(help_text="found, state (Trusted/Valid/Invalid), binding_ok, stem, problem")
    stems = FoundStemSerializer(many=True)
