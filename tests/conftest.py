"""Shared fixtures: organisations and API clients per role, generated audio, a real worker."""
from __future__ import annotations

import contextlib
import shutil
from datetime import timedelta
from pathlib import Path

import dramatiq
import numpy as np
import pytest
import soundfile as sf
from django.db.backends.postgresql.operations import DatabaseOperations as PgOperations
from django.utils import timezone
from rest_framework.test import APIClient

from clearstem.accounts.services import do_create_org, do_create_user
from clearstem.synth import render_song

SR = 44100


def need_fluidsynth(*banks: str) -> None:
    """Skip a test that renders with FluidSynth when it or one of the soundfonts `banks` is missing."""
    from separation.training.licences import SoundfontRefused, find_soundfont

    if not shutil.which("fluidsynth"):
        pytest.skip("fluidsynth is not installed (apt-get install fluidsynth)")
    for bank in banks:
        try:
            find_soundfont(bank)
        except SoundfontRefused as exc:
            pytest.skip(str(exc))

_pg_sql_flush = PgOperations.sql_flush


def _sql_flush_past_truncate_triggers(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    """pytest-django empties every table between transactional tests with TRUNCATE, which the
    BEFORE TRUNCATE triggers on the ledger and license tables refuse to every role. The test
    cluster's superuser lets that one transaction past them (no trigger fires in replica mode)."""
    sql = _pg_sql_flush(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return ["SET LOCAL session_replication_role = replica", *sql] if sql else sql


PgOperations.sql_flush = _sql_flush_past_truncate_triggers


@pytest.fixture(autouse=True)
def _media_files_last_one_test():
    """Remove the media files (uploads, references, stems) a test wrote, once it has ended.

    The database forgets each test, the media folder would not: over the suite it grew to 1.7 GB
    per worker, and CI has once run out of disk. Files that were there before the test (written by
    session or module fixtures, which are set up first) stay."""
    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)

    def files() -> set[Path]:
        return {p for p in root.rglob("*") if not p.is_dir()} if root.is_dir() else set()

    before = files()
    yield
    for path in files() - before:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    """Generated songs (no copyrighted audio): three catalog songs and one original."""
    d = tmp_path_factory.mktemp("audio")
    for seed in (11, 12, 13, 99):
        song = render_song(seed, seconds=24)
        sf.write(d / f"song{seed}.wav", song.mixture.T, SR, subtype="PCM_16")
    mix = sf.read(d / "song11.wav", always_2d=True)[0]
    sf.write(d / "excerpt11.flac", mix[4 * SR:19 * SR], SR, subtype="PCM_16")
    mix12 = sf.read(d / "song12.wav", always_2d=True)[0]
    sf.write(d / "excerpt12.flac", mix12[3 * SR:18 * SR], SR, subtype="PCM_16")
    other = sf.read(d / "song99.wav", always_2d=True)[0]
    sf.write(d / "original.wav", other[: 12 * SR], SR, subtype="PCM_16")
    return d


@pytest.fixture
def orgs(db):
    return {
        "label": do_create_org("label-a", "label", "Label A"),
        "label_b": do_create_org("label-b", "label", "Label B"),
        "producer": do_create_org("producer-a", "producer", "Producer A", verified=True),
        "producer_b": do_create_org("producer-b", "producer", "Producer B"),
        "platform": do_create_org("ops", "platform", "Ops"),
    }


@pytest.fixture
def users(orgs):
    out = {}
    for key, slug, role in (("label", "label-a", "admin"), ("label_b", "label-b", "admin"),
                            ("producer", "producer-a", "admin"), ("producer_b", "producer-b", "admin"),
                            ("platform", "ops", "admin"), ("label_viewer", "label-a", "viewer"),
                            ("producer_viewer", "producer-a", "viewer")):
        user, token = do_create_user(f"{key}@example.test", slug, role, with_token=True)
        out[key] = (user, token)
    return out


@pytest.fixture
def clients(users):
    out = {"anonymous": APIClient()}
    for key, (_, token) in users.items():
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        out[key] = c
    return out


def grant_body(recording_ids, licensee="producer-a", **overrides):
    body = {
        "licensee": licensee, "recordings": [str(r) for r in recording_ids],
        "stems": ["vocals", "drums", "bass", "other"], "purposes": ["remix"], "commercial": False,
        "territories": ["WW"], "valid_from": (timezone.now() - timedelta(days=1)).isoformat(),
        "valid_until": (timezone.now() + timedelta(days=30)).isoformat(), "max_separations": 5,
        "max_downloads": 20, "attribution": "Song — Artist",
    }
    body.update(overrides)
    return body


@pytest.fixture
def catalog(clients, audio_dir):
    """Label A registers songs 11 and 12; song 11 is licensed to Producer A."""
    recs = {}
    for seed, isrc in ((11, "QZ-AAA-26-00011"), (12, "QZ-AAA-26-00012")):
        with open(audio_dir / f"song{seed}.wav", "rb") as fh:
            r = clients["label"].post("/api/v1/recordings/", {"file": fh, "title": f"Song {seed}", "isrc": isrc},
                                      format="multipart")
        assert r.status_code == 201, r.content
        recs[seed] = r.json()
    g = clients["label"].post("/api/v1/licenses/", grant_body([recs[11]["id"]]), format="json")
    assert g.status_code == 201, g.content
    return {"recordings": recs, "grant": g.json()}


@contextlib.contextmanager
def running_worker(flush_first: bool = True):
    """A real Dramatiq worker on the configured (Redis) broker, in this process."""
    from clearstem.worker import start_worker, stop_worker

    broker = dramatiq.get_broker()
    if flush_first:
        broker.flush_all()
    worker = start_worker(threads=2)
    try:
        yield worker
    finally:
        stop_worker(worker)
        broker.flush_all()


@pytest.fixture
def worker(transactional_db):
    with running_worker() as w:
        yield w


def upload_file(client, path: Path):
    with open(path, "rb") as fh:
        return client.post("/api/v1/uploads/", {"file": fh}, format="multipart")


def noise_wav(path: Path, seconds: float, sr: int = SR):
    rng = np.random.default_rng(0)
    sf.write(path, (rng.standard_normal((int(seconds * sr), 2)) * 0.1).astype(np.float32), sr, subtype="PCM_16")
    return path
