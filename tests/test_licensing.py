"""Licensing on PostgreSQL: versions, requests, suspension, revocation mid-job, caps under
concurrency, ODRL export, usage reports, and who may do what."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
from django.db import DatabaseError, connection, transaction

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from licensing.models import LicenseGrant, LicenseRequest, Recording, UsageEvent
from licensing.odrl import from_odrl
from provenance.ledger import verify_ledger
from provenance.models import LedgerEntry
from tests.conftest import grant_body, running_worker, upload_file


def job_for(client, audio_dir, name="excerpt11.flac", **extra):
    up = upload_file(client, name if isinstance(name, Path) else audio_dir / name).json()
    body = {"upload": up["id"], "requested_stems": ["vocals", "drums"], "purpose": "remix", "territory": "GB", **extra}
    r = client.post("/api/v1/jobs/", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def test_amendment_is_a_new_version(clients, catalog, audio_dir):
    grant_id = catalog["grant"]["id"]
    done = do_process_job(job_for(clients["producer"], audio_dir))
    assert done.decision["grants"][0]["version"] == 1
    r = clients["label"].post(f"/api/v1/licenses/{grant_id}/amend/", {"stems": ["drums"], "max_downloads": 1}, format="json")
    assert r.status_code == 201, r.content
    v2 = r.json()
    assert v2["version"] == 2 and v2["family"] == grant_id and v2["previous"] == grant_id
    assert v2["terms_digest"] != catalog["grant"]["terms_digest"] and v2["stems"] == ["drums"]
    old = clients["label"].get(f"/api/v1/licenses/{grant_id}/").json()
    assert old["status"] == "superseded" and old["stems"] == ["vocals", "drums", "bass", "other"]
    again = clients["label"].post(f"/api/v1/licenses/{grant_id}/amend/", {"stems": ["bass"]}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "superseded"
    # new jobs run under version 2 and its narrower stems
    denied = do_process_job(job_for(clients["producer"], audio_dir))
    assert denied.state == "denied" and denied.error_code == "stem_not_licensed"
    drums = do_process_job(job_for(clients["producer"], audio_dir, requested_stems=["drums"]))
    assert drums.state == "queued" and drums.decision["grants"][0]["version"] == 2
    # stems made under v1 are delivered under the terms in force now (v2: drums only, 1 download)
    do_separate_job(done.pk)
    stems = {s.name: s for s in Job.objects.get(pk=done.pk).stem_files.all()}
    assert clients["producer"].get(f"/api/v1/stems/{stems['vocals'].pk}/download/").json()["code"] == "stem_not_licensed"
    assert clients["producer"].get(f"/api/v1/stems/{stems['drums'].pk}/download/").status_code == 200
    assert clients["producer"].get(f"/api/v1/stems/{stems['drums'].pk}/download/").json()["code"] == "download_cap_reached"
    kinds = list(LedgerEntry.objects.values_list("kind", flat=True))
    assert "license_amended" in kinds and verify_ledger().ok
    current = clients["producer"].get("/api/v1/licenses/?current=true").json()["results"]
    assert [g["version"] for g in current] == [2] and current[0]["remaining"]["downloads"] == 0


def test_active_terms_are_immutable_in_the_database(catalog):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        LicenseGrant.objects.filter(pk=catalog["grant"]["id"]).update(max_downloads=999)
    with pytest.raises(DatabaseError, match="never deleted"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM licensing_licensegrant_recordings")
        cur.execute("DELETE FROM licensing_licensegrant")
    LicenseGrant.objects.filter(pk=catalog["grant"]["id"]).update(status="suspended")  # status may change


def test_drafts_are_editable_only_until_activated(clients, catalog):
    rec = catalog["recordings"][12]["id"]
    r = clients["label"].post("/api/v1/licenses/", grant_body([rec], status="draft"), format="json")
    draft = r.json()
    assert r.status_code == 201 and draft["status"] == "draft"
    assert clients["producer"].get(f"/api/v1/licenses/{draft['id']}/").status_code == 404  # unpublished
    LicenseGrant.objects.filter(pk=draft["id"]).update(max_downloads=7)  # drafts can change
    active = clients["label"].post(f"/api/v1/licenses/{draft['id']}/activate/").json()
    assert active["status"] == "active" and active["max_downloads"] == 7
    assert clients["label"].post(f"/api/v1/licenses/{draft['id']}/activate/").json()["code"] == "not_a_draft"


def test_suspension_blocks_and_reinstatement_restores(clients, catalog, audio_dir):
    grant_id = catalog["grant"]["id"]
    done = do_process_job(job_for(clients["producer"], audio_dir))
    do_separate_job(done.pk)
    queued = do_process_job(job_for(clients["producer"], audio_dir))
    stem = Job.objects.get(pk=done.pk).stem_files.first()
    url = f"/api/v1/stems/{stem.pk}/download/"
    assert clients["label"].post(f"/api/v1/licenses/{grant_id}/suspend/").json()["status"] == "suspended"
    assert Job.objects.get(pk=queued.pk).state == "cancelled"
    assert clients["producer"].get(url).json()["code"] == "suspended"
    assert do_process_job(job_for(clients["producer"], audio_dir)).error_code == "suspended"
    assert clients["label"].post(f"/api/v1/licenses/{grant_id}/suspend/").json()["code"] == "already_suspended"
    assert clients["label"].post(f"/api/v1/licenses/{grant_id}/reinstate/").json()["status"] == "active"
    assert clients["producer"].get(url).status_code == 200
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"license_suspended", "license_reinstated"} <= kinds


def test_request_workflow_from_a_denied_job(clients, catalog, audio_dir):
    denied = do_process_job(job_for(clients["producer"], audio_dir, name="excerpt12.flac"))
    reason = denied.decision["reasons"][0]
    assert denied.error_code == "no_license" and reason["rights_holder"] == "label-a" and reason["title"] == "Song 12"
    r = clients["producer"].post("/api/v1/license-requests/", {"job": str(denied.pk), "message": "for my EP"}, format="json")
    assert r.status_code == 201, r.content
    (req,) = r.json()
    assert req["rights_holder"] == "label-a" and req["recordings"] == [catalog["recordings"][12]["id"]]
    assert req["stems"] == ["vocals", "drums"] and req["territory"] == "GB" and req["status"] == "pending"
    inbox = clients["label"].get("/api/v1/license-requests/").json()["results"]
    assert [x["id"] for x in inbox] == [req["id"]]
    assert clients["label_b"].get(f"/api/v1/license-requests/{req['id']}/").status_code == 404
    # approve, narrowed to vocals only
    ok = clients["label"].post(f"/api/v1/license-requests/{req['id']}/approve/",
                               {"stems": ["vocals"], "max_separations": 2, "response": "vocals only"}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    grant = LicenseGrant.objects.get(pk=ok.json()["grant"])
    assert grant.stems == ["vocals"] and grant.territories == ["GB"] and grant.licensee_org.slug == "producer-a"
    outcome = clients["producer"].get(f"/api/v1/license-requests/{req['id']}/").json()
    assert outcome["status"] == "approved" and outcome["response"] == "vocals only"
    assert do_process_job(job_for(clients["producer"], audio_dir, name="excerpt12.flac", requested_stems=["vocals"])).state == "queued"
    assert do_process_job(job_for(clients["producer"], audio_dir, name="excerpt12.flac")).error_code == "stem_not_licensed"
    closed = clients["label"].post(f"/api/v1/license-requests/{req['id']}/deny/", {"reason": "late"}, format="json")
    assert closed.status_code == 409 and closed.json()["code"] == "request_closed"


def test_deny_and_withdraw(clients, catalog):
    rec = catalog["recordings"][12]["id"]
    body = {"recordings": [rec], "stems": ["drums"], "purpose": "sample", "territory": "US"}
    # a recording closed to requests cannot be asked for by id (nor its existence probed)
    r = clients["producer"].post("/api/v1/license-requests/", body, format="json")
    assert r.status_code == 404 and r.json()["code"] == "not_found" and not LicenseRequest.objects.exists()
    Recording.objects.filter(pk=rec).update(open_for_requests=True)
    (a,) = clients["producer"].post("/api/v1/license-requests/", body, format="json").json()
    (b,) = clients["producer"].post("/api/v1/license-requests/", body, format="json").json()
    r = clients["label"].post(f"/api/v1/license-requests/{a['id']}/deny/", {"reason": ""}, format="json")
    assert r.status_code == 400
    r = clients["label"].post(f"/api/v1/license-requests/{a['id']}/deny/", {"reason": "not for sampling"}, format="json")
    assert r.json()["status"] == "denied" and r.json()["response"] == "not for sampling"
    assert clients["producer"].post(f"/api/v1/license-requests/{b['id']}/withdraw/").json()["status"] == "withdrawn"
    assert clients["label"].post(f"/api/v1/license-requests/{b['id']}/approve/", {}, format="json").status_code == 409
    assert LicenseRequest.objects.filter(status="pending").count() == 0
    r = clients["producer"].post("/api/v1/license-requests/", {"stems": ["drums"]}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "nothing_to_request"


def test_grants_only_where_the_label_holds_rights(clients, catalog):
    from licensing.models import Recording

    Recording.objects.filter(pk=catalog["recordings"][12]["id"]).update(territories=["GB", "IE"])
    r = clients["label"].post("/api/v1/licenses/", grant_body([catalog["recordings"][12]["id"]]), format="json")
    assert r.status_code == 400 and r.json()["code"] == "territory_not_held"
    r = clients["label"].post("/api/v1/licenses/", grant_body([catalog["recordings"][12]["id"]], territories=["GB"]),
                              format="json")
    assert r.status_code == 201
    r = clients["label_b"].post("/api/v1/licenses/", grant_body([catalog["recordings"][11]["id"]]), format="json")
    assert r.status_code == 403 and r.json()["code"] == "not_rights_holder"


def test_odrl_export_round_trips_the_grant(clients, catalog):
    grant = LicenseGrant.objects.get(pk=catalog["grant"]["id"])
    r = clients["producer"].get(f"/api/v1/licenses/{grant.pk}/odrl/")
    assert r.status_code == 200 and r["Content-Type"].startswith("application/ld+json")
    doc = r.json()
    assert doc["assignee"]["uid"] == "urn:clearstem:org:producer-a"
    assert doc["permission"][0]["target"]["source"] == ["urn:isrc:QZAAA2600011"]
    assert from_odrl(doc).digest() == grant.terms().digest()
    assert clients["producer_b"].get(f"/api/v1/licenses/{grant.pk}/odrl/").status_code == 404


def test_usage_report_json_and_csv(clients, catalog, audio_dir):
    job = do_process_job(job_for(clients["producer"], audio_dir))
    do_separate_job(job.pk)
    stem = Job.objects.get(pk=job.pk).stem_files.first()
    clients["producer"].get(f"/api/v1/stems/{stem.pk}/download/")
    (row,) = clients["label"].get("/api/v1/licenses/usage-report/").json()["results"]
    assert row["separation"] == 1 and row["download"] == 1 and row["isrc"] == "QZAAA2600011"
    csv = clients["label"].get("/api/v1/licenses/usage-report/?export=csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("license,grant,version,recording,isrc") and len(lines) == 2
    assert clients["label_b"].get("/api/v1/licenses/usage-report/").json()["results"] == []


@pytest.mark.slow
def test_download_cap_holds_under_concurrent_requests(live_server, worker, users, audio_dir, clients):
    """24 simultaneous downloads against a cap of 5 on PostgreSQL: exactly 5 get through."""
    label, producer = users["label"][1], users["producer"][1]
    s_label = requests.Session()
    s_label.headers["Authorization"] = f"Token {label}"
    with open(audio_dir / "song11.wav", "rb") as fh:
        rec = s_label.post(live_server.url + "/api/v1/recordings/", files={"file": fh}, data={"title": "S"}).json()
    s_label.post(live_server.url + "/api/v1/licenses/", json=grant_body([rec["id"]], max_downloads=5))
    s = requests.Session()
    s.headers["Authorization"] = f"Token {producer}"
    with open(audio_dir / "excerpt11.flac", "rb") as fh:
        up = s.post(live_server.url + "/api/v1/uploads/", files={"file": fh}).json()
    job = s.post(live_server.url + "/api/v1/jobs/", json={"upload": up["id"], "requested_stems": ["bass"], "purpose": "remix",
                                                          "territory": "GB"}).json()
    deadline = time.monotonic() + 60
    while (state := s.get(f"{live_server.url}/api/v1/jobs/{job['id']}/").json())["state"] != "done":
        assert time.monotonic() < deadline and state["state"] not in ("failed", "denied")
        time.sleep(0.2)
    url = live_server.url + state["files"][0]["download_url"]
    barrier = threading.Barrier(24)

    def fetch(_):
        sess = requests.Session()
        sess.headers["Authorization"] = f"Token {producer}"
        barrier.wait()
        r = sess.get(url, timeout=60)
        return r.status_code, (r.json()["code"] if r.status_code != 200 else None)

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(fetch, range(24)))
    assert sorted(results, key=str).count((200, None)) == 5, results
    assert results.count((403, "download_cap_reached")) == 19
    assert UsageEvent.objects.filter(kind="download").count() == 5
    assert LedgerEntry.objects.filter(kind="download").count() == 5 and verify_ledger().ok


def test_separation_cap_holds_under_concurrent_dispatch(transactional_db, clients, catalog, audio_dir):
    """20 jobs decided at once against a cap of 3: exactly 3 are cleared."""
    grant_id = catalog["grant"]["id"]
    clients["label"].post(f"/api/v1/licenses/{grant_id}/amend/", {"max_separations": 3}, format="json")
    job_ids = [job_for(clients["producer"], audio_dir) for _ in range(20)]
    dramatiq_flush()
    barrier = threading.Barrier(20)

    def decide(job_id):
        try:
            barrier.wait()
            return do_process_job(job_id).state
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        states = list(pool.map(decide, job_ids))
    assert states.count("queued") == 3 and states.count("denied") == 17
    assert UsageEvent.objects.filter(kind="separation").count() == 3
    assert set(Job.objects.filter(state="denied").values_list("error_code", flat=True)) == {"separation_cap_reached"}
    dramatiq_flush()


def dramatiq_flush():
    import dramatiq

    dramatiq.get_broker().flush_all()


@pytest.mark.slow
def test_revocation_mid_job_stops_the_separation(transactional_db, clients, catalog, audio_dir, tmp_path):
    """A long job is separating when the label revokes: it stops, and no stem is left behind."""
    mix = sf.read(audio_dir / "song11.wav", always_2d=True)[0]
    long_path = tmp_path / "long.wav"
    sf.write(long_path, np.tile(mix, (8, 1)), 44100, subtype="PCM_16")  # ~3 minutes of song 11
    with running_worker():
        job_id = job_for(clients["producer"], audio_dir, name=long_path)
        deadline = time.monotonic() + 60
        while Job.objects.get(pk=job_id).state != "separating":
            assert time.monotonic() < deadline, Job.objects.get(pk=job_id).state
            time.sleep(0.05)
        r = clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
        assert r.status_code == 200
        while Job.objects.get(pk=job_id).state == "separating":
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.error_code) == ("cancelled", "revoked")
    assert job.stem_files.count() == 0
    from django.core.files.storage import default_storage

    assert not default_storage.exists(f"stems/{job_id}/vocals.wav")


def test_grant_to_a_named_user_and_rights_territories(clients, users, audio_dir):
    with open(audio_dir / "song13.wav", "rb") as fh:
        rec = clients["label"].post("/api/v1/recordings/", {"file": fh, "title": "13", "territories": ["gb", "IE"]},
                                    format="multipart").json()
    assert rec["territories"] == ["GB", "IE"]
    body = grant_body([rec["id"]], territories=["GB"])
    body.pop("licensee")
    body["licensee_user"] = users["producer"][0].username
    r = clients["label"].post("/api/v1/licenses/", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["licensee_user"] == users["producer"][0].username and r.json()["licensee_org"] is None
    assert clients["producer"].get(f"/api/v1/licenses/{r.json()['id']}/").status_code == 200
    # the colleague in the same organisation is not the named licensee
    assert clients["producer_viewer"].get(f"/api/v1/licenses/{r.json()['id']}/").status_code == 404
    body["licensee_user"] = users["label"][0].username  # not a producer
    assert clients["label"].post("/api/v1/licenses/", body, format="json").status_code == 400
