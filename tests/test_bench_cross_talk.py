"""bench.cross_talk's measure: which true stems an estimate is made of (stop 83)."""
import numpy as np
import pytest

cross_talk = pytest.importorskip("bench.cross_talk")


def _stems(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s: rng.standard_normal((2, 4000)) for s in ("vocals", "drums", "bass", "other")}


def test_an_estimate_made_of_two_stems_is_shared_between_them_by_energy():
    truth = _stems()
    est = truth["bass"] + 0.5 * truth["drums"]  # a bass estimate that took half the kit's amplitude
    got = cross_talk.cross_talk(truth, est)
    energy = float((est ** 2).sum())
    assert got["bass"] == pytest.approx(float((truth["bass"] ** 2).sum()) / energy, rel=1e-6)
    assert got["drums"] == pytest.approx(float((0.25 * truth["drums"] ** 2).sum()) / energy, rel=1e-6)
    assert got["vocals"] < 1e-20 and got["other"] < 1e-20 and got["unexplained"] < 1e-20
    assert got["amplitude"]["bass"] == pytest.approx(1.0) and got["amplitude"]["drums"] == pytest.approx(0.5)
    noise = np.random.default_rng(9).standard_normal((2, 4000))  # what no true stem explains
    assert cross_talk.cross_talk(truth, truth["drums"] + noise)["unexplained"] == pytest.approx(0.5, abs=0.03)


def test_a_silent_estimate_is_made_of_nothing_and_bad_arguments_are_refused(capsys):
    truth = _stems(1)
    got = cross_talk.cross_talk(truth, np.zeros((2, 4000)))
    assert all(got[s] == 0.0 for s in truth) and got["unexplained"] == 0.0
    for bad in (["--songs", "0"], ["--seconds", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as exc:
            cross_talk.main(bad)
        assert exc.value.code == 2
    assert "--songs and --threads must be at least 1" in capsys.readouterr().err


def test_an_added_kick_needs_a_training_set(capsys):
    with pytest.raises(SystemExit) as exc:
        cross_talk.main(["--added-kick"])
    assert exc.value.code == 2 and "--added-kick needs --training-set" in capsys.readouterr().err


def test_an_added_kick_sounds_on_a_training_songs_kick_notes_at_its_drums_level(tmp_path):
    from bench.separate import training_split
    from separation.training import data
    from tests.conftest import need_fluidsynth

    need_fluidsynth("csound-gm", "timgm6mb")
    data.build(tmp_path, songs=6, seed=5, seconds=1.5, log=lambda *_: None)
    songs = training_split(tmp_path, "train", 6, 1.5)
    by_id = cross_talk.song_sources(tmp_path)
    added = [cross_talk.with_added_kick(tmp_path, by_id, song, k) for k, song in enumerate(songs)]
    kicked = [(song, a) for song, a in zip(songs, added) if a is not None]
    assert kicked
    for song, truth in kicked:
        assert set(truth) == {"vocals", "drums", "bass", "other", "kick"}
        assert all(np.array_equal(truth[s], song["stems"][s]) for s in ("vocals", "drums", "bass", "other"))
        level = np.sqrt(np.mean(song["stems"]["drums"].astype(np.float64) ** 2))
        assert np.sqrt(np.mean(truth["kick"].astype(np.float64) ** 2)) == pytest.approx(level, rel=1e-3)
    again = cross_talk.with_added_kick(tmp_path, by_id, kicked[0][0], added.index(kicked[0][1]))
    assert np.array_equal(again["kick"], kicked[0][1]["kick"])  # seeded by the song's place
