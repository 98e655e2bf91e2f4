"""Every file goes through Django's storage API: the upload → stems path against a real local
S3 endpoint (moto's server mode on loopback), as web and GPU workers on different machines use it."""
import boto3
import pytest
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from tests.conftest import upload_file

BUCKET = "clearstem-test"


@pytest.fixture
def s3(settings):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, **creds)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": BUCKET, "endpoint_url": endpoint, "access_key": "test", "secret_key": "test",
            "region_name": "us-east-1", "file_overwrite": False}},
    }
    yield client
    server.stop()


def test_upload_to_stems_on_s3(s3, clients, catalog, audio_dir):
    assert type(default_storage._wrapped).__name__ == "S3Storage"
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac")
    assert up.status_code == 201, up.content
    body = {"upload": up.json()["id"], "requested_stems": ["vocals", "bass"], "purpose": "remix", "territory": "GB"}
    job_id = clients["producer"].post("/api/v1/jobs/", body, format="json").json()["id"]
    assert do_process_job(job_id).state == "queued"
    job = do_separate_job(job_id)
    assert job.state == "done"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"uploads/{up.json()['id']}.flac" in keys
    assert {f"stems/{job_id}/vocals.wav", f"stems/{job_id}/bass.wav"} <= keys
    stem = Job.objects.get(pk=job_id).stem_files.get(name="vocals")
    r = clients["producer"].get(f"/api/v1/stems/{stem.pk}/download/")
    assert r.status_code == 200
    assert b"".join(r.streaming_content)[:4] == b"RIFF"


def test_a_kept_preview_on_s3_leaves_no_second_copy_when_two_writers_race(s3, monkeypatch):
    """Two requests that both found no preview both write it; storage never overwrites, so the
    second is saved under another name, which `keep_once` deletes again: one object, the first."""
    from django.core.files.base import ContentFile

    from clearstem.storage import keep_once

    name = "previews/raced-v2.mp3"
    default_storage.save(name, ContentFile(b"first writer"))  # the racer, just before us
    real_exists, asked = type(default_storage._wrapped).exists, []

    def exists(self, n):
        if n == name and not asked:  # our first look, a moment before the racer's object landed
            asked.append(n)
            return False
        return real_exists(self, n)

    monkeypatch.setattr(type(default_storage._wrapped), "exists", exists)
    assert keep_once(name, ContentFile(b"second writer")) == name
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="previews/")["Contents"]]
    assert keys == [name]
    assert s3.get_object(Bucket=BUCKET, Key=name)["Body"].read() == b"first writer"
