"""Licensing write paths and enforcement. Every decision goes through `engine.decide`; caps
are counted in the same transaction that records the use, under row locks on the grants."""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import status

from clearstem.api.errors import ApiError
from sharedcore.hashing import file_sha256
from clearstem.storage import delete_quietly

from .engine import RequestContext, RequestDecision, decide, decide_request, requested_stems
from .isrc import normalise_isrc
from .models import LicenseGrant, Recording, UsageEvent

logger = logging.getLogger(__name__)


OFFERED = ("active", "suspended", "revoked", "expired")  # drafts are unpublished; superseded versions are history


def grants_for(user, recording_ids, lock: bool = False) -> dict[str, list[LicenseGrant]]:
    """Current grant versions that could cover `user` for each recording, oldest first (a
    stable lock order)."""
    who = Q(licensee_user=user)
    if user.organisation_id:
        who |= Q(licensee_org_id=user.organisation_id)
        if user.organisation.verified:
            who |= Q(open_to_verified=True)
    qs = (LicenseGrant.objects.filter(who, recordings__in=recording_ids, status__in=OFFERED)
          .distinct().order_by("created_at", "id"))
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


def _usage_counts(grants, *kinds: str, user=None) -> dict:
    """Uses per license family (every version counts toward one cap), optionally by one user."""
    counts = defaultdict(int)
    qs = UsageEvent.objects.filter(grant__family__in={g.family for g in grants}, kind__in=kinds)
    if user is not None:
        qs = qs.filter(user=user)
    for family, _act in qs.values_list("grant__family", "act").distinct():
        counts[family] += 1
    return counts


def current_terms(grant: LicenseGrant, user, action: str):
    """The grant's terms with its family's usage so far, overall and by `user`."""
    kinds = (UsageEvent.Kind.SEPARATION,) if action == "separate" else DELIVERY_KINDS
    overall = _usage_counts([grant], *kinds)[grant.family]
    mine = _usage_counts([grant], *kinds, user=user)[grant.family]
    if action == "separate":
        return grant.terms(separations_used=overall, user_separations_used=mine)
    return grant.terms(downloads_used=overall, user_downloads_used=mine)


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
    terms = {rec: [current_terms(g, job.requested_by, "separate") for g in gs] for rec, gs in by_rec.items()}
    held = {str(r.id): frozenset(t.upper() for t in r.territories)
            for r in Recording.objects.filter(id__in=recordings)}
    ctx = RequestContext(
        action="separate", stems=requested_stems(job.stems), purpose=job.purpose,
        commercial=job.commercial, territory=job.territory, at=timezone.now(),
    )
    decision = decide_request(recordings, terms, ctx, attested=bool(job.attestation), held_territories=held)
    if decision.allowed:
        act = uuid.uuid4()
        for rec, d in decision.grants.items():
            UsageEvent.objects.create(
                grant=all_grants[uuid.UUID(d.grant_version[0])], kind=UsageEvent.Kind.SEPARATION,
                recording_id=rec, job=job, user=job.requested_by, act=act,
            )
    return decision


def _check_delivery(user, stem, action: str) -> list[tuple[str, LicenseGrant, str]]:
    """Judge handing `stem` to `user` now, under the current version of every license its job
    ran under (call inside a transaction: the grant rows are locked). Returns (grant id the job
    recorded, its current version, recording) per entry; raises ApiError with the reason."""
    job = stem.job
    decision = job.decision or {}
    audit = user.is_platform  # platform auditors: recorded in the ledger, not metered against caps
    entries = decision.get("grants", []) if decision.get("basis") == "license" and not audit else []
    families = LicenseGrant.objects.filter(id__in=[g["grant"] for g in entries]).values_list("id", "family")
    current = {}
    for grant_id, family in families:
        current[str(grant_id)] = (LicenseGrant.objects.select_for_update().filter(family=family)
                                  .exclude(status=LicenseGrant.Status.DRAFT).order_by("-version").first())
    ctx = RequestContext(
        action=action, stems=requested_stems([stem.name]), purpose=job.purpose, commercial=job.commercial,
        territory=job.territory, at=timezone.now(),
    )
    for entry in entries:
        grant = current.get(entry["grant"])
        if grant is None:
            raise ApiError("no_license", "the license this stem was made under no longer exists", 403)
        d = decide(current_terms(grant, user, action), ctx, entry["recording"])
        if not d.allowed:
            r = d.reasons[0]
            raise ApiError(r.code, r.detail, status.HTTP_403_FORBIDDEN,
                           extra={"reasons": [x.as_dict() for x in d.reasons]})
    return [(e["grant"], current[e["grant"]], e["recording"]) for e in entries]


def do_authorize_download(user, stem, kind: str = UsageEvent.Kind.DOWNLOAD) -> None:
    """Check a stem delivery against the terms the job ran under, now; meter it and append it
    to the ledger in the same transaction. Raises ApiError with the refusing reason."""
    from provenance.ledger import do_record_event
    from provenance.models import LedgerEntry

    job = stem.job
    with transaction.atomic():
        action = "export" if kind == UsageEvent.Kind.EXPORT else "download"
        grants = _check_delivery(user, stem, action)
        act = uuid.uuid4()
        for _, grant, recording in grants:
            UsageEvent.objects.create(grant=grant, kind=kind, recording_id=recording, job=job, stem=stem, user=user,
                                      act=act)
        do_record_event(
            LedgerEntry.Kind.EXPORT if kind == UsageEvent.Kind.EXPORT else LedgerEntry.Kind.DOWNLOAD, f"stem:{stem.id}",
            {"schema": "clearstem.delivery-event/v1", "event": f"audit_{kind}" if user.is_platform else str(kind),
             "stem": str(stem.id), "stem_sha256": stem.sha256,
             "job": str(job.id), "user": user.username, "organisation": user.organisation.slug if user.organisation_id else None,
             "basis": (job.decision or {}).get("basis"),
             "grants": [{"grant": gid, "recording": rec} for gid, _, rec in grants],
             "at": timezone.now().isoformat()},
        )


def check_preview(user, stem) -> None:
    """May `user` listen to a low-quality preview of `stem` in the browser? The same terms as a
    download (license in force, stem, purpose, territory) but no cap is spent and nothing is
    metered: a preview is a lossy mono rendition, not the deliverable."""
    with transaction.atomic():
        _check_delivery(user, stem, "preview")


def _record(grant: LicenseGrant, kind: str, event: str) -> None:
    from provenance.ledger import do_record_event

    do_record_event(kind, f"grant:{grant.id}", license_event(grant, event))


def _check_licensable(licensor_org, recordings, territories) -> None:
    foreign = [r for r in recordings if r.rights_holder_id != licensor_org.id]
    if foreign:
        raise ApiError("not_rights_holder", "you can only license recordings your organisation holds", 403)
    for rec in recordings:
        held = {t.upper() for t in rec.territories}
        if "WW" not in held and ("WW" in territories or not set(territories) <= held):
            raise ApiError("territory_not_held",
                           f"you hold the rights to {rec.title!r} only in {', '.join(sorted(held))}")


@transaction.atomic
def do_create_grant(licensor_org, recordings, status: str = LicenseGrant.Status.ACTIVE, **terms) -> LicenseGrant:
    """Version 1 of a new license (a draft, or active at once)."""
    from provenance.models import LedgerEntry

    if status not in (LicenseGrant.Status.DRAFT, LicenseGrant.Status.ACTIVE):
        raise ApiError("invalid_status", "a new license is a draft or active")
    _check_licensable(licensor_org, recordings, [t.upper() for t in terms.get("territories", [])])
    grant_id = uuid.uuid4()
    grant = LicenseGrant.objects.create(id=grant_id, family=grant_id, licensor=licensor_org, status=status, **terms)
    grant.recordings.set(recordings)
    if status == LicenseGrant.Status.ACTIVE:
        _record(grant, LedgerEntry.Kind.LICENSE_GRANTED, "granted")
    return grant


def _lock_current(grant_id, licensor_org) -> LicenseGrant:
    grant = LicenseGrant.objects.select_for_update().get(id=grant_id, licensor=licensor_org)
    if grant.status == LicenseGrant.Status.SUPERSEDED:
        raise ApiError("superseded", "this version was amended; act on the current version", status.HTTP_409_CONFLICT)
    return grant


def _set_status(grant: LicenseGrant, new_status: str) -> None:
    grant.status = new_status
    grant.status_changed_at = timezone.now()
    grant.save(update_fields=["status", "status_changed_at"])


def _make_active(grant_id, licensor_org, from_status: str, code: str, kind: str, event: str) -> LicenseGrant:
    with transaction.atomic():
        grant = _lock_current(grant_id, licensor_org)
        if grant.status != from_status:
            raise ApiError(code, f"the license is {grant.status}, not {from_status}", status.HTTP_409_CONFLICT)
        _set_status(grant, LicenseGrant.Status.ACTIVE)
        _record(grant, kind, event)
    return grant


def do_activate_grant(grant_id, licensor_org) -> LicenseGrant:
    from provenance.models import LedgerEntry

    return _make_active(grant_id, licensor_org, LicenseGrant.Status.DRAFT, "not_a_draft",
                        LedgerEntry.Kind.LICENSE_GRANTED, "granted")


@transaction.atomic
def do_amend_grant(grant_id, licensor_org, **changes) -> LicenseGrant:
    """Active terms never change: the amendment is version n+1, the old version is superseded.
    Usage and caps carry over (they count per license family)."""
    from provenance.models import LedgerEntry

    old = _lock_current(grant_id, licensor_org)
    if old.status not in (LicenseGrant.Status.ACTIVE, LicenseGrant.Status.SUSPENDED):
        raise ApiError("not_amendable", f"a {old.status} license cannot be amended", status.HTTP_409_CONFLICT)
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


def _stop_jobs_under(grant: LicenseGrant, code: str, message: str) -> int:
    """Cancel jobs cleared under any version of the license that have not finished; a running
    one stops between chunks. Each job is locked in its own transaction (dispatch locks a job
    before its grants, so we never hold a grant while locking jobs)."""
    from clearstem.jobs.models import Job

    stopped = 0
    job_ids = list(UsageEvent.objects.filter(grant__family=grant.family, kind=UsageEvent.Kind.SEPARATION)
                   .values_list("job_id", flat=True))
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
            job.error_code, job.error_message = code, message
            job.save(update_fields=["state", "cancel_requested", "finished_at", "error_code", "error_message"])
            stopped += 1
    return stopped


def _end_grant(grant_id, licensor_org, new_status: str, kind: str, event: str, allowed_from: tuple) -> LicenseGrant:
    """Revocation and suspension take effect at commit: from then on every decision and
    delivery under the license is refused; then jobs already cleared under it are stopped."""
    with transaction.atomic():
        grant = _lock_current(grant_id, licensor_org)
        if grant.status not in allowed_from:
            raise ApiError(f"already_{new_status}" if grant.status == new_status else "invalid_transition",
                           f"the license is {grant.status}", status.HTTP_409_CONFLICT)
        _set_status(grant, new_status)
        _record(grant, kind, event)
    _stop_jobs_under(grant, new_status, f"the license was {new_status}")
    return grant


def do_revoke_grant(grant_id, licensor_org) -> LicenseGrant:
    from provenance.models import LedgerEntry

    return _end_grant(grant_id, licensor_org, LicenseGrant.Status.REVOKED, LedgerEntry.Kind.LICENSE_REVOKED,
                      "revoked", ("active", "suspended", "expired"))


def do_suspend_grant(grant_id, licensor_org) -> LicenseGrant:
    from provenance.models import LedgerEntry

    return _end_grant(grant_id, licensor_org, LicenseGrant.Status.SUSPENDED, LedgerEntry.Kind.LICENSE_SUSPENDED,
                      "suspended", ("active",))


def do_reinstate_grant(grant_id, licensor_org) -> LicenseGrant:
    from provenance.models import LedgerEntry

    return _make_active(grant_id, licensor_org, LicenseGrant.Status.SUSPENDED, "not_suspended",
                        LedgerEntry.Kind.LICENSE_REINSTATED, "reinstated")


# --- license requests ------------------------------------------------------------------------

def do_create_license_requests(user, *, job=None, recordings=None, stems=None, purpose=None, commercial=None,
                               territory=None, message: str = "") -> list:
    """File requests in one call — one per rights holder (a mashup may need several labels).
    From a denied job, everything defaults to what the job asked for and what blocked it."""
    from .models import LicenseRequest

    if not user.is_producer or not user.can_write:
        raise ApiError("permission_denied", "only producers with write access can request licenses", 403)
    if job is not None:
        blocked = [r["recording"] for r in (job.decision or {}).get("reasons", []) if r.get("recording")]
        recordings = recordings or list(Recording.objects.filter(id__in=blocked))
        stems = stems or job.stems
        purpose = purpose or job.purpose
        commercial = job.commercial if commercial is None else commercial
        territory = territory or job.territory
    if not recordings:
        raise ApiError("nothing_to_request", "name the recordings to license (or a job denied for lack of a license)")
    if not stems or not purpose or not territory:
        raise ApiError("invalid", "stems, purpose and territory are required")
    by_holder = defaultdict(list)
    for rec in recordings:
        by_holder[rec.rights_holder_id].append(rec)
    created = []
    with transaction.atomic():
        for holder_id, recs in by_holder.items():
            req = LicenseRequest.objects.create(
                requester=user, requester_org=user.organisation, rights_holder_id=holder_id, job=job,
                stems=list(stems), purpose=purpose, commercial=bool(commercial), territory=territory.upper(),
                message=message,
            )
            req.recordings.set(recs)
            created.append(req)
    return created


def _lock_request(request_id, **scope):
    from .models import LicenseRequest

    req = LicenseRequest.objects.select_for_update().get(id=request_id, **scope)
    if req.status != LicenseRequest.Status.PENDING:
        raise ApiError("request_closed", f"the request is already {req.status}", status.HTTP_409_CONFLICT)
    return req


@transaction.atomic
def do_approve_license_request(request_id, label_org, response: str = "", **overrides):
    """Approve with the requested terms, or narrower ones the label sets; creates the grant."""
    from .models import LicenseRequest

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
    return req


@transaction.atomic
def do_deny_license_request(request_id, label_org, reason: str):
    from .models import LicenseRequest

    if not reason.strip():
        raise ApiError("reason_required", "say why the request is denied")
    req = _lock_request(request_id, rights_holder=label_org)
    req.status, req.response, req.decided_at = LicenseRequest.Status.DENIED, reason.strip(), timezone.now()
    req.save(update_fields=["status", "response", "decided_at"])
    return req


@transaction.atomic
def do_withdraw_license_request(request_id, producer_org):
    from .models import LicenseRequest

    req = _lock_request(request_id, requester_org=producer_org)
    req.status, req.decided_at = LicenseRequest.Status.WITHDRAWN, timezone.now()
    req.save(update_fields=["status", "decided_at"])
    return req


# --- reports ---------------------------------------------------------------------------------

def usage_rows(grants) -> list[dict]:
    """Usage per license version and recording: separations, downloads, exports."""
    from django.db.models import Count

    rows = (UsageEvent.objects.filter(grant__in=grants)
            .values("grant_id", "grant__family", "grant__version", "recording_id", "recording__isrc",
                    "recording__title", "kind")
            .annotate(n=Count("id")).order_by("grant__family", "grant__version", "recording__title"))
    table: dict = {}
    for r in rows:
        key = (r["grant_id"], r["recording_id"])
        row = table.setdefault(key, {
            "license": str(r["grant__family"]), "grant": str(r["grant_id"]), "version": r["grant__version"],
            "recording": str(r["recording_id"]), "isrc": r["recording__isrc"], "title": r["recording__title"],
            "separation": 0, "download": 0, "export": 0})
        row[r["kind"]] = r["n"]
    return list(table.values())


def remaining_caps(grant: LicenseGrant, user) -> dict:
    """What is left of each cap for `user` (None = uncapped)."""
    sep = current_terms(grant, user, "separate")
    dl = current_terms(grant, user, "download")

    def left(cap, used):
        return None if cap is None else max(cap - used, 0)

    return {
        "separations": left(sep.max_separations, sep.separations_used),
        "downloads": left(dl.max_downloads, dl.downloads_used),
        "my_separations": left(sep.max_separations_per_user, sep.user_separations_used),
        "my_downloads": left(dl.max_downloads_per_user, dl.user_downloads_used),
    }


def do_register_recording(label_org, uploaded_file_path: str, original_name: str, *, title: str = "",
                          artist: str = "", isrc: str | None = None, territories=None,
                          sync_index: bool = True) -> tuple[Recording, bool]:
    """Register a catalog recording with its reference audio. Idempotent: the same audio or
    ISRC returns the existing recording and False. Bulk ingest passes `sync_index=False` and
    updates the index once per batch."""
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
    if sync_index:
        transaction.on_commit(_sync_index_quietly)
    return rec, True


def _sync_index_quietly() -> None:
    """Update the catalog index right after a catalog change, so the next identification does
    not pay for it. A failure here only delays that: identification syncs before matching."""
    from fingerprint.services import sync_catalog_index

    try:
        sync_catalog_index()
    except Exception:  # noqa: BLE001 - logged; the index catches up on the next identification
        logger.exception("catalog index sync after a catalog change failed")


def do_remove_recording(label_org, recording_id) -> None:
    """Take a recording out of the catalog (and the identification index).

    A recording that any license names, or that was ever used, stays: grants, jobs and the
    ledger refer to it, and audit must be able to follow them.
    """
    with transaction.atomic():
        rec = Recording.objects.select_for_update().filter(pk=recording_id, rights_holder=label_org).first()
        if rec is None:
            raise ApiError("not_found", "no such recording in your catalog", status.HTTP_404_NOT_FOUND)
        if rec.grants.exists() or rec.usage.exists():
            raise ApiError("recording_in_use", "licenses or usage refer to this recording; revoke instead of removing",
                           status.HTTP_409_CONFLICT)
        name = rec.reference_audio.name
        rec.delete()
        transaction.on_commit(lambda: delete_quietly([name]))
        transaction.on_commit(_sync_index_quietly)


USAGE_KINDS = ("separation", "download", "export")


def usage_by_day(events, days: int = 30, today=None) -> list[dict]:
    """Daily counts of each usage kind over the last `days` days (zeros included), from a
    UsageEvent queryset already scoped to the grants or recordings in question. Caps count
    acts, so a mashup's per-recording events for one act count once here too."""
    from datetime import timedelta

    from django.db.models import Count
    from django.db.models.functions import TruncDate

    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = (events.filter(created_at__date__gte=first).annotate(day=TruncDate("created_at"))
            .values("day", "kind").annotate(n=Count("act", distinct=True)))
    table = {first + timedelta(days=i): dict.fromkeys(USAGE_KINDS, 0) for i in range(days)}
    for r in rows:
        if r["day"] in table:
            table[r["day"]][r["kind"]] = r["n"]
    return [{"day": day, **counts} for day, counts in table.items()]


def usage_event_rows(events) -> list[dict]:
    """One CSV row per day, license version, recording and kind (for spreadsheets)."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    rows = (events.annotate(day=TruncDate("created_at"))
            .values("day", "grant__family", "grant__version", "grant_id", "recording_id", "recording__isrc",
                    "recording__title", "kind", "user__username")
            .annotate(n=Count("id")).order_by("day", "grant__family", "grant__version", "recording__title", "kind"))
    return [{"date": r["day"].isoformat(), "license": str(r["grant__family"]), "version": r["grant__version"],
             "grant": str(r["grant_id"]), "recording": str(r["recording_id"]), "isrc": r["recording__isrc"] or "",
             "title": r["recording__title"], "kind": r["kind"], "user": r["user__username"], "count": r["n"]}
            for r in rows]
