"""bench.stem_leakage's recordings list: the same files every time (hash-checked before any
separation), and a real run of the weights-free separator on a short generated recording."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "bench.stem_leakage", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def write_recording(folder: Path) -> Path:
    """3 s of a bass-register tone: a recording with no drums and no vocals."""
    t = np.arange(3 * 44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 82.4 * t) + 0.1 * np.sin(2 * np.pi * 164.8 * t)
    path = folder / "tone.wav"
    sf.write(path, np.stack([tone, tone], axis=1), 44100, subtype="PCM_16")
    return path


def write_list(folder: Path, path: Path, digest: str | None = None, absent=("drums", "vocals")) -> Path:
    entry = {"file": path.name, "sha256": digest or hashlib.sha256(path.read_bytes()).hexdigest(),
             "absent": list(absent), "licence": "own work"}
    listed = folder / "list.json"
    listed.write_text(json.dumps({"recordings": [entry]}))
    return listed


def test_a_listed_file_whose_hash_differs_stops_the_run_before_anything_is_written(tmp_path):
    recording = write_recording(tmp_path)
    listed = write_list(tmp_path, recording, digest="0" * 64)
    out = tmp_path / "out.json"
    result = run("--list", listed, "--dir", tmp_path, "--models", "dsp", "--out", out)
    assert result.returncode == 2
    assert "is not the listed 000000000000" in result.stderr
    assert not out.exists()


def test_bad_lists_and_missing_files_get_a_message(tmp_path):
    recording = write_recording(tmp_path)
    listed = write_list(tmp_path, recording, absent=("piano",))
    assert "absent stems must be among" in run("--list", listed, "--dir", tmp_path).stderr
    (tmp_path / "junk.json").write_text("[1, 2")
    assert "not a recordings list" in run("--list", tmp_path / "junk.json").stderr
    listed = write_list(tmp_path, recording)
    result = run("--list", listed, "--dir", tmp_path / "elsewhere")
    assert result.returncode == 2 and "missing" in result.stderr
    assert "give recordings" in run().stderr


def test_a_listed_recording_is_measured_and_summarised(tmp_path):
    recording = write_recording(tmp_path)
    listed = write_list(tmp_path, recording)
    out = tmp_path / "out.json"
    result = run("--list", listed, "--dir", tmp_path, "--models", "dsp", "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    row = report["files"]["tone.wav"]["dsp"]
    assert row["absent"] == ["drums", "vocals"]
    assert set(row["stem_db_vs_mixture"]) == {"drums", "bass", "vocals", "other"}
    assert 0.0 <= row["absent_share"] <= 1.0
    assert report["median_absent_share"]["dsp"] == row["absent_share"]  # one file: its own share
    assert "median absent share over 1 files" in result.stdout
