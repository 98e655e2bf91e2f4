"""Songs by other hands: the OpenScore Lieder corpus (CC0 encodings of public-domain songs for voice
and piano) arranged into our four stems. Pure: music21 and `compose`'s MIDI writer; no Django.

Why: every composition ClearStem trained or judged on so far came from its own three procedural
composers, and each held-out score lower than our val said ("A bench you designed is an upper
bound"). The corpus (github.com/OpenScore/Lieder: ~1460 MusicXML scores, 126 composers, the
encodings dedicated to the public domain under CC0 1.0) is melody, harmony, form and rhythm
written by people — Schubert to Ives — with a licence that allows any use.

The compositions must be public domain too, not only their encodings: a score is used only if
its composer's README in the same checkout gives a death year ≤ `PUBLIC_DOMAIN_DIED_BY` (life +
70 years, the longest common term, as of 2026); others are refused with the reason.

How a score becomes four stems (each choice drawn from the song's seed; the notes are the
score's):

* **vocals** — every sung part (a `voice.*` sound in the MusicXML, a singer's part name, or a
  music21 `Vocalist`) on one GM voice program (52, 53, 54, 85), as our composers' vocals are;
* **other** — every other part (the piano's two staves) on one keyboard, guitar, harp, organ or
  string program: the score as written, re-voiced as an arranger would;
* **bass** — in most songs (`P_BASS`) a GM bass program doubles the lowest line of the lowest
  accompaniment part (the piano's left hand), moved by octaves into the bass range; the piano
  keeps those notes, as a band's bass doubles a pianist's left hand. Else silent;
* **drums** — silent: a Lied has none, and a stem with nothing in it is an answer a separator
  must give.

The excerpt is `seconds` long at the score's first metronome mark (or a drawn tempo where the
score gives none; one tempo, as `compose.Composition` has), starting at a bar chosen so that the
voice sings in at least `MIN_SUNG` of it where the song allows. Velocities follow the score's
dynamics marks. Repeats are not expanded, grace notes get a 32nd.

Weaknesses, plainly: one genre family (19th/early-20th-century art song), no drums, and the bass
stem is a doubling this module writes, not a part anyone composed.
"""
from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET
import zipfile
from functools import partial
from pathlib import Path

from . import scores as sc
from .compose import BASS_PROGRAMS, VOICE_PROGRAMS, Composition, Part
from .scores import LICENCE_COMPOSITION, LICENCE_ENCODING, PUBLIC_DOMAIN_DIED_BY, Score, ScoreRefused, death_year

__all__ = ["LICENCE_COMPOSITION", "LICENCE_ENCODING", "PUBLIC_DOMAIN_DIED_BY", "Score", "ScoreRefused", "death_year",
           "arrange_score", "choose", "corpus", "public_domain", "sung_part_names", "tools", "trained_on", "usable"]

COMPOSER = "lieder"
SOURCE = "https://github.com/OpenScore/Lieder"
ATTRIBUTION = "OpenScore Lieder (musescore.com/openscore-lieder-corpus), CC0"
P_BASS = 0.75
MIN_SUNG = 0.3
#: the accompaniment re-voiced: pianos most often, else other keyboards, guitars, harp, strings
ACCOMPANIMENT_PROGRAMS = (0, 0, 0, 1, 1, 2, 4, 5, 6, 19, 24, 25, 46, 48, 49)
LIED_BASS_PROGRAMS = tuple(p for p in BASS_PROGRAMS if p in (32, 33, 34, 35, 38, 39))
VOICE_VELOCITY, ACCOMPANIMENT_VELOCITY = 96, 78
_SUNG_NAME = re.compile(r"voice|vocal|stimme|gesang|chant|canto|voix|soprano|mezzo|alto|tenor|bariton|"
                        r"\bbass\b|basso|choir|chor(us)?\b")

public_domain = sc.public_domain
tools = sc.tools
trained_on = partial(sc.trained_on, source=SOURCE)


def sung_part_names(path: Path) -> set[str]:
    """Names of the parts a score declares as sung: a `voice.*` instrument sound or a singer's part
    name. Read from the MusicXML itself (fast, for choosing scores before parsing them)."""
    try:
        root = ET.fromstring(sc.musicxml(path))
    except (ET.ParseError, KeyError, OSError, StopIteration, zipfile.BadZipFile):
        return set()
    names = set()
    for part in root.iter("score-part"):
        name = " ".join((part.findtext("part-name") or "").split())
        sounds = [el.text or "" for el in part.iter("instrument-sound")]
        if "practice" in name.lower():
            continue
        if any(snd.startswith("voice") for snd in sounds) or _SUNG_NAME.search(name.lower()):
            names.add(name)
    return names


def corpus(root: Path) -> list[Score]:
    """Every MusicXML score (`scores/<composer>/<set>/<song>/*.mxl`) of a checkout, sorted."""
    return [Score(path.relative_to(root).as_posix(), composer, died, bool(sung_part_names(path)))
            for path, composer, died in sc.corpus_files(root, "*/*/*/*.mxl", SOURCE)]


def usable(score: Score) -> bool:
    """Public domain, and someone sings in it."""
    return public_domain(score) and score.sung


def choose(scores: list[Score], n: int, seed: int, per_composer: int,
           exclude: tuple[set[str], set[str]] = (set(), set())) -> list[tuple[Score, str]]:
    """`n` usable scores (public domain, sung) with their split, composers kept apart
    (`scores.choose`): val and select are songs by composers the train split never heard."""
    return sc.choose(scores, n, seed, per_composer, usable, 0x11ED, "--lieder-songs {n}", "public domain, sung",
                     exclude)


def _role(part, sung_names: set[str] = frozenset()) -> str:
    """"sung", "accompaniment" or "skip" (a piano reduction of the voices "for practice only").
    By the part's name and the score's declared sounds as well as music21's instrument: MuseScore
    gives a voice an oboe's MIDI program for playback, which music21 reads as an oboe."""
    name = " ".join((part.partName or "").split())
    if "practice" in name.lower():
        return "skip"
    inst = part.getInstrument(returnDefault=False)
    sung = isinstance(inst, sc.music21().instrument.Vocalist) or name in sung_names or _SUNG_NAME.search(name.lower())
    return "sung" if sung else "accompaniment"


def arrange_score(path: Path, seconds: float, seed: int) -> tuple[Composition, dict]:
    """A `seconds`-long excerpt of one score as a four-stem `Composition` (its programs are in
    `describe()`), and what was done to it (tempo, the excerpt's first quarter, the parts, the bass)."""
    music21 = sc.music21()
    rng = random.Random(seed ^ 0x71ED)
    score = sc.parse(path)
    parts = list(score.parts)
    sung_names = sung_part_names(path)
    roles = [_role(p, sung_names) for p in parts]
    sung = [p for p, r in zip(parts, roles) if r == "sung"]
    accompaniment = [p for p, r in zip(parts, roles) if r == "accompaniment"]
    if not sung:
        raise ScoreRefused(f"{path.name}: no sung part (by instrument or part name)")
    flat = score.flatten()
    bpm = sc.first_tempo(flat, rng)
    ts = next(iter(flat.getElementsByClass(music21.meter.TimeSignature)), None)
    beats = ts.barDuration.quarterLength if ts is not None else 4.0
    ks = next(iter(flat.getElementsByClass(music21.key.KeySignature)), None)
    key = (ks.sharps * 7) % 12 if ks is not None else 0
    window = seconds * bpm / 60.0  # in quarters
    voice = sorted(e for p in sung for e in sc.events(p, VOICE_VELOCITY))
    accomp = [sc.events(p, ACCOMPANIMENT_VELOCITY) for p in accompaniment]
    # bar starts as excerpt starts: the voice sings in at least MIN_SUNG of the window where it can
    starts = sorted({float(m.offset) for m in parts[0].getElementsByClass(music21.stream.Measure)}) or [0.0]

    shares = {s: sc.covered_share(voice, s, window) for s in starts}
    good = [s for s in starts if shares[s] >= MIN_SUNG]
    start = rng.choice(good) if good else max(starts, key=lambda s: shares[s])

    def part(events, program: int, channel: int) -> Part:
        return sc.excerpt(events, program, channel, start, window, rng)

    voice_program = rng.choice(VOICE_PROGRAMS)
    other_program = rng.choice(ACCOMPANIMENT_PROGRAMS)
    with_bass = bool(accomp) and rng.random() < P_BASS
    bass_program = rng.choice(LIED_BASS_PROGRAMS)
    lowest = min(accomp, key=lambda ev: sum(e[2] for e in ev) / max(1, len(ev))) if accomp else []
    stems = {
        "drums": [],
        "bass": [part(sc.bass_line(lowest), bass_program, 2)] if with_bass else [],
        "vocals": [part(voice, voice_program, 0)],
        "other": [part(ev, other_program, 1) for ev in accomp],
    }
    bars = max(1, math.ceil(window / beats))
    comp = Composition(seed=seed, style=COMPOSER, bpm=bpm, meter=max(1, int(round(beats))), key=key,
                       mode="major", bars=bars, stems=stems)
    info = {"tempo_bpm": round(bpm, 2), "first_quarter": start, "sung_share": round(shares[start], 3),
            "sung_parts": [p.partName or "" for p in sung],
            "accompaniment_parts": [p.partName or "" for p in accompaniment],
            "bass": "doubles the lowest accompaniment line" if with_bass else "silent"}
    return comp, info
