"""Thin API views: parse, call one service, render. Objects of other organisations are
invisible (404), not merely forbidden."""
from __future__ import annotations

import csv
import io

from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from clearstem.accounts import scoping as scope
from clearstem.accounts.models import Organisation
from clearstem.jobs.delivery import do_deliver_stem, do_export_job
from clearstem.jobs.models import Job, JobReview, Stem
from clearstem.jobs.renditions import delivery_name
from clearstem.jobs.reviews import do_refuse_review, do_release_review
from clearstem.jobs.services import do_cancel_job, do_create_job, do_request_licenses
from clearstem.jobs.stem_prints import find_stems_by_file
from clearstem.uploads.models import Upload
from clearstem.uploads.services import do_create_upload
from fingerprint.catalog import do_register_recording, do_remove_recording
from licensing import grants, reports
from licensing import requests as license_requests
from licensing.catalog import do_edit_recording, do_set_remix_offer
from licensing.metering import remaining_caps_many
from licensing.models import LicenseGrant, LicenseRequest, Recording
from licensing.odrl import to_odrl
from provenance import ledger
from provenance.keys import c2pa_credentials, verification_keys
from provenance.merkle import ProofError
from provenance.models import LedgerEntry
from provenance.services import stem_bundle
from sharedcore.errors import DomainError, NotFound, PermissionDenied
from sharedcore.media import DELIVERY_FORMATS

from . import catalog as catalog_api
from . import serializers as s
from .parsers import FormParser, JSONParser, MultiPartParser

#: Responses of file uploads beyond the common errors (clearstem.api.schema): too large, not
#: audio, audio that cannot be used.
UPLOAD_ERRORS = {413: s.ErrorSerializer, 415: s.ErrorSerializer, 422: s.ErrorSerializer}


def require_writer(user, kind: str) -> None:
    if user.org_kind != kind or not user.can_write:
        raise PermissionDenied("permission_denied", f"this action is for {kind} organisations with write access")


def schema_generation(view) -> bool:
    """drf-spectacular builds the schema with no user: it gets empty querysets."""
    return getattr(view, "swagger_fake_view", False)


class AudioFormatNegotiation(DefaultContentNegotiation):
    """On deliveries `?format=` names the audio format (wav, flac, mp3...), not a DRF renderer;
    responses are files, and errors JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


FORMAT_PARAMETER = OpenApiParameter(
    "format", str, enum=list(DELIVERY_FORMATS),
    description="wav (the master's bit depth, the default), wav16, wav24, flac (the master's depth) or mp3 (320 kb/s)")


class UploadViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                    viewsets.GenericViewSet):
    serializer_class = s.UploadSerializer
    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"

    def get_queryset(self):
        return Upload.objects.none() if schema_generation(self) else scope.visible_uploads(self.request.user)

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                                    "required": ["file"]}},
                   responses={201: s.UploadSerializer, **UPLOAD_ERRORS})
    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        upload = do_create_upload(request.user, request.FILES.get("file"))
        return Response(self.get_serializer(upload).data, status=status.HTTP_201_CREATED)


class JobViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.JobSerializer
    parser_classes = [JSONParser, FormParser]
    throttle_scope = "jobs"

    def get_queryset(self):
        if schema_generation(self):
            return Job.objects.none()
        return scope.visible_jobs(self.request.user).prefetch_related(
            "stem_files", Prefetch("reviews", JobReview.objects.select_related("recording", "rights_holder")))

    @extend_schema(request=s.JobCreateSerializer, responses={201: s.JobSerializer})
    def create(self, request):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        body = s.JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upload = Upload.objects.filter(pk=data["upload"], organisation=request.user.organisation).first()
        if upload is None:
            raise NotFound("not_found", "no such upload")
        job = do_create_job(
            request.user, upload, stems=data["requested_stems"], purpose=data["purpose"], commercial=data["commercial"],
            territory=data["territory"], attestation=data.get("attestation"), model=data.get("model"),
        )
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.PRODUCER)
        job = do_cancel_job(job_id, request.user)
        return Response(self.get_serializer(job).data)

    @extend_schema(responses={(200, "application/zip"): bytes}, parameters=[FORMAT_PARAMETER])
    @action(detail=True, methods=["get"], content_negotiation_class=AudioFormatNegotiation)
    def export(self, request, pk=None):
        """The job's stems (in `?format=`, each with its content credentials) and provenance
        bundles as one zip (enforced and metered like downloads)."""
        archive = do_export_job(request.user, self.get_object().pk, request.query_params.get("format"))
        return FileResponse(archive, as_attachment=True, filename=f"clearstem-{pk}.zip", content_type="application/zip")


class StemViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.StemSerializer

    def get_queryset(self):
        return Stem.objects.none() if schema_generation(self) else scope.visible_stems(self.request.user)

    @extend_schema(responses={(200, "audio/wav"): bytes, (200, "audio/flac"): bytes, (200, "audio/mpeg"): bytes},
                   parameters=[FORMAT_PARAMETER])
    @action(detail=True, methods=["get"], content_negotiation_class=AudioFormatNegotiation)
    def download(self, request, pk=None):
        """The stem in `?format=` with its C2PA content credentials embedded; metered, and
        ledgered with the delivered file's SHA-256 (also in the `X-Content-SHA256` header)."""
        stem = self.get_object()
        rendition = do_deliver_stem(request.user, stem, request.query_params.get("format"))
        resp = FileResponse(default_storage.open(rendition.file.name, "rb"), as_attachment=True,
                            filename=delivery_name(stem, rendition.format),
                            content_type=DELIVERY_FORMATS[rendition.format][2])
        resp["X-Content-SHA256"] = rendition.sha256
        return resp

    @extend_schema(responses={200: s.ProvenanceBundleSerializer})
    @action(detail=True, methods=["get"])
    def provenance(self, request, pk=None):
        return Response(stem_bundle(self.get_object()))


class RecordingViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                       mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = s.RecordingSerializer
    parser_classes = [MultiPartParser, JSONParser]
    throttle_scope = "uploads"

    def get_queryset(self):
        return Recording.objects.none() if schema_generation(self) else scope.visible_recordings(self.request.user)

    @extend_schema(request={"multipart/form-data": s.RecordingCreateSerializer},
                   responses={201: s.RecordingSerializer, 200: s.RecordingSerializer, **UPLOAD_ERRORS})
    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.LABEL)
        body = s.RecordingCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        f = body.validated_data["file"]
        if f.size == 0:
            raise DomainError("empty_file", "the uploaded file is empty")
        rec, created = do_register_recording(
            request.user.organisation, f.temporary_file_path(), f.name,
            title=body.validated_data.get("title", ""), artist=body.validated_data.get("artist", ""),
            isrc=body.validated_data.get("isrc") or None,
            territories=[t.upper() for t in body.validated_data.get("territories", ["WW"])],
        )
        return Response(self.get_serializer(rec).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def destroy(self, request, *args, **kwargs):
        rec = self.get_object()
        require_writer(request.user, Organisation.Kind.LABEL)
        do_remove_recording(request.user.organisation, rec.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=catalog_api.RecordingEditSerializer, responses={200: s.RecordingSerializer})
    def partial_update(self, request, *args, **kwargs):
        """Edit title, artist and/or ISRC as a new revision (old values kept, the edit ledgered)."""
        rec_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.LABEL)
        body = catalog_api.RecordingEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        rec = do_edit_recording(rec_id, request.user.organisation, request.user,
                                expected_revision=data.pop("revision", None), **data)
        return Response(self.get_serializer(rec).data)

    @extend_schema(responses={200: catalog_api.RecordingRevisionSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def revisions(self, request, pk=None):
        """Earlier titles, artists and ISRCs, newest first."""
        rec = self.get_object()
        return Response(catalog_api.RecordingRevisionSerializer(rec.revisions.select_related("replaced_by"),
                                                                many=True).data)

    @extend_schema(request=catalog_api.RemixOfferSerializer, responses={200: catalog_api.RemixOfferResultSerializer})
    @action(detail=False, methods=["post"])
    def offer(self, request):
        """Open recordings (or, without `recordings`, the whole catalog) for remix requests with
        the terms you usually grant, or close them."""
        require_writer(request.user, Organisation.Kind.LABEL)
        body = catalog_api.RemixOfferSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        changed = do_set_remix_offer(request.user.organisation, data.pop("recordings", None), **data)
        return Response({"changed": changed})


def csv_response(rows: list[dict], filename: str, fieldnames: list[str] | None = None):
    """Rows as a CSV attachment; with `fieldnames` the header is written even when empty."""
    out = io.StringIO()
    fieldnames = fieldnames or (list(rows[0]) if rows else None)
    if fieldnames:
        writer = csv.DictWriter(out, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    resp = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


class LicenseViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                     viewsets.GenericViewSet):
    """Labels grant, amend, suspend, reinstate and revoke; licensees see their grants and the
    caps they have left. Every version is listed (`?current=true` hides superseded ones)."""

    serializer_class = s.LicenseGrantSerializer

    def get_queryset(self):
        if schema_generation(self):
            return LicenseGrant.objects.none()
        current = self.request.query_params.get("current") in ("1", "true")
        return scope.visible_grants(self.request.user, current_only=current)

    @extend_schema(parameters=[OpenApiParameter("current", bool, description="true: hide superseded versions")])
    def list(self, request, *args, **kwargs):
        """A page of grants; the licensee's caps left are counted for the whole page at once."""
        grants_page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = self.get_serializer_context()
        if request.user.is_producer:
            context["remaining_caps"] = remaining_caps_many(grants_page, request.user)
        data = self.get_serializer_class()(grants_page, many=True, context=context).data
        return self.get_paginated_response(data)

    def _licensee_terms(self, data: dict) -> dict:
        licensee_slug = data.pop("licensee", None)
        if licensee_slug:
            org = Organisation.objects.filter(slug=licensee_slug, kind=Organisation.Kind.PRODUCER).first()
            if org is None:
                raise DomainError("unknown_licensee", f"no producer organisation {licensee_slug!r}")
            data["licensee_org"] = org
        return data

    def _label_action(self, fn, **kwargs):
        grant_id = self.get_object().pk  # invisible objects are 404 before anything else
        require_writer(self.request.user, Organisation.Kind.LABEL)
        grant = fn(grant_id, self.request.user.organisation, **kwargs)
        return Response(self.get_serializer(grant).data)

    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.LABEL)
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = self._licensee_terms(dict(body.validated_data))
        recordings = data.pop("recordings")
        grant = grants.do_create_grant(request.user.organisation, recordings, **data)
        return Response(self.get_serializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._label_action(grants.do_activate_grant)

    @extend_schema(request=s.LicenseAmendSerializer, responses={201: s.LicenseGrantSerializer})
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """A new version with the changed terms; the current one is superseded."""
        grant_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.LABEL)
        body = s.LicenseAmendSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        grant = grants.do_amend_grant(grant_id, request.user.organisation, **dict(body.validated_data))
        return Response(self.get_serializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        return self._label_action(grants.do_suspend_grant)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reinstate(self, request, pk=None):
        return self._label_action(grants.do_reinstate_grant)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self._label_action(grants.do_revoke_grant)

    @extend_schema(responses={(200, "application/ld+json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def odrl(self, request, pk=None):
        """The grant as an ODRL 2.2 Agreement (JSON-LD)."""
        grant = self.get_object()
        doc = to_odrl(grant.terms(), assigner=grant.licensor.slug,
                      assignee=grant.licensee_org.slug if grant.licensee_org_id else None,
                      recordings=[{"id": str(r.id), "isrc": r.isrc} for r in grant.recordings.order_by("id")])
        return Response(doc, content_type="application/ld+json")

    @extend_schema(responses={200: s.UsageRowsSerializer, (200, "text/csv"): OpenApiTypes.STR},
                   parameters=[OpenApiParameter("export", str, enum=["csv"], description="csv: the rows as CSV")])
    @action(detail=True, methods=["get"])
    def usage(self, request, pk=None):
        """Usage of this license version per recording; `?export=csv` for CSV."""
        rows = reports.usage_rows([self.get_object()])
        if request.query_params.get("export") == "csv":
            return csv_response(rows, f"license-{pk}-usage.csv")
        return Response({"results": rows})

    @extend_schema(responses={200: s.UsageRowsSerializer, (200, "text/csv"): OpenApiTypes.STR},
                   parameters=[OpenApiParameter("export", str, enum=["csv"], description="csv: the rows as CSV")])
    @action(detail=False, methods=["get"], url_path="usage-report")
    def usage_report(self, request):
        """Usage of every visible license per version and recording; `?export=csv` for CSV."""
        rows = reports.usage_rows(self.get_queryset())
        if request.query_params.get("export") == "csv":
            return csv_response(rows, "license-usage.csv")
        return Response({"results": rows})


class LicenseRequestViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                            viewsets.GenericViewSet):
    """Producers ask (in one call from a denied job); the rights holder approves — creating a
    grant, possibly narrower — or denies with a reason; the producer sees the outcome."""

    serializer_class = s.LicenseRequestSerializer
    throttle_scope = "license-requests"

    def get_queryset(self):
        if schema_generation(self):
            return LicenseRequest.objects.none()
        return scope.visible_license_requests(self.request.user)

    @extend_schema(request=s.LicenseRequestCreateSerializer, responses={201: s.LicenseRequestSerializer(many=True)})
    def create(self, request, *args, **kwargs):
        require_writer(request.user, Organisation.Kind.PRODUCER)
        body = s.LicenseRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        job = None
        if data.get("job"):
            job = Job.objects.filter(pk=data.pop("job"), organisation=request.user.organisation).first()
            if job is None:
                raise NotFound("not_found", "no such job")
        reqs = do_request_licenses(request.user, job=job, recordings=data.pop("recordings", None), **{
            k: data.get(k) for k in ("stems", "purpose", "commercial", "territory", "message")})
        return Response(self.get_serializer(reqs, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.LicenseApproveSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        request_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.LABEL)
        body = s.LicenseApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        req = license_requests.do_approve_license_request(request_id, request.user.organisation, **body.validated_data)
        return Response(self.get_serializer(req).data)

    @extend_schema(request=s.LicenseDenySerializer)
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        request_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.LABEL)
        body = s.LicenseDenySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        req = license_requests.do_deny_license_request(request_id, request.user.organisation, body.validated_data["reason"])
        return Response(self.get_serializer(req).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        request_id = self.get_object().pk
        require_writer(request.user, Organisation.Kind.PRODUCER)
        req = license_requests.do_withdraw_license_request(request_id, request.user.organisation)
        return Response(self.get_serializer(req).data)


REVIEW_OUTCOMES = [o.value for o in JobReview.Outcome]


class ReviewViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Suspected recordings of jobs held for review. The rights holder (and platform staff)
    release — the recording is judged not present, and the job is decided on what
    identification accepted — or refuse, which denies the job with the reason. Producers see
    the reviews of their own jobs, read-only."""

    serializer_class = s.JobReviewSerializer
    parser_classes = [JSONParser, FormParser]

    def get_queryset(self):
        if schema_generation(self):
            return JobReview.objects.none()
        qs = scope.visible_reviews(self.request.user)
        if self.action != "list":
            return qs
        outcome = self.request.query_params.get("outcome")
        if outcome is None:
            return qs
        if outcome not in REVIEW_OUTCOMES:
            raise DomainError("invalid", f"outcome must be one of {REVIEW_OUTCOMES}")
        return qs.awaiting() if outcome == JobReview.Outcome.PENDING else qs.filter(outcome=outcome)

    @extend_schema(parameters=[OpenApiParameter(
        "outcome", str, enum=REVIEW_OUTCOMES,
        description="pending: awaiting a decision (its job still in review); released or refused: decided so")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.ReviewReleaseSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """The suspected recording is not in the upload: once every review of the job is
        released, the job is decided (and queued when cleared)."""
        review_id = self.get_object().pk
        body = s.ReviewReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = do_release_review(review_id, request.user, body.validated_data["note"])
        return Response(self.get_serializer(self.get_queryset().get(pk=review.pk)).data)

    @extend_schema(request=s.ReviewRefuseSerializer)
    @action(detail=True, methods=["post"])
    def refuse(self, request, pk=None):
        """The suspected recording is in the upload: the job is denied (`refused_in_review`)."""
        review_id = self.get_object().pk
        body = s.ReviewRefuseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = do_refuse_review(review_id, request.user, body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=review.pk)).data)


class LedgerKeysView(APIView):
    """Public verification keys (key id → PEM); old keys stay listed after rotation."""

    permission_classes = []
    authentication_classes = []

    @extend_schema(responses={200: s.LedgerKeysSerializer})
    def get(self, request):
        return Response({"keys": [{"keyid": k, "pem": pem} for k, pem in verification_keys().items()]})


class AuditFindView(APIView):
    """Find the stems a file found in the wild came from: by its bytes, its content credentials
    or its sound (a re-encode, an excerpt, a stem under other audio), among the stems the caller
    may trace (platform: all; labels: made under their licenses; producers: their own)."""

    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                                    "required": ["file"]}},
                   responses={200: s.AuditFindSerializer, **UPLOAD_ERRORS})
    def post(self, request):
        found = find_stems_by_file(scope.findable_stems(request.user), request.FILES.get("file"))
        return Response(present_findings(request, found))


def present_findings(request, found) -> dict:
    sound = {m.stem.pk: m.evidence for m in found.sound}
    exact = {s.pk for s in found.exact}
    creds = found.credentials
    rows = []
    for stem in found.stems():
        decision = stem.job.decision or {}
        evidence = [k for k, hit in (("sha256", stem.pk in exact), ("sound", stem.pk in sound),
                                     ("content_credentials", found.credentials_stem is not None
                                      and found.credentials_stem.pk == stem.pk)) if hit]
        rows.append({
            "stem": stem.pk, "name": stem.name, "job": stem.job_id, "organisation": stem.job.organisation.slug,
            "upload_sha256": stem.job.upload.sha256, "created_at": stem.created_at,
            "evidence": sorted(evidence, key=["sha256", "content_credentials", "sound"].index),
            "sound": sound.get(stem.pk), "basis": decision.get("basis"), "grants": decision.get("grants", []),
            "provenance_url": request.build_absolute_uri(f"/api/v1/stems/{stem.pk}/provenance/"),
            "audit_url": request.build_absolute_uri(f"/audit/stems/{stem.pk}/"),
        })
    return {"sha256": found.sha256, "seconds": round(found.seconds, 3), "stems": rows,
            "sound_views": ["mix", *sorted(found.views)],
            "content_credentials": {
                "found": bool(creds and creds.found), "state": creds.state if creds else None,
                "binding_ok": creds.binding_ok if creds else None,
                "stem": found.credentials_stem.pk if found.credentials_stem else None,
                "problem": creds.problem if creds else ""}}


class ContentCredentialsTrustView(APIView):
    """The certificates behind the C2PA manifests in delivered stems: give `trust_anchors` to a
    C2PA reader (or `python -m provenance.verify --c2pa-trust`) to see stems as Trusted."""

    permission_classes = []
    authentication_classes = []

    @extend_schema(responses={200: s.ContentCredentialsTrustSerializer})
    def get(self, request):
        creds = c2pa_credentials()
        return Response({"chain": creds.chain_pem, "trust_anchors": creds.trust_anchors_pem})


#: The largest value an integer query parameter may take (PostgreSQL's bigint).
MAX_INT_PARAM = 2**63 - 1


def _int_param(request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    if raw is None:
        raise DomainError("invalid_range", f"query parameter {name!r} is required")
    try:
        value = int(raw)
    except ValueError:
        raise DomainError("invalid_range", f"query parameter {name!r} must be an integer") from None
    if not 0 <= value <= MAX_INT_PARAM:
        raise DomainError("invalid_range", f"query parameter {name!r} must be between 0 and {MAX_INT_PARAM}")
    return value


def _int_params(*specs: tuple[str, bool, str]) -> list[OpenApiParameter]:
    """Schema of integer query parameters: (name, required, description)."""
    return [OpenApiParameter(name, int, required=required, description=description)
            for name, required, description in specs]


class PublicLedgerView(APIView):
    permission_classes = []
    authentication_classes = []


class LedgerTreeHeadView(PublicLedgerView):
    """The signed tree head for the log's current size."""

    @extend_schema(responses={200: s.TreeHeadSerializer})
    def get(self, request):
        return Response(ledger.tree_head_dict(ledger.current_tree_head()))


class LedgerCheckpointView(PublicLedgerView):
    """The current tree head as a C2SP checkpoint (signed note), text/plain."""

    @extend_schema(responses={(200, "text/plain"): str})
    def get(self, request):
        return HttpResponse(ledger.current_tree_head().checkpoint, content_type="text/plain; charset=utf-8")


class LedgerConsistencyView(PublicLedgerView):
    """Consistency proof between two tree sizes (RFC 9162 §2.1.4)."""

    @extend_schema(responses={200: s.ConsistencyProofSerializer}, parameters=_int_params(
        ("first", True, "the earlier tree size"), ("second", True, "the later tree size, at most the log's size")))
    def get(self, request):
        first, second = _int_param(request, "first"), _int_param(request, "second")
        size = ledger.ledger_size()
        if not first <= second <= size:
            raise DomainError("invalid_range", f"need 0 <= first <= second <= {size}")
        return Response({"first": first, "second": second, "proof": ledger.proof_hex(ledger.consistency(first, second))})


class LedgerInclusionView(PublicLedgerView):
    """Inclusion proof of entry `index` in the tree of `size` entries (RFC 9162 §2.1.3)."""

    @extend_schema(responses={200: s.InclusionProofSerializer}, parameters=_int_params(
        ("index", True, "the entry's index"), ("size", False, "the tree size (default: the log's size)")))
    def get(self, request):
        index, size = _int_param(request, "index"), _int_param(request, "size", ledger.ledger_size())
        if not index < size <= ledger.ledger_size():
            raise DomainError("invalid_range", f"need index < size <= {ledger.ledger_size()}")
        try:
            proof = ledger.inclusion_proof(index, size)
        except ProofError as exc:
            raise DomainError("invalid_range", str(exc)) from exc
        leaf = LedgerEntry.objects.values_list("leaf_hash", flat=True).get(index=index)
        return Response({"index": index, "size": size, "leaf_hash": bytes(leaf).hex(), "proof": ledger.proof_hex(proof)})


class LedgerEntriesView(APIView):
    """Ledger entries [start, end) for auditors (platform organisations); at most 1000 a page."""

    MAX = 1000

    @extend_schema(responses={200: s.LedgerEntriesSerializer}, parameters=_int_params(
        ("start", False, "the first index (default 0)"),
        ("end", False, f"one past the last index (default start + 100; at most start + {MAX})")))
    def get(self, request):
        if not request.user.is_platform:
            raise PermissionDenied("permission_denied", "ledger entries are for platform auditors")
        start = _int_param(request, "start", 0)
        end = _int_param(request, "end", min(start + 100, MAX_INT_PARAM))
        if end < start:
            raise DomainError("invalid_range", "end must not be before start")
        size = ledger.ledger_size()
        end = max(start, min(end, start + self.MAX, size))  # never past the log: no out-of-range SQL
        rows = LedgerEntry.objects.filter(index__gte=start, index__lt=end).order_by("index") if end > start else []
        return Response({"start": start, "end": end, "size": size, "entries": [ledger.entry_dict(e) for e in rows]})
