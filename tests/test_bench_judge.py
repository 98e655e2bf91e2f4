"""bench.judge applies the standing rule's score clauses to two bench.separate results."""
import json
from pathlib import Path

import pytest

from bench import judge
from bench.separate import summary

STEMS = ("vocals", "drums", "bass", "other")


def engine(per_stem: dict) -> dict:
    """A bench.separate engine entry from per-song scores per stem (None: the stem is silent)."""
    scores = {s: list(per_stem.get(s, [None] * len(next(iter(per_stem.values()))))) for s in STEMS}
    return summary(scores, {s: list(v) for s, v in scores.items()})


def result(tmp_path, name: str, model: str, per_stem: dict, m4: dict, source: str = "var/set split val") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"set": {"songs": len(m4["vocals"]), "seconds": 30.0, "source": source},
                                "engines": {"mixture/4": engine(m4), model: engine(per_stem)}}))
    return str(path)


M4 = {"vocals": [1.0, 1.2, 0.8], "bass": [0.5, 0.4, 0.6], "other": [2.0, 2.1, 1.9]}  # no drums: a Lieder-like set
BASE = {"vocals": [1.5, 1.6, 1.4], "bass": [2.0, 2.2, 1.8], "other": [3.0, 3.1, 2.9]}


def test_a_candidate_that_gains_everywhere_passes_and_one_that_drops_a_stem_under_mixture4_fails(tmp_path, capsys):
    base = result(tmp_path, "base", "v19", BASE, M4)
    better = result(tmp_path, "better", "cand", {s: [x + 0.2 for x in v] for s, v in BASE.items()}, M4)
    assert judge.main(["--pair", "lieder", base, better, "--must-gain", "lieder",
                       "--out", str(tmp_path / "v.json")]) == 0
    verdict = json.loads((tmp_path / "v.json").read_text())
    (s,) = verdict["sets"]
    assert s["clause1"] and s["clause2"] and s["per_song"] == {"median": pytest.approx(0.2), "better": 3, "songs": 3}
    assert set(s["stems"]) == {"vocals", "bass", "other"}  # the silent drums are not judged

    # the mean gains (other +1.0) while the vocals fall under mixture/4 (1.0): clause 2 fails alone
    trade = dict(BASE, vocals=[0.9, 1.0, 0.7], other=[4.0, 4.1, 3.9])
    worse = result(tmp_path, "worse", "cand", trade, M4)
    assert judge.main(["--pair", "lieder", base, worse]) == 1
    out = capsys.readouterr().out
    assert "FAILS (2)" in out and "FAILS (1)" not in out and "newly under mixture/4" in out


def test_equal_is_enough_except_where_the_candidate_must_gain(tmp_path):
    base = result(tmp_path, "base", "v19", BASE, M4)
    same = result(tmp_path, "same", "cand", BASE, M4)
    v = judge.judge([("kind", tmp_path / "base.json", tmp_path / "same.json")], set())
    assert v["passes"] and v["sets"][0]["per_song"]["better"] == 0
    assert judge.main(["--pair", "orchestras", base, same, "--must-gain", "orchestras"]) == 1


def test_results_of_other_songs_or_unusable_arguments_are_refused_with_the_reason(tmp_path, capsys):
    base = result(tmp_path, "base", "v19", BASE, M4)
    other_songs = result(tmp_path, "other", "cand", BASE, dict(M4, vocals=[1.0, 1.2, 0.9]))
    assert judge.main(["--pair", "lieder", base, other_songs]) == 2
    assert "not the same songs" in capsys.readouterr().err
    other_set = result(tmp_path, "elsewhere", "cand", BASE, M4, source="var/another split val")
    assert judge.main(["--pair", "lieder", base, other_set]) == 2
    assert "score different sets" in capsys.readouterr().err
    assert judge.main(["--pair", "lieder", base, base, "--must-gain", "orchestras"]) == 2
    assert "--must-gain names sets that no --pair gives" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert judge.main(["--pair", "lieder", base, str(tmp_path / "broken.json")]) == 2
    assert "not a bench.separate result" in capsys.readouterr().err
    two = json.loads((tmp_path / "base.json").read_text())
    two["engines"]["v8"] = two["engines"]["v19"]
    (tmp_path / "two.json").write_text(json.dumps(two))
    assert judge.main(["--pair", "lieder", base, str(tmp_path / "two.json")]) == 2
    assert "name the one to judge" in capsys.readouterr().err
    v = judge.judge([("lieder", tmp_path / "base.json", tmp_path / "two.json")], set(), candidate_engine="v8")
    assert (v["base"], v["candidate"], v["passes"]) == ("v19", "v8", True)  # the same weights: equal passes


def test_a_margin_makes_clause_1_paired_so_a_gain_on_most_songs_is_not_lost_to_a_median(tmp_path, capsys):
    base = result(tmp_path, "base", "v19", BASE, M4)
    # bass +0.05 on two songs, −0.04 on the one that was its median: the median falls 0.04 (the mean
    # of medians 0.013) though the candidate is better on two songs of three
    mostly = result(tmp_path, "mostly", "cand", dict(BASE, bass=[1.96, 2.25, 1.85]), M4)
    assert judge.main(["--pair", "kind", base, mostly]) == 1  # the standing rule
    assert judge.main(["--pair", "kind", base, mostly, "--margin", "0.05", "--out", str(tmp_path / "v.json")]) == 0
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["margin"] == 0.05 and verdict["sets"][0]["clause1"]
    assert "non-inferiority margin 0.05 dB" in capsys.readouterr().out
    # worse on every song by a little, within the margin in the mean: the paired median refuses it
    worse = result(tmp_path, "worse", "cand", dict(BASE, bass=[x - 0.02 for x in BASE["bass"]]), M4)
    assert judge.main(["--pair", "kind", base, worse, "--margin", "0.05"]) == 1
    # one stem worse by more than the margin on every song, hidden by a gain elsewhere: refused
    trade = result(tmp_path, "trade", "cand", dict(BASE, bass=[x - 0.1 for x in BASE["bass"]],
                                                    other=[x + 0.3 for x in BASE["other"]]), M4)
    v = judge.judge([("kind", tmp_path / "base.json", Path(trade))], set(), margin=0.05)
    assert v["sets"][0]["per_song"]["median"] > 0 and v["sets"][0]["candidate"] > v["sets"][0]["base"]
    assert not v["passes"]
    # a set that must gain still needs both the paired median and the mean above the base's
    assert judge.main(["--pair", "fp", base, mostly, "--must-gain", "fp", "--margin", "0.05"]) == 1
    better = result(tmp_path, "better", "cand", dict(BASE, bass=[x + 0.1 for x in BASE["bass"]]), M4)
    assert judge.main(["--pair", "fp", base, better, "--must-gain", "fp", "--margin", "0.05"]) == 0


@pytest.mark.parametrize("margin", ["-0.1", "nan", "2"])
def test_a_margin_that_is_not_a_small_non_negative_number_is_refused(tmp_path, capsys, margin):
    base = result(tmp_path, "base", "v19", BASE, M4)
    assert judge.main(["--pair", "kind", base, base, "--margin", margin]) == 2
    assert "--margin is a non-inferiority margin" in capsys.readouterr().err


def test_a_song_margin_lets_a_set_that_need_not_gain_be_even_song_by_song(tmp_path, capsys):
    """`--song-margin S` (stop 80): the paired median of a set that need not gain may fall to −S,
    not below; a set that must gain still needs it above 0; S needs --margin and is at most it."""
    base = result(tmp_path, "base", "v19", BASE, M4)
    # the bass 0.03 worse on two songs of three, better on one: per-song median −0.01 (−0.03 / 3 stems)
    even = result(tmp_path, "even", "cand", dict(BASE, bass=[1.97, 2.23, 1.77]), M4)
    assert judge.main(["--pair", "kind", base, even, "--margin", "0.05"]) == 1
    assert judge.main(["--pair", "kind", base, even, "--margin", "0.05", "--song-margin", "0.0125",
                       "--out", str(tmp_path / "v.json")]) == 0
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["song_margin"] == 0.0125 and -0.0125 <= verdict["sets"][0]["per_song"]["median"] < 0
    assert "non-inferiority margin 0.05 dB, per song 0.0125 dB" in capsys.readouterr().out
    assert judge.main(["--pair", "kind", base, even, "--margin", "0.05", "--song-margin", "0.005"]) == 1
    assert judge.main(["--pair", "fp", base, even, "--must-gain", "fp", "--margin", "0.05",
                       "--song-margin", "0.0125"]) == 1
    for bad, why in ((["--song-margin", "0.01"], "give --margin too"),
                     (["--margin", "0.05", "--song-margin", "0.06"], "at most --margin"),
                     (["--margin", "0.05", "--song-margin", "-0.01"], "at least 0"),
                     (["--margin", "0.05", "--song-margin", "nan"], "at least 0")):
        assert judge.main(["--pair", "kind", base, even, *bad]) == 2
        assert why in capsys.readouterr().err
