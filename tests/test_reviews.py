"""Review instead of silence: evidence below the acceptance threshold holds a job in `review`
until the suspected recording's rights holder (or platform staff) releases or refuses it.

Identification is simulated by writing the upload's evidence (`matches`, `suspects`) through
the ORM before the job is processed; everything after that is the real pipeline, services,
API and pages."""
from __future__ import annotations

import base64
import json

import dramatiq
import pytest
import requests
import schemathesis
from django.test import Client

from clearstem.jobs.models import Job, JobReview
from clearstem.jobs.monitor import queue_depths
from clearstem.jobs.reviews import do_refuse_review, do_release_review
from clearstem.jobs.services import do_process_job
from clearstem.uploads.models import Upload
from licensing.grants import do_revoke_grant
from licensing.models import LicenseGrant, Recording, UsageEvent
from provenance.ledger import verify_ledger
from provenance.models import LedgerEntry
from sharedcore.errors import Conflict, DomainError, NotFound, PermissionDenied
from tests.test_jobs import make_job


def match(rec: dict) -> dict:
    return {"recording": rec["id"], "isrc": rec["isrc"], "title": rec["title"], "artist": rec["artist"],
            "rights_holder": rec["rights_holder"], "score": 0.93, "query_start_s": 0.0, "duration_s": 15.0,
            "ref_start_s": 4.0, "speed": 1.0, "decided_by": "chromaprint"}


def suspect(rec: dict, source="landmarks", score=0.41) -> dict:
    return {"recording": rec["id"], "isrc": rec["isrc"], "title": rec["title"], "artist": rec["artist"],
            "rights_holder": rec["rights_holder"], "source": source, "score": score,
            "reason": f"{source}: 5.2 s aligned at {score} (acceptance 0.55)", "query_start_s": 3.0,
            "query_end_s": 7.7, "ref_start_s": 61.0, "aligned_hashes": 37}


def job_with_evidence(clients, audio_dir, matches=(), suspects=(), **job_extra) -> Job:
    """A job through the API whose upload's identification says `matches` and `suspects`."""
    job = make_job(clients, audio_dir, **job_extra)
    Upload.objects.filter(pk=job.upload_id).update(
        identification={"matches": list(matches), "suspects": list(suspects), "note": None},
        identification_status="done")
    return job


def separation_waiting() -> int:
    return next(q["waiting"] for q in queue_depths() if q["queue"] == "separation")


def ledger_payloads(kind: str) -> list[dict]:
    out = []
    for entry in LedgerEntry.objects.filter(kind=kind).order_by("index"):
        envelope = json.loads(bytes(entry.body))["envelope"]
        out.append(json.loads(base64.b64decode(envelope["payload"])))
    return out


@pytest.fixture
def held(clients, catalog, audio_dir):
    """A job of Producer A with song 11 identified (licensed) and song 12 suspected: in review."""
    recs = catalog["recordings"]
    job = do_process_job(job_with_evidence(clients, audio_dir, [match(recs[11])], [suspect(recs[12])]).pk)
    return {"job": job, "review": JobReview.objects.get(job=job), "recs": recs}


def test_suspects_hold_the_job_for_review_before_any_decision(held, clients):
    job, review, recs = held["job"], held["review"], held["recs"]
    assert job.state == "review" and job.decided_at is None and job.error_code == ""
    assert not UsageEvent.objects.filter(job=job).exists()  # no cap is spent on a job that may be refused
    assert job.decision["pending_review"] is True and job.decision["allowed"] is None
    (reason,) = job.decision["reasons"]
    assert reason["code"] == "review_required" and reason["recording"] == recs[12]["id"]
    assert reason["rights_holder"] == "label-a" and "waiting for review by Label A" in reason["detail"]
    assert review.outcome == "pending" and str(review.recording_id) == recs[12]["id"]
    assert review.rights_holder.slug == "label-a" and review.evidence["score"] == 0.41
    # a repeated message changes nothing
    assert do_process_job(job.pk).state == "review"
    assert JobReview.objects.filter(job=job).count() == 1 and not UsageEvent.objects.exists()
    # the producer sees whom the job waits for
    body = clients["producer"].get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["state"] == "review" and body["decision"]["pending_review"] is True
    assert [(r["title"], r["rights_holder"], r["rights_holder_name"], r["outcome"]) for r in body["reviews"]] == [
        ("Song 12", "label-a", "Label A", "pending")]


def test_an_ownership_statement_does_not_bypass_review(clients, catalog, audio_dir, users):
    recs = catalog["recordings"]
    job = job_with_evidence(clients, audio_dir, suspects=[suspect(recs[12], "chromaprint", 0.38)],
                            attestation={"accepted": True})
    assert job.attestation
    job = do_process_job(job.pk)
    assert job.state == "review" and not UsageEvent.objects.exists()
    # released: the suspect was judged not present, so the statement covers the unmatched audio
    do_release_review(JobReview.objects.get(job=job).pk, users["label"][0], "not ours")
    job = Job.objects.get(pk=job.pk)
    assert job.state == "queued" and job.decision["basis"] == "attestation"
    assert job.decision["reviews"][0]["outcome"] == "released"


def test_release_by_the_rights_holder_decides_meters_and_queues(held, clients, django_capture_on_commit_callbacks):
    job, review, recs = held["job"], held["review"], held["recs"]
    dramatiq.get_broker().flush_all()
    size_before = LedgerEntry.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        r = clients["label"].post(f"/api/v1/reviews/{review.pk}/release/", {"note": "a different song"},
                                  format="json")
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "released" and r.json()["decided_by"] == "label@example.test"
    job = Job.objects.get(pk=job.pk)
    assert job.state == "queued" and job.decision["allowed"] is True and job.decision["basis"] == "license"
    # decided on the recording identification accepted only: the released one is not licensed, and no matter
    assert [g["recording"] for g in job.decision["grants"]] == [recs[11]["id"]]
    assert list(UsageEvent.objects.filter(job=job).values_list("recording_id", flat=True)) == [
        Recording.objects.get(pk=recs[11]["id"]).pk]
    assert job.decision["reviews"] == [{
        "review": str(review.pk), "recording": recs[12]["id"], "title": "Song 12", "isrc": recs[12]["isrc"],
        "rights_holder": "label-a", "outcome": "released", "decided_by": "label@example.test",
        "decided_at": job.decision["reviews"][0]["decided_at"], "note": "a different song"}]
    assert separation_waiting() == 1  # the separation message is sent when the release commits
    dramatiq.get_broker().flush_all()
    # ledgered, signed, and the ledger still verifies
    assert LedgerEntry.objects.count() == size_before + 1
    (event,) = ledger_payloads("review_released")
    assert event["job"] == str(job.pk) and event["upload_sha256"] == job.upload.sha256
    assert (event["recording"], event["isrc"], event["rights_holder"]) == (recs[12]["id"], recs[12]["isrc"], "label-a")
    assert event["decided_by"] == {"user": "label@example.test", "organisation": "label-a"}
    assert event["outcome"] == "released" and event["reason"] == "a different song" and event["at"]
    assert event["evidence"]["source"] == "landmarks" and event["evidence"]["score"] == 0.41
    assert LedgerEntry.objects.get(kind="review_released").subject == f"review:{review.pk}"
    assert verify_ledger().ok


def test_refusal_denies_the_job_with_the_reason(held, clients):
    job, review = held["job"], held["review"]
    blank = clients["label"].post(f"/api/v1/reviews/{review.pk}/refuse/", {"reason": "  "}, format="json")
    assert blank.status_code == 400 and blank.json()["code"] == "reason_required"
    assert JobReview.objects.get(pk=review.pk).outcome == "pending"
    r = clients["label"].post(f"/api/v1/reviews/{review.pk}/refuse/", {"reason": "the chorus at 1:01 is ours"},
                              format="json")
    assert r.status_code == 200 and r.json()["outcome"] == "refused" and r.json()["job_state"] == "denied"
    job = Job.objects.get(pk=job.pk)
    assert job.state == "denied" and job.error_code == "refused_in_review"
    assert "the chorus at 1:01 is ours" in job.error_message and "Label A" in job.error_message
    (reason,) = job.decision["reasons"]
    assert reason["code"] == "refused_in_review" and reason["reason"] == "the chorus at 1:01 is ours"
    assert job.decision["allowed"] is False and not job.decision["pending_review"]
    assert not UsageEvent.objects.filter(job=job).exists()
    (event,) = ledger_payloads("review_refused")
    assert event["outcome"] == "refused" and event["reason"] == "the chorus at 1:01 is ours"
    assert event["job_state"] == "denied" and event["evidence"]["score"] == 0.41
    assert verify_ledger().ok
    # decided once
    again = clients["label"].post(f"/api/v1/reviews/{review.pk}/release/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "review_already_decided"


def test_who_may_see_and_decide(held, clients, users):
    review = held["review"]
    url = f"/api/v1/reviews/{review.pk}/"
    # another label and another producer: invisible
    for who in ("label_b", "producer_b"):
        assert clients[who].get(url).status_code == 404, who
        r = clients[who].post(url + "release/", {}, format="json")
        assert r.status_code == 404 and r.json()["code"] == "not_found", who
    with pytest.raises(NotFound):
        do_release_review(review.pk, users["label_b"][0])
    # the label's read-only member and the producer whose job it is: visible, not decidable
    for who in ("label_viewer", "producer", "producer_viewer"):
        assert clients[who].get(url).status_code == 200, who
        r = clients[who].post(url + "refuse/", {"reason": "mine"}, format="json")
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", who
    with pytest.raises(PermissionDenied):
        do_refuse_review(review.pk, users["label_viewer"][0], "mine")
    assert JobReview.objects.get(pk=review.pk).outcome == "pending" and not LedgerEntry.objects.filter(
        kind__startswith="review_").exists()
    # platform staff may decide any review
    r = clients["platform"].post(url + "release/", {}, format="json")
    assert r.status_code == 200 and r.json()["decided_by"] == "platform@example.test"
    with pytest.raises(Conflict) as err:
        do_refuse_review(review.pk, users["label"][0], "too late")
    assert err.value.code == "review_already_decided"


def test_cancel_while_in_review(held, clients):
    job, review = held["job"], held["review"]
    r = clients["producer"].post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = clients["label"].post(f"/api/v1/reviews/{review.pk}/release/", {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "job_not_in_review"
    assert JobReview.objects.get(pk=review.pk).outcome == "pending"
    assert not LedgerEntry.objects.filter(kind__startswith="review_").exists()
    # nothing is left to decide: not in the pending list, no badge
    assert clients["label"].get("/api/v1/reviews/?outcome=pending").json()["count"] == 0
    assert clients["label"].get("/api/v1/reviews/").json()["count"] == 1
    assert do_process_job(job.pk).state == "cancelled"


def test_every_rights_holder_decides_before_the_job_moves(clients, catalog, audio_dir, orgs, users):
    recs = catalog["recordings"]
    other = Recording.objects.create(rights_holder=orgs["label_b"], isrc="QZBBB2600001", title="B Song", artist="B",
                                     reference_audio="references/b.wav", audio_sha256="b" * 64, duration_s=90.0,
                                     territories=["WW"])
    b = {"id": str(other.pk), "isrc": other.isrc, "title": other.title, "artist": other.artist,
         "rights_holder": "label-b"}
    job = do_process_job(job_with_evidence(clients, audio_dir, [match(recs[11])],
                                           [suspect(recs[12]), suspect(b, "chromaprint", 0.5)]).pk)
    assert job.state == "review" and job.reviews.count() == 2
    mine, theirs = job.reviews.get(rights_holder=orgs["label"]), job.reviews.get(rights_holder=orgs["label_b"])
    # each label sees only its own review
    assert [r["id"] for r in clients["label"].get("/api/v1/reviews/").json()["results"]] == [str(mine.pk)]
    assert [r["id"] for r in clients["label_b"].get("/api/v1/reviews/").json()["results"]] == [str(theirs.pk)]
    assert clients["label"].get(f"/api/v1/reviews/{theirs.pk}/").status_code == 404
    assert clients["platform"].get("/api/v1/reviews/?outcome=pending").json()["count"] == 2
    assert clients["producer"].get("/api/v1/reviews/").json()["count"] == 2
    assert clients["producer_b"].get("/api/v1/reviews/").json()["count"] == 0
    assert clients["label"].get("/api/v1/reviews/?outcome=maybe").json()["code"] == "invalid"
    # one release is not enough
    do_release_review(mine.pk, users["label"][0])
    job = Job.objects.get(pk=job.pk)
    assert job.state == "review" and not UsageEvent.objects.exists()
    waiting = [r for r in clients["producer"].get(f"/api/v1/jobs/{job.pk}/").json()["reviews"] if r["outcome"] == "pending"]
    assert [w["rights_holder_name"] for w in waiting] == ["Label B"]
    assert clients["label"].get("/api/v1/reviews/?outcome=released").json()["count"] == 1
    # the other holder's refusal denies it
    do_refuse_review(theirs.pk, users["label_b"][0], "that is B Song")
    job = Job.objects.get(pk=job.pk)
    assert job.state == "denied" and job.error_code == "refused_in_review" and "Label B" in job.error_message
    assert {r["outcome"] for r in job.decision["reviews"]} == {"released", "refused"}
    assert [p["outcome"] for p in ledger_payloads("review_released") + ledger_payloads("review_refused")] == [
        "released", "refused"]
    assert verify_ledger().ok


def test_a_suspect_no_longer_in_the_catalog_holds_nothing(clients, catalog, audio_dir):
    """Nobody can review a recording removed since identification: the job is decided as usual."""
    recs = catalog["recordings"]
    gone = {**recs[12], "id": "00000000-0000-4000-8000-000000000000"}
    job = do_process_job(job_with_evidence(clients, audio_dir, [match(recs[11])], [suspect(gone)]).pk)
    assert job.state == "queued" and job.decision["allowed"] and not JobReview.objects.exists()
    assert UsageEvent.objects.filter(job=job).count() == 1


def test_a_job_refused_on_its_accepted_recordings_anyway_is_refused_at_once(clients, catalog, audio_dir):
    """Song 12 is identified and unlicensed: the job cannot clear whatever a reviewer says about
    the suspected song 11, so it is refused now and nobody is asked to review it."""
    recs = catalog["recordings"]
    job = do_process_job(job_with_evidence(clients, audio_dir, [match(recs[12])], [suspect(recs[11])]).pk)
    assert job.state == "denied" and job.error_code == "no_license"
    assert not JobReview.objects.filter(job=job).exists() and not UsageEvent.objects.exists()


def test_a_suspect_the_producers_license_covers_is_not_reviewed(clients, catalog, audio_dir):
    """Song 11, licensed to Producer A, is only suspected: nobody needs to judge whether a
    recording the producer may separate anyway is there. The job clears at once, metered under
    that license as if the song were present, and the decision names the suspect."""
    recs = catalog["recordings"]
    job = do_process_job(job_with_evidence(clients, audio_dir, [], [suspect(recs[11])]).pk)
    assert job.state == "queued" and job.decision["allowed"] and not JobReview.objects.exists()
    assert [s["recording"] for s in job.decision["licensed_suspects"]] == [recs[11]["id"]]
    (use,) = UsageEvent.objects.filter(job=job)
    assert str(use.recording_id) == recs[11]["id"] and use.kind == "separation"
    # one suspect the license does not cover (song 12) still holds the whole job for review
    job = do_process_job(job_with_evidence(clients, audio_dir, [], [suspect(recs[11]), suspect(recs[12])],
                                           attestation={"accepted": True}).pk)
    assert job.state == "review" and JobReview.objects.filter(job=job).count() == 2
    assert not UsageEvent.objects.filter(job=job).exists()


def test_release_can_still_deny_on_the_licenses(held, users, orgs):
    """Released, the job gets the ordinary decision at that moment: the license for song 11 was
    revoked while the job waited, so it is refused, and nothing is metered."""
    job, review = held["job"], held["review"]
    do_revoke_grant(LicenseGrant.objects.get(recordings=held["recs"][11]["id"]).pk, orgs["label"])
    review = do_release_review(review.pk, users["label"][0])
    assert review.outcome == "released"
    job = Job.objects.get(pk=job.pk)
    assert job.state == "denied" and job.error_code and not UsageEvent.objects.filter(job=job).exists()
    with pytest.raises(DomainError) as err:
        do_refuse_review(review.pk, users["label"][0], "")
    assert err.value.code == "reason_required"


def test_review_responses_conform_to_the_schema(held, users, live_server):
    """tests/test_schema.py fuzzes every operation but has no review to name: here real reviews
    and a job in review (decision `allowed` null), then released, are checked against it."""
    label, producer = (requests.Session() for _ in range(2))
    label.headers["Authorization"] = f"Token {users['label'][1]}"
    producer.headers["Authorization"] = f"Token {users['producer'][1]}"
    schema = schemathesis.openapi.from_dict(label.get(live_server.url + "/api/v1/schema/?format=json").json())
    review, job = held["review"].pk, held["job"].pk
    calls = [(label, "GET", "/api/v1/reviews/{id}/", f"/api/v1/reviews/{review}/", None, 200),
             (label, "GET", "/api/v1/reviews/", "/api/v1/reviews/?outcome=pending", None, 200),
             (producer, "GET", "/api/v1/jobs/{id}/", f"/api/v1/jobs/{job}/", None, 200),
             (label, "POST", "/api/v1/reviews/{id}/refuse/", f"/api/v1/reviews/{review}/refuse/", {}, 400),
             (label, "POST", "/api/v1/reviews/{id}/release/", f"/api/v1/reviews/{review}/release/", {"note": "no"}, 200),
             (producer, "GET", "/api/v1/jobs/{id}/", f"/api/v1/jobs/{job}/", None, 200),
             (label, "POST", "/api/v1/reviews/{id}/release/", f"/api/v1/reviews/{review}/release/", {}, 409)]
    for session, method, path, url, body, status in calls:
        r = session.request(method, live_server.url + url, json=body, timeout=60)
        assert r.status_code == status, (url, r.text)
        schema[path][method].validate_response(r)
    assert r.json()["code"] == "review_already_decided"
    dramatiq.get_broker().flush_all()  # the release queued the job on the real broker: leave nothing behind


# --- pages -------------------------------------------------------------------------------------

def browser(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_review_pages_show_the_evidence_and_decide(held, users):
    job, review = held["job"], held["review"]
    label = browser(users["label"][0])
    inbox = label.get("/reviews/").content.decode()
    assert "Song 12" in inbox and "spectral-peak landmarks" in inbox and "41 %" in inbox
    assert "0:03–0:08 of the upload" in inbox and "landmarks: 5.2 s aligned at 0.41 (acceptance 0.55)" in inbox
    assert 'aria-label="1 waiting"' in inbox  # the nav badge
    page = label.get(f"/reviews/{review.pk}/").content.decode()
    assert 'name="decision" value="release"' in page and 'name="decision" value="refuse"' in page
    assert "1:01–1:06 of the recording" in page and "aligned_hashes" in page
    # the producer's job page says whom it waits for
    producer = browser(users["producer"][0])
    job_page = producer.get(f"/studio/jobs/{job.pk}/").content.decode()
    assert "Waiting for review by Label A" in job_page and "Song 12" in job_page
    # other personas and labels cannot open it; a read-only member sees no forms and changes nothing
    assert producer.get(f"/reviews/{review.pk}/").status_code == 404
    assert browser(users["label_b"][0]).get(f"/reviews/{review.pk}/").status_code == 404
    viewer = browser(users["label_viewer"][0])
    assert 'value="refuse"' not in viewer.get(f"/reviews/{review.pk}/").content.decode()
    assert viewer.post(f"/reviews/{review.pk}/", {"decision": "refuse", "reason": "x"}).status_code == 302
    assert JobReview.objects.get(pk=review.pk).outcome == "pending"
    # refusing needs a reason, shown next to the field
    r = label.post(f"/reviews/{review.pk}/", {"decision": "refuse", "reason": " "})
    assert r.status_code == 400 and 'id="err-reason"' in r.content.decode()
    assert Job.objects.get(pk=job.pk).state == "review"
    r = label.post(f"/reviews/{review.pk}/", {"decision": "refuse", "reason": "that is our hook"})
    assert r.status_code == 302 and r["Location"] == "/reviews/"
    job = Job.objects.get(pk=job.pk)
    assert job.state == "denied" and job.error_code == "refused_in_review"
    assert "that is our hook" in producer.get(f"/studio/jobs/{job.pk}/").content.decode()
    assert 'aria-label="1 waiting"' not in label.get("/reviews/").content.decode()
    assert "that is our hook" in label.get("/reviews/?outcome=refused").content.decode()


def test_release_form_works_without_javascript(held, users):
    job, review = held["job"], held["review"]
    platform = browser(users["platform"][0])
    assert "Song 12" in platform.get("/reviews/").content.decode()
    r = platform.post(f"/reviews/{review.pk}/", {"decision": "release", "note": "checked by ops"})
    assert r.status_code == 302
    assert Job.objects.get(pk=job.pk).state == "queued"
    assert JobReview.objects.get(pk=review.pk).note == "checked by ops"
    again = platform.post(f"/reviews/{review.pk}/", {"decision": "release"})
    assert again.status_code == 409 and "already released" in again.content.decode()


def test_a_recording_under_review_cannot_be_removed(held, clients, catalog):
    """A review names the recording and is evidence for audit: removal is refused (409), not a 500."""
    review = held["review"]
    r = clients["label"].delete(f"/api/v1/recordings/{review.recording_id}/")
    assert r.status_code == 409 and r.json()["code"] == "recording_in_use", r.content
    assert JobReview.objects.filter(pk=review.pk, recording_id=review.recording_id).exists()


def test_the_upload_page_names_the_suspects_and_what_happens_next(clients, catalog, audio_dir, users):
    recs = catalog["recordings"]
    job = job_with_evidence(clients, audio_dir, [], [suspect(recs[12])])
    page = browser(users["producer"][0]).get(f"/studio/uploads/{job.upload_id}/").content.decode()
    assert "may also contain" in page and "Song 12" in page and "waits for their review" in page
    assert "landmarks: 5.2 s aligned at 0.41 (acceptance 0.55)" in page
    assert 'name="attest"' in page  # released suspects leave the ownership statement to stand on
