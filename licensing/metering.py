"""Metering: caps and deliveries. Every separation and delivery is judged by `engine.decide`
against the terms in force now, and counted in the same transaction that records it, under
row locks on the grants, so concurrent requests can never overrun a cap.

Services here take plain values (user, recording ids, a `Delivery`), not jobs or stems: the
platform owns those and says what is being asked for."""
from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from provenance.ledger import do_record_event
from provenance.models import LedgerEntry
from sharedcore.errors import RightsRefused

from .engine import Reason, RequestContext, RequestDecision, decide, decide_request, requested_stems
from .models import LicenseGrant, Recording, UsageEvent

OFFERED = ("active", "suspended", "revoked", "expired")  # drafts are unpublished; superseded versions are history
# Exports hand out the same stems, so they count against the download cap too.
DELIVERY_KINDS = (UsageEvent.Kind.DOWNLOAD, UsageEvent.Kind.EXPORT)


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


def _usage_counts(families, kinds, user=None) -> dict:
    """Acts per license family (every version counts toward one cap), optionally by one user."""
    counts: dict = defaultdict(int)
    qs = UsageEvent.objects.filter(grant__family__in=set(families), kind__in=kinds)
    if user is not None:
        qs = qs.filter(user=user)
    for family, _act in qs.values_list("grant__family", "act").distinct():
        counts[family] += 1
    return counts


def _kinds(action: str) -> tuple:
    return (UsageEvent.Kind.SEPARATION,) if action == "separate" else DELIVERY_KINDS


def current_terms(grant: LicenseGrant, user, action: str):
    """The grant's terms with its family's usage so far, overall and by `user`."""
    overall = _usage_counts([grant.family], _kinds(action))[grant.family]
    mine = _usage_counts([grant.family], _kinds(action), user=user)[grant.family]
    if action == "separate":
        return grant.terms(separations_used=overall, user_separations_used=mine)
    return grant.terms(downloads_used=overall, user_downloads_used=mine)


def check_separation(user, recordings: list[str], *, stems, purpose: str, commercial: bool, territory: str,
                     attested: bool) -> RequestDecision:
    """The same decision as `do_decide_separation`, spending nothing and locking nothing: what
    the decision would be now (a job held for review asks whether it could clear at all)."""
    return _decide_separation(user, recordings, stems=stems, purpose=purpose, commercial=commercial,
                              territory=territory, attested=attested, lock=False)[0]


def do_decide_separation(user, recordings: list[str], *, stems, purpose: str, commercial: bool, territory: str,
                         attested: bool, job_id) -> RequestDecision:
    """The rights decision for separating audio in which `recordings` were identified; call
    inside the job's transaction. Records one separation use per (grant, recording) when
    allowed, so the cap is spent in the same transaction that clears the job."""
    decision, all_grants = _decide_separation(user, recordings, stems=stems, purpose=purpose, commercial=commercial,
                                              territory=territory, attested=attested, lock=True)
    if decision.allowed:
        act = uuid.uuid4()
        for rec, d in decision.grants.items():
            UsageEvent.objects.create(
                grant=all_grants[uuid.UUID(d.grant_version[0])], kind=UsageEvent.Kind.SEPARATION,
                recording_id=rec, job_id=job_id, user=user, act=act,
            )
    return decision


def _decide_separation(user, recordings, *, stems, purpose, commercial, territory, attested, lock: bool):
    by_rec = grants_for(user, recordings, lock=lock)
    all_grants = {g.id: g for gs in by_rec.values() for g in gs}
    terms = {rec: [current_terms(g, user, "separate") for g in gs] for rec, gs in by_rec.items()}
    held = {str(r.id): frozenset(t.upper() for t in r.territories)
            for r in Recording.objects.filter(id__in=recordings)}
    ctx = RequestContext(action="separate", stems=requested_stems(stems), purpose=purpose,
                         commercial=commercial, territory=territory, at=timezone.now())
    return decide_request(recordings, terms, ctx, attested=attested, held_territories=held), all_grants


def separation_job_ids(family) -> list:
    """Jobs cleared under any version of a license (the ones a revocation must stop)."""
    return list(UsageEvent.objects.filter(grant__family=family, kind=UsageEvent.Kind.SEPARATION)
                .values_list("job_id", flat=True).distinct())


@dataclass(frozen=True)
class Delivery:
    """One stem of a finished job being handed out, with the request its job was cleared for."""

    stem_id: str
    stem_name: str
    stem_sha256: str
    job_id: str
    decision: dict
    purpose: str
    commercial: bool
    territory: str
    #: the file handed out: {"format", "sha256", "size"} (a rendition, with its content credentials)
    delivered: dict | None = None


def _check_delivery(user, delivery: Delivery, action: str) -> list[tuple[str, LicenseGrant, str]]:
    """Judge handing the stem to `user` now, under the current version of every license its job
    ran under (call inside a transaction: the grant rows are locked). Returns (grant id the job
    recorded, its current version, recording) per entry; raises RightsRefused with every reason."""
    decision = delivery.decision or {}
    audit = user.is_platform  # platform auditors: recorded in the ledger, not metered against caps
    entries = decision.get("grants", []) if decision.get("basis") == "license" and not audit else []
    families = LicenseGrant.objects.filter(id__in=[g["grant"] for g in entries]).values_list("id", "family")
    current = {}
    for grant_id, family in families:
        current[str(grant_id)] = (LicenseGrant.objects.select_for_update().filter(family=family)
                                  .exclude(status=LicenseGrant.Status.DRAFT).order_by("-version").first())
    ctx = RequestContext(action=action, stems=requested_stems([delivery.stem_name]), purpose=delivery.purpose,
                         commercial=delivery.commercial, territory=delivery.territory, at=timezone.now())
    for entry in entries:
        grant = current.get(entry["grant"])
        if grant is None:
            raise _refused(entry["recording"], [
                Reason("no_license", "the license this stem was made under no longer exists", entry["recording"])])
        d = decide(current_terms(grant, user, action), ctx, entry["recording"])
        if not d.allowed:
            raise _refused(entry["recording"], d.reasons)
    return [(e["grant"], current[e["grant"]], e["recording"]) for e in entries]


def _refused(recording_id, reasons) -> RightsRefused:
    """A refused delivery that names the recording and its rights holder (whom to ask), in the
    message and beside every reason."""
    rec = Recording.objects.select_related("rights_holder").filter(pk=recording_id).first()
    about = {} if rec is None else {"recording": str(rec.pk), "title": rec.title, "isrc": rec.isrc,
                                    "rights_holder": rec.rights_holder.slug,
                                    "rights_holder_name": rec.rights_holder.name}
    first = reasons[0]
    detail = first.detail if rec is None else f"{first.detail} (“{rec.title}”, rights holder {rec.rights_holder.name})"
    return RightsRefused(first.code, detail, extra={**about, "reasons": [{**r.as_dict(), **about} for r in reasons]})


def do_meter_delivery(user, delivery: Delivery, kind: str = UsageEvent.Kind.DOWNLOAD) -> None:
    """Check a stem delivery against the terms its job ran under, now; meter it and append it
    to the ledger in the same transaction. Raises RightsRefused with the refusing reason."""
    with transaction.atomic():
        action = "export" if kind == UsageEvent.Kind.EXPORT else "download"
        grants = _check_delivery(user, delivery, action)
        act = uuid.uuid4()
        for _, grant, recording in grants:
            UsageEvent.objects.create(grant=grant, kind=kind, recording_id=recording, job_id=delivery.job_id,
                                      stem_id=delivery.stem_id, user=user, act=act)
        do_record_event(
            LedgerEntry.Kind.EXPORT if kind == UsageEvent.Kind.EXPORT else LedgerEntry.Kind.DOWNLOAD,
            f"stem:{delivery.stem_id}",
            {"schema": "clearstem.delivery-event/v1", "event": f"audit_{kind}" if user.is_platform else str(kind),
             "stem": str(delivery.stem_id), "stem_sha256": delivery.stem_sha256,
             "job": str(delivery.job_id), "user": user.username,
             "organisation": user.organisation.slug if user.organisation_id else None,
             "basis": (delivery.decision or {}).get("basis"),
             "grants": [{"grant": gid, "recording": rec} for gid, _, rec in grants],
             **({"delivered": delivery.delivered} if delivery.delivered else {}),
             "at": timezone.now().isoformat()},
        )


def check_delivery(user, delivery: Delivery, action: str = "download") -> None:
    """Would the delivery be allowed now? Nothing is metered: `do_meter_delivery` decides again
    under the row locks. Callers ask first when preparing the file costs work (a rendition)."""
    with transaction.atomic():
        _check_delivery(user, delivery, action)


def check_preview(user, delivery: Delivery) -> None:
    """May `user` listen to a low-quality preview of the stem in the browser? The same terms as a
    download (license in force, stem, purpose, territory) but no cap is spent and nothing is
    metered: a preview is a lossy rendition, not the deliverable."""
    check_delivery(user, delivery, "preview")


def _left(cap, used):
    return None if cap is None else max(cap - used, 0)


def remaining_caps_many(grants, user) -> dict:
    """What is left of each cap of each grant for `user` (None = uncapped), keyed by grant id,
    in four queries whatever the number of grants (list pages show it per row)."""
    families = {g.family for g in grants}
    seps, dls = _kinds("separate"), _kinds("download")
    used = {("sep", None): _usage_counts(families, seps), ("sep", "me"): _usage_counts(families, seps, user),
            ("dl", None): _usage_counts(families, dls), ("dl", "me"): _usage_counts(families, dls, user)}
    return {g.id: {
        "separations": _left(g.max_separations, used["sep", None][g.family]),
        "downloads": _left(g.max_downloads, used["dl", None][g.family]),
        "my_separations": _left(g.max_separations_per_user, used["sep", "me"][g.family]),
        "my_downloads": _left(g.max_downloads_per_user, used["dl", "me"][g.family]),
    } for g in grants}


def remaining_caps(grant: LicenseGrant, user) -> dict:
    """What is left of each cap of one grant for `user` (None = uncapped)."""
    return remaining_caps_many([grant], user)[grant.id]
