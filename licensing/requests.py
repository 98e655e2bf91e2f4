"""License requests: producers ask, the rights holder approves (creating a grant, possibly
narrower than asked) or denies with a reason, or the producer withdraws."""
from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from sharedcore.errors import Conflict, DomainError, PermissionDenied

from .grants import do_create_grant
from .models import LicenseRequest
from .signals import license_request_answered, license_request_created


def do_create_license_requests(user, *, recordings, stems, purpose, commercial, territory, message: str = "",
                               job_id=None) -> list[LicenseRequest]:
    """File requests in one call — one per rights holder (a mashup may need several labels).
    `job_id` links them to the denied job they came from, if any."""
    if not user.is_producer or not user.can_write:
        raise PermissionDenied("permission_denied", "only producers with write access can request licenses")
    if not recordings:
        raise DomainError("nothing_to_request", "name the recordings to license (or a job denied for lack of a license)")
    if not stems or not purpose or not territory:
        raise DomainError("invalid", "stems, purpose and territory are required")
    by_holder = defaultdict(list)
    for rec in recordings:
        by_holder[rec.rights_holder_id].append(rec)
    created = []
    with transaction.atomic():
        for holder_id, recs in by_holder.items():
            req = LicenseRequest.objects.create(
                requester=user, requester_org=user.organisation, rights_holder_id=holder_id, job_id=job_id,
                stems=list(stems), purpose=purpose, commercial=bool(commercial), territory=territory.upper(),
                message=message,
            )
            req.recordings.set(recs)
            created.append(req)
        license_request_created.send(sender=LicenseRequest, requests=created)
    return created


def _lock_request(request_id, **scope) -> LicenseRequest:
    req = LicenseRequest.objects.select_for_update().get(id=request_id, **scope)
    if req.status != LicenseRequest.Status.PENDING:
        raise Conflict("request_closed", f"the request is already {req.status}")
    return req


@transaction.atomic
def do_approve_license_request(request_id, label_org, response: str = "", **overrides) -> LicenseRequest:
    """Approve with the requested terms, or narrower ones the label sets; creates the grant."""
    req = _lock_request(request_id, rights_holder=label_org)
    terms = {
        "licensee_org": req.requester_org, "stems": list(req.stems), "purposes": [req.purpose],
        "commercial": req.commercial, "territories": [req.territory], "valid_from": timezone.now(),
    }
    terms.update({k: v for k, v in overrides.items() if v is not None})
    grant = do_create_grant(label_org, list(req.recordings.all()), **terms)
    req.status, req.grant, req.decided_at = LicenseRequest.Status.APPROVED, grant, timezone.now()
    req.response = response or req.response
    req.save(update_fields=["status", "grant", "decided_at", "response"])
    license_request_answered.send(sender=LicenseRequest, request=req)
    return req


@transaction.atomic
def do_deny_license_request(request_id, label_org, reason: str) -> LicenseRequest:
    if not reason.strip():
        raise DomainError("reason_required", "say why the request is denied")
    req = _lock_request(request_id, rights_holder=label_org)
    req.status, req.response, req.decided_at = LicenseRequest.Status.DENIED, reason.strip(), timezone.now()
    req.save(update_fields=["status", "response", "decided_at"])
    license_request_answered.send(sender=LicenseRequest, request=req)
    return req


@transaction.atomic
def do_withdraw_license_request(request_id, producer_org) -> LicenseRequest:
    req = _lock_request(request_id, requester_org=producer_org)
    req.status, req.decided_at = LicenseRequest.Status.WITHDRAWN, timezone.now()
    req.save(update_fields=["status", "decided_at"])
    return req
