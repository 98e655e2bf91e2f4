"""Job lifecycle on the real broker: lost messages are re-sent, cancellation, revocation."""
import time
from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job, do_reconcile_jobs
from licensing.models import UsageEvent
from tests.conftest import running_worker, upload_file


def make_job(clients, audio_dir, name="excerpt11.flac", **extra):
    up = upload_file(clients["producer"], audio_dir / name).json()
    body = {"upload": up["id"], "requested_stems": ["vocals"], "purpose": "remix", "territory": "GB", **extra}
    r = clients["producer"].post("/api/v1/jobs/", body, format="json")
    assert r.status_code == 201, r.content
    return Job.objects.get(pk=r.json()["id"])


def test_pipeline_services_in_order(clients, catalog, audio_dir):
    job = make_job(clients, audio_dir)
    assert job.state == "received"
    job = do_process_job(job.pk)
    assert job.state == "queued" and job.decision["allowed"]
    assert UsageEvent.objects.filter(job=job, kind="separation").count() == 1
    assert do_process_job(job.pk).state == "queued"  # idempotent: a duplicate message changes nothing
    job = do_separate_job(job.pk)
    assert job.state == "done" and job.stem_files.count() == 1
    assert do_separate_job(job.pk) is None  # duplicate delivery after completion is ignored
    assert Job.objects.get(pk=job.pk).stem_files.get().provenance.key_id


def test_separation_cap_counts_across_amendments(clients, catalog, audio_dir):
    first = do_process_job(make_job(clients, audio_dir).pk)
    assert first.state == "queued"
    r = clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/amend/", {"max_separations": 1}, format="json")
    assert r.status_code == 201 and r.json()["version"] == 2
    second = do_process_job(make_job(clients, audio_dir).pk)
    assert second.state == "denied" and second.error_code == "separation_cap_reached"
    assert second.decision["reasons"][0]["rights_holder"] == "label-a"


def test_cancel_states(clients, catalog, audio_dir):
    job = make_job(clients, audio_dir)
    r = clients["producer"].post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    again = clients["producer"].post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "job_not_cancellable"
    assert do_process_job(job.pk).state == "cancelled"
    assert clients["producer_b"].post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404


def test_revocation_cancels_queued_jobs_and_blocks_downloads(clients, catalog, audio_dir):
    done = do_process_job(make_job(clients, audio_dir).pk)
    do_separate_job(done.pk)
    queued = do_process_job(make_job(clients, audio_dir).pk)
    assert queued.state == "queued"
    stem = Job.objects.get(pk=done.pk).stem_files.get()
    assert clients["producer"].get(f"/api/v1/stems/{stem.pk}/download/").status_code == 200
    r = clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert Job.objects.get(pk=queued.pk).state == "cancelled"
    refused = clients["producer"].get(f"/api/v1/stems/{stem.pk}/download/")
    assert refused.status_code == 403 and refused.json()["code"] == "revoked"
    assert do_separate_job(queued.pk) is None
    # the licensee sees its grant but may not revoke it; another label cannot even see it
    r = clients["producer"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert clients["label_b"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/").status_code == 404


def test_invalid_job_requests(clients, catalog, audio_dir):
    up = upload_file(clients["producer"], audio_dir / "original.wav").json()
    post = lambda body: clients["producer"].post("/api/v1/jobs/", body, format="json")  # noqa: E731
    base = {"upload": up["id"], "requested_stems": ["vocals"], "purpose": "remix", "territory": "GB"}
    assert post({**base, "requested_stems": ["kazoo"]}).json()["code"] == "invalid"
    assert post({**base, "purpose": "piracy"}).json()["code"] == "invalid"
    assert post({**base, "territory": "GBR"}).json()["code"] == "invalid"
    r = post({**base, "model": "nope"})
    assert r.status_code == 400 and r.json()["code"] == "model_unavailable"
    r = post({**base, "attestation": {"accepted": False}})
    assert r.json()["code"] == "invalid_attestation"
    r = clients["producer_b"].post("/api/v1/jobs/", base, format="json")
    assert r.status_code == 404
    assert Job.objects.count() == 0


def wait_for(job_id, states=("done", "failed", "denied", "cancelled"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck in {job.state}")


@pytest.mark.slow
def test_reconciler_resends_jobs_lost_by_the_broker(transactional_db, clients, catalog, audio_dir):
    broker = dramatiq.get_broker()
    broker.flush_all()
    long_ago = timezone.now() - timedelta(hours=1)
    # job 1: its identification message is lost
    lost_process = make_job(clients, audio_dir)  # on_commit sent a message to Redis...
    # job 2: identified and queued, then its separation message is lost
    lost_separation = do_process_job(make_job(clients, audio_dir).pk)
    assert lost_separation.state == "queued"
    broker.flush_all()  # ...and the broker lost every message
    Job.objects.update(dispatched_at=long_ago)
    assert do_reconcile_jobs() == {"resent_process": 1, "resent_separation": 1, "requeued": 0, "failed": 0,
                                   "resent_identify": 0}
    assert do_reconcile_jobs()["resent_process"] == 0  # not re-sent again before the delay
    with running_worker(flush_first=False):
        assert wait_for(lost_process.pk).state == "done"
        assert wait_for(lost_separation.pk).state == "done"


def test_dead_worker_is_requeued_then_failed(clients, catalog, audio_dir, settings):
    job = do_process_job(make_job(clients, audio_dir).pk)
    stale = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(state="separating", heartbeat_at=stale, attempts=1)
    assert do_reconcile_jobs()["requeued"] == 1
    assert Job.objects.get(pk=job.pk).state == "queued"
    Job.objects.filter(pk=job.pk).update(state="separating", heartbeat_at=stale, attempts=settings.CLEARSTEM_JOB_MAX_ATTEMPTS)
    assert do_reconcile_jobs()["failed"] == 1
    failed = Job.objects.get(pk=job.pk)
    assert failed.state == "failed" and failed.error_code == "worker_lost"


def test_cancel_during_separation_stops_between_chunks(clients, catalog, audio_dir):
    from clearstem.jobs.separation import _progress_reporter
    from separation.engine import Cancelled

    job = do_process_job(make_job(clients, audio_dir).pk)
    Job.objects.filter(pk=job.pk).update(state="separating", attempts=1)
    r = clients["producer"].post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["cancel_requested"] and r.json()["state"] == "separating"
    with pytest.raises(Cancelled):
        _progress_reporter(job.pk, 1)(0.5)
    # a cancel that arrives while the job is still queued is honoured when a worker claims it
    queued = do_process_job(make_job(clients, audio_dir).pk)
    Job.objects.filter(pk=queued.pk).update(cancel_requested=True)
    assert do_separate_job(queued.pk) is None
    assert Job.objects.get(pk=queued.pk).state == "cancelled"


def test_time_limits_hold_in_every_in_process_worker(caplog):
    """The embedded default runs its worker in-process; starting one again in the same process
    (the tests start one per test) must not boot the broker twice — Dramatiq's time-limit
    watchdog thread can start only once — and must keep the time limits working. A worker that
    stopped before a queue was declared must not take that queue's messages."""
    import queue

    from dramatiq.middleware import TimeLimitExceeded

    for _ in range(3):  # workers that stopped before the queue below was declared
        with running_worker():
            pass
    outcomes: queue.Queue = queue.Queue()

    @dramatiq.actor(actor_name="tests.sleeps_past_its_limit", queue_name="tests-time-limit", time_limit=300,
                    max_retries=0)
    def sleeps_past_its_limit():
        try:
            for _ in range(200):
                time.sleep(0.05)
            outcomes.put("finished")
        except TimeLimitExceeded:
            outcomes.put("interrupted")

    for _ in range(2):
        with running_worker():
            sleeps_past_its_limit.send()
            assert outcomes.get(timeout=30) == "interrupted"
    assert not [r for r in caplog.records if "after_process_boot" in r.getMessage()]
