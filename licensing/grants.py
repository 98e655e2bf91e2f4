"""The license grant lifecycle: create, activate, amend, suspend, reinstate, revoke.

Each write runs in one transaction and appends its signed event to the ledger in that same
transaction. Active terms never change: an amendment is a new version of the family."""
from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from provenance.ledger import do_record_event
from provenance.models import LedgerEntry
from sharedcore.errors import Conflict, DomainError, PermissionDenied

from .metering import separation_job_ids
from .models import LicenseGrant
from .signals import license_granted, license_stopped


def license_event(grant: LicenseGrant, event: str) -> dict:
    """The signed ledger record of a license event."""
    terms = grant.terms()
    return {
        "schema": "clearstem.license-event/v1", "event": event, "grant": str(grant.id), "version": grant.version,
        "status": grant.status, "licensor": grant.licensor.slug,
        "licensee": {"organisation": grant.licensee_org.slug if grant.licensee_org_id else None,
                     "user": grant.licensee_user.username if grant.licensee_user_id else None,
                     "open_to_verified": grant.open_to_verified},
        "recordings": [{"id": str(r.id), "isrc": r.isrc} for r in grant.recordings.order_by("id")],
        "terms_digest": terms.digest(),
        "terms": {"stems": sorted(grant.stems), "purposes": sorted(grant.purposes), "commercial": grant.commercial,
                  "territories": sorted(grant.territories), "excluded_territories": sorted(grant.excluded_territories),
                  "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
                  "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
                  "max_separations": grant.max_separations, "max_downloads": grant.max_downloads,
                  "attribution": grant.attribution, "revenue_share_pct": str(grant.revenue_share_pct)},
        "at": timezone.now().isoformat(),
    }


def _record(grant: LicenseGrant, kind: str, event: str) -> None:
    do_record_event(kind, f"grant:{grant.id}", license_event(grant, event))


def _check_licensable(licensor_org, recordings, territories) -> None:
    foreign = [r for r in recordings if r.rights_holder_id != licensor_org.id]
    if foreign:
        raise PermissionDenied("not_rights_holder", "you can only license recordings your organisation holds")
    for rec in recordings:
        held = {t.upper() for t in rec.territories}
        if "WW" not in held and ("WW" in territories or not set(territories) <= held):
            raise DomainError("territory_not_held",
                              f"you hold the rights to {rec.title!r} only in {', '.join(sorted(held))}")


@transaction.atomic
def do_create_grant(licensor_org, recordings, status: str = LicenseGrant.Status.ACTIVE, **terms) -> LicenseGrant:
    """Version 1 of a new license (a draft, or active at once)."""
    if status not in (LicenseGrant.Status.DRAFT, LicenseGrant.Status.ACTIVE):
        raise DomainError("invalid_status", "a new license is a draft or active")
    _check_licensable(licensor_org, recordings, [t.upper() for t in terms.get("territories", [])])
    grant_id = uuid.uuid4()
    grant = LicenseGrant.objects.create(id=grant_id, family=grant_id, licensor=licensor_org, status=status, **terms)
    grant.recordings.set(recordings)
    if status == LicenseGrant.Status.ACTIVE:
        _record(grant, LedgerEntry.Kind.LICENSE_GRANTED, "granted")
        license_granted.send(sender=LicenseGrant, grant=grant)
    return grant


def _lock_current(grant_id, licensor_org) -> LicenseGrant:
    grant = LicenseGrant.objects.select_for_update().get(id=grant_id, licensor=licensor_org)
    if grant.status == LicenseGrant.Status.SUPERSEDED:
        raise Conflict("superseded", "this version was amended; act on the current version")
    return grant


def _set_status(grant: LicenseGrant, new_status: str) -> None:
    grant.status = new_status
    grant.status_changed_at = timezone.now()
    grant.save(update_fields=["status", "status_changed_at"])


def _make_active(grant_id, licensor_org, from_status: str, code: str, kind: str, event: str) -> LicenseGrant:
    with transaction.atomic():
        grant = _lock_current(grant_id, licensor_org)
        if grant.status != from_status:
            raise Conflict(code, f"the license is {grant.status}, not {from_status}")
        _set_status(grant, LicenseGrant.Status.ACTIVE)
        _record(grant, kind, event)
    return grant


def do_activate_grant(grant_id, licensor_org) -> LicenseGrant:
    with transaction.atomic():
        grant = _make_active(grant_id, licensor_org, LicenseGrant.Status.DRAFT, "not_a_draft",
                             LedgerEntry.Kind.LICENSE_GRANTED, "granted")
        license_granted.send(sender=LicenseGrant, grant=grant)
    return grant


@transaction.atomic
def do_amend_grant(grant_id, licensor_org, **changes) -> LicenseGrant:
    """Active terms never change: the amendment is version n+1, the old version is superseded.
    Usage and caps carry over (they count per license family)."""
    old = _lock_current(grant_id, licensor_org)
    if old.status not in (LicenseGrant.Status.ACTIVE, LicenseGrant.Status.SUSPENDED):
        raise Conflict("not_amendable", f"a {old.status} license cannot be amended")
    recordings = changes.pop("recordings", None) or list(old.recordings.all())
    fields = {f: getattr(old, f) for f in (
        "licensee_org", "licensee_user", "open_to_verified", "stems", "purposes", "commercial", "territories",
        "excluded_territories", "valid_from", "valid_until", "max_separations", "max_downloads",
        "max_separations_per_user", "max_downloads_per_user", "attribution", "revenue_share_pct")}
    fields.update(changes)
    _check_licensable(licensor_org, recordings, [t.upper() for t in fields["territories"]])
    _set_status(old, LicenseGrant.Status.SUPERSEDED)
    new = LicenseGrant.objects.create(family=old.family, previous=old, version=old.version + 1,
                                      licensor=licensor_org, status=old.status if old.status == "suspended" else "active",
                                      **fields)
    new.recordings.set(recordings)
    _record(new, LedgerEntry.Kind.LICENSE_AMENDED, "amended")
    return new


def _stop_grant(grant_id, licensor_org, new_status: str, kind: str, event: str, allowed_from: tuple) -> LicenseGrant:
    """Revocation and suspension take effect at commit: from then on every decision and
    delivery under the license is refused. Then `license_stopped` tells the platform to stop
    the jobs cleared under it (they are locked one by one there, never while a grant is held)."""
    with transaction.atomic():
        grant = _lock_current(grant_id, licensor_org)
        if grant.status not in allowed_from:
            if grant.status == new_status:
                raise Conflict(f"already_{new_status}", f"the license is {grant.status}")
            raise Conflict("invalid_transition", f"the license is {grant.status}")
        _set_status(grant, new_status)
        _record(grant, kind, event)
    license_stopped.send(sender=LicenseGrant, grant=grant, code=new_status,
                         message=f"the license was {new_status}", job_ids=separation_job_ids(grant.family))
    return grant


def do_revoke_grant(grant_id, licensor_org) -> LicenseGrant:
    return _stop_grant(grant_id, licensor_org, LicenseGrant.Status.REVOKED, LedgerEntry.Kind.LICENSE_REVOKED,
                       "revoked", ("active", "suspended", "expired"))


def do_suspend_grant(grant_id, licensor_org) -> LicenseGrant:
    return _stop_grant(grant_id, licensor_org, LicenseGrant.Status.SUSPENDED, LedgerEntry.Kind.LICENSE_SUSPENDED,
                       "suspended", ("active",))


def do_reinstate_grant(grant_id, licensor_org) -> LicenseGrant:
    return _make_active(grant_id, licensor_org, LicenseGrant.Status.SUSPENDED, "not_suspended",
                        LedgerEntry.Kind.LICENSE_REINSTATED, "reinstated")
