"""bench.stem_find's splits: which of bench.mixtures' tracks each indexes and plays over them, and
that every split then draws its excerpts (the holdout split once crashed there, having no generator)."""
import pytest

stem_find = pytest.importorskip("bench.stem_find")  # import errors proper: tests/test_bench_imports.py


def _plan(n, seed, min_s, max_s, first=0):
    """bench.mixtures.build_tracks' shape without rendering: track i of the plan is {"id": i}."""
    assert (seed, min_s, max_s) == (17, 60, 120)
    return [{"id": i} for i in range(first, n)]


def test_splits_use_disjoint_tracks_and_holdouts_the_ones_after_the_plans_first_160():
    splits = ("test", "calibration", "holdout", "holdout2", "holdout3")
    picked = {split: stem_find.pick_tracks(split, 40, 16, 29, build=_plan) for split in splits}
    ids = {split: [t["id"] for t in songs + others] for split, (songs, others, _) in picked.items()}
    assert all(len(v) == len(set(v)) == 56 for v in ids.values())
    assert not set(ids["test"]) & set(ids["calibration"])
    assert max(ids["test"] + ids["calibration"]) < stem_find.MIXTURE_TRACKS
    assert ids["holdout"] == list(range(stem_find.MIXTURE_TRACKS, stem_find.MIXTURE_TRACKS + 56))
    assert ids["holdout2"] == list(range(stem_find.MIXTURE_TRACKS + 56, stem_find.MIXTURE_TRACKS + 112))
    assert ids["holdout3"] == list(range(stem_find.MIXTURE_TRACKS + 112, stem_find.MIXTURE_TRACKS + 168))
    assert [len(s) for s, _, _ in picked.values()] == [40, 40, 40, 40, 40]
    for _, _, rng in picked.values():  # the excerpts' offsets are drawn with it
        assert 0 <= int(rng.integers(0, 100)) < 100
    again = stem_find.pick_tracks("test", 40, 16, 29, build=_plan)  # seeded: the same tracks and offsets
    assert [t["id"] for t in again[0]] == [t["id"] for t in picked["test"][0]]
    assert int(again[2].integers(1 << 30)) == int(stem_find.pick_tracks("test", 40, 16, 29, build=_plan)[2].integers(1 << 30))


def test_threads_below_one_is_refused_before_any_work(capsys):
    with pytest.raises(SystemExit) as exc:
        stem_find.main(["--threads", "0", "--quick"])
    assert exc.value.code == 2
    assert "--threads must be at least 1, not 0" in capsys.readouterr().err
