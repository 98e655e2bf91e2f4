"""bench.stem_find's splits: which of bench.mixtures' tracks each indexes and plays over them, and
that every split then draws its excerpts (the holdout split once crashed there, having no generator)."""
import pytest

stem_find = pytest.importorskip("bench.stem_find")  # import errors proper: tests/test_bench_imports.py


def _plan(n, seed, min_s, max_s, first=0, usable=None):
    """bench.mixtures.build_tracks' shape without rendering: track i of the plan is {"id": i}, and
    every track has pieces (bench.mixtures.take_usable is tested on its own below)."""
    assert (seed, min_s, max_s) == (17, 60, 120)
    tracks = [{"id": i} for i in range(first, n)]
    return tracks if usable is None else tracks[:usable]


def test_splits_use_disjoint_tracks_and_holdouts_the_ones_after_the_plans_first_160():
    splits = ("test", "calibration", "holdout", "holdout2", "holdout3", "holdout4", "holdout5")
    picked = {split: stem_find.pick_tracks(split, 40, 16, 29, build=_plan) for split in splits}
    ids = {split: [t["id"] for t in songs + others] for split, (songs, others, _) in picked.items()}
    assert all(len(v) == len(set(v)) == 56 for v in ids.values())
    assert not set(ids["test"]) & set(ids["calibration"])
    assert max(ids["test"] + ids["calibration"]) < stem_find.MIXTURE_TRACKS
    assert ids["holdout"] == list(range(stem_find.MIXTURE_TRACKS, stem_find.MIXTURE_TRACKS + 56))
    assert ids["holdout2"] == list(range(stem_find.MIXTURE_TRACKS + 56, stem_find.MIXTURE_TRACKS + 112))
    assert ids["holdout3"] == list(range(stem_find.MIXTURE_TRACKS + 112, stem_find.MIXTURE_TRACKS + 168))
    assert ids["holdout4"] == list(range(stem_find.MIXTURE_TRACKS + 168, stem_find.MIXTURE_TRACKS + 224))
    assert ids["holdout5"] == list(range(stem_find.MIXTURE_TRACKS + 224, stem_find.MIXTURE_TRACKS + 280))
    assert [len(s) for s, _, _ in picked.values()] == [40] * 7
    for _, _, rng in picked.values():  # the excerpts' offsets are drawn with it
        assert 0 <= int(rng.integers(0, 100)) < 100
    again = stem_find.pick_tracks("test", 40, 16, 29, build=_plan)  # seeded: the same tracks and offsets
    assert [t["id"] for t in again[0]] == [t["id"] for t in picked["test"][0]]
    assert int(again[2].integers(1 << 30)) == int(stem_find.pick_tracks("test", 40, 16, 29, build=_plan)[2].integers(1 << 30))


def test_a_holdout_owns_a_fixed_block_of_tracks_whatever_a_run_asks_for(capsys):
    """A smaller run on holdout3 (its last track has no pieces left: stop 80) starts where the
    full one does and never reaches into holdout2's tracks; more tracks than the block is refused."""
    songs, others, _ = stem_find.pick_tracks("holdout3", 40, 15, 29, build=_plan)
    assert [t["id"] for t in songs + others] == list(range(stem_find.MIXTURE_TRACKS + 112, stem_find.MIXTURE_TRACKS + 167))
    quick, _, _ = stem_find.pick_tracks("holdout2", 10, 6, 29, build=_plan)
    assert quick[0]["id"] == stem_find.MIXTURE_TRACKS + stem_find.HOLDOUT_BLOCK
    with pytest.raises(ValueError, match="a holdout split has 56 tracks"):
        stem_find.pick_tracks("holdout", 40, 17, 29, build=_plan)
    with pytest.raises(SystemExit) as exc:
        stem_find.main(["--split", "holdout3", "--songs", "50", "--others", "16"])
    assert exc.value.code == 2 and "must not exceed it, got 50 + 16" in capsys.readouterr().err


def test_a_holdout_takes_the_first_tracks_of_its_block_the_corpus_had_pieces_for():
    """stop 81: holdout4's block has seven quartet tracks with no pieces left; a run skips them,
    keeps the block's order, and is refused when it asks for more than the block has."""
    from bench import mixtures
    block = [{"id": 328 + i, "style": "quartet" if i % 8 == 7 else "folk", "pieces": [] if i % 8 == 7 else ["a"]}
             for i in range(56)]
    kept = mixtures.take_usable(block, 49)
    assert [t["id"] for t in kept] == [328 + i for i in range(56) if i % 8 != 7]
    assert [t["id"] for t in mixtures.take_usable(block, 10)] == [328 + i for i in range(11) if i != 7]
    with pytest.raises(mixtures.CorpusExhausted, match=r"tracks 328–383 have 49 the corpus has pieces for, 50 asked"):
        mixtures.take_usable(block, 50)


def test_tracks_the_corpus_has_no_pieces_for_are_refused_before_any_render():
    from bench import mixtures
    mixtures.require_pieces([{"id": 3, "style": "folk", "pieces": ["a"]}])  # a track with pieces passes
    with pytest.raises(mixtures.CorpusExhausted, match=r"no pieces left for track 327 \(quartet\): ask for fewer"):
        mixtures.require_pieces([{"id": 326, "style": "folk", "pieces": ["a"]}, {"id": 327, "style": "quartet", "pieces": []}])


def test_threads_below_one_is_refused_before_any_work(capsys):
    with pytest.raises(SystemExit) as exc:
        stem_find.main(["--threads", "0", "--quick"])
    assert exc.value.code == 2
    assert "--threads must be at least 1, not 0" in capsys.readouterr().err
