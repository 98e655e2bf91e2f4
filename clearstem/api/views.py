"""Thin API views: parse, call one service, render. Objects of other organisations are
invisible (404), not merely forbidden."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from clearstem.accounts.models import Organisation
from clearstem.jobs.models import Job, Stem
from clearstem.jobs.services import do_cancel_job, do_create_job, do_export_job
from clearstem.uploads.models import Upload
from clearstem.uploads.services import do_create_upload
from licensing.models import LicenseGrant, Recording
from licensing.services import do_authorize_download, do_create_grant, do_register_recording, do_revoke_grant
from provenance import ledger
from provenance.keys import verification_keys
from provenance.merkle import ProofError
from provenance.models import LedgerEntry
from provenance.services import stem_bundle

from . import serializers as s
from .errors import ApiError


def require_writer(user, kind: str) -> None:
    if user.org_kind != kind or not user.can_write:
        raise ApiError("permission_denied", f"this action is for {kind} organisations with write access", 403)


class ProducerScoped:
    """Producers see their organisation's objects; platform admins see all; others nothing."""

    org_path = "organisation"

    def scoped(self, qs):
        user = self.request.user
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return qs.none()
        if user.is_platform:
            return qs
        if user.is_producer:
            return qs.filter(**{self.org_path: user.organisation})
        return qs.none()


class UploadViewSet(ProducerScoped, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                    viewsets.GenericViewSet):
    serializer_class = s.UploadSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        return self.scoped(Upload.objects.all())

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}})
    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        upload = do_create_upload(request.user, request.FILES.get("file"))
        return Response(self.get_serializer(upload).data, status=status.HTTP_201_CREATED)


class JobViewSet(ProducerScoped, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.JobSerializer
    parser_classes = [JSONParser, FormParser]

    def get_queryset(self):
        return self.scoped(Job.objects.select_related("upload").prefetch_related("stem_files"))

    @extend_schema(request=s.JobCreateSerializer, responses={201: s.JobSerializer})
    def create(self, request):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        body = s.JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upload = Upload.objects.filter(pk=data["upload"], organisation=request.user.organisation).first()
        if upload is None:
            raise ApiError("not_found", "no such upload", 404)
        job = do_create_job(
            request.user, upload, stems=data["stems"], purpose=data["purpose"], commercial=data["commercial"],
            territory=data["territory"], attestation=data.get("attestation"), model=data.get("model"),
        )
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        job = do_cancel_job(self.get_object().pk, request.user)
        return Response(self.get_serializer(job).data)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The job's stems and provenance bundles as one zip (enforced and metered like downloads)."""
        archive = do_export_job(request.user, self.get_object().pk)
        return FileResponse(archive, as_attachment=True, filename=f"clearstem-{pk}.zip", content_type="application/zip")


class StemViewSet(ProducerScoped, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.StemSerializer
    org_path = "job__organisation"

    def get_queryset(self):
        return self.scoped(Stem.objects.select_related("job", "job__upload"))

    @extend_schema(responses={(200, "audio/wav"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        stem = self.get_object()
        do_authorize_download(request.user, stem)
        fh = default_storage.open(stem.file.name, "rb")
        return FileResponse(fh, as_attachment=True, filename=f"{stem.job_id}-{stem.name}.{stem.format}",
                            content_type="audio/wav" if stem.format == "wav" else "audio/flac")

    @action(detail=True, methods=["get"])
    def provenance(self, request, pk=None):
        return Response(stem_bundle(self.get_object()))


class RecordingViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                       viewsets.GenericViewSet):
    serializer_class = s.RecordingSerializer
    parser_classes = [MultiPartParser, JSONParser]

    def get_queryset(self):
        user = self.request.user
        qs = Recording.objects.select_related("rights_holder")
        if getattr(self, "swagger_fake_view", False) or user.is_platform:
            return qs
        if user.is_label:
            return qs.filter(rights_holder=user.organisation)
        return qs.none()

    @extend_schema(request={"multipart/form-data": s.RecordingCreateSerializer}, responses={201: s.RecordingSerializer})
    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.LABEL)
        body = s.RecordingCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        f = body.validated_data["file"]
        if f.size == 0:
            raise ApiError("empty_file", "the uploaded file is empty")
        rec, created = do_register_recording(
            request.user.organisation, f.temporary_file_path(), f.name,
            title=body.validated_data.get("title", ""), artist=body.validated_data.get("artist", ""),
            isrc=body.validated_data.get("isrc") or None,
        )
        return Response(self.get_serializer(rec).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class LicenseViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                     viewsets.GenericViewSet):
    serializer_class = s.LicenseGrantSerializer

    def get_queryset(self):
        user = self.request.user
        qs = LicenseGrant.objects.select_related("licensor", "licensee_org").prefetch_related("recordings")
        if getattr(self, "swagger_fake_view", False) or user.is_platform:
            return qs
        if user.is_label:
            return qs.filter(licensor=user.organisation)
        if user.is_producer:
            return qs.filter(licensee_org=user.organisation) | qs.filter(licensee_user=user)
        return qs.none()

    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.LABEL)
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        recordings = data.pop("recordings")
        licensee_slug = data.pop("licensee", None)
        if licensee_slug:
            org = Organisation.objects.filter(slug=licensee_slug, kind=Organisation.Kind.PRODUCER).first()
            if org is None:
                raise ApiError("unknown_licensee", f"no producer organisation {licensee_slug!r}")
            data["licensee_org"] = org
        grant = do_create_grant(request.user.organisation, recordings, **data)
        return Response(self.get_serializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        require_writer(request.user, Organisation.Kind.LABEL)
        grant = do_revoke_grant(self.get_object().pk, request.user.organisation)
        return Response(self.get_serializer(grant).data)


class LedgerKeysView(APIView):
    """Public verification keys (key id → PEM); old keys stay listed after rotation."""

    permission_classes = []
    authentication_classes = []

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response({"keys": [{"keyid": k, "pem": pem} for k, pem in verification_keys().items()]})


def _int_param(request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError("invalid_range", f"query parameter {name!r} must be an integer") from None
    if value < 0:
        raise ApiError("invalid_range", f"query parameter {name!r} must not be negative")
    return value


class PublicLedgerView(APIView):
    permission_classes = []
    authentication_classes = []


class LedgerTreeHeadView(PublicLedgerView):
    """The signed tree head for the log's current size."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(ledger.tree_head_dict(ledger.current_tree_head()))


class LedgerCheckpointView(PublicLedgerView):
    """The current tree head as a C2SP checkpoint (signed note), text/plain."""

    @extend_schema(responses={(200, "text/plain"): str})
    def get(self, request):
        from django.http import HttpResponse

        return HttpResponse(ledger.current_tree_head().checkpoint, content_type="text/plain; charset=utf-8")


class LedgerConsistencyView(PublicLedgerView):
    """Consistency proof between two tree sizes (RFC 9162 §2.1.4)."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        first, second = _int_param(request, "first"), _int_param(request, "second")
        size = ledger.ledger_size()
        if not first <= second <= size:
            raise ApiError("invalid_range", f"need 0 <= first <= second <= {size}")
        return Response({"first": first, "second": second, "proof": ledger.proof_hex(ledger.consistency(first, second))})


class LedgerInclusionView(PublicLedgerView):
    """Inclusion proof of entry `index` in the tree of `size` entries (RFC 9162 §2.1.3)."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        index, size = _int_param(request, "index"), _int_param(request, "size", ledger.ledger_size())
        if not index < size <= ledger.ledger_size():
            raise ApiError("invalid_range", f"need index < size <= {ledger.ledger_size()}")
        try:
            proof = ledger.inclusion_proof(index, size)
        except ProofError as exc:
            raise ApiError("invalid_range", str(exc)) from exc
        leaf = LedgerEntry.objects.values_list("leaf_hash", flat=True).get(index=index)
        return Response({"index": index, "size": size, "leaf_hash": bytes(leaf).hex(), "proof": ledger.proof_hex(proof)})


class LedgerEntriesView(APIView):
    """Ledger entries [start, end) for auditors (platform organisations); at most 1000 a page."""

    MAX = 1000

    @extend_schema(responses={200: dict})
    def get(self, request):
        if not request.user.is_platform:
            raise ApiError("permission_denied", "ledger entries are for platform auditors", 403)
        start = _int_param(request, "start", 0)
        end = _int_param(request, "end", start + 100)
        if end < start:
            raise ApiError("invalid_range", "end must not be before start")
        end = min(end, start + self.MAX)
        rows = LedgerEntry.objects.filter(index__gte=start, index__lt=end).order_by("index")
        return Response({"start": start, "end": end, "size": ledger.ledger_size(),
                         "entries": [ledger.entry_dict(e) for e in rows]})
