"""Kicks synthesised for training examples (`separation.training.kicks`, stop 83): on the kick
notes only, low, short, of both families, a function of the rng."""
from __future__ import annotations

import numpy as np

from separation.training import kicks

RATE = 44100


def _note(t: float, key: int, vel: int = 127, ch: int = 9) -> tuple:
    return (t, t + 0.1, key, vel, 0, ch)


def _energy(x: np.ndarray, a: float, b: float) -> float:
    return float((x[:, int(a * RATE):int(b * RATE)].astype(np.float64) ** 2).sum())


def test_a_kick_sounds_on_the_kick_notes_only_low_and_dies_well_before_the_next_bar():
    notes = [_note(0.5, 36), _note(2.0, 35, vel=64), _note(1.0, 42), _note(1.2, 38), _note(1.4, 36, ch=0)]
    families, low = set(), []
    for seed in range(24):
        x, design = kicks.render(notes, 0.0, 3 * RATE, np.random.default_rng(seed))
        families.add(design["family"])
        assert x.shape == (2, 3 * RATE) and x.dtype == np.float32
        assert _energy(x, 0, 0.5) == 0.0  # nothing before the first kick: the hat, the snare, a
        # channel-1 note on key 36 play nothing
        first = _energy(x, 0.5, 0.8)
        assert first > 0 and _energy(x, 1.5, 2.0) < first / 5  # 1 s after the hit it has died away
        assert _energy(x, 2.0, 2.3) < first  # velocity 64 against 127
        spectrum = np.abs(np.fft.rfft(x[0].astype(np.float64))) ** 2
        low.append(spectrum[np.fft.rfftfreq(x.shape[1], 1 / RATE) < 250].sum() / spectrum.sum())
    assert families == {"swept", "membrane"}
    assert np.median(low) > 0.9 and min(low) > 0.6  # a kick's energy is its low body, not its click


def test_a_kick_is_a_function_of_its_rng_and_a_hit_before_the_example_still_rings_into_it():
    notes = [_note(0.9, 36)]
    a, da = kicks.render(notes, 1.0, RATE, np.random.default_rng(7))
    b, db = kicks.render(notes, 1.0, RATE, np.random.default_rng(7))
    c, _ = kicks.render(notes, 1.0, RATE, np.random.default_rng(8))
    assert da == db and np.array_equal(a, b) and not np.array_equal(a, c)
    assert _energy(a, 0, 0.05) > 0  # the hit 0.1 s before the start sounds at the start
    silent, _ = kicks.render([_note(0.2, 42)], 0.0, RATE, np.random.default_rng(7))
    assert not silent.any()
    inside = [_note(1.1, 36)]
    one, design = kicks.render(inside, 1.0, RATE, np.random.default_rng(7))
    again, _ = kicks.render(inside, 1.0, RATE, np.random.default_rng(9), design=design)
    assert not np.array_equal(one, again)  # the same kick, its hit varied a little (pitch, decay)
    assert abs(_energy(again, 0, 1) / _energy(one, 0, 1) - 1) < 0.3
