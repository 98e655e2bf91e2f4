"""A candidate separator against the shipped one, by the standing rule's score clauses.

    .venv/bin/python -m bench.judge --pair orchestras BASE.json CAND.json [--pair NAME BASE.json CAND.json ...]
                                    [--must-gain orchestras ...] [--margin 0.05 [--song-margin 0.0125]]
                                    [--out judge.json]

Each BASE/CAND is a `bench.separate` result on the same songs (checked: the same set, and the
mixture/4 baseline's per-song scores equal to the last digit, which no two song lists share by
chance); the engine judged in each file is its one neural model (`--base-engine` /
`--candidate-engine` name it where there are several). Why a module: every candidate since stop 64
was judged by a development script written for its stop (`var/v31-table.py`, `var/v35-table.py`),
lost with its machine; the rule a candidate ships by belongs in the repository. Clauses:

1. the candidate's mean (over the stems that sound, of each stem's median over songs) is at least
   the base's on every set, and above it on each set named by `--must-gain`;
2. no stem is at or below mixture/4 where the base's is above it ("newly under mixture/4").

`--margin D` (dB) makes clause 1 paired, with a non-inferiority margin: on every set the median
over songs of each song's candidate − base difference is at least 0 (above 0 on a `--must-gain`
set), the mean of medians is at least the base's less D (above the base's on a `--must-gain` set),
and no stem's per-song median difference is below −D. Why: a difference of medians is not the
median of the differences, either way: v44 (stop 79) was better on 13 of 16 TimGM6mb `compose`
songs yet its mean of medians fell 0.01 dB, and on the default generator's songs its bass was worse
on 14 of 16 (−0.07 a song) yet the mean of medians rose. The paired median and the per-stem floor
judge what happened to the songs; the margin lets a median move by chance. `--song-margin S`
(with `--margin`, 0 ≤ S ≤ D) lets the paired median of a set that need not gain fall to −S: a
candidate that changes one stem of four and is even with the base on a set has a per-song median
on either side of 0 by chance (v46, stop 80: −0.00 on one draw of the default generator's songs,
+0.01 on two), and D / 4 is a loss of the margin on that one stem, the most the per-stem floor
allows it.

Clauses 3 (stems found again, `bench.stem_find --split holdout2`) and 4 (speed alone on two
threads, `bench.separate --threads 2`) are measured by their own benches. Printed per set: the
means, the median over songs of each song's candidate − base difference and on how many songs the
candidate is better, the same per stem, and the stems newly under mixture/4. Exit status 0 when
clauses 1 and 2 hold on every set, 1 when one fails, 2 on unusable input.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

BASELINE = "mixture/4"
NOT_JUDGED = {BASELINE, "dsp"}


class JudgeInputError(ValueError):
    """Results that cannot be compared: unreadable, not the same songs, or no engine to judge."""


def engine_of(result: dict, name: str | None, path: Path) -> str:
    engines = [e for e in result.get("engines", {}) if e not in NOT_JUDGED]
    if name is not None:
        if name not in result.get("engines", {}):
            raise JudgeInputError(f"{path} has no engine {name!r} (it has {', '.join(engines) or 'none'})")
        return name
    if len(engines) != 1:
        raise JudgeInputError(f"{path} has {len(engines)} neural engines ({', '.join(engines) or 'none'}): "
                              "name the one to judge with --base-engine / --candidate-engine")
    return engines[0]


def load(path: Path) -> dict:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise JudgeInputError(f"{path}: not a bench.separate result ({exc})") from exc
    if BASELINE not in result.get("engines", {}):
        raise JudgeInputError(f"{path}: no {BASELINE} baseline (write it with python -m bench.separate)")
    return result


def same_songs(a: dict, b: dict, pa: Path, pb: Path) -> None:
    sa, sb = a.get("set", {}), b.get("set", {})
    if (sa.get("source"), sa.get("songs"), sa.get("seconds")) != (sb.get("source"), sb.get("songs"), sb.get("seconds")):
        raise JudgeInputError(f"{pa} and {pb} score different sets: {sa} / {sb}")
    ma, mb = a["engines"][BASELINE]["per_song_sdr"], b["engines"][BASELINE]["per_song_sdr"]
    for stem in ma.keys() | mb.keys():
        x, y = ma.get(stem, []), mb.get(stem, [])
        if len(x) != len(y) or any((u is None) != (v is None) or (u is not None and abs(u - v) > 1e-9)
                                   for u, v in zip(x, y)):
            raise JudgeInputError(f"{pa} and {pb}: mixture/4 scores differ on {stem}: not the same songs")


def paired(base: list, cand: list) -> dict:
    """Median over songs of cand − base (songs where the stem sounds), and on how many it is better."""
    d = [c - b for b, c in zip(base, cand) if b is not None and c is not None]
    if not d:
        return {"median": None, "better": 0, "songs": 0}
    return {"median": statistics.median(d), "better": sum(x > 0 for x in d), "songs": len(d)}


def judge_set(name: str, base: dict, cand: dict, base_engine: str, cand_engine: str, must_gain: bool,
              margin: float | None = None, song_margin: float = 0.0) -> dict:
    m4, b, c = base["engines"][BASELINE], base["engines"][base_engine], cand["engines"][cand_engine]
    stems = {}
    for stem, med in b["sdr"].items():
        if med is None or math.isnan(med):
            continue  # never sounds in this set (the Lieder have no drums)
        newly = c["sdr"][stem] <= m4["sdr"][stem] < med
        stems[stem] = {"mixture/4": m4["sdr"][stem], "base": med, "candidate": c["sdr"][stem],
                       "per_song": paired(b["per_song_sdr"][stem], c["per_song_sdr"][stem]),
                       "newly_under_mixture4": newly}
    gain = c["sdr_mean"] - b["sdr_mean"]
    per_song = paired(b["per_song_mean"], c["per_song_mean"])
    if margin is None:
        clause1 = gain > 0 if must_gain else gain >= 0
    else:
        song_gain = per_song["median"] or 0.0
        clause1 = ((song_gain > 0 and gain > 0) if must_gain else (song_gain >= -song_margin and gain >= -margin)) and all(
            r["per_song"]["median"] is None or r["per_song"]["median"] >= -margin for r in stems.values())
    clause2 = not any(s["newly_under_mixture4"] for s in stems.values())
    return {"set": name, "source": base["set"].get("source"), "songs": base["set"].get("songs"),
            "mixture/4": m4["sdr_mean"], "base": b["sdr_mean"], "candidate": c["sdr_mean"], "must_gain": must_gain,
            "per_song": per_song, "stems": stems, "clause1": clause1, "clause2": clause2}


def judge(pairs: list[tuple[str, Path, Path]], must_gain: set[str], base_engine: str | None = None,
          candidate_engine: str | None = None, margin: float | None = None, song_margin: float = 0.0) -> dict:
    if margin is not None and not 0 <= margin < 1:  # `not <=` also refuses NaN
        raise JudgeInputError(f"--margin is a non-inferiority margin in dB, at least 0 and under 1, got {margin}")
    if song_margin != 0.0 and margin is None:
        raise JudgeInputError("--song-margin loosens the paired clause 1: give --margin too")
    if not 0 <= song_margin <= (margin or 0.0):  # also refuses NaN
        raise JudgeInputError(f"--song-margin is at least 0 and at most --margin ({margin}), got {song_margin}")
    if not pairs:
        raise JudgeInputError("give at least one --pair NAME BASE.json CAND.json")
    if unknown := must_gain - {n for n, _, _ in pairs}:
        raise JudgeInputError(f"--must-gain names sets that no --pair gives: {', '.join(sorted(unknown))}")
    if len({n for n, _, _ in pairs}) != len(pairs):
        raise JudgeInputError("two --pair arguments share a name")
    sets, engines = [], set()
    for name, pb, pc in pairs:
        base, cand = load(pb), load(pc)
        same_songs(base, cand, pb, pc)
        be, ce = engine_of(base, base_engine, pb), engine_of(cand, candidate_engine, pc)
        engines.add((be, ce))
        sets.append(judge_set(name, base, cand, be, ce, name in must_gain, margin, song_margin))
    if len(engines) != 1:
        raise JudgeInputError(f"the pairs judge different engines: {sorted(engines)}")
    (be, ce), = engines
    return {"base": be, "candidate": ce, "sets": sets, "margin": margin, "song_margin": song_margin,
            "passes": all(s["clause1"] and s["clause2"] for s in sets)}


def report(verdict: dict) -> str:
    def fmt(p):
        return "—" if p["median"] is None else f"{p['median']:+.2f} ({p['better']}/{p['songs']})"

    lines = [f"{verdict['candidate']} against {verdict['base']} (means of per-stem medians, dB; per song: "
             "median of candidate − base, better on)"]
    if verdict.get("margin") is not None:
        lines.append(f"clause 1 paired, non-inferiority margin {verdict['margin']:g} dB"
                     + (f", per song {verdict['song_margin']:g} dB" if verdict.get("song_margin") else ""))
    for s in verdict["sets"]:
        flags = ("" if s["clause1"] else " FAILS (1)") + ("" if s["clause2"] else " FAILS (2)")
        lines.append(f"{s['set']} ({s['songs']} songs): mixture/4 {s['mixture/4']:.3f}, base {s['base']:.3f}, "
                     f"candidate {s['candidate']:.3f}{' (must gain)' if s['must_gain'] else ''}; per song "
                     f"{fmt(s['per_song'])}{flags}")
        for stem, r in s["stems"].items():
            lines.append(f"    {stem:<7} mixture/4 {r['mixture/4']:6.2f}  base {r['base']:6.2f}  candidate "
                         f"{r['candidate']:6.2f}  per song {fmt(r['per_song'])}"
                         + ("  newly under mixture/4" if r["newly_under_mixture4"] else ""))
    lines.append("clauses 1 and 2: " + ("pass" if verdict["passes"] else "FAIL"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", nargs=3, action="append", default=[], metavar=("NAME", "BASE_JSON", "CANDIDATE_JSON"))
    p.add_argument("--must-gain", nargs="+", default=[], metavar="NAME", help="sets where the candidate must beat the base")
    p.add_argument("--base-engine")
    p.add_argument("--candidate-engine")
    p.add_argument("--margin", type=float, help="clause 1 paired, with this non-inferiority margin (dB)")
    p.add_argument("--song-margin", type=float, default=0.0,
                   help="with --margin: a set that need not gain passes with a per-song median down to minus this")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    try:
        verdict = judge([(n, Path(b), Path(c)) for n, b, c in args.pair], set(args.must_gain),
                        args.base_engine, args.candidate_engine, args.margin, args.song_margin)
    except JudgeInputError as exc:
        print(f"bench.judge: {exc}", file=sys.stderr)
        return 2
    print(report(verdict))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(verdict, indent=2))
    return 0 if verdict["passes"] else 1


if __name__ == "__main__":
    sys.exit(main())
