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
    resting_throughout = {**song, "voice_rests": [(0, song["mixture"].shape[1])]}  # crashed the bench once
    assert separate.voiced_db(resting_throughout, song["mixture"]) is None


def per_stem_nsdr(refs, ests):
    """The second metric for these tests: CI runs without the bench extra's fast_bss_eval."""
    with np.errstate(divide="ignore"):  # a silent reference: -inf, which score_song leaves out
        return np.array([separate.nsdr(r, e) for r, e in zip(refs, ests)])


def test_a_silent_true_stem_has_no_sdr_and_what_lands_there_is_measured():
    """A piece with no voice (the third composer writes many): its vocals stem has no SDR — the
    ratio would be minus infinity and wreck the median — so it is left out of the SDR medians and
    each song's mean, and the level the engine puts there is reported instead (dB re the mixture)."""
    rng = np.random.default_rng(1)
    stems = {s: rng.standard_normal((2, RATE)) * 0.1 for s in separate.STEMS}
    quiet = {**stems, "vocals": np.zeros((2, RATE))}
    songs = [{"stems": stems, "mixture": sum(stems.values())}, {"stems": quiet, "mixture": sum(quiet.values())}]
    scores, bss, absent = ({s: [] for s in separate.STEMS} for _ in range(3))
    for song in songs:  # an engine that gets each stem exactly, plus 1/10 of the mixture in the vocals stem
        est = {**song["stems"], "vocals": song["stems"]["vocals"] + song["mixture"] / 10}
        separate.score_song(song, est, scores, bss, absent, per_stem_nsdr)
    out = separate.summary(scores, bss, absent)
    assert scores["vocals"][1] is None and bss["vocals"][1] is None
    assert out["sdr"]["vocals"] == pytest.approx(scores["vocals"][0]) and np.isfinite(out["sdr_mean"])
    assert out["sdr"]["drums"] > 100  # exact estimates: the bench's floor, not a skipped stem
    assert np.isfinite(out["per_song_mean"][1]) and len(out["per_song_mean"]) == 2
    assert out["per_song_sdr"]["vocals"] == [scores["vocals"][0], None] and out["per_song_sdr"]["drums"] == scores["drums"]
    assert out["absent_db"] == {"vocals": {"median": pytest.approx(-20.0, abs=0.01), "max": pytest.approx(-20.0, abs=0.01),
                                           "songs": 1}}
    # every stem sounding: no absent_db, and the SDRs as before the rule (mixture/4 baseline)
    base = separate.baseline(songs[:1], per_stem_nsdr)
    assert "absent_db" not in base and base["sdr"]["vocals"] == pytest.approx(
        separate.nsdr(stems["vocals"], songs[0]["mixture"] / 4))


def test_threads_below_one_is_refused_before_any_work(monkeypatch, capsys):
    """--threads lets a judging run share the machine with a render (OpenMP threads waiting on a
    busy core made a run 100x slower); zero threads is a usage error, not a hang or a default."""
    monkeypatch.setattr("sys.argv", ["bench.separate", "--threads", "0", "--songs", "1"])
    with pytest.raises(SystemExit) as exc:
        separate.main()
    assert exc.value.code == 2
    assert "--threads must be at least 1, not 0" in capsys.readouterr().err


def test_another_seed_is_new_songs_of_the_default_sets_kind():
    """--seed S: the bench composer's songs from seed S on — the same instruments and roles as
    the default set (seed 9000 on), other notes — a set of that kind no model was judged on."""
    from bench import multitrack

    def notes(seed):
        return {stem: [(m.type, m.note, m.time) for m in mid.tracks[0] if m.type == "note_on"]
                for stem, mid in multitrack.compose(seed, 8.0).items()}

    default = [notes(multitrack.DEFAULT_SEED + i) for i in range(8)]
    assert notes(multitrack.DEFAULT_SEED) == default[0]  # a seed is the same song every time
    fresh = [notes(14000 + i) for i in range(8)]
    assert all(f[stem] != d[stem] for f in fresh for d in default for stem in ("vocals", "bass"))
    assert all(set(f) == set(multitrack.STEMS) for f in fresh)
