"""The open catalog for producers (`/catalog/`) and the label's catalog edits: versioned
title/artist/ISRC changes (`PATCH /recordings/{id}/`, `/recordings/{id}/revisions/`) and
opening recordings for remix requests (`POST /recordings/offer/`).

A producer asks for a license on catalog recordings with `POST /license-requests/`
(`recordings` = catalog ids) before uploading anything."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation

from clearstem.accounts import scoping as scope
from clearstem.excerpts import excerpt_name
from licensing.engine import PURPOSES, STEM_CHOICES
from licensing.models import Recording, RecordingRevision

from .serializers import CountryCodes, RemixOfferTermsSerializer


class FileNegotiation(DefaultContentNegotiation):
    """The excerpt is a file whatever the client accepts (errors stay JSON)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CatalogRecordingSerializer(serializers.ModelSerializer):
    """A recording open for remix requests, as producers see it."""

    label = serializers.SlugRelatedField(source="rights_holder", slug_field="slug", read_only=True)
    label_name = serializers.CharField(source="rights_holder.name", read_only=True)
    offer = RemixOfferTermsSerializer(source="*", read_only=True)
    excerpt_url = serializers.SerializerMethodField()

    class Meta:
        model = Recording
        fields = ["id", "title", "artist", "isrc", "duration_s", "label", "label_name", "offer", "excerpt_url"]
        read_only_fields = fields

    def get_excerpt_url(self, obj) -> str:
        return f"/api/v1/catalog/{obj.id}/excerpt/"


class CatalogRequestSerializer(serializers.Serializer):
    """A license request on one catalog recording, as the catalog page's form sends it."""

    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), min_length=1,
                                  error_messages={"min_length": "choose at least one stem"})
    purpose = serializers.ChoiceField(choices=PURPOSES)
    commercial = serializers.BooleanField(default=False)
    territory = serializers.RegexField(r"^[A-Za-z]{2}$", error_messages={
        "invalid": "use a two-letter country code (ISO 3166-1 alpha-2) such as GB"})
    message = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class RecordingEditSerializer(serializers.Serializer):
    """A versioned edit: any of title, artist, ISRC; `revision` (optional) is the revision the
    edit was made on (409 `stale_revision` if the recording changed since)."""

    title = serializers.CharField(required=False, max_length=300)
    artist = serializers.CharField(required=False, max_length=300, allow_blank=True)
    isrc = serializers.CharField(required=False, max_length=20, allow_blank=True,
                                 help_text="CC-XXX-YY-NNNNN (hyphens optional); blank removes it")
    revision = serializers.IntegerField(required=False, min_value=1)


class RecordingRevisionSerializer(serializers.ModelSerializer):
    replaced_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RecordingRevision
        fields = ["revision", "title", "artist", "isrc", "replaced_by", "replaced_at"]
        read_only_fields = fields


class RemixOfferSerializer(serializers.Serializer):
    """Open (with the usual terms) or close recordings for remix requests."""

    recordings = serializers.ListField(child=serializers.UUIDField(), required=False, allow_empty=False,
                                       help_text="omit for the whole catalog")
    open = serializers.BooleanField()
    stems = serializers.ListField(child=serializers.ChoiceField(choices=STEM_CHOICES), required=False, default=list)
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=PURPOSES), required=False, default=list)
    commercial = serializers.BooleanField(required=False, default=False)
    territories = CountryCodes(required=False, default=list,
                               help_text="empty: wherever you hold the rights of each recording")

    def validate(self, attrs):
        if attrs["open"] and not (attrs["stems"] and attrs["purposes"]):
            raise serializers.ValidationError({"stems": "name the stems and purposes you usually grant"})
        return attrs


class RemixOfferResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="recordings opened (with these terms) or closed")


class CatalogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recordings labels opened for remix requests: browse, search, hear an excerpt, then ask
    (`POST /license-requests/`). Closed recordings are not found (404)."""

    serializer_class = CatalogRecordingSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Recording.objects.none()
        return scope.visible_catalog(self.request.user, self.request.query_params.get("q", ""))

    @extend_schema(parameters=[OpenApiParameter("q", str, description="search title, artist, ISRC or label")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={(200, "audio/mpeg"): bytes})
    @action(detail=True, methods=["get"], content_negotiation_class=FileNegotiation)
    def excerpt(self, request, pk=None):
        """A few seconds of the recording (stereo MP3) to hear before asking for a license; 404
        `excerpt_unavailable` when its reference audio cannot be read."""
        rec = self.get_object()
        return FileResponse(default_storage.open(excerpt_name(rec), "rb"), content_type="audio/mpeg")
