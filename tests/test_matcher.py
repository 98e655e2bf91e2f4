"""The matcher core on real Chromaprint fingerprints of generated audio."""
import numpy as np
import pytest
import soundfile as sf

from fingerprint.matcher import ReferenceIndex
from fingerprint.scan import AudioError, scan_audio


@pytest.fixture(scope="module")
def index(audio_dir):
    refs = [(f"song{s}", scan_audio(audio_dir / f"song{s}.wav").fingerprint) for s in (11, 12, 13)]
    return ReferenceIndex.build(refs)


def test_excerpt_found_with_offsets(index, audio_dir):
    (m,) = index.query(scan_audio(audio_dir / "excerpt11.flac").fingerprint)
    assert m.key == "song11"
    assert abs(m.ref_start_s - 4.0) < 0.5  # the excerpt starts 4 s into the song
    assert m.query_start_s < 0.5 and m.duration_s > 10 and m.score > 0.7


def test_mashup_finds_both(index, audio_dir, tmp_path):
    a = sf.read(audio_dir / "song11.wav", always_2d=True)[0]
    b = sf.read(audio_dir / "song13.wav", always_2d=True)[0]
    sr = 44100
    sf.write(tmp_path / "mash.wav", np.concatenate([a[: 11 * sr], b[6 * sr: 18 * sr]]), sr)
    found = {m.key: m for m in index.query(scan_audio(tmp_path / "mash.wav").fingerprint)}
    assert set(found) == {"song11", "song13"}
    assert found["song13"].query_start_s > 9 and abs(found["song13"].ref_start_s - 6) < 1


def test_unrelated_audio_matches_nothing(index, audio_dir):
    assert index.query(scan_audio(audio_dir / "original.wav").fingerprint) == []


def test_silence_and_short_audio(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros((44100 * 8, 2)), 44100)
    scan = scan_audio(tmp_path / "silence.wav")
    assert scan.peak_dbfs == float("-inf")
    sf.write(tmp_path / "short.wav", np.random.default_rng(1).standard_normal((4410, 2)) * 0.1, 44100)
    assert scan_audio(tmp_path / "short.wav").fingerprint.size == 0
    with pytest.raises(AudioError) as err:
        scan_audio(tmp_path / "silence.wav", max_seconds=2)
    assert err.value.code == "too_long"
