"""The enforcement engine: a pure function of license terms × request. No Django.

`decide()` judges one grant for one recording; `decide_request()` combines every matched
recording (a mashup needs each one licensed) or, for unmatched audio, the uploader's
attestation. Both return reasons with a machine-readable code and a sentence for people.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

ALL_STEMS = ("vocals", "drums", "bass", "other")
STEM_CHOICES = (*ALL_STEMS, "instrumental")
PURPOSES = ("remix", "sample", "dj_performance", "karaoke", "education", "sync", "ml_training")
ACTIONS = ("separate", "download", "export", "preview")  # a preview is judged like a download, with no cap
WORLDWIDE = "WW"


@dataclass(frozen=True)
class Terms:
    """The terms of one version of a license grant, plus its current usage."""

    grant_id: str
    version: int
    status: str  # draft | active | suspended | revoked | expired
    stems: frozenset[str]
    purposes: frozenset[str]
    commercial: bool
    territories: frozenset[str]  # ISO 3166-1 alpha-2, or {"WW"} for worldwide
    excluded_territories: frozenset[str] = frozenset()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_separations: int | None = None
    max_downloads: int | None = None
    max_separations_per_user: int | None = None
    max_downloads_per_user: int | None = None
    attribution: str = ""
    revenue_share_pct: str = "0.00"  # two decimals: one canonical form for the digest
    # current usage (across every version of the license), overall and by the requesting user
    separations_used: int = 0
    downloads_used: int = 0
    user_separations_used: int = 0
    user_downloads_used: int = 0

    def covered_stems(self) -> set[str]:
        covered = set(self.stems) & set(ALL_STEMS)
        if "instrumental" in self.stems:
            covered |= {"drums", "bass", "other"}
        return covered

    def digest(self) -> str:
        """SHA-256 of the terms (not the usage): what a job records it ran under."""
        body = {
            "grant_id": self.grant_id, "version": self.version, "stems": sorted(self.stems),
            "purposes": sorted(self.purposes), "commercial": self.commercial,
            "territories": sorted(self.territories), "excluded_territories": sorted(self.excluded_territories),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "max_separations": self.max_separations, "max_downloads": self.max_downloads,
            "max_separations_per_user": self.max_separations_per_user,
            "max_downloads_per_user": self.max_downloads_per_user,
            "attribution": self.attribution, "revenue_share_pct": self.revenue_share_pct,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class RequestContext:
    action: str  # separate | download | export
    stems: frozenset[str]
    purpose: str
    commercial: bool
    territory: str
    at: datetime


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    recording: str | None = None
    grant: str | None = None

    def as_dict(self) -> dict:
        d = {"code": self.code, "detail": self.detail}
        if self.recording:
            d["recording"] = self.recording
        if self.grant:
            d["grant"] = self.grant
        return d


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    grant_version: tuple[str, int] | None = None
    terms_digest: str | None = None


@dataclass(frozen=True)
class RequestDecision:
    allowed: bool
    basis: str  # license | attestation | none
    reasons: tuple[Reason, ...] = ()
    grants: Mapping[str, Decision] = field(default_factory=dict)  # recording -> allowing decision

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "basis": self.basis,
            "reasons": [r.as_dict() for r in self.reasons],
            "grants": [
                {"recording": rec, "grant": d.grant_version[0], "version": d.grant_version[1],
                 "terms_digest": d.terms_digest}
                for rec, d in sorted(self.grants.items())
            ],
        }


def human_datetime(at: datetime) -> str:
    """A moment as people read it in a message: "1 March 2027, 14:00 UTC" (never a raw
    timestamp with microseconds)."""
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return f"{at.day} {at:%B %Y, %H:%M} UTC"


def grant_status(status: str, valid_from: datetime | None, valid_until: datetime | None, at: datetime) -> str:
    """A grant's status as it stands at `at`: an active grant whose window has not opened yet is
    `scheduled`, one whose window has closed is `expired` (derived: nothing stored changes)."""
    if status == "active":
        if valid_until is not None and at >= valid_until:
            return "expired"
        if valid_from is not None and at < valid_from:
            return "scheduled"
    return status


def requested_stems(stems: Iterable[str]) -> frozenset[str]:
    out = set()
    for s in stems:
        out |= {"drums", "bass", "other"} if s == "instrumental" else {s}
    return frozenset(out)


def decide(terms: Terms, ctx: RequestContext, recording: str | None = None,
           held_territories: frozenset[str] | None = None) -> Decision:
    """Judge one grant version against one request. Every failing term is reported.

    `held_territories` are where the recording's rights holder holds the rights: a grant
    cannot license a territory its licensor does not control.
    """
    reasons: list[Reason] = []

    def fail(code: str, detail: str) -> None:
        reasons.append(Reason(code, detail, recording, terms.grant_id))

    if terms.status == "revoked":
        fail("revoked", "the license was revoked")
    elif terms.status == "suspended":
        fail("suspended", "the license is suspended")
    elif terms.status == "expired" or (terms.valid_until and ctx.at >= terms.valid_until):
        fail("expired", f"the license expired on {human_datetime(terms.valid_until) if terms.valid_until else 'an earlier date'}")
    elif terms.status != "active":
        fail("no_license", f"the license is not active (status {terms.status})")
    if terms.valid_from and ctx.at < terms.valid_from:
        fail("not_yet_valid", f"the license is valid from {human_datetime(terms.valid_from)}")
    missing = sorted(set(ctx.stems) - terms.covered_stems())
    if missing:
        fail("stem_not_licensed", f"stems not covered: {', '.join(missing)}")
    if ctx.purpose not in terms.purposes:
        fail("purpose_not_licensed", f"purpose {ctx.purpose!r} is not licensed")
    if ctx.commercial and not terms.commercial:
        fail("commercial_not_licensed", "commercial use is not licensed")
    territory = ctx.territory.upper()
    in_scope = WORLDWIDE in terms.territories or territory in terms.territories
    if not in_scope or territory in terms.excluded_territories:
        fail("territory_not_licensed", f"territory {territory} is not licensed")
    elif held_territories is not None and WORLDWIDE not in held_territories and territory not in held_territories:
        fail("territory_not_licensed", f"the rights holder does not hold the rights in {territory}")
    if ctx.action == "separate":
        if terms.max_separations is not None and terms.separations_used >= terms.max_separations:
            fail("separation_cap_reached", f"all {terms.max_separations} licensed separations are used")
        elif terms.max_separations_per_user is not None and terms.user_separations_used >= terms.max_separations_per_user:
            fail("separation_cap_reached", f"you have used your {terms.max_separations_per_user} separations")
    if ctx.action in ("download", "export"):
        if terms.max_downloads is not None and terms.downloads_used >= terms.max_downloads:
            fail("download_cap_reached", f"all {terms.max_downloads} licensed downloads are used")
        elif terms.max_downloads_per_user is not None and terms.user_downloads_used >= terms.max_downloads_per_user:
            fail("download_cap_reached", f"you have used your {terms.max_downloads_per_user} downloads")
    return Decision(
        allowed=not reasons, reasons=tuple(reasons),
        grant_version=(terms.grant_id, terms.version), terms_digest=terms.digest(),
    )


def decide_request(
    matched_recordings: Sequence[str],
    grants: Mapping[str, Sequence[Terms]],
    ctx: RequestContext,
    attested: bool,
    held_territories: Mapping[str, frozenset[str]] | None = None,
) -> RequestDecision:
    """Combine per-recording decisions: every matched recording needs an allowing grant."""
    if not matched_recordings:
        if attested:
            return RequestDecision(True, "attestation")
        return RequestDecision(False, "none", (Reason(
            "attestation_required",
            "the audio matches no catalog recording: confirm you own or control it (attestation)",
        ),))
    allowed: dict[str, Decision] = {}
    reasons: list[Reason] = []
    for rec in matched_recordings:
        candidates = grants.get(rec, ())
        if not candidates:
            reasons.append(Reason("no_license", "no license covers this recording for you", rec))
            continue
        held = held_territories.get(rec) if held_territories else None
        decisions = [decide(t, ctx, rec, held) for t in candidates]
        ok = next((d for d in decisions if d.allowed), None)
        if ok:
            allowed[rec] = ok
        else:  # report the closest grant: the one with the fewest failing terms
            reasons.extend(min(decisions, key=lambda d: len(d.reasons)).reasons)
    if len(matched_recordings) > 1 and len(allowed) < len(matched_recordings):
        unlicensed = len(matched_recordings) - len(allowed)
        reasons.insert(0, Reason(
            "multiple_recordings_unlicensed",
            f"{unlicensed} of {len(matched_recordings)} matched recordings are not licensed for this request",
        ))
    if reasons:
        return RequestDecision(False, "none", tuple(reasons), allowed)
    return RequestDecision(True, "license", (), allowed)
