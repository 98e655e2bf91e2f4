"""List endpoints run a constant number of queries whatever the page size (no N+1)."""
from __future__ import annotations

import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clearstem.jobs.models import Job, Stem
from clearstem.uploads.models import Upload
from licensing.grants import do_create_grant
from licensing.models import LicenseGrant, Recording, UsageEvent
from licensing.requests import do_create_license_requests

N = 50


def _queries(client, url) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200, r.content
    return len(ctx.captured_queries), r.json()


def _recordings(org, n=N):
    return [Recording.objects.create(rights_holder=org, isrc=None, title=f"Song {i}", artist="A",
                                     reference_audio=f"references/{i}.wav", audio_sha256=f"{i:064x}",
                                     duration_s=120.0, territories=["WW"]) for i in range(n)]


def _upload(user):
    return Upload.objects.create(owner=user, organisation=user.organisation, file="uploads/x.wav", original_name="x.wav",
                                 size=1, sha256="0" * 64, container="wav", codec="pcm_s16le", sample_rate=44100,
                                 channels=2, duration_s=10.0, fingerprint=b"", identification={"matches": []},
                                 identification_status="done")


def _assert_constant(client, path: str, n: int = N) -> int:
    small, body_small = _queries(client, f"{path}?limit=5")
    large, body_large = _queries(client, f"{path}?limit={n}")
    assert len(body_small["results"]) == 5 and len(body_large["results"]) == n
    assert large == small, f"{path}: {small} queries for 5 rows, {large} for {n}"
    return large


def test_recording_list_is_constant(clients, orgs):
    _recordings(orgs["label"])
    assert _assert_constant(clients["label"], "/api/v1/recordings/") <= 6


def test_grant_list_is_constant_for_label_and_licensee(clients, orgs, users):
    recs = _recordings(orgs["label"], 5)
    for i in range(N):
        do_create_grant(orgs["label"], [recs[i % 5]], licensee_org=orgs["producer"], stems=["vocals"],
                        purposes=["remix"], territories=["WW"], max_separations=10, max_downloads=10,
                        max_separations_per_user=3)
    # some usage, so caps left are real numbers
    producer = users["producer"][0]
    job = Job.objects.create(upload=_upload(producer), requested_by=producer, organisation=producer.organisation,
                             stems=["vocals"], purpose="remix", territory="GB", model="dsp")
    for grant in LicenseGrant.objects.all()[:10]:
        UsageEvent.objects.create(grant=grant, kind="separation", recording=grant.recordings.first(), job=job,
                                  user=producer, act=uuid.uuid4())
    assert _assert_constant(clients["label"], "/api/v1/licenses/") <= 8
    assert _assert_constant(clients["producer"], "/api/v1/licenses/") <= 14
    _, body = _queries(clients["producer"], f"/api/v1/licenses/?limit={N}")
    left = sorted(g["remaining"]["separations"] for g in body["results"])
    assert left.count(9) == 10 and left.count(10) == N - 10


def test_job_list_is_constant(clients, users):
    producer = users["producer"][0]
    upload = _upload(producer)
    for i in range(N):
        job = Job.objects.create(upload=upload, requested_by=producer, organisation=producer.organisation,
                                 stems=["vocals", "drums"], purpose="remix", territory="GB", model="dsp",
                                 state="done", finished_at=timezone.now())
        for name in ("vocals", "drums"):
            Stem.objects.create(job=job, name=name, file=f"stems/{i}/{name}.wav", sha256="1" * 64, size=10,
                                format="wav", sample_rate=44100, bits_per_sample=16, channels=2, duration_s=1.0)
    assert _assert_constant(clients["producer"], "/api/v1/jobs/") <= 6


def test_request_list_is_constant(clients, orgs, users):
    recs = _recordings(orgs["label"], 3)
    for _ in range(N):
        do_create_license_requests(users["producer"][0], recordings=recs, stems=["vocals"], purpose="remix",
                                   commercial=False, territory="GB")
    assert _assert_constant(clients["label"], "/api/v1/license-requests/") <= 6
    assert _assert_constant(clients["producer"], "/api/v1/license-requests/") <= 6
