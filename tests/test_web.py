"""The web UI through Django's test client: sign-in, organisation scoping, read-only roles,
forms that validate like the API with errors next to their fields, refusals that change
nothing, CSV exports, the audit chain catching a tampered stem, and the audit page finding a
stem from a copy (by its bytes, content credentials or sound). (The browser flows are in
test_browser.py.)"""
from __future__ import annotations

import csv
import io
import re
import time

import pytest
import soundfile as sf
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from licensing.models import LicenseGrant, Recording
from sharedcore.media import encode_delivery
from tests.conftest import upload_file
from tests.test_jobs import make_job


def browser(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def html(response) -> str:
    return response.content.decode()


@pytest.fixture
def web(users):
    return {key: browser(user) for key, (user, _) in users.items()}


def wait_done(job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in Job.TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_sign_in_lands_each_persona_on_its_pages(users):
    anon = Client()
    r = anon.get("/studio/")
    assert r.status_code == 302 and r["Location"].startswith("/signin/?next=/studio/")
    user, _ = users["producer"]
    user.set_password("s3cret-passphrase")
    user.save()
    bad = anon.post("/signin/", {"username": user.username, "password": "wrong"})
    assert bad.status_code == 200 and 'role="alert"' in html(bad) and 'aria-invalid="true"' in html(bad)
    ok = anon.post("/signin/", {"username": user.username, "password": "s3cret-passphrase"})
    assert ok.status_code == 302
    assert anon.get("/").headers["Location"] == "/studio/"
    assert browser(users["label"][0]).get("/").headers["Location"] == "/catalog/"
    assert browser(users["platform"][0]).get("/").headers["Location"] == "/audit/"
    out = anon.post("/signout/")
    assert out.status_code == 302 and anon.get("/studio/").status_code == 302


def test_pages_are_scoped_to_the_organisation(web, clients, catalog, audio_dir):
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    rec_id, grant_id = catalog["recordings"][11]["id"], catalog["grant"]["id"]
    assert web["producer"].get(f"/studio/uploads/{up['id']}/").status_code == 200
    assert web["producer_b"].get(f"/studio/uploads/{up['id']}/").status_code == 404
    assert web["label"].get(f"/catalog/{rec_id}/").status_code == 200
    assert web["label_b"].get(f"/catalog/{rec_id}/").status_code == 404
    assert web["label_b"].get(f"/licenses/{grant_id}/").status_code == 404
    assert web["label_b"].get(f"/usage.csv?grant={grant_id}").status_code == 404
    assert "Song 11" not in html(web["label_b"].get("/catalog/?q=Song"))
    # each persona's pages are invisible to the others
    for who, url in (("label", "/studio/"), ("producer", "/catalog/"), ("producer", "/audit/"),
                     ("label", "/audit/jobs/"), ("platform", "/requests/")):
        assert web[who].get(url).status_code == 404, (who, url)


def test_read_only_roles_change_nothing(web, catalog, audio_dir):
    with open(audio_dir / "excerpt11.flac", "rb") as fh:
        r = web["producer_viewer"].post("/studio/upload/", {"file": fh})
    assert r.status_code == 302
    from clearstem.uploads.models import Upload

    assert Upload.objects.count() == 0
    r = web["label_viewer"].post("/licenses/new/", {"recordings": [catalog["recordings"][12]["id"]]}, follow=True)
    assert "read-only" in html(r) and LicenseGrant.objects.count() == 1
    assert "Your role is read-only" in html(web["label_viewer"].get("/catalog/"))


def test_grant_form_validates_like_the_api(web, clients, orgs, audio_dir):
    with open(audio_dir / "song12.wav", "rb") as fh:
        rec = clients["label"].post("/api/v1/recordings/", {"file": fh, "title": "UK only", "territories": ["GB"]},
                                    format="multipart").json()
    base = {"recordings": [rec["id"]], "licensee": "producer-a", "stems": ["vocals"], "purposes": ["remix"],
            "territories": "GB", "status": "active"}
    # field errors from the serializer, each next to its field
    r = web["label"].post("/licenses/new/", {**base, "territories": "GB, ABC", "stems": [],
                                             "valid_from": "2026-05-01T00:00", "valid_until": "2026-04-01T00:00"})
    page = html(r)
    assert r.status_code == 400
    assert 'id="err-territories"' in page and "two-letter country codes" in page
    assert 'id="err-stems"' in page and "choose at least one stem" in page
    # cross-field rule (only once every field is valid, exactly as the API)
    r = web["label"].post("/licenses/new/", {**base, "valid_from": "2026-05-01T00:00", "valid_until": "2026-04-01T00:00"})
    assert r.status_code == 400 and 'id="err-valid_until"' in html(r)
    # a refusal from the service lands on its field too: the label holds no rights in France
    r = web["label"].post("/licenses/new/", {**base, "territories": "FR"})
    assert r.status_code == 403 or r.status_code == 400
    assert 'id="err-territories"' in html(r)
    assert LicenseGrant.objects.count() == 0
    # what was entered is kept on the re-rendered form
    assert 'value="FR"' in html(r) and f'value="{rec["id"]}" checked' in html(r)
    r = web["label"].post("/licenses/new/", base)
    assert r.status_code == 302 and LicenseGrant.objects.get().territories == ["GB"]


def test_request_inbox_needs_a_reason_to_deny_and_terms_to_approve(web, users, catalog):
    from licensing.requests import do_create_license_requests

    song12 = Recording.objects.get(id=catalog["recordings"][12]["id"])
    (req,) = do_create_license_requests(users["producer"][0], recordings=[song12], stems=["vocals", "bass"],
                                        purpose="remix", commercial=False, territory="GB")
    url = f"/requests/{req.id}/"
    page = html(web["label"].get(url))
    assert 'name="stems" value="bass" checked' in page and 'value="GB"' in page  # pre-filled with the ask
    r = web["label"].post(url, {"decision": "deny", "reason": "  "})
    assert r.status_code == 400 and 'id="err-reason"' in html(r)
    r = web["label"].post(url, {"decision": "approve", "purposes": ["remix"], "territories": "GB"})
    assert r.status_code == 400 and "keep at least one stem" in html(r)
    req.refresh_from_db()
    assert req.status == "pending" and LicenseGrant.objects.count() == 1
    assert web["label_b"].post(url, {"decision": "deny", "reason": "no"}).status_code == 404
    r = web["label"].post(url, {"decision": "deny", "reason": "Not for remixes this year."})
    assert r.status_code == 302
    req.refresh_from_db()
    assert req.status == "denied" and req.response == "Not for remixes this year."
    assert "Not for remixes this year." in html(web["producer"].get("/studio/licenses/"))


def test_bulk_registration_answers_each_file(web, audio_dir, tmp_path):
    fake = tmp_path / "readme.flac"
    fake.write_text("not audio at all\n" * 100)
    with open(fake, "rb") as fh:
        r = web["label"].post("/catalog/new/", {"file": fh, "territories": "WW"}, HTTP_ACCEPT="application/json")
    assert r.status_code == 415 and r.json()["code"] == "not_audio"
    with open(audio_dir / "song11.wav", "rb") as fh:
        r = web["label"].post("/catalog/new/", {"file": fh, "isrc": "QZ-AAA-26-00011"}, HTTP_ACCEPT="application/json")
    assert r.status_code == 201 and r.json()["title"] == "song11"
    with open(audio_dir / "song12.wav", "rb") as fh:
        r = web["label_b"].post("/catalog/new/", {"file": fh, "isrc": "QZAAA2600011"}, HTTP_ACCEPT="application/json")
    assert r.status_code in (400, 409) and r.json()["code"] == "isrc_taken" and "isrc" in r.json()["errors"]
    with open(audio_dir / "song12.wav", "rb") as fh:
        r = web["label"].post("/catalog/new/", {"file": fh, "territories": "World"}, HTTP_ACCEPT="application/json")
    assert r.status_code == 400 and "territories" in r.json()["errors"]
    assert Recording.objects.count() == 1
    # without JavaScript the same form re-renders with the error next to the field
    with open(audio_dir / "song12.wav", "rb") as fh:
        r = web["label"].post("/catalog/new/", {"file": fh, "territories": "World"})
    assert r.status_code == 400 and 'id="err-territories"' in html(r)


def test_stem_pages_follow_the_license_and_the_audit_catches_tampering(web, clients, catalog, audio_dir, worker):
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    r = web["producer"].post(f"/studio/uploads/{up['id']}/separate/",
                             {"stems": ["vocals"], "purpose": "remix", "territory": "gb", "model": "dsp"})
    assert r.status_code == 302
    job = wait_done(r["Location"].rstrip("/").rsplit("/", 1)[1])
    assert job.state == "done" and job.territory == "GB"
    stem = job.stem_files.get()
    live = html(web["producer"].get(f"/studio/jobs/{job.id}/live/"))
    assert "hx-trigger" not in live and "Download zip" in live  # finished: polling stops

    preview = web["producer"].get(f"/studio/stems/{stem.id}/listen/")
    assert preview.status_code == 200 and preview["Content-Type"] == "audio/mpeg"
    assert b"".join(preview.streaming_content)[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    dl = web["producer"].get(f"/studio/stems/{stem.id}/download/")
    assert dl.status_code == 200 and b"".join(dl.streaming_content)[:4] == b"RIFF"
    assert web["producer_b"].get(f"/studio/stems/{stem.id}/download/").status_code == 404

    # the label's CSV has the separation and the download of that license, by day
    rows = list(csv.DictReader(io.StringIO(web["label"].get(f"/usage.csv?grant={catalog['grant']['id']}")
                                           .content.decode())))
    assert {(r["kind"], r["count"], r["isrc"]) for r in rows} == {("separation", "1", "QZAAA2600011"),
                                                                  ("download", "1", "QZAAA2600011")}

    # the audit chain verifies, by id, by hash and by file
    audit = web["platform"]
    page = html(audit.get(f"/audit/stems/{stem.id}/"))
    assert "chain verified" in page and 'class="bad"' not in page
    # the identification evidence of both fingerprints, and who decided
    assert "decided by <strong>both</strong>" in page and "Chromaprint: BER" in page
    assert "Landmarks (aligned hashes)" in page and "query hashes" in page
    assert audit.get(f"/audit/?q={stem.sha256}")["Location"] == f"/audit/stems/{stem.id}/"
    with default_storage.open(stem.file.name, "rb") as fh:
        assert audit.post("/audit/", {"file": fh})["Location"] == f"/audit/stems/{stem.id}/"

    # a flipped byte in the stored stem breaks the chain at the file link, and nothing else
    with default_storage.open(stem.file.name, "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0x01
    with open(default_storage.path(stem.file.name), "wb") as fh:
        fh.write(data)
    page = html(audit.get(f"/audit/stems/{stem.id}/"))
    assert "chain broken" in page and page.count('class="bad"') == 1 and "differs from" in page

    # revoking the license: the confirmation says what stops; then previews and downloads are refused
    confirm = html(web["label"].get(f"/licenses/{catalog['grant']['id']}/revoke/"))
    assert "Downloads and zip exports of the 1 stem(s)" in confirm and "cannot be reinstated" in confirm
    assert web["label"].post(f"/licenses/{catalog['grant']['id']}/revoke/").status_code == 302
    assert web["producer"].get(f"/studio/stems/{stem.id}/listen/").status_code == 403
    r = web["producer"].get(f"/studio/stems/{stem.id}/download/", follow=True)
    assert "revoked" in html(r) and r.redirect_chain[-1][0] == f"/studio/jobs/{job.id}/"
    # the job page says so instead of offering buttons that cannot work
    page = html(web["producer"].get(f"/studio/jobs/{job.id}/"))
    assert "Downloads are stopped" in page and "revoked" in page
    assert f"/studio/stems/{stem.id}/download/" not in page and "Download zip" not in page


def test_ledger_health_and_job_monitor(web, users, clients, catalog, audio_dir):
    page = html(web["platform"].get("/audit/ledger/"))
    assert "never" in page and "Never verified in full." in page
    call_command("verify_ledger", stdout=io.StringIO())
    page = html(web["platform"].get("/audit/ledger/"))
    assert "passed" in page and "manage.py verify_ledger" in page

    from clearstem.uploads.models import Upload

    up = Upload.objects.get(pk=upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()["id"])
    Job.objects.create(upload=up, requested_by=users["producer"][0], organisation=up.organisation, stems=["vocals"],
                       purpose="remix", territory="GB", model="dsp", state="failed", attempts=3,
                       error_code="worker_lost", error_message="no worker heartbeat after 3 attempts")
    page = html(web["platform"].get("/audit/jobs/"))
    assert "worker_lost" in page and "no worker heartbeat after 3 attempts" in page and "3 / 3" in page
    assert "default" in page  # the queue table reads the real Redis broker


def test_admin_lists_ledger_entries_read_only(admin_client, catalog):
    r = admin_client.get("/admin/provenance/ledgerentry/")
    assert r.status_code == 200 and "license_granted" in html(r)
    assert admin_client.get("/admin/provenance/ledgerentry/add/").status_code == 403
    change = html(admin_client.get("/admin/provenance/ledgerentry/0/change/"))
    assert 'name="_save"' not in change and "leaf hash" in change.lower()
    assert admin_client.post("/admin/provenance/ledgerentry/0/delete/", {"post": "yes"}).status_code == 403
    from provenance.models import LedgerEntry

    assert LedgerEntry.objects.filter(index=0).exists()


def test_producer_withdraws_a_pending_request(web, users, catalog):
    from licensing.requests import do_create_license_requests

    song12 = Recording.objects.get(id=catalog["recordings"][12]["id"])
    (req,) = do_create_license_requests(users["producer"][0], recordings=[song12], stems=["vocals"],
                                        purpose="sample", commercial=True, territory="US")
    assert "Withdraw" in html(web["producer"].get("/studio/licenses/"))
    assert web["producer_b"].post(f"/studio/requests/{req.id}/withdraw/").status_code == 404
    r = web["producer_viewer"].post(f"/studio/requests/{req.id}/withdraw/", HTTP_REFERER="https://evil.example/")
    assert r["Location"] == "/"  # read-only, and never sent off-site
    r = web["producer"].post(f"/studio/requests/{req.id}/withdraw/", follow=True)
    assert "withdrawn" in html(r)
    req.refresh_from_db()
    assert req.status == "withdrawn"
    r = web["producer"].post(f"/studio/requests/{req.id}/withdraw/", follow=True)
    assert "already withdrawn" in html(r)


def test_unmatched_audio_needs_the_ownership_statement(web, clients, catalog, audio_dir):
    from clearstem.jobs.services import do_process_job

    up = upload_file(clients["producer"], audio_dir / "original.wav").json()
    from clearstem.uploads.services import do_identify_upload

    do_identify_upload(up["id"])
    page = html(web["producer"].get(f"/studio/uploads/{up['id']}/"))
    assert "No catalog recording found." in page and 'name="attest"' in page
    # without the statement: a form error on the statement itself, and no job is made
    r = web["producer"].post(f"/studio/uploads/{up['id']}/separate/",
                             {"stems": ["instrumental"], "purpose": "remix", "territory": "US", "model": "dsp"})
    page = html(r)
    assert r.status_code == 400 and 'id="err-attestation"' in page and "matches nothing in the licensed catalog" in page
    assert 'name="territory"' in page and 'value="US"' in page  # the form keeps what was entered
    assert not Job.objects.exists()
    r = web["producer"].post(f"/studio/uploads/{up['id']}/separate/",
                             {"stems": ["instrumental"], "purpose": "remix", "territory": "US", "model": "dsp",
                              "attest": "on"})
    job = do_process_job(r["Location"].rstrip("/").rsplit("/", 1)[1])
    assert job.state == "queued" and job.decision["basis"] == "attestation"
    assert job.attestation["upload_sha256"] == up["sha256"] and job.attestation["envelope"]["signatures"]
    assert "Cleared on your ownership statement" in html(web["producer"].get(f"/studio/jobs/{job.id}/"))


@pytest.fixture
def stems(clients, catalog, audio_dir):
    job = do_process_job(make_job(clients, audio_dir, requested_stems=["vocals", "drums"]).pk)
    do_separate_job(job.pk)
    return {s.name: s for s in Job.objects.get(pk=job.pk).stem_files.all()}


def _find_page(client, path):
    with open(path, "rb") as fh:
        return client.post("/audit/", {"file": fh})


def test_audit_finds_a_delivered_file_by_bytes_and_credentials(web, stems, catalog, tmp_path):
    vocals = stems["vocals"]
    dl = web["producer"].get(f"/studio/stems/{vocals.id}/download/?format=flac")
    path = tmp_path / "vocals.flac"
    path.write_bytes(b"".join(dl.streaming_content))
    r = _find_page(web["platform"], path)
    assert r.status_code == 200
    page = html(r)
    creds = page[page.index('id="credentials"'):page.index('id="findings"')]
    assert 'id="credentials-state">Trusted<' in creds and "ok: these bytes are the ones that were signed" in creds
    assert f'href="/audit/stems/{vocals.id}/"' in creds  # the stem the manifest names
    top = page[page.index('id="findings"'):].split("</li>\n")[0]
    assert f'href="/audit/stems/{vocals.id}/"' in top
    assert "Same bytes: as its delivered FLAC" in top and "Content credentials: the file&#x27;s C2PA manifest (Trusted)" in top
    assert "Producer A" in top and str(vocals.job_id) in top and "<dd>license</dd>" in top
    assert f"“Song 11”: Label A → Producer A, version 1 <code>{catalog['grant']['id'][:8]}" in top


def test_audit_finds_a_reencoded_excerpt_by_sound(web, stems, tmp_path):
    vocals = stems["vocals"]
    audio, rate = sf.read(vocals.file.path)
    excerpt = tmp_path / "excerpt.wav"
    sf.write(str(excerpt), audio[rate * 2: rate * 14], rate, subtype="PCM_16")
    mp3 = tmp_path / "found-online.mp3"
    encode_delivery(excerpt, mp3, "mp3", 16)
    r = _find_page(web["platform"], mp3)
    assert r.status_code == 200
    page = html(r)
    assert "No content credentials — this copy was re-encoded or stripped; matched by sound below." in page
    top = page[page.index('id="findings"'):].split("</li>\n")[0]
    assert f'href="/audit/stems/{vocals.id}/"' in top and "Same bytes" not in top
    # the segment found in the copy lies 2 s further into the stem (the excerpt starts at 2 s)
    score, q0, q1, r0 = re.search(r"Sound, score ([\d.]+): ([\d.]+)–([\d.]+) s of this file is ([\d.]+)–", top).groups()
    assert float(score) >= 0.78 and float(q1) - float(q0) > 5 and abs(float(r0) - float(q0) - 2.0) < 0.5
    assert "Producer A" in top and "Label A → Producer A" in top
    # the producer's own page is not the audit page
    assert _find_page(web["producer"], mp3).status_code == 404


def test_audit_find_refuses_what_is_not_audio(web, stems, tmp_path):
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"not audio at all\n" * 200)
    r = _find_page(web["platform"], junk)
    assert r.status_code == 415
    page = html(r)
    assert "“notes.wav” could not be looked up: this file is not audio ClearStem can read" in page
    assert 'role="alert"' in page and 'aria-invalid="true"' in page
    assert "Error" not in page and "Traceback" not in page
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    r = _find_page(web["platform"], empty)
    assert r.status_code == 400 and "the file is empty" in html(r)
    r = web["platform"].post("/audit/", {})
    assert r.status_code == 400 and "Choose a file to look up." in html(r)
