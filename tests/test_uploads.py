"""Uploads: probe facts, and every bad-input code leaves nothing behind."""
from pathlib import Path

import pytest
from django.conf import settings

from clearstem.uploads.models import Upload
from tests.conftest import noise_wav, upload_file


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture(autouse=True)
def clean_media():
    before = set(stored_files())
    yield before


def test_upload_probes_and_hashes(clients, audio_dir):
    import hashlib

    path = audio_dir / "excerpt11.flac"
    r = upload_file(clients["producer"], path)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["codec"] == "flac" and body["sample_rate"] == 44100 and body["channels"] == 2
    assert body["bits_per_sample"] == 16
    assert abs(body["duration_s"] - 15.0) < 0.01
    upload = Upload.objects.get(pk=body["id"])
    # Chromaprint yields about 8.075 items per second minus 21.5 (measured on libchromaprint 1.5.1)
    assert abs(len(bytes(upload.fingerprint)) // 4 - (8.075 * 15 - 21.5)) < 5
    assert upload.identification_status == "pending"


@pytest.mark.parametrize("case,code,status", [
    ("text", "not_audio", 415),
    ("empty", "empty_file", 400),
    ("truncated", "corrupt_audio", 422),
    ("garbage_mp3", "not_audio", 415),
])
def test_bad_input_codes_leave_nothing_behind(clients, tmp_path, audio_dir, case, code, status, clean_media):
    if case == "text":
        path = tmp_path / "notes.wav"
        path.write_text("these are not the droids you are looking for\n" * 100)
    elif case == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
    elif case == "truncated":
        data = (audio_dir / "song11.wav").read_bytes()
        path = tmp_path / "truncated.wav"
        path.write_bytes(data[: len(data) // 3])
    else:
        path = tmp_path / "garbage.mp3"
        path.write_bytes(bytes(range(256)) * 400)
    r = upload_file(clients["producer"], path)
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    assert r.json()["detail"]
    assert Upload.objects.count() == 0
    assert set(stored_files()) == clean_media


@pytest.mark.parametrize("limit,value,status,code", [
    ("CLEARSTEM_MAX_UPLOAD_BYTES", 200_000, 413, "too_large"),
    ("CLEARSTEM_MAX_UPLOAD_SECONDS", 3, 422, "too_long"),
])
def test_limits(clients, tmp_path, settings, clean_media, limit, value, status, code):
    setattr(settings, limit, value)
    r = upload_file(clients["producer"], noise_wav(tmp_path / "big.wav", 6))
    assert r.status_code == status
    assert r.json()["code"] == code
    assert Upload.objects.count() == 0 and set(stored_files()) == clean_media


def test_missing_file_field(clients):
    r = clients["producer"].post("/api/v1/uploads/", {}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "invalid"


def test_labels_cannot_upload_and_other_orgs_cannot_see(clients, audio_dir):
    assert upload_file(clients["label"], audio_dir / "original.wav").status_code == 403
    r = upload_file(clients["producer"], audio_dir / "original.wav")
    upload_id = r.json()["id"]
    assert clients["producer"].get(f"/api/v1/uploads/{upload_id}/").status_code == 200
    assert clients["producer_b"].get(f"/api/v1/uploads/{upload_id}/").status_code == 404
    assert clients["label"].get(f"/api/v1/uploads/{upload_id}/").status_code == 404
    assert clients["platform"].get(f"/api/v1/uploads/{upload_id}/").status_code == 200
    unauth = clients["producer"].__class__()
    resp = unauth.get(f"/api/v1/uploads/{upload_id}/")
    assert resp.status_code == 401 and resp.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("samples", [1, 10])
def test_a_few_loud_samples_are_too_short_not_silent(clients, tmp_path, samples, clean_media):
    import numpy as np
    import soundfile as sf

    path = tmp_path / f"blip{samples}.wav"
    sf.write(path, np.full((samples, 2), 0.8, np.float32), 44100, subtype="PCM_16")
    r = upload_file(clients["producer"], path)
    assert (r.status_code, r.json()["code"]) == (422, "too_short"), r.content
    assert set(stored_files()) == clean_media


def test_stored_extension_follows_the_detected_container(clients, tmp_path, audio_dir):
    import av

    mp3 = tmp_path / "really-an-mp3.wav"  # the client's name lies about the format
    with av.open(str(audio_dir / "excerpt11.flac")) as src, av.open(str(mp3), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44100)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    r = upload_file(clients["producer"], mp3)
    assert r.status_code == 201, r.content
    upload = Upload.objects.get(pk=r.json()["id"])
    assert upload.container == "mp3" and upload.file.name.endswith(".mp3")
    assert upload.original_name == "really-an-mp3.wav"
