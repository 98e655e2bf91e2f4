"""Auditors' lookup by id or hash prefix (`GET /api/v1/audit/lookup/?q=`): pages and reports
show ids and hashes cut short, and 8+ hex characters of any of them must lead back to the object.
Every match is listed; ambiguity is the caller's to resolve (`clearstem.jobs.lookup`)."""
from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from clearstem.jobs.lookup import AUDIT_PAGES, KINDS, Candidate, lookup
from sharedcore.errors import PermissionDenied

from .serializers import ErrorSerializer


class LookupCandidateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KINDS))
    id = serializers.CharField(source="key", help_text="the object's id (a ledger entry's index)")
    matched = serializers.CharField(help_text="what the prefix matched: id, SHA-256, delivered … SHA-256, leaf hash")
    label = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField(help_text="the object in this API")
    audit_url = serializers.CharField(help_text="the object's page for auditors")


class AuditLookupSerializer(serializers.Serializer):
    prefix = serializers.CharField(help_text="the hex digits looked up (dashes and case dropped)")
    candidates = LookupCandidateSerializer(many=True, help_text="every match, by kind; empty when nothing matched")
    truncated = serializers.BooleanField(help_text="more matched than are listed: send more characters")


_API = {"stem": "/api/v1/stems/{}/", "job": "/api/v1/jobs/{}/", "upload": "/api/v1/uploads/{}/",
        "recording": "/api/v1/recordings/{}/", "grant": "/api/v1/licenses/{}/",
        "license_request": "/api/v1/license-requests/{}/", "ledger_entry": "/api/v1/ledger/entries/?start={}"}


def _row(request, c: Candidate) -> dict:
    key = int(c.key) if c.kind == "ledger_entry" else c.key
    url = _API[c.kind].format(key) + (f"&end={key + 1}" if c.kind == "ledger_entry" else "")
    return {"kind": c.kind, "key": c.key, "matched": c.matched, "label": c.label, "created_at": c.created_at,
            "url": request.build_absolute_uri(url),
            "audit_url": request.build_absolute_uri(reverse(AUDIT_PAGES[c.kind], args=[key]))}


class AuditLookupView(APIView):
    """Everything whose id or hash starts with `q` (8+ hex characters): stems, jobs, uploads,
    recordings, license grants and requests by id; uploads, stems, delivered files and reference
    audio by SHA-256; ledger entries by leaf hash. For platform auditors."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True,
                                     description="an id or hash, or its first 8+ hex characters (dashes ignored)")],
        responses={200: AuditLookupSerializer, 400: ErrorSerializer, 403: ErrorSerializer})
    def get(self, request):
        if not request.user.is_platform:
            raise PermissionDenied("permission_denied", "lookup by id or hash prefix is for platform auditors")
        found = lookup(request.query_params.get("q", ""))
        rows = [_row(request, c) for c in found.candidates]
        return Response(AuditLookupSerializer({"prefix": found.prefix, "candidates": rows,
                                               "truncated": found.truncated}).data)
