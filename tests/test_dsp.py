"""The weights-free `dsp` engine: real stems that sum back to the mixture."""
import numpy as np

from clearstem.synth import render_song
from separation.registry import ModelUnavailable, get_engine


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-30))


def test_stems_sum_to_mixture_and_keep_shape():
    song = render_song(21, seconds=12)
    mix = song.mixture
    engine = get_engine("dsp")
    progress = []
    stems = engine.separate(mix, 44100, progress=progress.append)
    assert set(stems) == {"vocals", "drums", "bass", "other"}
    assert all(s.shape == mix.shape and s.dtype == np.float32 for s in stems.values())
    assert snr_db(mix, sum(stems.values())) >= 60
    assert progress[-1] == 1.0
    # better than the trivial mixture/4 estimate on the drums and vocals of a generated song
    for name in ("drums", "vocals"):
        assert snr_db(song.stems[name], stems[name]) > snr_db(song.stems[name], mix / 4)


def test_mono_input():
    mono = render_song(22, seconds=6).mixture.mean(0, keepdims=True)
    stems = get_engine("dsp").separate(mono, 22050)
    assert all(s.shape == mono.shape for s in stems.values())
    assert snr_db(mono, sum(stems.values())) >= 60


def test_unknown_model_is_unavailable_with_reason():
    try:
        get_engine("htdemucs")
    except ModelUnavailable as exc:
        assert "unknown model" in exc.reason
    else:
        raise AssertionError("expected ModelUnavailable")
