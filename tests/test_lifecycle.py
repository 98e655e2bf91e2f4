"""One job lifecycle: `transition()` is the only writer of Job.state, illegal moves raise, a
`cleared` job whose queueing was lost is queued when its message comes again, and a stop
reason (a revocation) survives the worker's own ending of the job."""
from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from clearstem.jobs.lifecycle import IllegalTransition, transition
from clearstem.jobs.models import Job
from clearstem.jobs.separation import Superseded, _claim, _end, _progress_reporter
from clearstem.jobs.services import do_process_job, do_reconcile_jobs
from tests.test_jobs import make_job

ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE = ROOT / "clearstem" / "jobs" / "lifecycle.py"


def _state_writes(path: Path) -> list[str]:
    """Assignments to `<x>.state`, and `.update(state=...)` / `.create(state=...)` calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and sub.attr == "state":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "create"):
            if any(k.arg == "state" for k in node.keywords):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_transition_is_the_only_writer_of_job_state():
    sources = [p for pkg in ("clearstem", "fingerprint", "licensing", "separation", "provenance")
               for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts]
    writers = [w for p in sources if p != LIFECYCLE for w in _state_writes(p)]
    assert writers == []
    assert _state_writes(LIFECYCLE)  # the scan does see the one writer


def test_illegal_transitions_raise(clients, catalog, audio_dir):
    job = make_job(clients, audio_dir)
    with transaction.atomic(), pytest.raises(IllegalTransition) as err:
        transition(Job.objects.select_for_update().get(pk=job.pk), Job.State.DONE)
    assert err.value.code == "invalid_job_transition"
    assert Job.objects.get(pk=job.pk).state == "received"
    done = do_process_job(job.pk)
    assert done.state == "queued" and done.decided_at is not None
    for to in (Job.State.RECEIVED, Job.State.CLEARED, Job.State.DENIED, Job.State.DONE):
        with transaction.atomic(), pytest.raises(IllegalTransition):
            transition(Job.objects.select_for_update().get(pk=job.pk), to)
    assert Job.objects.get(pk=job.pk).state == "queued"


def test_cleared_job_whose_queueing_was_lost_is_queued_by_the_reconciler(clients, catalog, audio_dir, settings):
    """Cleared is a real state: the decision is committed first; if the process dies before the
    job is queued, the reconciler's resend finds it cleared and queues it."""
    job = make_job(clients, audio_dir)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        transition(locked, Job.State.IDENTIFYING)
        transition(locked, Job.State.CLEARED, decision={"allowed": True, "basis": "license", "grants": [], "reasons": []})
    settings.CLEARSTEM_JOB_RESEND_AFTER_S = 0
    counts = do_reconcile_jobs()
    assert counts["resent_process"] == 1
    job = do_process_job(job.pk)  # what the resent message runs
    assert job.state == "queued" and job.queued_at is not None


def test_revocation_mid_separation_ends_with_exactly_revoked(clients, catalog, audio_dir):
    job = do_process_job(make_job(clients, audio_dir).pk)
    assert _claim(job.pk) is not None  # a worker took it: separating
    assert Job.objects.get(pk=job.pk).state == "separating"
    r = clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    assert r.status_code == 200
    job = Job.objects.get(pk=job.pk)
    assert job.state == "separating" and job.cancel_requested and job.error_code == "revoked"
    _end(job.pk, job.attempts, Job.State.CANCELLED, "cancelled", "cancelled during separation")  # between chunks
    job = Job.objects.get(pk=job.pk)
    assert (job.state, job.error_code) == ("cancelled", "revoked")
    assert job.error_message == "the license was revoked"


def test_a_worker_that_missed_its_heartbeat_is_fenced_off(clients, catalog, audio_dir, settings):
    """The reconciler re-queues a job whose heartbeat is older than the timeout (a minute, not
    the whole lease); if the first worker was only slow, its attempt stops and writes nothing."""
    assert settings.CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S <= 60
    job = do_process_job(make_job(clients, audio_dir).pk)
    first = _claim(job.pk)
    stale = timezone.now() - timedelta(seconds=settings.CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S + 1)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert do_reconcile_jobs()["requeued"] == 1
    second = _claim(job.pk)
    assert (first.attempts, second.attempts) == (1, 2)
    with pytest.raises(Superseded):
        _progress_reporter(job.pk, first.attempts)(0.5)
    _progress_reporter(job.pk, second.attempts)(0.5)  # the current attempt goes on
    _end(job.pk, first.attempts, Job.State.FAILED, "separation_error", "late failure of the old attempt")
    assert Job.objects.get(pk=job.pk).state == "separating"
