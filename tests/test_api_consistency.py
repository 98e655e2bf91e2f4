"""One vocabulary in the API: `requested_stems` in and out of jobs, produced `files`, every
reason of a refusal, refusals that name the recording and whom to ask, grant statuses derived
from the validity window, and dates people can read."""
import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from licensing.engine import grant_status, human_datetime
from tests.conftest import grant_body, upload_file

HUMAN_DATE = re.compile(r"\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC")


def _post_job(client, audio_dir, name="excerpt11.flac", **body):
    up = upload_file(client, audio_dir / name).json()
    return client.post("/api/v1/jobs/", {"upload": up["id"], "purpose": "remix", "territory": "GB", **body},
                       format="json")


def test_requested_stems_in_and_out_and_files_for_what_was_made(clients, catalog, audio_dir):
    r = _post_job(clients["producer"], audio_dir, requested_stems=["vocals", "drums"])
    assert r.status_code == 201, r.content
    job = r.json()
    assert job["requested_stems"] == ["vocals", "drums"] and job["files"] == [] and job["reasons"] == []
    assert "stems" not in job
    do_process_job(job["id"])
    do_separate_job(job["id"])
    done = clients["producer"].get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["state"] == "done" and {f["name"] for f in done["files"]} == {"vocals", "drums"}
    assert done["requested_stems"] == ["vocals", "drums"] and done["reasons"] == [] and done["error_code"] == ""


def test_the_old_stems_key_is_refused_by_name(clients, catalog, audio_dir):
    r = _post_job(clients["producer"], audio_dir, stems=["vocals"])
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "renamed_field" and body["field"] == "stems" and body["renamed_to"] == "requested_stems"
    assert "requested_stems" in body["detail"]
    assert not Job.objects.exists()
    # both keys: still refused, an old client's habit is never silently half-honoured
    both = _post_job(clients["producer"], audio_dir, stems=["vocals"], requested_stems=["vocals"])
    assert both.status_code == 400 and both.json()["code"] == "renamed_field"


def test_a_denied_job_lists_every_reason_led_by_error_code(clients, catalog, audio_dir):
    song12 = catalog["recordings"][12]["id"]
    g = clients["label"].post("/api/v1/licenses/", grant_body([song12], stems=["bass"], purposes=["sample"]),
                              format="json")
    assert g.status_code == 201, g.content
    r = _post_job(clients["producer"], audio_dir, name="excerpt12.flac", requested_stems=["vocals"])
    job = do_process_job(r.json()["id"])
    assert job.state == "denied"
    body = clients["producer"].get(f"/api/v1/jobs/{job.pk}/").json()
    codes = [x["code"] for x in body["reasons"]]
    assert codes[0] == body["error_code"] and {"stem_not_licensed", "purpose_not_licensed"} <= set(codes)
    for reason in body["reasons"]:
        assert reason["message"] and reason["title"] == "Song 12" and reason["rights_holder"] == "label-a"
    assert body["reasons"][0]["message"] == body["error_message"]
    # the job.denied notification carries the same reasons in the same words
    from clearstem.notifications.payloads import job_event

    assert job_event("job.denied", job.pk)[2]["job"]["reasons"] == body["reasons"]


def test_grant_status_is_derived_from_the_validity_window(clients, catalog):
    song12 = catalog["recordings"][12]["id"]
    now = timezone.now()
    future = grant_body([song12], valid_from=(now + timedelta(days=3)).isoformat(),
                        valid_until=(now + timedelta(days=30)).isoformat())
    past = grant_body([song12], valid_from=(now - timedelta(days=30)).isoformat(),
                      valid_until=(now - timedelta(days=3)).isoformat())
    scheduled = clients["label"].post("/api/v1/licenses/", future, format="json").json()
    expired = clients["label"].post("/api/v1/licenses/", past, format="json").json()
    assert scheduled["status"] == "scheduled" and expired["status"] == "expired"
    assert catalog["grant"]["status"] == "active"
    mine = {g["id"]: g["status"] for g in clients["producer"].get("/api/v1/licenses/").json()["results"]}
    assert mine[scheduled["id"]] == "scheduled" and mine[expired["id"]] == "expired"
    revoked = clients["label"].post(f"/api/v1/licenses/{expired['id']}/revoke/").json()
    assert revoked["status"] == "revoked"  # what the label did outranks what the calendar says


def test_a_license_not_yet_valid_says_when_in_words(clients, catalog, audio_dir):
    song12 = catalog["recordings"][12]["id"]
    start = (timezone.now() + timedelta(days=3)).replace(microsecond=123456)
    clients["label"].post("/api/v1/licenses/", grant_body([song12], valid_from=start.isoformat()), format="json")
    r = _post_job(clients["producer"], audio_dir, name="excerpt12.flac", requested_stems=["vocals"])
    job = do_process_job(r.json()["id"])
    assert job.error_code == "not_yet_valid"
    assert human_datetime(start) in job.error_message and HUMAN_DATE.search(job.error_message)
    assert "123456" not in job.error_message and start.isoformat()[:10] not in job.error_message


def test_a_refused_download_names_the_recording_and_its_rights_holder(clients, catalog, audio_dir):
    job = do_process_job(_post_job(clients["producer"], audio_dir, requested_stems=["vocals"]).json()["id"])
    do_separate_job(job.pk)
    stem = Job.objects.get(pk=job.pk).stem_files.get()
    clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    r = clients["producer"].get(f"/api/v1/stems/{stem.pk}/download/")
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "revoked" and "Song 11" in body["detail"] and "Label A" in body["detail"]
    assert body["title"] == "Song 11" and body["rights_holder"] == "label-a" and body["rights_holder_name"] == "Label A"
    assert all(x["title"] == "Song 11" for x in body["reasons"])


def test_human_dates_and_derived_statuses_in_the_pure_engine():
    at = datetime(2027, 3, 1, 14, 0, 59, 999999, tzinfo=UTC)
    assert human_datetime(at) == "1 March 2027, 14:00 UTC"
    assert human_datetime(at.astimezone(timezone.get_fixed_timezone(120))) == "1 March 2027, 14:00 UTC"
    day = timedelta(days=1)
    assert grant_status("active", at + day, None, at) == "scheduled"
    assert grant_status("active", None, at, at) == "expired"  # the end is exclusive
    assert grant_status("active", at, at + day, at) == "active"
    assert grant_status("suspended", at + day, None, at) == "suspended"
    assert grant_status("draft", None, at - day, at) == "draft"
