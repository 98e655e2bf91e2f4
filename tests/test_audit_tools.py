"""Auditor tools: finding anything by an id or hash prefix (web and API), the pages it leads to,
the consistency proof between two tree heads, and the ledger page's self-refresh. Rows are made
directly (no audio pipeline) so that prefixes can be made to collide on purpose."""
from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from django.test import Client

from clearstem.jobs.models import Job, Stem, StemRendition
from clearstem.uploads.models import Upload
from licensing.models import LicenseGrant
from provenance import ledger
from provenance.models import TreeHead

SHARED = "abcdef12"  # a stem id, a job id and an upload hash all start with it


def _hex(lead: str, fill: str = "0") -> str:
    return (lead + fill * 64)[:64]


@pytest.fixture
def rows(users, orgs):
    producer = users["producer"][0]
    upload = Upload.objects.create(
        owner=producer, organisation=orgs["producer"], file="u.wav", original_name="loop.wav", size=10,
        sha256=_hex(SHARED + "99"), container="wav", codec="pcm_s16le", sample_rate=44100, channels=2,
        duration_s=12.0, fingerprint=b"")
    job = Job.objects.create(id=uuid.UUID(SHARED + "-1111-4111-8111-111111111111"), upload=upload,
                             requested_by=producer, organisation=orgs["producer"], stems=["vocals"], purpose="remix",
                             territory="GB", model="hpss")
    stem = Stem.objects.create(id=uuid.UUID(SHARED + "-2222-4222-8222-222222222222"), job=job, name="vocals",
                               file="s.wav", sha256=_hex("5e1f00aa77"), size=10, format="wav", sample_rate=44100,
                               bits_per_sample=16, channels=2, duration_s=12.0)
    rendition = StemRendition.objects.create(stem=stem, format="flac", bits_per_sample=16, file="s.flac",
                                             sha256=_hex("f1ac0000bb"), size=8, content_credentials=True)
    grant = LicenseGrant.objects.create(licensor=orgs["label"], licensee_org=orgs["producer"], stems=["vocals"],
                                        purposes=["remix"], territories=["WW"])
    with transaction.atomic():
        entries = [ledger.do_record_event("stem", f"stem:{stem.pk}", {"n": i}) for i in range(5)]
    return {"upload": upload, "job": job, "stem": stem, "rendition": rendition, "grant": grant, "entries": entries}


@pytest.fixture
def auditor(users):
    c = Client()
    c.force_login(users["platform"][0])
    return c


def test_ambiguous_prefix_lists_every_candidate(rows, auditor, clients):
    r = auditor.get("/audit/", {"q": SHARED.upper()})
    assert r.status_code == 200
    page = r.content.decode()
    assert 'id="candidates"' in page and "3 matches" in page
    for link in (f'/audit/stems/{rows["stem"].pk}/', f'/audit/jobs/{rows["job"].pk}/',
                 f'/audit/uploads/{rows["upload"].pk}/'):
        assert f'href="{link}"' in page
    body = clients["platform"].get("/api/v1/audit/lookup/", {"q": SHARED}).json()
    assert body["prefix"] == SHARED and not body["truncated"]
    found = {(c["kind"], c["matched"]) for c in body["candidates"]}
    assert found == {("stem", "id"), ("job", "id"), ("upload", "SHA-256")}
    stem_row = next(c for c in body["candidates"] if c["kind"] == "stem")
    assert stem_row["id"] == str(rows["stem"].pk) and stem_row["audit_url"].endswith(f'/audit/stems/{rows["stem"].pk}/')


def test_unique_prefix_opens_the_object(rows, auditor):
    stem, entry = rows["stem"], rows["entries"][3]
    cases = {
        "5e1f00aa": f"/audit/stems/{stem.pk}/",  # stem SHA-256
        "f1ac0000b": f"/audit/stems/{stem.pk}/",  # a delivered FLAC's SHA-256, odd length
        f"{SHARED}-1111": f'/audit/jobs/{rows["job"].pk}/',  # as pages print ids, dashes and all
        str(rows["grant"].pk)[:13]: f'/audit/grants/{rows["grant"].pk}/',
        bytes(entry.leaf_hash).hex()[:11] + "…": f"/audit/ledger/entries/{entry.index}/",
    }
    for q, target in cases.items():
        r = auditor.get("/audit/", {"q": q})
        assert r.status_code == 302 and r["Location"] == target, (q, r.status_code)
    for target in {t for t in cases.values() if "/stems/" not in t} | {f'/audit/uploads/{rows["upload"].pk}/'}:
        assert auditor.get(target).status_code == 200, target  # (the stem page needs real provenance)
    page = auditor.get(f"/audit/ledger/entries/{entry.index}/").content.decode()
    assert 'id="inclusion-verdict">included<' in page and bytes(entry.leaf_hash).hex() in page
    assert auditor.get("/audit/ledger/entries/999/").status_code == 404


def test_short_malformed_and_unknown_queries_are_explained(rows, auditor, clients):
    r = auditor.get("/audit/", {"q": "abc123"})
    assert r.status_code == 400 and "at least 8 hex characters" in r.content.decode()
    r = auditor.get("/audit/", {"q": "stem-xyz-12345"})
    assert r.status_code == 400 and "only the digits 0–9 and the letters a–f" in r.content.decode()
    r = auditor.get("/audit/", {"q": "00000000"})
    assert r.status_code == 404 and "Nothing has an id or hash starting with “00000000”" in r.content.decode()
    api = clients["platform"]
    for q, code in (("abc123", "query_too_short"), ("xyz12345", "invalid_query"), ("", "query_required"),
                    ("a" * 65, "invalid_query")):
        r = api.get("/api/v1/audit/lookup/", {"q": q})
        assert r.status_code == 400 and r.json()["code"] == code, (q, r.content)
    r = api.get("/api/v1/audit/lookup/", {"q": "00000000"})
    assert r.status_code == 200 and r.json()["candidates"] == []


def test_non_auditors_are_refused(rows, users, clients):
    for who in ("producer", "label"):
        c = Client()
        c.force_login(users[who][0])
        assert c.get("/audit/", {"q": SHARED}).status_code == 404
        assert c.get(f'/audit/jobs/{rows["job"].pk}/').status_code == 404
        assert c.get("/audit/ledger/consistency/").status_code == 404
        r = clients[who].get("/api/v1/audit/lookup/", {"q": SHARED})
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert clients["anonymous"].get("/api/v1/audit/lookup/", {"q": SHARED}).status_code in (401, 403)


def _sign_heads(sizes):
    """Signed tree heads at these sizes (the log grows to each, then a head is signed)."""
    for size in sizes:
        with transaction.atomic():
            while ledger.ledger_size() < size:
                ledger.do_record_event("stem", "bench:audit", {"i": ledger.ledger_size()})
        ledger.current_tree_head(covering=size - 1)


def test_consistency_proof_page(rows, auditor):
    _sign_heads([6, 9])
    r = auditor.get("/audit/ledger/consistency/")  # the two latest signed heads
    page = r.content.decode()
    assert r.status_code == 200 and 'id="consistency-verdict">consistent<' in page and "From 6 to 9" in page
    assert "signature valid" in page and 'href="?first=6&amp;second=9"' in page
    r = auditor.get("/audit/ledger/consistency/", {"first": 3, "second": 9})
    page = r.content.decode()
    assert 'id="consistency-verdict">consistent<' in page and "root recomputed from the stored nodes" in page
    assert page.count("<li><code>") == len(ledger.consistency(3, 9)) > 0
    for first, second, says in ((9, 3, "must not be larger"), (1, 99, "no tree of 99"), ("x", 3, "whole number"),
                                (-1, 3, "cannot be negative")):
        r = auditor.get("/audit/ledger/consistency/", {"first": first, "second": second})
        assert r.status_code == 400 and says in r.content.decode() and 'role="alert"' in r.content.decode()
    # a forged head at size 7 (a root the log never had): the proof cannot reach it
    good = TreeHead.objects.get(size=9)
    TreeHead.objects.create(size=7, root_hash=b"\x01" * 32, timestamp=good.timestamp, key_id=good.key_id,
                            signature=good.signature, checkpoint="")
    page = auditor.get("/audit/ledger/consistency/", {"first": 7, "second": 9}).content.decode()
    assert 'id="consistency-verdict">NOT consistent<' in page and "signature does not verify" in page


def test_ledger_page_refreshes_itself_and_lists_link(rows, auditor):
    page = auditor.get("/audit/ledger/").content.decode()
    assert 'hx-trigger="every 5s"' in page and 'http-equiv="refresh"' in page
    assert f'href="/audit/ledger/entries/{rows["entries"][-1].index}/"' in page
    assert f'href="/audit/stems/{rows["stem"].pk}/"' in page  # the entry's subject
    version = page.split("/audit/ledger/live/?since=")[1].split('"')[0]
    assert auditor.get("/audit/ledger/live/", {"since": version}).status_code == 204  # unchanged: no swap
    with transaction.atomic():
        ledger.do_record_event("stem", "bench:audit", {"new": True})
    r = auditor.get("/audit/ledger/live/", {"since": version})
    assert r.status_code == 200 and 'hx-swap-oob="true"' in r.content.decode()
    assert f'>{ledger.ledger_size()}</dd>' in r.content.decode()


def test_recent_lists_and_job_monitor_link_to_pages(rows, auditor):
    job = rows["job"]
    Job.objects.filter(pk=job.pk).update(state="failed", error_code="separation_failed", attempts=3)
    home = auditor.get("/audit/").content.decode()
    assert f'href="/audit/stems/{rows["stem"].pk}/"' in home and f'href="/audit/jobs/{job.pk}/"' in home
    monitor = auditor.get("/audit/jobs/").content.decode()
    assert f'href="/audit/jobs/{job.pk}/"' in monitor
    page = auditor.get(f"/audit/jobs/{job.pk}/").content.decode()
    assert "separation_failed" in page and f'href="/audit/stems/{rows["stem"].pk}/"' in page


def test_recordings_and_license_requests_are_found_by_id_and_hash(rows, auditor, users, orgs, clients):
    """Any id means any: a recording (by id or its reference audio's SHA-256, after an edit its
    earlier title shown) and a license request lead to their own audit pages."""
    from licensing.catalog import do_edit_recording
    from licensing.models import LicenseRequest, Recording

    rec = Recording.objects.create(id=uuid.UUID("c0ffee00-3333-4333-8333-333333333333"), rights_holder=orgs["label"],
                                   title="Old Title", isrc="QZAAA2600077", reference_audio="r.wav",
                                   audio_sha256=_hex("decade0042"), duration_s=30.0)
    do_edit_recording(rec.pk, orgs["label"], users["label"][0], title="New Title")
    rows["grant"].recordings.add(rec)
    req = LicenseRequest.objects.create(id=uuid.UUID("beadfeed-4444-4444-8444-444444444444"),
                                        requester=users["producer"][0], requester_org=orgs["producer"],
                                        rights_holder=orgs["label"], stems=["vocals"], purpose="remix", territory="GB")
    req.recordings.add(rec)
    for q, target in (("c0ffee00-33", f"/audit/recordings/{rec.pk}/"), ("decade0042", f"/audit/recordings/{rec.pk}/"),
                      ("beadfeed", f"/audit/license-requests/{req.pk}/")):
        r = auditor.get("/audit/", {"q": q})
        assert r.status_code == 302 and r["Location"] == target, (q, r.status_code)
    page = auditor.get(f"/audit/recordings/{rec.pk}/").content.decode()
    assert "“New Title”" in page and "r1: “Old Title”" in page and "recording_edited" in page
    assert f'href="/audit/grants/{rows["grant"].pk}/"' in page and f'href="/audit/license-requests/{req.pk}/"' in page
    page = auditor.get(f"/audit/license-requests/{req.pk}/").content.decode()
    assert "asked from the catalog" in page and f'href="/audit/recordings/{rec.pk}/"' in page
    body = clients["platform"].get("/api/v1/audit/lookup/", {"q": "beadfeed"}).json()
    (row,) = body["candidates"]
    assert row["kind"] == "license_request" and row["url"].endswith(f"/api/v1/license-requests/{req.pk}/")
    assert clients["platform"].get(row["url"]).status_code == 200
    c = Client()
    c.force_login(users["label"][0])
    assert c.get(f"/audit/recordings/{rec.pk}/").status_code == 404  # auditors' pages only
