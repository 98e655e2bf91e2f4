"""The enforcement engine, table-driven over terms × request (pure Python, no database)."""
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from licensing.engine import RequestContext, Terms, decide, decide_request, requested_stems

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = Terms(
    grant_id="g1", version=1, status="active", stems=frozenset({"vocals", "drums", "bass", "other"}),
    purposes=frozenset({"remix"}), commercial=False, territories=frozenset({"WW"}),
    excluded_territories=frozenset({"KP"}), valid_from=NOW - timedelta(days=10), valid_until=NOW + timedelta(days=10),
    max_separations=3, max_downloads=5,
)
CTX = RequestContext(action="separate", stems=frozenset({"vocals"}), purpose="remix", commercial=False,
                     territory="GB", at=NOW)


@pytest.mark.parametrize("terms,ctx,codes", [
    (BASE, CTX, []),
    (replace(BASE, status="revoked"), CTX, ["revoked"]),
    (replace(BASE, status="suspended"), CTX, ["suspended"]),
    (replace(BASE, status="expired"), CTX, ["expired"]),
    (replace(BASE, status="draft"), CTX, ["no_license"]),
    (BASE, replace(CTX, at=BASE.valid_until), ["expired"]),  # the end is exclusive
    (BASE, replace(CTX, at=BASE.valid_until - timedelta(seconds=1)), []),
    (BASE, replace(CTX, at=BASE.valid_from - timedelta(seconds=1)), ["not_yet_valid"]),
    (BASE, replace(CTX, at=BASE.valid_from), []),  # the start is inclusive
    (replace(BASE, stems=frozenset({"drums"})), CTX, ["stem_not_licensed"]),
    (replace(BASE, stems=frozenset({"instrumental"})), replace(CTX, stems=frozenset({"bass", "other"})), []),
    (replace(BASE, stems=frozenset({"instrumental"})), CTX, ["stem_not_licensed"]),
    (BASE, replace(CTX, purpose="sync"), ["purpose_not_licensed"]),
    (BASE, replace(CTX, commercial=True), ["commercial_not_licensed"]),
    (BASE, replace(CTX, territory="KP"), ["territory_not_licensed"]),
    (replace(BASE, territories=frozenset({"DE", "FR"})), CTX, ["territory_not_licensed"]),
    (replace(BASE, territories=frozenset({"DE", "GB"})), replace(CTX, territory="gb"), []),
    (replace(BASE, separations_used=3), CTX, ["separation_cap_reached"]),
    (replace(BASE, separations_used=2), CTX, []),
    (replace(BASE, downloads_used=5), replace(CTX, action="download"), ["download_cap_reached"]),
    (replace(BASE, downloads_used=5), CTX, []),  # download cap does not block separation
    (replace(BASE, status="revoked", commercial=False), replace(CTX, commercial=True),
     ["revoked", "commercial_not_licensed"]),
    (replace(BASE, status="superseded"), CTX, ["no_license"]),
    (replace(BASE, max_separations_per_user=2, user_separations_used=2), CTX, ["separation_cap_reached"]),
    (replace(BASE, max_separations_per_user=2, user_separations_used=1), CTX, []),
    (replace(BASE, max_downloads_per_user=1, user_downloads_used=1), replace(CTX, action="export"),
     ["download_cap_reached"]),
])
def test_decide(terms, ctx, codes):
    d = decide(terms, ctx, "rec1")
    assert [r.code for r in d.reasons] == codes
    assert d.allowed is (not codes)
    assert d.grant_version == ("g1", 1)
    assert d.terms_digest == terms.digest()


def test_digest_covers_terms_not_usage():
    assert BASE.digest() == replace(BASE, separations_used=2).digest()
    assert BASE.digest() != replace(BASE, commercial=True).digest()


def test_unmatched_audio_needs_attestation():
    assert decide_request([], {}, CTX, attested=True).basis == "attestation"
    d = decide_request([], {}, CTX, attested=False)
    assert not d.allowed and [r.code for r in d.reasons] == ["attestation_required"]


def test_mashup_needs_every_recording_licensed():
    d = decide_request(["r1", "r2"], {"r1": [BASE]}, CTX, attested=True)
    assert not d.allowed
    assert [r.code for r in d.reasons] == ["multiple_recordings_unlicensed", "no_license"]
    assert d.reasons[1].recording == "r2"
    ok = decide_request(["r1", "r2"], {"r1": [BASE], "r2": [replace(BASE, grant_id="g2")]}, CTX, attested=False)
    assert ok.allowed and ok.basis == "license" and set(ok.grants) == {"r1", "r2"}


def test_first_allowing_grant_wins_and_closest_failure_is_reported():
    bad = replace(BASE, grant_id="g0", purposes=frozenset({"sync"}), commercial=False)
    worse = replace(BASE, grant_id="gx", status="revoked", purposes=frozenset({"sync"}))
    assert decide_request(["r1"], {"r1": [bad, BASE]}, CTX, False).grants["r1"].grant_version == ("g1", 1)
    d = decide_request(["r1"], {"r1": [worse, bad]}, CTX, False)
    assert [r.code for r in d.reasons] == ["purpose_not_licensed"] and d.reasons[0].grant == "g0"


def test_instrumental_request_expands():
    assert requested_stems(["instrumental", "vocals"]) == {"vocals", "drums", "bass", "other"}


@pytest.mark.parametrize("held,territory,codes", [
    (frozenset({"WW"}), "GB", []),
    (frozenset({"GB", "IE"}), "GB", []),
    (frozenset({"GB", "IE"}), "US", ["territory_not_licensed"]),  # the label does not hold US rights
    (None, "US", []),
])
def test_rights_holder_territories(held, territory, codes):
    d = decide(BASE, replace(CTX, territory=territory), "rec1", held)
    assert [r.code for r in d.reasons] == codes


def test_odrl_round_trip():
    from licensing.odrl import from_odrl, to_odrl

    variants = [
        BASE,
        replace(BASE, commercial=True, territories=frozenset({"GB", "DE"}), excluded_territories=frozenset(),
                stems=frozenset({"instrumental"}), purposes=frozenset({"remix", "sync"}), max_separations=None,
                max_separations_per_user=2, max_downloads_per_user=4, attribution="Song — Band",
                revenue_share_pct="12.50", valid_from=None),
    ]
    for terms in variants:
        doc = to_odrl(terms, assigner="label-a", assignee="producer-a", recordings=[{"id": "r1", "isrc": "QZAAA2600011"}])
        assert doc["@type"] == "Agreement" and doc["permission"][0]["action"][0]["rdf:value"]["@id"] == "odrl:derive"
        back = from_odrl(__import__("json").loads(__import__("json").dumps(doc)))
        assert back.digest() == terms.digest() and back == replace(terms, separations_used=0, downloads_used=0)
    assert "prohibition" in to_odrl(BASE, assigner="a", assignee=None, recordings=[])  # non-commercial
