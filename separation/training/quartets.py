"""Pieces by other hands without a singer: the OpenScore String Quartets corpus (CC0 encodings of
public-domain quartets) arranged into our four stems. Pure: music21 and `compose`'s MIDI writer;
no Django.

Why: the Lieder songs (`lieder`) brought melody and harmony written by people, but one texture
— a voice over a piano. The quartets (github.com/OpenScore/StringQuartets: 122 MusicXML scores by
47 composers, Haydn to Bartók) are four independent lines, counterpoint, long phrases and tempo
changes between movements: music no composer of ours writes, for the held-out gap the Lieder set
showed (our models sit near mixture/4 on songs people wrote; README, *OpenScore Lieder*).

As with the Lieder, a score is used only if its composer's README gives a death year ≤
`scores.PUBLIC_DOMAIN_DIED_BY` (the composition public domain, its encoding CC0).

How a quartet becomes four stems (each choice drawn from the song's seed; the notes are the
score's):

* **vocals** — in `P_SUNG` of the excerpts, the top line (the part with the highest mean pitch,
  the first violin) sung on one GM voice program, as a singer would take the tune; the violin no
  longer plays it. Else silent;
* **bass** — in `P_BASS` of them, the bottom line (the cello) given to a GM bass program: its
  lowest note at each onset, moved by octaves into the bass range; the cello no longer plays it.
  Else silent, and the cello stays in *other*;
* **other** — every remaining part: as written (violin, viola and cello programs) in
  `P_AS_WRITTEN` of the excerpts, else each part re-voiced on a program drawn from keyboards,
  organs, guitars, ensembles, brass, reeds, pipes and pads;
* **drums** — silent: a quartet has none.

The excerpt is `seconds` long from a bar where the top line plays in at least `MIN_TOP` of it
and the bottom line in at least `MIN_LOW` (where the score allows), at the metronome mark in
force at that bar (a drawn tempo where the score gives none; one tempo for the excerpt, so a
movement's change inside it is not followed). Velocities follow the dynamics marks.

Weaknesses, plainly: one genre (the "long 19th century" string quartet), no drums, and the
singer and the bass are this module's choices of lines, not parts anyone wrote for them.
"""
from __future__ import annotations

import math
import random
from functools import partial
from pathlib import Path

from . import scores as sc
from .compose import VOICE_PROGRAMS, Composition, Part
from .scores import LICENCE_COMPOSITION, LICENCE_ENCODING, Score, ScoreRefused

__all__ = ["LICENCE_COMPOSITION", "LICENCE_ENCODING", "Score", "ScoreRefused", "arrange_score", "choose", "corpus",
           "tools", "trained_on", "usable"]

COMPOSER = "quartets"
SOURCE = "https://github.com/OpenScore/StringQuartets"
ATTRIBUTION = "OpenScore String Quartets (musescore.com/openscore-string-quartets), CC0"
P_SUNG = 0.5
P_BASS = 0.7
P_AS_WRITTEN = 0.4
MIN_TOP, MIN_LOW = 0.5, 0.3
VELOCITY = 84
QUARTET_BASS_PROGRAMS = (32, 33, 34, 35, 38, 39)
#: GM programs for the parts as written, by music21 instrument class name
WRITTEN_PROGRAMS = {"Violin": 40, "Viola": 41, "Violoncello": 42, "Contrabass": 43}
#: re-voiced parts: pianos, organs, guitars, string and choir ensembles, brass, reeds, pipes, pads
REVOICE_PROGRAMS = (0, 1, 4, 5, 16, 19, 24, 25, 26, 46, 48, 49, 50, 56, 57, 60, 61, 64, 65, 68, 70, 71, 73, 88, 89, 91)
OTHER_CHANNELS = (1, 3, 4, 5, 6, 7, 8, 10)  # never 9, the drum channel

tools = sc.tools
trained_on = partial(sc.trained_on, source=SOURCE)
usable = sc.public_domain


def corpus(root: Path) -> list[Score]:
    """Every MusicXML score (`scores/<composer>/<work>/*.mxl`) of a checkout, sorted."""
    return [Score(path.relative_to(root).as_posix(), composer, died)
            for path, composer, died in sc.corpus_files(root, "*/*/*.mxl", SOURCE)]


def choose(scores: list[Score], n: int, seed: int, per_composer: int,
           exclude: tuple[set[str], set[str]] = (set(), set())) -> list[tuple[Score, str]]:
    """`n` public-domain quartets with their split, composers kept apart (`scores.choose`): val and
    select are pieces by composers the train split never heard. Each score is one excerpt."""
    return sc.choose(scores, n, seed, per_composer, usable, 0x5147, "--quartet-songs {n}", "public domain", exclude)


def _tempo_marks(flat) -> list[tuple[float, float]]:
    """(offset, quarter BPM) of every metronome mark that gives a tempo, in order."""
    marks = []
    for mark in flat.getElementsByClass(sc.music21().tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm:
            marks.append((float(mark.offset), sc.clamp_bpm(bpm)))
    return sorted(marks)


def _written_program(part) -> int:
    """The GM program of a string part as written: by music21's instrument, else by the part's name
    (a score may name its parts without declaring instruments music21 knows); a string ensemble
    where neither says."""
    inst = part.getInstrument(returnDefault=False)
    if type(inst).__name__ in WRITTEN_PROGRAMS:
        return WRITTEN_PROGRAMS[type(inst).__name__]
    name = (part.partName or "").lower()
    for word, program in (("cello", 42), ("viola", 41), ("bratsche", 41), ("alto", 41), ("violin", 40),
                          ("violon", 40), ("bass", 43)):
        if word in name:
            return program
    return 48


def arrange_score(path: Path, seconds: float, seed: int) -> tuple[Composition, dict]:
    """A `seconds`-long excerpt of one quartet as a four-stem `Composition` (its programs are in
    `describe()`), and what was done to it (tempo, the excerpt's first quarter, who took which line)."""
    music21 = sc.music21()
    rng = random.Random(seed ^ 0x5147)
    score = sc.parse(path)
    parts = list(score.parts)
    lines = [sc.events(p, VELOCITY) for p in parts]
    playing = [k for k, ev in enumerate(lines) if ev]
    if len(playing) < 3:
        raise ScoreRefused(f"{path.name}: {len(playing)} parts with notes; a quartet arrangement needs three or more")
    mean = {k: sum(e[2] for e in lines[k]) / len(lines[k]) for k in playing}
    top, low = max(playing, key=lambda k: mean[k]), min(playing, key=lambda k: mean[k])
    flat = score.flatten()
    marks = _tempo_marks(flat)
    drawn = None if marks else rng.uniform(60, 120)

    def bpm_at(t: float) -> float:
        if drawn is not None:
            return drawn
        before = [bpm for off, bpm in marks if off <= t]
        return before[-1] if before else marks[0][1]

    ts = next(iter(flat.getElementsByClass(music21.meter.TimeSignature)), None)
    beats = ts.barDuration.quarterLength if ts is not None else 4.0
    ks = next(iter(flat.getElementsByClass(music21.key.KeySignature)), None)
    key = (ks.sharps * 7) % 12 if ks is not None else 0
    starts = sorted({float(m.offset) for m in parts[top].getElementsByClass(music21.stream.Measure)}) or [0.0]
    end = max(o + q for ev in lines for o, q, _, _ in ev)
    shares = {}
    for s in starts:
        window = seconds * bpm_at(s) / 60.0
        if s + window > end and s != starts[0]:
            continue  # the excerpt would run past the score's last note
        shares[s] = (sc.covered_share(lines[top], s, window), sc.covered_share(lines[low], s, window))
    good = [s for s, (t, lo) in shares.items() if t >= MIN_TOP and lo >= MIN_LOW]
    start = rng.choice(good) if good else max(shares, key=lambda s: sum(shares[s]))
    bpm = bpm_at(start)
    window = seconds * bpm / 60.0  # in quarters

    def part(events, program: int, channel: int) -> Part:
        return sc.excerpt(events, program, channel, start, window, rng)

    sung = rng.random() < P_SUNG
    with_bass = rng.random() < P_BASS
    voice_program = rng.choice(VOICE_PROGRAMS)
    bass_program = rng.choice(QUARTET_BASS_PROGRAMS)
    as_written = rng.random() < P_AS_WRITTEN
    rest = [k for k in playing if not (k == top and sung) and not (k == low and with_bass)]
    programs = {}
    for k in rest:
        programs[k] = _written_program(parts[k]) if as_written else rng.choice(REVOICE_PROGRAMS)
    stems = {
        "drums": [],
        "bass": [part(sc.bass_line(lines[low]), bass_program, 2)] if with_bass else [],
        "vocals": [part(lines[top], voice_program, 0)] if sung else [],
        "other": [part(lines[k], programs[k], OTHER_CHANNELS[n % len(OTHER_CHANNELS)]) for n, k in enumerate(rest)],
    }
    bars = max(1, math.ceil(window / beats))
    comp = Composition(seed=seed, style=COMPOSER, bpm=bpm, meter=max(1, int(round(beats))), key=key,
                       mode="major", bars=bars, stems=stems)
    names = [" ".join((p.partName or "").split()) for p in parts]
    info = {"tempo_bpm": round(bpm, 2), "first_quarter": start,
            "top_share": round(shares[start][0], 3), "low_share": round(shares[start][1], 3),
            "vocals": f"sings the top line ({names[top]})" if sung else "silent",
            "bass": f"plays the bottom line ({names[low]})" if with_bass else "silent",
            "other_parts": [names[k] for k in rest], "other": "as written" if as_written else "re-voiced"}
    return comp, info
