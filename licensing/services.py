"""Licensing write paths and enforcement. Every decision goes through `engine.decide`; caps
are counted in the same transaction that records the use, under row locks on the grants."""
from __future__ import annotations

import uuid
from collections import defaultdict

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import status

from clearstem.api.errors import ApiError
from clearstem.storage import delete_quietly, file_sha256

from .engine import RequestContext, RequestDecision, decide, decide_request, requested_stems
from .isrc import normalise_isrc
from .models import LicenseGrant, Recording, UsageEvent


def grants_for(user, recording_ids, lock: bool = False) -> dict[str, list[LicenseGrant]]:
    """Grants that could cover `user` for each recording, oldest first (a stable lock order)."""
    who = Q(licensee_user=user)
    if user.organisation_id:
        who |= Q(licensee_org_id=user.organisation_id)
        if user.organisation.verified:
            who |= Q(open_to_verified=True)
    qs = LicenseGrant.objects.filter(who, recordings__in=recording_ids).distinct().order_by("created_at", "id")
    if lock:
        # lock the grant rows themselves (no DISTINCT with FOR UPDATE on PostgreSQL)
        ids = list(qs.values_list("id", flat=True))
        qs = LicenseGrant.objects.select_for_update().filter(id__in=ids).order_by("created_at", "id")
    grants = list(qs.prefetch_related("recordings"))
    out: dict[str, list[LicenseGrant]] = defaultdict(list)
    wanted = {str(r) for r in recording_ids}
    for g in grants:
        for rec in g.recordings.all():
            if str(rec.id) in wanted:
                out[str(rec.id)].append(g)
    return out


def _usage_counts(grants, *kinds: str) -> dict:
    counts = defaultdict(int)
    for grant_id in UsageEvent.objects.filter(grant__in=grants, kind__in=kinds).values_list("grant_id", flat=True):
        counts[grant_id] += 1
    return counts


# Exports hand out the same stems, so they count against the download cap too.
DELIVERY_KINDS = (UsageEvent.Kind.DOWNLOAD, UsageEvent.Kind.EXPORT)


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


def do_decide_job(job) -> RequestDecision:
    """The rights decision at dispatch; call inside the job's transaction. Records one
    separation use per (grant, recording) when allowed."""
    matches = job.upload.identification.get("matches", [])
    recordings = list(dict.fromkeys(m["recording"] for m in matches))
    by_rec = grants_for(job.requested_by, recordings, lock=True)
    all_grants = {g.id: g for gs in by_rec.values() for g in gs}
    seps = _usage_counts(all_grants.values(), UsageEvent.Kind.SEPARATION)
    dls = _usage_counts(all_grants.values(), *DELIVERY_KINDS)
    terms = {rec: [g.terms(seps[g.id], dls[g.id]) for g in gs] for rec, gs in by_rec.items()}
    ctx = RequestContext(
        action="separate", stems=requested_stems(job.stems), purpose=job.purpose,
        commercial=job.commercial, territory=job.territory, at=timezone.now(),
    )
    decision = decide_request(recordings, terms, ctx, attested=bool(job.attestation))
    if decision.allowed:
        for rec, d in decision.grants.items():
            UsageEvent.objects.create(
                grant=all_grants[uuid.UUID(d.grant_version[0])], kind=UsageEvent.Kind.SEPARATION,
                recording_id=rec, job=job, user=job.requested_by,
            )
    return decision


def do_authorize_download(user, stem, kind: str = UsageEvent.Kind.DOWNLOAD) -> None:
    """Check a stem delivery against the terms the job ran under, now; meter it and append it
    to the ledger in the same transaction. Raises ApiError with the refusing reason."""
    from provenance.ledger import do_record_event
    from provenance.models import LedgerEntry

    job = stem.job
    decision = job.decision or {}
    audit = user.is_platform  # platform auditors: recorded in the ledger, not metered against caps
    entries = decision.get("grants", []) if decision.get("basis") == "license" and not audit else []
    with transaction.atomic():
        grant_ids = [g["grant"] for g in entries]
        grants = {str(g.id): g for g in LicenseGrant.objects.select_for_update().filter(id__in=grant_ids).order_by("id")}
        delivered = _usage_counts(grants.values(), *DELIVERY_KINDS)
        ctx = RequestContext(
            action="export" if kind == UsageEvent.Kind.EXPORT else "download", stems=requested_stems([stem.name]),
            purpose=job.purpose, commercial=job.commercial, territory=job.territory, at=timezone.now(),
        )
        for entry in entries:
            grant = grants.get(entry["grant"])
            if grant is None:
                raise ApiError("no_license", "the license this stem was made under no longer exists", 403)
            d = decide(grant.terms(downloads_used=delivered[grant.id]), ctx, entry["recording"])
            if not d.allowed:
                r = d.reasons[0]
                raise ApiError(r.code, r.detail, status.HTTP_403_FORBIDDEN,
                               extra={"reasons": [x.as_dict() for x in d.reasons]})
        for entry in entries:
            UsageEvent.objects.create(grant=grants[entry["grant"]], kind=kind, recording_id=entry["recording"],
                                      job=job, stem=stem, user=user)
        do_record_event(
            LedgerEntry.Kind.EXPORT if kind == UsageEvent.Kind.EXPORT else LedgerEntry.Kind.DOWNLOAD, f"stem:{stem.id}",
            {"schema": "clearstem.delivery-event/v1", "event": f"audit_{kind}" if audit else str(kind),
             "stem": str(stem.id), "stem_sha256": stem.sha256,
             "job": str(job.id), "user": user.username, "organisation": user.organisation.slug if user.organisation_id else None,
             "basis": decision.get("basis"), "grants": [{"grant": e["grant"], "recording": e["recording"]} for e in entries],
             "at": timezone.now().isoformat()},
        )


@transaction.atomic
def do_create_grant(licensor_org, recordings, **terms) -> LicenseGrant:
    foreign = [r for r in recordings if r.rights_holder_id != licensor_org.id]
    if foreign:
        raise ApiError("not_rights_holder", "you can only license recordings your organisation holds", 403)
    from provenance.ledger import do_record_event
    from provenance.models import LedgerEntry

    grant = LicenseGrant.objects.create(licensor=licensor_org, status=LicenseGrant.Status.ACTIVE, **terms)
    grant.recordings.set(recordings)
    do_record_event(LedgerEntry.Kind.LICENSE_GRANTED, f"grant:{grant.id}", license_event(grant, "granted"))
    return grant


def do_revoke_grant(grant_id, licensor_org) -> LicenseGrant:
    """Revocation takes effect at once: from its commit on, every decision and download under
    the grant is refused; then jobs already cleared under it are cancelled (a running one stops
    between chunks).

    Two transactions on purpose: dispatch locks a job and then its grants, so holding the grant
    while locking jobs could deadlock. A dispatch waiting on the grant lock sees `revoked`; one
    that committed just before is found by its usage event in the second step.
    """
    from clearstem.jobs.models import Job
    from provenance.ledger import do_record_event
    from provenance.models import LedgerEntry

    with transaction.atomic():
        grant = LicenseGrant.objects.select_for_update().get(id=grant_id, licensor=licensor_org)
        if grant.status == LicenseGrant.Status.REVOKED:
            raise ApiError("already_revoked", "the license is already revoked", status.HTTP_409_CONFLICT)
        grant.status = LicenseGrant.Status.REVOKED
        grant.status_changed_at = timezone.now()
        grant.save(update_fields=["status", "status_changed_at"])
        do_record_event(LedgerEntry.Kind.LICENSE_REVOKED, f"grant:{grant.id}", license_event(grant, "revoked"))
    job_ids = list(UsageEvent.objects.filter(grant=grant, kind=UsageEvent.Kind.SEPARATION).values_list("job_id", flat=True))
    for job_id in job_ids:
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.state == Job.State.SEPARATING:
                job.cancel_requested = True
            elif job.state in (Job.State.CLEARED, Job.State.QUEUED):
                job.state = Job.State.CANCELLED
                job.finished_at = timezone.now()
            else:
                continue
            job.error_code, job.error_message = "revoked", "the license was revoked"
            job.save(update_fields=["state", "cancel_requested", "finished_at", "error_code", "error_message"])
    return grant


def do_register_recording(label_org, uploaded_file_path: str, original_name: str, *, title: str = "",
                          artist: str = "", isrc: str | None = None, territories=None) -> tuple[Recording, bool]:
    """Register a catalog recording with its reference audio. Idempotent: the same audio or
    ISRC returns the existing recording and False."""
    from fingerprint.models import ReferenceFingerprint
    from clearstem.uploads.services import scan_or_refuse, storage_name

    try:
        isrc = normalise_isrc(isrc)
    except ValueError as exc:
        raise ApiError("invalid_isrc", str(exc)) from exc
    sha = file_sha256(uploaded_file_path)
    existing = Recording.objects.filter(Q(rights_holder=label_org, audio_sha256=sha) | (Q(isrc=isrc) if isrc else Q(pk__in=[]))).first()
    if existing:
        if existing.rights_holder_id != label_org.id:
            raise ApiError("isrc_taken", f"ISRC {isrc} is registered by another rights holder", status.HTTP_409_CONFLICT)
        return existing, False
    scan = scan_or_refuse(uploaded_file_path)
    if scan.fingerprint.size == 0:
        raise ApiError("too_short", "the reference audio is too short to fingerprint", 422)
    rec_id = uuid.uuid4()
    with open(uploaded_file_path, "rb") as fh:
        name = default_storage.save(storage_name("references", rec_id, original_name, scan.container), fh)
    try:
        with transaction.atomic():
            rec = Recording.objects.create(
                id=rec_id, rights_holder=label_org, isrc=isrc, title=title or original_name, artist=artist,
                reference_audio=name, audio_sha256=sha, duration_s=scan.duration_s,
                territories=territories or ["WW"],
            )
            ReferenceFingerprint.objects.create(
                recording=rec, items=scan.fingerprint.astype("<u4").tobytes(),
                item_count=int(scan.fingerprint.size), algorithm=scan.fingerprint_algorithm,
            )
    except IntegrityError as exc:
        delete_quietly([name])
        raise ApiError("duplicate_recording", f"recording already registered ({exc.__class__.__name__})", 409) from exc
    except BaseException:
        delete_quietly([name])
        raise
    return rec, True
