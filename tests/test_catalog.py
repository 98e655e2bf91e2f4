"""The open catalog (producers find recordings and ask before uploading), license-first jobs,
and the label's versioned catalog edits — through the API and the web pages."""
import io

import av
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.test import Client

from clearstem.jobs.models import Job
from clearstem.jobs.services import do_process_job
from licensing.models import Recording, RecordingRevision
from provenance.ledger import verify_ledger
from provenance.models import LedgerEntry
from tests.conftest import upload_file

OFFER = {"open": True, "stems": ["vocals", "drums", "bass", "other"], "purposes": ["remix", "sample"],
         "commercial": False, "territories": ["GB", "FR"]}


@pytest.fixture
def open_catalog(clients, catalog):
    """Label A opens song 12 (not licensed to anyone yet) for remix requests."""
    rec12 = catalog["recordings"][12]["id"]
    r = clients["label"].post("/api/v1/recordings/offer/", {**OFFER, "recordings": [rec12]}, format="json")
    assert r.status_code == 200 and r.json() == {"changed": 1}, r.content
    return {**catalog, "open": rec12, "closed": catalog["recordings"][11]["id"]}


def web_client(users, key):
    c = Client()
    c.force_login(users[key][0])
    return c


# --- the open catalog ----------------------------------------------------------------------------

def test_producers_see_only_open_recordings_and_search_them(clients, open_catalog):
    producer = clients["producer"]
    listed = producer.get("/api/v1/catalog/").json()["results"]
    assert [r["id"] for r in listed] == [open_catalog["open"]]
    row = listed[0]
    assert row["label"] == "label-a" and row["label_name"] == "Label A" and row["isrc"] == "QZAAA2600012"
    assert row["offer"] == {"stems": OFFER["stems"], "purposes": OFFER["purposes"], "commercial": False,
                            "territories": ["GB", "FR"]}
    # closed recordings are not found, not forbidden; the label's own list still has them
    assert producer.get(f"/api/v1/catalog/{open_catalog['closed']}/").status_code == 404
    assert producer.get(f"/api/v1/catalog/{open_catalog['closed']}/excerpt/").status_code == 404
    assert producer.get(f"/api/v1/recordings/{open_catalog['open']}/").status_code == 404
    # search by title, ISRC with hyphens, label name; nothing for a closed title
    for q, hits in (("song 12", 1), ("QZ-AAA-26-00012", 1), ("label a", 1), ("Song 11", 0), ("zzz", 0)):
        assert producer.get("/api/v1/catalog/", {"q": q}).json()["count"] == hits, q
    # closing takes it out again
    r = clients["label"].post("/api/v1/recordings/offer/", {"open": False}, format="json")
    assert r.json() == {"changed": 1}
    assert producer.get("/api/v1/catalog/").json()["count"] == 0
    assert clients["anonymous"].get("/api/v1/catalog/").status_code == 401


def test_offer_input_is_checked(clients, catalog):
    label = clients["label"]
    r = label.post("/api/v1/recordings/offer/", {"open": True, "stems": []}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    r = label.post("/api/v1/recordings/offer/", {**OFFER, "territories": ["G1"]}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    # another label's recording is not found; producers may not open anything
    r = clients["label_b"].post("/api/v1/recordings/offer/", {**OFFER, "recordings": [catalog["recordings"][12]["id"]]},
                                format="json")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert clients["producer"].post("/api/v1/recordings/offer/", OFFER, format="json").status_code == 403
    assert not Recording.objects.filter(open_for_requests=True).exists()
    # the whole catalog at once, territories defaulting to where the rights are held
    r = label.post("/api/v1/recordings/offer/", {**OFFER, "territories": []}, format="json")
    assert r.json() == {"changed": 2}
    assert [t for t in Recording.objects.values_list("offer_territories", flat=True)] == [["WW"], ["WW"]]


def test_excerpt_is_a_short_stereo_mp3(clients, open_catalog):
    r = clients["producer"].get(f"/api/v1/catalog/{open_catalog['open']}/excerpt/", HTTP_ACCEPT="audio/mpeg")
    assert r.status_code == 200 and r["Content-Type"] == "audio/mpeg"
    body = b"".join(r.streaming_content)
    assert 20_000 < len(body) < 400_000  # a few seconds at 128 kb/s, never the 24 s master
    with av.open(io.BytesIO(body)) as c:
        stream = c.streams.audio[0]
        assert c.format.name == "mp3" and stream.codec_context.channels == 2
        assert 6 <= c.duration / 1e6 <= 9


def test_an_excerpt_that_cannot_be_made_is_not_found_not_a_server_error(clients, users, open_catalog):
    rec = Recording.objects.get(pk=open_catalog["open"])
    default_storage.delete(rec.reference_audio.name)  # the label's master is gone from storage
    r = clients["producer"].get(f"/api/v1/catalog/{rec.pk}/excerpt/", HTTP_ACCEPT="audio/mpeg")
    assert r.status_code == 404 and r.json()["code"] == "excerpt_unavailable"
    page = web_client(users, "producer").get(f"/studio/catalog/{rec.pk}/excerpt/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/plain")
    assert b"no excerpt" in page.content
    # a reference file that is there but not audio is refused the same way
    with default_storage.open(rec.reference_audio.name, "wb") as fh:
        fh.write(b"not audio at all" * 100)
    r = clients["producer"].get(f"/api/v1/catalog/{rec.pk}/excerpt/", HTTP_ACCEPT="audio/mpeg")
    assert r.status_code == 404 and r.json()["code"] == "excerpt_unavailable"
    assert not default_storage.exists(f"excerpts/{rec.pk}-{rec.audio_sha256[:16]}-{settings.CLEARSTEM_EXCERPT_SECONDS:g}s.mp3")


def test_request_from_the_catalog_without_an_upload_then_license_first_job(clients, users, open_catalog, audio_dir):
    producer = clients["producer"]
    body = {"recordings": [open_catalog["open"]], "stems": ["vocals"], "purpose": "remix", "territory": "GB",
            "message": "for my EP"}
    r = producer.post("/api/v1/license-requests/", body, format="json")
    assert r.status_code == 201, r.content
    (req,) = r.json()
    assert req["job"] is None and req["recordings"] == [open_catalog["open"]] and req["status"] == "pending"
    assert not Job.objects.exists()
    ok = clients["label"].post(f"/api/v1/license-requests/{req['id']}/approve/", {}, format="json")
    assert ok.status_code == 200, ok.content
    grant_id = ok.json()["grant"]
    # the job form opened from the license is pre-filled from it and offers only what it covers
    up = upload_file(producer, audio_dir / "excerpt12.flac").json()
    web = web_client(users, "producer")
    page = web.get(f"/studio/uploads/{up['id']}/?license={grant_id}").content.decode()
    assert 'name="stems" value="vocals" checked' in page and 'value="drums"' not in page
    assert 'name="territory" id="territory" value="GB"' in page
    assert '<option value="remix" selected>' in page and 'value="sample"' not in page
    # submitting it as it stands clears
    r = web.post(f"/studio/uploads/{up['id']}/separate/",
                 {"stems": ["vocals"], "purpose": "remix", "territory": "GB", "model": "dsp", "license": grant_id})
    assert r.status_code == 302, r.content.decode()[:2000]
    job = Job.objects.get()
    assert do_process_job(job.pk).state == "queued"


def test_separate_now_on_a_denied_job(clients, users, open_catalog, audio_dir):
    producer = clients["producer"]
    up = upload_file(producer, audio_dir / "excerpt12.flac").json()
    r = producer.post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": ["vocals", "drums"],
                                        "purpose": "remix", "territory": "GB", "commercial": True}, format="json")
    denied = do_process_job(r.json()["id"])
    assert denied.state == "denied"
    web = web_client(users, "producer")
    assert "Separate now" not in web.get(f"/studio/jobs/{denied.pk}/").content.decode()
    (req,) = producer.post("/api/v1/license-requests/", {"job": str(denied.pk)}, format="json").json()
    # the label narrows it: vocals only, non-commercial
    ok = clients["label"].post(f"/api/v1/license-requests/{req['id']}/approve/",
                               {"stems": ["vocals"], "commercial": False}, format="json")
    grant_id = ok.json()["grant"]
    page = web.get(f"/studio/jobs/{denied.pk}/").content.decode()
    assert "Separate now under license" in page and "vocals" in page
    r = web.post(f"/studio/jobs/{denied.pk}/separate-under/{grant_id}/")
    assert r.status_code == 302
    job = Job.objects.exclude(pk=denied.pk).get()
    assert r["Location"] == f"/studio/jobs/{job.pk}/"
    assert (job.stems, job.purpose, job.commercial, job.territory, job.upload_id) == (
        ["vocals"], "remix", False, "GB", denied.upload_id)
    assert do_process_job(job.pk).state == "queued"
    # another producer cannot use it
    other = web_client(users, "producer_b")
    assert other.post(f"/studio/jobs/{denied.pk}/separate-under/{grant_id}/").status_code == 404


def test_catalog_pages_and_forms(clients, users, catalog, audio_dir):
    label, producer = web_client(users, "label"), web_client(users, "producer")
    rec11, rec12 = catalog["recordings"][11]["id"], catalog["recordings"][12]["id"]
    # the label opens the whole catalog from its page; bad terms are a form error and change nothing
    bad = label.post("/catalog/offer/", {"action": "open", "purposes": ["remix"], "territories": "GB"})
    assert bad.status_code == 400 and "name the stems" in bad.content.decode()
    assert not Recording.objects.filter(open_for_requests=True).exists()
    r = label.post("/catalog/offer/", {"action": "open", "stems": ["vocals", "drums"], "purposes": ["remix"],
                                       "territories": ""})
    assert r.status_code == 302 and Recording.objects.filter(open_for_requests=True).count() == 2
    r = label.post("/catalog/offer/", {"action": "close", "recording": rec11})
    assert r.status_code == 302 and not Recording.objects.get(pk=rec11).open_for_requests
    assert web_client(users, "label_b").post("/catalog/offer/", {"action": "close", "recording": rec12}).status_code == 404
    # a recording id that is not an id at all names nothing: 404, not a server error
    assert label.post("/catalog/offer/", {"action": "close", "recording": "not-a-uuid"}).status_code == 404
    assert label.get("/usage.csv", {"recording": "nope"}).status_code == 404
    # producers: the catalog page and its live search list open recordings only; closed ones are 404
    page = producer.get("/studio/catalog/").content.decode()
    assert "Song 12" in page and "Song 11" not in page and 'href="/studio/catalog/"' in page
    rows = producer.get("/studio/catalog/", {"q": "nothing like it"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No open recording matches" in rows
    assert producer.get(f"/studio/catalog/{rec11}/").status_code == 404
    assert producer.post(f"/studio/catalog/{rec11}/request/", {"stems": ["vocals"], "purpose": "remix",
                                                               "territory": "GB"}).status_code == 404
    form = producer.get(f"/studio/catalog/{rec12}/").content.decode()
    assert 'name="stems" value="vocals" checked' in form and 'name="stems" value="bass" >' in form
    # a request without a territory is a form error; nothing is filed
    r = producer.post(f"/studio/catalog/{rec12}/request/", {"stems": ["vocals"], "purpose": "remix", "territory": ""})
    assert r.status_code == 400 and 'id="err-territory"' in r.content.decode()
    r = producer.post(f"/studio/catalog/{rec12}/request/", {"stems": ["vocals"], "purpose": "nope", "territory": "GB"})
    assert r.status_code == 400 and 'id="err-purpose"' in r.content.decode()
    assert not clients["producer"].get("/api/v1/license-requests/").json()["results"]
    r = producer.post(f"/studio/catalog/{rec12}/request/", {"stems": ["vocals"], "purpose": "remix", "territory": "gb"})
    assert r.status_code == 302 and r["Location"] == "/studio/licenses/"
    (req,) = clients["producer"].get("/api/v1/license-requests/").json()["results"]
    assert req["territory"] == "GB" and req["rights_holder"] == "label-a" and req["job"] is None
    assert "Song 12" in producer.get(f"/studio/catalog/{rec12}/").content.decode()
    # read-only members may browse, not ask
    viewer = web_client(users, "producer_viewer")
    assert viewer.get("/studio/catalog/").status_code == 200
    viewer.post(f"/studio/catalog/{rec12}/request/", {"stems": ["vocals"], "purpose": "remix", "territory": "GB"})
    assert len(clients["producer"].get("/api/v1/license-requests/").json()["results"]) == 1
    # the bulk drop zone's verdicts are exact: a file already registered is not "registered"
    with open(audio_dir / "song12.wav", "rb") as fh:
        again = label.post("/catalog/new/", {"file": fh, "territories": "WW"}, HTTP_ACCEPT="application/json")
    assert again.status_code == 200 and again.json()["verdict"] == "already_registered" and again.json()["total"] == 2


# --- versioned catalog edits -----------------------------------------------------------------------

def test_edit_title_and_isrc_keeps_the_old_revision_and_ledgers(clients, users, catalog):
    rec = catalog["recordings"][12]
    label = clients["label"]
    before = LedgerEntry.objects.count()
    r = label.patch(f"/api/v1/recordings/{rec['id']}/", {"title": "Song Twelve", "isrc": "QZ-AAA-26-00099",
                                                         "revision": 1}, format="json")
    assert r.status_code == 200, r.content
    now = r.json()
    assert now["title"] == "Song Twelve" and now["isrc"] == "QZAAA2600099" and now["revision"] == 2
    (old,) = label.get(f"/api/v1/recordings/{rec['id']}/revisions/").json()
    assert old["revision"] == 1 and old["title"] == "Song 12" and old["isrc"] == "QZAAA2600012"
    assert old["replaced_by"] == "label@example.test"
    entry = LedgerEntry.objects.get(index=before)
    assert entry.kind == "recording_edited" and entry.subject == f"recording:{rec['id']}"
    assert verify_ledger().ok
    # an edit made on the old revision is refused; an edit changing nothing makes no revision
    stale = label.patch(f"/api/v1/recordings/{rec['id']}/", {"artist": "X", "revision": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "stale_revision"
    same = label.patch(f"/api/v1/recordings/{rec['id']}/", {"title": "Song Twelve"}, format="json")
    assert same.json()["revision"] == 2 and RecordingRevision.objects.count() == 1
    # the web form does the same
    web = web_client(users, "label")
    r = web.post(f"/catalog/{rec['id']}/edit/", {"title": "Song 12 (2026 remaster)", "artist": "The Band",
                                                  "isrc": "QZAAA2600099", "revision": "2"})
    assert r.status_code == 302
    assert Recording.objects.get(pk=rec["id"]).revision == 3
    page = web.get(f"/catalog/{rec['id']}/").content.decode()
    assert "Song Twelve" in page and "Song 12 (2026 remaster)" in page
    # history is never rewritten, by any role (PostgreSQL trigger)
    with pytest.raises(DatabaseError), transaction.atomic():
        RecordingRevision.objects.filter(recording_id=rec["id"]).update(title="rewritten")


def test_bad_edits_are_refused_and_change_nothing(clients, users, catalog):
    rec, other = catalog["recordings"][12], catalog["recordings"][11]
    label = clients["label"]
    bad = label.patch(f"/api/v1/recordings/{rec['id']}/", {"isrc": "not-an-isrc"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_isrc"
    taken = label.patch(f"/api/v1/recordings/{rec['id']}/", {"isrc": other["isrc"]}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "isrc_taken"
    empty = label.patch(f"/api/v1/recordings/{rec['id']}/", {"title": "  "}, format="json")
    assert empty.status_code == 400
    # another label cannot edit (not found), nor a producer, nor a read-only member
    assert clients["label_b"].patch(f"/api/v1/recordings/{rec['id']}/", {"title": "Mine"},
                                    format="json").status_code == 404
    assert clients["producer"].patch(f"/api/v1/recordings/{rec['id']}/", {"title": "Mine"},
                                     format="json").status_code == 404
    assert clients["label_viewer"].patch(f"/api/v1/recordings/{rec['id']}/", {"title": "Mine"},
                                         format="json").status_code == 403
    assert web_client(users, "label_b").post(f"/catalog/{rec['id']}/edit/", {"title": "Mine"}).status_code == 404
    page = web_client(users, "label").post(f"/catalog/{rec['id']}/edit/", {"title": "Song 12", "isrc": "nope",
                                                                           "revision": "1"})
    assert page.status_code == 400 and "not a valid ISRC" in page.content.decode()
    fresh = Recording.objects.get(pk=rec["id"])
    assert (fresh.title, fresh.isrc, fresh.revision) == ("Song 12", "QZAAA2600012", 1)
    assert not RecordingRevision.objects.exists()
    assert not LedgerEntry.objects.filter(kind="recording_edited").exists()
