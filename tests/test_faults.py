"""Faults as an operator meets them, on the real servers: PostgreSQL stops for a few seconds
while `reconcile_jobs --every 1` runs (it survives), the separation worker is killed with
SIGKILL mid-job (the job is re-queued after the heartbeat timeout and ends `done`), and the
database ends the web server's kept connection (its next request reconnects)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.conf import settings
from django.db import connection

from clearstem.jobs.models import Job
from clearstem.jobs.separation import SCRATCH_PREFIX
from clearstem.jobs.services import do_process_job
from clearstem.storage import sweep_scratch
from tests import servers
from tests.conftest import upload_file

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    """The test database (not the cluster's default one) for the subprocesses."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return {**os.environ, "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CLEARSTEM_JOB_HEARTBEAT_S": "1", "CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S": "5",
            "CLEARSTEM_JOB_RESEND_AFTER_S": "3", "CLEARSTEM_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=_env(), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the database may be restarting
            connection.close()
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_reconciler_survives_a_database_outage_and_a_killed_worker_is_requeued(
        transactional_db, clients, catalog, audio_dir, tmp_path):
    song = sf.read(audio_dir / "song11.wav", always_2d=True)[0]
    long_path = tmp_path / "long.wav"
    # 72 s of a licensed song: three of the dsp model's 30 s segments, so progress shows after the
    # first while two are left when the worker is killed (5 copies, 2 minutes, only took longer)
    sf.write(long_path, np.tile(song, (3, 1)), 44100, subtype="PCM_16")
    up = upload_file(clients["producer"], long_path).json()
    r = clients["producer"].post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": ["vocals", "drums"],
                                                    "purpose": "remix", "territory": "GB"}, format="json")
    job_id = r.json()["id"]
    assert do_process_job(job_id).state == "queued"  # the separation message is on Redis now

    reconciler = _spawn(["reconcile_jobs", "--every", "1"], tmp_path / "reconciler.log")
    worker = _spawn(["rundramatiq", "--queues", "separation", "--processes", "1", "--threads", "1"],
                    tmp_path / "worker1.log")
    second = None
    try:
        _wait(lambda: Job.objects.filter(pk=job_id, state="separating", progress__gt=0).exists(), 90,
              "the first worker to make progress")
        _kill(worker)
        killed_at = time.monotonic()

        postgres = servers._started[0]
        postgres.stop()  # a database outage of a few seconds, while the reconciler keeps running
        time.sleep(4)
        postgres.start()
        connection.close()
        assert reconciler.poll() is None, (tmp_path / "reconciler.log").read_text()

        second = _spawn(["rundramatiq", "--queues", "separation", "--processes", "1", "--threads", "1"],
                        tmp_path / "worker2.log")
        job = _wait(lambda: Job.objects.filter(pk=job_id, state__in=["done", "failed", "cancelled"]).first(), 120,
                    "the job to end")
        took = time.monotonic() - killed_at
    finally:
        for proc in (worker, second, reconciler):
            if proc is not None:
                _kill(proc)
    log = (tmp_path / "reconciler.log").read_text()
    assert job.state == "done", (job.state, job.error_code, job.error_message, log[-2000:])
    assert took < 120
    assert job.attempts == 2 and job.stem_files.count() == 2
    assert "reconciler pass failed" in log and "retrying in" in log  # it met the outage and went on
    assert "requeued=1" in log
    # the killed attempt's scratch folder stayed behind, under the scratch root (not /tmp), where
    # the next job on this machine removes it once it has been untouched for long enough
    left = list(Path(settings.CLEARSTEM_SCRATCH_DIR).glob(f"{SCRATCH_PREFIX}*"))
    assert len(left) == 1 and any(left[0].iterdir()), left
    assert sweep_scratch(SCRATCH_PREFIX, settings.CLEARSTEM_SCRATCH_DIR, older_than_s=0) == 1 and not left[0].exists()
    print(f"killed worker -> done in {took:.1f} s")


def _gunicorn(port: int, log: Path, **env) -> subprocess.Popen:
    """The web server as production runs it (docker/compose.yaml), one worker, keeping its
    connection between requests."""
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "clearstem.wsgi", "--bind", f"127.0.0.1:{port}",
                             "--workers", "1"], cwd=ROOT, env={**_env(), "DATABASE_CONN_MAX_AGE": "60", **env},
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _end_other_connections() -> int:
    """What a PostgreSQL restart or failover does to every connection a client keeps."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_web_server_reconnects_after_the_database_ended_its_connection(transactional_db, users, tmp_path):
    """With its connection checked at first use in a request (DATABASE_CONN_HEALTH_CHECKS, on by
    default) a web worker answers the first request after a restart; without, that request
    fails (a 503) and only the next one reconnects."""
    token = users["producer"][1]
    answers = {}
    for checks in ("1", "0"):
        port = servers._free_port()
        web = _gunicorn(port, tmp_path / f"gunicorn-{checks}.log", DATABASE_CONN_HEALTH_CHECKS=checks)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/jobs/"
            _wait(lambda u=url: _get_or_none(u, token), 60, "gunicorn to answer")
            assert _get(url, token) == 200
            assert _end_other_connections() >= 1  # the worker's kept connection among them
            answers[checks] = [_get(url, token), _get(url, token)]
        finally:
            _kill(web)
    assert answers["1"] == [200, 200], answers
    assert answers["0"] == [503, 200], answers  # the failure the checks prevent


def _get_or_none(url: str, token: str) -> int | None:
    try:
        return _get(url, token)
    except (urllib.error.URLError, ConnectionError):
        return None
