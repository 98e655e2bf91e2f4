"""Listening on the job page, server side: waveforms drawn once and kept, the original upload's
preview, the player's markup (usable without its script), and the progress ETA."""
import json
from datetime import timedelta
from pathlib import Path

from django.core.files.storage import default_storage
from django.utils import timezone

from clearstem.jobs import listening
from clearstem.jobs.models import Job
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from clearstem.web.templatetags.web import eta
from tests.conftest import upload_file
from tests.test_web import browser


def _done_job(clients, audio_dir, stems=("vocals", "drums")) -> Job:
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    r = clients["producer"].post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": list(stems),
                                                   "purpose": "remix", "territory": "GB"}, format="json")
    job = do_process_job(r.json()["id"])
    do_separate_job(job.pk)
    return Job.objects.get(pk=job.pk)


def test_the_job_page_draws_waveforms_once_and_offers_the_player(clients, users, catalog, audio_dir, monkeypatch):
    job = _done_job(clients, audio_dir)
    stems = list(job.stem_files.all())
    for stem in stems:  # drawn on the worker when the job finished
        assert default_storage.exists(f"waveforms/stem-{stem.id}-v1.json")
    assert default_storage.exists(f"waveforms/upload-{job.upload_id}-v1.json")
    monkeypatch.setattr(listening, "waveform_peaks", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    web = browser(users["producer"][0])
    page = web.get(f"/studio/jobs/{job.pk}/").content.decode()  # kept: the page decodes nothing
    assert page.count('<svg viewBox="0 0 240 48"') == 3  # the upload and two stems
    assert 'aria-label="Waveform of the vocals stem"' in page and 'aria-label="Waveform of your upload"' in page
    assert "data-mixer" in page and 'data-gain="1"' in page
    assert 'aria-label="Solo drums"' in page and 'aria-label="Mute vocals"' in page and 'aria-pressed="false"' in page
    assert 'aria-label="Vocals volume"' in page and 'for="mixer-seek"' in page
    # without the script the plain players and downloads are there
    assert page.count("data-single") == 2 and f"/studio/jobs/{job.pk}/".rstrip("/") in page
    assert f"/studio/uploads/{job.upload_id}/listen/" in page
    # one lost (or made before waveforms existed) is drawn by the page and kept again
    monkeypatch.undo()
    default_storage.delete(f"waveforms/stem-{stems[0].id}-v1.json")
    assert web.get(f"/studio/jobs/{job.pk}/").content.decode().count("<svg viewBox") == 3
    assert default_storage.exists(f"waveforms/stem-{stems[0].id}-v1.json")
    # a license that stops downloads stops the player too (previews are judged like downloads)
    clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    page = web.get(f"/studio/jobs/{job.pk}/").content.decode()
    assert "data-mixer" not in page and "data-single" not in page and "Downloads are stopped" in page


def test_a_waveform_file_still_being_written_or_damaged_is_drawn_again_not_a_server_error(clients, users, catalog,
                                                                                          audio_dir):
    """A waveform file that is empty, cut short or not peaks (a crash mid-write, or a file written
    before `keep_once` made such writes atomic) is computed again, the page renders, and the
    damaged file is replaced with the same peaks."""
    from django.core.files.base import ContentFile

    job = _done_job(clients, audio_dir)
    name = f"waveforms/upload-{job.upload_id}-v1.json"
    with default_storage.open(name, "rb") as fh:
        kept = fh.read()
    web = browser(users["producer"][0])
    for damaged in (b"", kept[: len(kept) // 2], b'{"not": "peaks"}'):
        default_storage.delete(name)
        default_storage.save(name, ContentFile(damaged))
        r = web.get(f"/studio/jobs/{job.pk}/")
        assert r.status_code == 200 and r.content.decode().count('<svg viewBox="0 0 240 48"') == 3
        assert 'aria-label="Waveform of your upload"' in r.content.decode()
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == kept  # repaired, identical to the first drawing
    assert listening.upload_peaks(job.upload) == json.loads(kept)


def test_a_kept_preview_appears_only_when_whole_and_a_racing_copy_leaves_nothing_behind(monkeypatch):
    """Previews and waveforms are made by whichever request or worker needs them first and read
    by whoever finds the name. Local storage's `save` creates the file before writing it, so the
    name must not exist until every byte is there (the job page once read an empty waveform), and
    a second writer must neither replace the first file nor leave a copy under another name."""
    import errno
    import io
    import os
    import shutil
    import uuid

    from clearstem.storage import keep_once

    folder = f"previews/test-{uuid.uuid4().hex}"
    name = f"{folder}/stem-v2.mp3"
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: several 1 MiB chunks

    class Watched(io.BytesIO):
        """Content that checks, at every read after the first, that nobody can see the name yet,
        and can play a racing writer who keeps the same name just before this one finishes."""
        reads = 0
        racer: bytes | None = None

        def read(self, n=-1):
            if self.reads:
                assert not default_storage.exists(name), "the name was visible before the file was whole"
            self.reads += 1
            out = super().read(n)
            if not out and self.racer is not None:
                Path(default_storage.path(name)).write_bytes(self.racer)
            return out

    try:
        content = Watched(data)
        assert keep_once(name, content) == name and content.reads >= 3
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == data
        assert keep_once(name, io.BytesIO(b"a later request's copy")) == name  # the first one stays
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == data
        assert default_storage.listdir(folder) == ([], ["stem-v2.mp3"])  # no temporary or second copy left
        assert oct(Path(default_storage.path(name)).stat().st_mode & 0o777) == oct(
            default_storage.file_permissions_mode or 0o644)
        # a racer that kept the name while this writer was still writing: the racer's file stays whole
        default_storage.delete(name)
        racing = Watched(data)
        racing.racer = b"the racer's preview"
        assert keep_once(name, racing) == name
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == b"the racer's preview"
        assert default_storage.listdir(folder) == ([], ["stem-v2.mp3"])
        # a file system without hard links (CIFS, FUSE): an atomic rename instead, still never half a file
        default_storage.delete(name)

        def no_links(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
        assert keep_once(name, Watched(data)) == name
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == data
        assert default_storage.listdir(folder) == ([], ["stem-v2.mp3"])
    finally:
        shutil.rmtree(default_storage.path(folder), ignore_errors=True)


def test_the_reconciler_sweeps_partial_files_of_writers_that_died_and_nothing_else(db, monkeypatch):
    """A writer killed mid-write leaves its `keep_once` temporary behind (never under the real
    name). The reconciler deletes such files once untouched for an hour, now and then (a walk
    of all local storage), and leaves a live writer's temporary and every real file alone."""
    import os
    import shutil
    import time
    import uuid

    from clearstem.jobs import reconciler
    from clearstem.storage import PARTIAL_MAX_AGE_S

    folder = Path(default_storage.path(f"previews/test-{uuid.uuid4().hex}"))
    folder.mkdir(parents=True)
    dead, live, kept = folder / ".partial-dead.mp3", folder / ".partial-live.mp3", folder / "stem-v2.mp3"
    for path in (dead, live, kept):
        path.write_bytes(b"bytes")
    long_ago = time.time() - PARTIAL_MAX_AGE_S - 60
    os.utime(dead, (long_ago, long_ago))
    os.utime(kept, (long_ago, long_ago))  # an old preview is still a preview
    try:
        monkeypatch.setattr(reconciler, "_last_sweep", None)
        counts = reconciler.reconcile_once()
        assert counts["partials_swept"] >= 1 and not dead.exists()
        assert live.read_bytes() == b"bytes" and kept.read_bytes() == b"bytes"
        os.utime(live, (long_ago, long_ago))
        assert "partials_swept" not in reconciler.reconcile_once()  # not every pass: the walk is not free
        assert live.exists()
        monkeypatch.setattr(reconciler, "_last_sweep", time.monotonic() - reconciler.PARTIAL_SWEEP_EVERY_S)
        assert reconciler.reconcile_once()["partials_swept"] >= 1 and not live.exists() and kept.exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_scratch_folders_of_killed_separations_are_swept_and_live_ones_kept(tmp_path):
    """A separation killed mid-job leaves its scratch folder (its stems so far). The sweep removes
    folders in which nothing was written for the age given, keeps a folder whose own time is old
    but whose file is being written, and leaves other names alone."""
    import os
    import time

    from clearstem.storage import scratch_folder, sweep_scratch

    long_ago = time.time() - 7200
    dead, live, other = tmp_path / "stems-dead", tmp_path / "stems-live", tmp_path / "keys"
    for folder in (dead, live, other):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "vocals.wav").write_bytes(b"x" * 10)
        for path in (folder / "sub" / "vocals.wav", folder / "sub", folder):
            os.utime(path, (long_ago, long_ago))
    (live / "sub" / "vocals.wav").write_bytes(b"x" * 20)  # its writer is still at work
    assert sweep_scratch("stems-", tmp_path, older_than_s=3600) == 1
    assert not dead.exists() and live.exists() and other.exists()
    assert sweep_scratch("stems-", tmp_path / "never-made", older_than_s=0) == 0
    with scratch_folder("stems-", tmp_path / "new") as scratch:  # made on first use, removed after
        (scratch / "drums.wav").write_bytes(b"y")
        assert scratch.parent == tmp_path / "new"
    assert not scratch.exists()


def test_the_original_upload_plays_for_its_producer_only(clients, users, audio_dir):
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    r = browser(users["producer"][0]).get(f"/studio/uploads/{up['id']}/listen/")
    body = b"".join(r.streaming_content)
    assert r.status_code == 200 and r["Content-Type"] == "audio/mpeg" and len(body) > 10_000
    assert body[:3] == b"ID3" or body[0] == 0xFF
    assert default_storage.exists(f"previews/upload-{up['id']}-v1.mp3")  # made once
    assert browser(users["producer_b"][0]).get(f"/studio/uploads/{up['id']}/listen/").status_code == 404
    assert browser(users["label"][0]).get(f"/studio/uploads/{up['id']}/listen/").status_code == 404


def test_progress_eta_from_the_rate_so_far():
    now = timezone.now()
    job = Job(state="separating", progress=0.5, started_at=now - timedelta(seconds=30))
    assert eta(job) == "about 30 s left"
    job.progress, job.started_at = 0.25, now - timedelta(minutes=4)
    assert eta(job) == "about 12 min left"
    assert eta(Job(state="separating", progress=0.01, started_at=now - timedelta(seconds=30))) == ""  # no rate yet
    assert eta(Job(state="queued", progress=0.0)) == ""


def test_check_previews_finds_previews_cut_short_or_unreadable_and_makes_them_again(clients, users, catalog,
                                                                                     audio_dir):
    """Previews written before writes were atomic may be the first part of the real one under its
    real name (or not MP3 at all); `check_previews` finds them by decoding, leaves them without
    `--repair`, makes them again with it, and keeps a damaged one whose source is gone (exit 1)."""
    import io

    import pytest
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    from clearstem.excerpts import excerpt_name
    from clearstem.preview_check import is_cut_short
    from licensing.models import Recording
    from sharedcore.media import decoded_seconds

    job = _done_job(clients, audio_dir)
    stem = job.stem_files.order_by("name").first()
    names = [listening.upload_preview(job.upload), listening.stem_preview(stem),
             excerpt_name(Recording.objects.get(pk=catalog["recordings"][11]["id"]))]

    def run(*args):
        out = io.StringIO()
        try:
            call_command("check_previews", *args, stdout=out)
            return 0, out.getvalue()
        except SystemExit as exc:
            return exc.code, out.getvalue()

    code, out = run()
    assert code == 0 and "3 previews checked, 0 damaged" in out
    whole = {}
    for name in names:
        with default_storage.open(name, "rb") as fh:
            whole[name] = fh.read()

    def damage(name, data):
        default_storage.delete(name)
        default_storage.save(name, ContentFile(data))

    damage(names[0], whole[names[0]][: len(whole[names[0]]) // 2])  # cut short mid-write
    damage(names[1], b"\x00" * 4096)  # never became an MP3
    damage(names[2], whole[names[2]][: len(whole[names[2]]) // 3])
    code, out = run()
    assert code == 1 and "3 previews checked, 3 damaged, 0 made again" in out
    assert f"upload {names[0]}: plays" in out and f"stem {names[1]}: does not decode" in out
    with default_storage.open(names[0], "rb") as fh:
        assert len(fh.read()) == len(whole[names[0]]) // 2  # a check changes nothing

    code, out = run("--repair")
    assert code == 0 and "3 damaged, 3 made again" in out
    for name, expected in zip(names, (job.upload.duration_s, stem.duration_s, None)):
        with default_storage.open(name, "rb") as fh:
            again = fh.read()
        assert abs(len(again) - len(whole[name])) < 2048  # whole again: the same length of MP3
        if expected:
            with listening.local_path(name) as path:
                assert not is_cut_short(decoded_seconds(path), expected)
    assert run()[0] == 0

    # a source that is gone: the damaged preview stays as it was, reported, exit 1
    damage(names[1], whole[names[1]][:1000])
    src = stem.file.name
    default_storage.delete(src)
    code, out = run("--repair")
    assert code == 1 and "1 damaged, 0 made again" in out and f"stem {names[1]}" in out and "not made again" in out
    with default_storage.open(names[1], "rb") as fh:
        assert fh.read() == whole[names[1]][:1000]
    with pytest.raises(FileNotFoundError):
        default_storage.open(src, "rb")
