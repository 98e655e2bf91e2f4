from __future__ import annotations

from rest_framework import serializers

from clearstem.jobs.models import Job, Stem
from clearstem.uploads.models import Upload
from licensing.engine import PURPOSES, STEM_CHOICES
from licensing.models import LicenseGrant, Recording


class UploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Upload
        fields = [
            "id", "original_name", "size", "sha256", "container", "codec", "sample_rate", "channels",
            "bits_per_sample", "duration_s", "peak_dbfs", "identification_status", "identification",
            "identified_at", "created_at",
        ]


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


class JobSerializer(serializers.ModelSerializer):
    stems = StemSerializer(source="stem_files", many=True, read_only=True)
    requested_stems = serializers.JSONField(source="stems", read_only=True)
    model_fidelity = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "upload", "state", "progress", "requested_stems", "purpose", "commercial", "territory",
            "model", "model_fidelity", "decision", "error_code", "error_message", "attempts", "cancel_requested",
            "created_at", "decided_at", "queued_at", "started_at", "finished_at", "stems",
        ]

    def get_model_fidelity(self, obj) -> str | None:
        from separation.registry import ModelUnavailable, model_info

        try:
            return model_info(obj.model).fidelity
        except ModelUnavailable:
            return None


class AttestationSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
    statement = serializers.CharField(required=False, max_length=2000)


class JobCreateSerializer(serializers.Serializer):
    upload = serializers.UUIDField()
    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), min_length=1)
    purpose = serializers.ChoiceField(choices=PURPOSES)
    commercial = serializers.BooleanField(default=False)
    territory = serializers.RegexField(r"^[A-Za-z]{2}$", help_text="ISO 3166-1 alpha-2 country code")
    attestation = AttestationSerializer(required=False, allow_null=True)
    model = serializers.CharField(required=False, max_length=64)


class RecordingSerializer(serializers.ModelSerializer):
    rights_holder = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Recording
        fields = ["id", "rights_holder", "isrc", "title", "artist", "audio_sha256", "duration_s", "territories", "created_at"]


class RecordingCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    title = serializers.CharField(required=False, max_length=300, allow_blank=True)
    artist = serializers.CharField(required=False, max_length=300, allow_blank=True)
    isrc = serializers.CharField(required=False, max_length=20, allow_blank=True)


class CountryCodes(serializers.ListField):
    child = serializers.RegexField(r"^([A-Za-z]{2})$")


class LicenseGrantSerializer(serializers.ModelSerializer):
    recordings = serializers.PrimaryKeyRelatedField(many=True, queryset=Recording.objects.all())
    licensee_org = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    licensor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    licensee = serializers.CharField(write_only=True, required=False, help_text="producer organisation slug")
    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), min_length=1)
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=PURPOSES), min_length=1)
    territories = CountryCodes(min_length=1)
    excluded_territories = CountryCodes(required=False)
    terms_digest = serializers.SerializerMethodField()

    class Meta:
        model = LicenseGrant
        fields = [
            "id", "licensor", "licensee", "licensee_org", "open_to_verified", "recordings", "version", "stems",
            "purposes", "commercial", "territories", "excluded_territories", "valid_from", "valid_until",
            "max_separations", "max_downloads", "attribution", "revenue_share_pct", "status", "terms_digest",
            "created_at",
        ]
        read_only_fields = ["version", "status", "created_at"]

    def get_terms_digest(self, obj) -> str:
        return obj.terms().digest()

    def validate(self, attrs):
        vf, vu = attrs.get("valid_from"), attrs.get("valid_until")
        if vf and vu and vu <= vf:
            raise serializers.ValidationError({"valid_until": "must be after valid_from"})
        if not attrs.get("licensee") and not attrs.get("open_to_verified"):
            raise serializers.ValidationError({"licensee": "name a producer organisation or set open_to_verified"})
        return attrs
