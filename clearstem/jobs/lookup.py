"""Find anything by an id or hash prefix, for auditors: pages show ids and hashes cut to 8 or 16
characters, and an auditor holding only that piece must still reach the object.

A prefix of 8+ hex characters is matched against stem, job, upload, recording, license-grant and
license-request ids, upload, stem and reference-audio SHA-256s (and the SHA-256 of each delivered
rendition), and ledger leaf hashes. Every
match is listed: a prefix is ambiguous by nature, and picking one for the auditor would hide the
others.

Each query is a range scan on an indexed column, never a table scan: UUID keys sort as their hex
digits (PostgreSQL's uuid, SQLite's char(32)), the SHA-256 columns hold 64 lowercase hex digits
and leaf hashes 32 raw bytes, so the rows starting with a prefix are exactly those between the
prefix padded with 0s and the prefix padded with fs — a b-tree range, bounded by PER_KIND."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from clearstem.jobs.models import Job, Stem, StemRendition
from clearstem.uploads.models import Upload
from licensing.models import LicenseGrant, LicenseRequest, Recording
from provenance.models import LedgerEntry
from sharedcore.errors import DomainError

MIN_PREFIX = 8
#: Candidates listed per kind of object (a real ambiguity is two or three; more says "be longer").
PER_KIND = 20
KINDS = ("stem", "job", "upload", "recording", "grant", "license_request", "ledger_entry")
#: The auditors' page of each kind (URL names of clearstem.web, which the web and the API both link).
AUDIT_PAGES = {"stem": "web:audit-stem", "job": "web:audit-job", "upload": "web:audit-upload",
               "recording": "web:audit-recording", "grant": "web:audit-grant",
               "license_request": "web:audit-license-request", "ledger_entry": "web:audit-ledger-entry"}
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class Candidate:
    kind: str  # one of KINDS
    key: str  # the object's id (a ledger entry's index)
    matched: str  # what the prefix matched: "id", "SHA-256", "leaf hash", "delivered FLAC SHA-256"...
    label: str  # a few words that tell candidates apart
    created_at: datetime | None


@dataclass(frozen=True)
class Lookup:
    prefix: str
    candidates: list[Candidate]
    truncated: bool  # some kind had more than PER_KIND matches


def normalise(query: str) -> str:
    """The hex digits of `query` (dashes of a UUID, spaces and a trailing ellipsis dropped), or a
    DomainError saying what is wrong with it."""
    q = re.sub(r"[\s\-]", "", (query or "").strip().rstrip(".…")).lower()
    if not q:
        raise DomainError("query_required", "Enter an id or a hash, or at least its first 8 hex characters.")
    if not _HEX.fullmatch(q):
        raise DomainError("invalid_query", "Ids and hashes are hex: only the digits 0–9 and the letters a–f.")
    if len(q) < MIN_PREFIX:
        raise DomainError("query_too_short", f"Give at least {MIN_PREFIX} hex characters: “{q}” has {len(q)}, "
                                             "which would match too much to be useful.")
    if len(q) > 64:
        raise DomainError("invalid_query", "That is longer than any id or SHA-256 (64 hex characters).")
    return q


def _uuid_range(prefix: str):
    return uuid.UUID(prefix.ljust(32, "0")), uuid.UUID(prefix.ljust(32, "f"))


def _hex_range(prefix: str) -> tuple[str, str]:
    return prefix.ljust(64, "0"), prefix.ljust(64, "f")


def lookup(query: str) -> Lookup:
    """Every object whose id or hash starts with `query`'s hex digits, newest first per kind.
    Only for platform auditors: the caller checks who asks."""
    prefix = normalise(query)
    limit = PER_KIND
    found: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    truncated = False

    def take(rows, make) -> None:
        nonlocal truncated
        rows = list(rows[:limit + 1])
        truncated |= len(rows) > limit
        for c in map(make, rows[:limit]):
            if (c.kind, c.key) not in seen:  # a stem matched by id and by a rendition is one candidate
                seen.add((c.kind, c.key))
                found.append(c)

    stems = Stem.objects.select_related("job__upload")
    uploads = Upload.objects.all()
    grants = LicenseGrant.objects.select_related("licensor")
    recordings = Recording.objects.select_related("rights_holder")
    if len(prefix) <= 32:  # an id
        lo, hi = _uuid_range(prefix)
        take(stems.filter(pk__range=(lo, hi)), lambda s: _stem(s, "id"))
        take(Job.objects.select_related("upload").filter(pk__range=(lo, hi)), lambda j: Candidate(
            "job", str(j.pk), "id", f"{j.state} job on “{j.upload.original_name}”", j.created_at))
        take(uploads.filter(pk__range=(lo, hi)), lambda u: _upload(u, "id"))
        take(grants.filter(pk__range=(lo, hi)), lambda g: _grant(g, "id"))
        take(recordings.filter(pk__range=(lo, hi)), lambda r: _recording(r, "id"))
        take(LicenseRequest.objects.select_related("requester_org", "rights_holder").filter(pk__range=(lo, hi)),
             lambda q: Candidate("license_request", str(q.pk), "id",
                                 f"{q.status} request from {q.requester_org.name} to {q.rights_holder.name}",
                                 q.created_at))
    lo, hi = _hex_range(prefix)
    # the range uses the index; startswith repeats it exactly, whatever the database's collation
    take(stems.filter(sha256__range=(lo, hi), sha256__startswith=prefix), lambda s: _stem(s, "SHA-256"))
    take(StemRendition.objects.select_related("stem__job__upload")
         .filter(sha256__range=(lo, hi), sha256__startswith=prefix),
         lambda r: _stem(r.stem, f"delivered {r.format.upper()} SHA-256"))
    take(uploads.filter(sha256__range=(lo, hi), sha256__startswith=prefix), lambda u: _upload(u, "SHA-256"))
    take(recordings.filter(audio_sha256__range=(lo, hi), audio_sha256__startswith=prefix),
         lambda r: _recording(r, "reference audio SHA-256"))
    take(LedgerEntry.objects.filter(leaf_hash__range=(_bytes(lo), _bytes(hi))).only(
        "index", "kind", "subject", "leaf_hash", "created_at"), lambda e: Candidate(
        "ledger_entry", str(e.index), "leaf hash", f"#{e.index} {e.kind} · {e.subject}", e.created_at))
    return Lookup(prefix, found, truncated)


def _bytes(hex64: str) -> bytes:
    return bytes.fromhex(hex64)


def _stem(s: Stem, matched: str) -> Candidate:
    return Candidate("stem", str(s.pk), matched, f"{s.name} stem of “{s.job.upload.original_name}”", s.created_at)


def _upload(u: Upload, matched: str) -> Candidate:
    return Candidate("upload", str(u.pk), matched, f"upload “{u.original_name}”", u.created_at)


def _recording(r: Recording, matched: str) -> Candidate:
    return Candidate("recording", str(r.pk), matched, f"recording “{r.title}” ({r.isrc or 'no ISRC'}) of "
                                                      f"{r.rights_holder.name}", r.created_at)


def _grant(g: LicenseGrant, matched: str) -> Candidate:
    return Candidate("grant", str(g.pk), matched, f"license v{g.version} from {g.licensor.name} ({g.status})",
                     g.created_at)
