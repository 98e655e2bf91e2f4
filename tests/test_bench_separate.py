"""bench.separate's vocals diagnostics on songs with a form: what the vocals stem carries where the
voice rests, and how much of the voice it holds where it sings (synthetic signals, known answers)."""
from __future__ import annotations

import numpy as np
import pytest

separate = pytest.importorskip("bench.separate")  # import errors proper: tests/test_bench_imports.py

RATE = 44100


def song_with_a_rest():
    """4 s of 'voice' (noise) with a 2 s rest in the middle, over an accompaniment."""
    rng = np.random.default_rng(0)
    voice = rng.standard_normal((2, 6 * RATE)) * 0.1
    voice[:, 2 * RATE:4 * RATE] = 0
    backing = rng.standard_normal((2, 6 * RATE)) * 0.1
    return {"stems": {"vocals": voice}, "mixture": voice + backing, "voice_rests": [(2 * RATE, 4 * RATE)]}, backing


def test_half_the_voice_is_six_db_down_in_level_and_in_projection():
    song, _ = song_with_a_rest()
    level, projection = separate.voiced_db(song, song["stems"]["vocals"] * 0.5)
    assert level == pytest.approx(-6.02, abs=0.01) and projection == pytest.approx(-6.02, abs=0.01)


def test_what_leaks_in_raises_the_level_but_not_the_projection():
    song, backing = song_with_a_rest()
    level, projection = separate.voiced_db(song, song["stems"]["vocals"] + backing)
    assert level == pytest.approx(3.0, abs=0.1)  # two uncorrelated signals of equal power
    assert projection == pytest.approx(0.0, abs=0.1)
    # where the form rests the voice, the leaked backing is the whole mixture there: 0 dB
    assert separate.rests_db(song, song["stems"]["vocals"] + backing) == pytest.approx(0.0, abs=0.01)
    assert separate.rests_db(song, song["stems"]["vocals"]) < -150  # the true stem is silent there (floored)


def test_no_score_without_a_voice_or_without_rests():
    song, _ = song_with_a_rest()
    silent = {**song, "stems": {"vocals": np.zeros_like(song["mixture"])}}
    assert separate.voiced_db(silent, song["mixture"]) is None
    assert separate.rests_db({**song, "voice_rests": []}, song["mixture"]) is None
