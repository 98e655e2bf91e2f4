"""Errors and facts in words people use: codecs by their common name, no exception class names
or errno numbers, and command-line batches that report each bad file and go on."""
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from sharedcore.media import codec_label
from tests.conftest import upload_file
from tests.test_web import browser

LEAKS = re.compile(r"Errno|Error\b|Exception|Traceback|\(\w+Error\)")


def test_codecs_by_their_common_names():
    assert codec_label("mp3float") == "MP3" and codec_label("flac") == "FLAC" and codec_label("aac") == "AAC"
    assert codec_label("pcm_s16le") == "PCM 16-bit" and codec_label("pcm_s24be") == "PCM 24-bit"
    assert codec_label("pcm_f32le") == "PCM 32-bit float" and codec_label("") == "unknown"


def test_the_upload_names_its_codec_for_people(clients, users, audio_dir):
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    assert up["codec"] == "flac" and up["codec_name"] == "FLAC"
    page = browser(users["producer"][0]).get(f"/studio/uploads/{up['id']}/").content.decode()
    assert "FLAC 44100 Hz" in page


def test_identify_reports_a_missing_file_in_words_and_goes_on(orgs, audio_dir, tmp_path):
    call_command("catalog_ingest", str(audio_dir / "song11.wav"), "--label", "label-a", stdout=StringIO())
    missing = tmp_path / "missing.mp3"
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("identify", str(missing), str(audio_dir / "excerpt11.flac"), stdout=out, stderr=err)
    assert exc.value.code == 1
    assert f"file not found: {missing}" in err.getvalue() and "1 of 2 files" in err.getvalue()
    assert "excerpt11.flac: song11" in out.getvalue()  # the next file was identified
    assert not LEAKS.search(err.getvalue() + out.getvalue())
    # the same in JSON lines: one row per file, the bad one with a code and a sentence
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("identify", str(missing), str(audio_dir / "excerpt11.flac"), "--json", stdout=out,
                     stderr=StringIO())
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first["error"] == "not_found" and first["detail"] == f"file not found: {missing}"
    assert second["matches"][0]["title"] == "song11"


def test_identify_names_no_exception_class_for_a_file_that_is_not_audio(orgs, tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_bytes(b"this is not audio at all" * 100)
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("identify", str(bad), stdout=StringIO(), stderr=err)
    assert "not a recognised audio file" in err.getvalue() and not LEAKS.search(err.getvalue())


def test_catalog_ingest_reports_a_missing_file_in_words_and_goes_on(orgs, audio_dir, tmp_path):
    out = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("catalog_ingest", str(tmp_path / "gone.wav"), str(audio_dir / "song11.wav"), "--label", "label-a",
                     stdout=out)
    assert exc.value.code == 1
    text = out.getvalue()
    assert "gone.wav: ERROR" in text and "file not found" in text and "1 registered" in text
    assert not LEAKS.search(text)


def test_a_separation_failure_reads_without_errno_or_class_names():
    from clearstem.jobs.separation import failure_in_words

    disk = failure_in_words(OSError(28, "No space left on device"))
    assert disk == "the worker could not read or write a file (no space left on device)"
    assert failure_in_words(KeyError("vocals")) == "an unexpected error on the worker (its log has the details)"
    assert failure_in_words(RuntimeError("the chunk could not be decoded")) == "the chunk could not be decoded"
    for exc in (FileNotFoundError(2, "No such file or directory"), RuntimeError("ValueError: bad"), ValueError("")):
        assert not LEAKS.search(failure_in_words(exc))
