"""The catalog as producers meet it, and the label's edits to it.

Labels open recordings (or their whole catalog) for remix requests, with the terms they
usually grant, so a producer can find a recording and ask before uploading anything. Title,
artist and ISRC edits are versioned: the old values stay in `RecordingRevision` and each edit
is a signed ledger event, because licenses and stems name recordings by these facts."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from provenance.ledger import do_record_event
from provenance.models import LedgerEntry
from sharedcore.errors import Conflict, DomainError, NotFound

from .engine import ALL_STEMS, PURPOSES, STEM_CHOICES, WORLDWIDE
from .isrc import normalise_isrc
from .models import LicenseGrant, Recording, RecordingRevision

EDITABLE = ("title", "artist", "isrc")
MAX_TEXT = 300


# --- open for remix requests -------------------------------------------------------------------

def open_catalog(q: str = "") -> QuerySet:
    """Recordings open for remix requests, searched by title, artist, ISRC (with or without
    hyphens) or label name."""
    recs = Recording.objects.filter(open_for_requests=True).select_related("rights_holder")
    q = (q or "").strip()
    if q:
        isrc = q.upper().replace("-", "").replace(" ", "")
        recs = recs.filter(Q(title__icontains=q) | Q(artist__icontains=q) | Q(isrc__icontains=isrc)
                           | Q(rights_holder__name__icontains=q) | Q(rights_holder__slug__iexact=q))
    return recs.order_by("title", "id")


def _clean_offer(stems, purposes, territories) -> tuple[list[str], list[str], list[str]]:
    stems = list(dict.fromkeys(stems or []))
    purposes = list(dict.fromkeys(purposes or []))
    if not stems or any(s not in STEM_CHOICES for s in stems):
        raise DomainError("invalid_stems", f"offer at least one stem from {list(STEM_CHOICES)}")
    if not purposes or any(p not in PURPOSES for p in purposes):
        raise DomainError("invalid_purpose", f"offer at least one purpose from {list(PURPOSES)}")
    codes = [t.upper() for t in territories or []]
    if any(len(t) != 2 or not t.isalpha() for t in codes):
        raise DomainError("invalid_territory", "use two-letter country codes (ISO 3166-1 alpha-2), or WW")
    return stems, purposes, list(dict.fromkeys(codes))


@transaction.atomic
def do_set_remix_offer(label_org, recording_ids=None, *, open: bool, stems=(), purposes=(),
                       commercial: bool = False, territories=()) -> int:
    """Open (with the usual terms) or close recordings for remix requests; `recording_ids`
    None means the label's whole catalog. Territories left empty mean wherever the label holds
    the rights. Returns how many recordings changed."""
    recs = Recording.objects.select_for_update().filter(rights_holder=label_org)
    if recording_ids is not None:
        recording_ids = list(recording_ids)
        recs = recs.filter(id__in=recording_ids)
        if recs.count() != len(set(map(str, recording_ids))):
            raise NotFound("not_found", "no such recording in your catalog")
    recs = list(recs)
    if not open:
        changed = [r for r in recs if r.open_for_requests]
        for rec in changed:
            rec.open_for_requests = False
            rec.save(update_fields=["open_for_requests"])
        return len(changed)
    stems, purposes, territories = _clean_offer(stems, purposes, territories)
    for rec in recs:
        held = {t.upper() for t in rec.territories}
        offered = territories or sorted(held)
        if WORLDWIDE not in held and (WORLDWIDE in offered or not set(offered) <= held):
            raise DomainError("territory_not_held",
                              f"you hold the rights to {rec.title!r} only in {', '.join(sorted(held))}")
        rec.open_for_requests, rec.offer_stems, rec.offer_purposes = True, stems, purposes
        rec.offer_commercial, rec.offer_territories = bool(commercial), offered
        rec.save(update_fields=["open_for_requests", "offer_stems", "offer_purposes", "offer_commercial",
                                "offer_territories"])
    return len(recs)


# --- versioned edits ---------------------------------------------------------------------------

def _clean_edit(changes: dict) -> dict:
    out = {}
    for key, value in changes.items():
        if key not in EDITABLE or value is None:
            continue
        value = str(value).strip()
        if key == "title" and not value:
            raise DomainError("invalid_title", "a recording needs a title")
        if len(value) > MAX_TEXT:
            raise DomainError(f"invalid_{key}", f"{key} is at most {MAX_TEXT} characters")
        if key == "isrc":
            try:
                value = normalise_isrc(value)
            except ValueError as exc:
                raise DomainError("invalid_isrc", str(exc)) from exc
        out[key] = value
    return out


def recording_edit_event(rec: Recording, before: dict, user) -> dict:
    """The signed ledger record of an edit: the values before and after, and who made it."""
    return {
        "schema": "clearstem.recording-edit/v1", "recording": str(rec.id), "rights_holder": rec.rights_holder.slug,
        "revision": rec.revision, "previous_revision": rec.revision - 1,
        "before": before, "after": {k: getattr(rec, k) for k in EDITABLE},
        "changed": sorted(k for k in EDITABLE if before[k] != getattr(rec, k)),
        "by": user.username if user is not None else None, "at": timezone.now().isoformat(),
    }


@transaction.atomic
def do_edit_recording(recording_id, label_org, user=None, *, expected_revision: int | None = None,
                      **changes) -> Recording:
    """Change title, artist and/or ISRC as a new revision: the old values are kept and the edit
    is ledgered. `expected_revision` refuses an edit made on a page that is out of date. An
    edit that changes nothing returns the recording as it is (no revision, no ledger entry)."""
    rec = (Recording.objects.select_for_update().select_related("rights_holder")
           .filter(pk=recording_id, rights_holder=label_org).first())
    if rec is None:
        raise NotFound("not_found", "no such recording in your catalog")
    if expected_revision is not None and expected_revision != rec.revision:
        raise Conflict("stale_revision", f"the recording was edited meanwhile (now revision {rec.revision}); "
                                         "reload and edit again")
    clean = _clean_edit(changes)
    before = {k: getattr(rec, k) for k in EDITABLE}
    clean = {k: v for k, v in clean.items() if before[k] != v}
    if not clean:
        return rec
    if clean.get("isrc") and Recording.objects.filter(isrc=clean["isrc"]).exclude(pk=rec.pk).exists():
        raise Conflict("isrc_taken", f"ISRC {clean['isrc']} is already registered to another recording")
    RecordingRevision.objects.create(recording=rec, revision=rec.revision, replaced_by=user, **before)
    for key, value in clean.items():
        setattr(rec, key, value)
    rec.revision += 1
    try:
        with transaction.atomic():
            rec.save(update_fields=[*clean, "revision"])
    except IntegrityError as exc:  # a concurrent registration took the ISRC
        raise Conflict("isrc_taken", "that ISRC is already registered to another recording") from exc
    do_record_event(LedgerEntry.Kind.RECORDING_EDITED, f"recording:{rec.id}", recording_edit_event(rec, before, user))
    return rec


# --- license first -----------------------------------------------------------------------------

def covered_stems(stems) -> list[str]:
    """The separable stems a list of licensed stems covers (instrumental = drums, bass, other)."""
    out = [s for s in ALL_STEMS if s in stems]
    if "instrumental" in stems:
        out = [s for s in ALL_STEMS if s in out or s in ("drums", "bass", "other")]
    return out


def territory_covered(grant: LicenseGrant, territory: str) -> bool:
    codes = {t.upper() for t in grant.territories}
    territory = (territory or "").upper()
    return bool(territory) and (WORLDWIDE in codes or territory in codes) and territory not in {
        t.upper() for t in grant.excluded_territories}


def job_terms_under(grant: LicenseGrant, *, stems=None, purpose=None, commercial=None, territory=None) -> dict:
    """The job a license allows, closest to what was asked: the asked stems it covers (all it
    covers when none of them is), the asked purpose if licensed (else its first), commercial
    only if licensed, and the asked territory if covered (else its one named territory)."""
    allowed = covered_stems(grant.stems)
    wanted = [s for s in covered_stems(stems or []) if s in allowed] or allowed
    named = [t.upper() for t in grant.territories if t.upper() != WORLDWIDE]
    if not territory_covered(grant, territory or ""):
        territory = named[0] if len(named) == 1 else ""
    return {
        "stems": wanted,
        "purpose": purpose if purpose in grant.purposes else grant.purposes[0],
        "commercial": bool(commercial) and grant.commercial if commercial is not None else grant.commercial,
        "territory": (territory or "").upper(),
    }
