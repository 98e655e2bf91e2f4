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

import bisect
import math
import random
import re
import subprocess
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .compose import BASS_PROGRAMS, PPQ, VOICE_PROGRAMS, Composition, Part

COMPOSER = "lieder"
SOURCE = "https://github.com/OpenScore/Lieder"
LICENCE_ENCODING = "CC0-1.0"
LICENCE_COMPOSITION = "LicenseRef-PublicDomain"
#: life + 70 years (the EU's and UK's term, the longest of the common ones) as of 2026
PUBLIC_DOMAIN_DIED_BY = 1955
P_BASS = 0.75
MIN_SUNG = 0.3
#: the accompaniment re-voiced: pianos most often, else other keyboards, guitars, harp, strings
ACCOMPANIMENT_PROGRAMS = (0, 0, 0, 1, 1, 2, 4, 5, 6, 19, 24, 25, 46, 48, 49)
LIED_BASS_PROGRAMS = tuple(p for p in BASS_PROGRAMS if p in (32, 33, 34, 35, 38, 39))
BASS_RANGE = (28, 55)  # E1..G3
VOICE_VELOCITY, ACCOMPANIMENT_VELOCITY = 96, 78
_SUNG_NAME = re.compile(r"voice|vocal|stimme|gesang|chant|canto|voix|soprano|mezzo|alto|tenor|bariton|"
                        r"\bbass\b|basso|choir|chor(us)?\b")
_DIED = re.compile(r"\((?:[^()]*?)(\d{4})?\s*[–-]\s*(\d{4})\s*\)")


class ScoreRefused(ValueError):
    """A score this module cannot arrange (unreadable, or nobody sings in it)."""


@dataclass(frozen=True)
class Score:
    """One corpus file: its path relative to the checkout, its composer's directory and death
    year, and whether any part is sung (`sung_part_names`)."""
    path: str
    composer: str
    died: int | None
    sung: bool


def _musicxml(path: Path) -> bytes:
    """The score document inside a compressed MusicXML (.mxl) file, or a plain one's bytes."""
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:
        container = ET.fromstring(z.read("META-INF/container.xml"))
        rootfile = next(el.get("full-path") for el in container.iter() if el.tag.endswith("rootfile"))
        return z.read(rootfile)


def sung_part_names(path: Path) -> set[str]:
    """Names of the parts a score declares as sung: a `voice.*` instrument sound or a singer's part
    name. Read from the MusicXML itself (fast, for choosing scores before parsing them)."""
    try:
        root = ET.fromstring(_musicxml(path))
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


def death_year(readme_text: str) -> int | None:
    """The death year in a composer README's first lines, e.g. `__British composer (1877–1953)__`."""
    for line in readme_text.splitlines()[:6]:
        m = _DIED.search(line)
        if m:
            return int(m.group(2))
    return None


def corpus(root: Path) -> list[Score]:
    """Every MusicXML score (`scores/<composer>/<set>/<song>/*.mxl`) of a checkout, sorted."""
    scores_dir = root / "scores"
    if not scores_dir.is_dir():
        raise FileNotFoundError(f"{root} is not a checkout of {SOURCE} (no scores/ folder): "
                                f"git clone {SOURCE} {root}")
    died: dict[str, int | None] = {}
    out = []
    for path in sorted(scores_dir.glob("*/*/*/*.mxl")):
        composer = path.relative_to(scores_dir).parts[0]
        if composer not in died:
            readme = scores_dir / composer / "README.md"
            died[composer] = death_year(readme.read_text(encoding="utf-8")) if readme.is_file() else None
        out.append(Score(path.relative_to(root).as_posix(), composer, died[composer], bool(sung_part_names(path))))
    return out


def tools(root: Path) -> dict:
    """What an arrangement depends on besides the seed: the checkout's commit (when it is a git
    checkout) and music21's version. Recorded in a set's manifest so that a rebuild that differs
    can say why (stop 52 rebuilt a set whose Lieder songs differed and could not tell)."""
    import importlib.metadata  # noqa: PLC0415 - only a set with Lieder songs asks

    commit = None  # a copy without git: each score's SHA-256 in the manifest still pins it
    if (root / ".git").exists():  # not a folder inside some other repository
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return {"corpus_commit": commit, "music21": importlib.metadata.version("music21")}


def public_domain(score: Score) -> bool:
    return score.died is not None and score.died <= PUBLIC_DOMAIN_DIED_BY


def usable(score: Score) -> bool:
    """Public domain, and someone sings in it."""
    return public_domain(score) and score.sung


def trained_on(manifest: dict) -> tuple[set[str], set[str]]:
    """(composers, score paths) a training set's manifest holds: the composers of its train and select
    Lieder songs (what weights trained on it heard) and every score it used, in any split. A set
    built without both (`choose(..., exclude=...)`) judges such weights on composers they never heard."""
    scored = [s for s in manifest.get("sources", []) if s.get("kind") == "score-arrangement"]
    return ({s["score"]["composer"] for s in scored if s["split"] in ("train", "select")},
            {s["score"]["path"] for s in scored})


def choose(scores: list[Score], n: int, seed: int, per_composer: int,
           exclude: tuple[set[str], set[str]] = (set(), set())) -> list[tuple[Score, str]]:
    """`n` usable scores (public domain, sung) with their split, composers kept apart: composers in
    an order drawn from `seed`, at most `per_composer` songs each (drawn), the last composers' songs `val` (at least
    n // 5 songs), those before them `select` (at least n // 10), the rest `train` — so val and
    select are songs by composers the train split never heard. `exclude` (`trained_on` of another
    set): composers and scores never to choose."""
    rng = random.Random(seed ^ 0x11ED)
    by_composer: dict[str, list[Score]] = {}
    for s in scores:
        if usable(s) and s.composer not in exclude[0] and s.path not in exclude[1]:
            by_composer.setdefault(s.composer, []).append(s)
    composers = sorted(by_composer)
    rng.shuffle(composers)
    groups = []
    total = 0
    for c in composers:
        if total >= n:
            break
        songs = sorted(by_composer[c], key=lambda s: s.path)
        rng.shuffle(songs)
        songs = songs[:min(per_composer, n - total)]
        groups.append(songs)
        total += len(songs)
    if total < n:
        raise ValueError(f"--lieder-songs {n}: only {total} usable scores (public domain, sung) at {per_composer} "
                         "per composer")
    want = {"val": max(1, n // 5) if n >= 2 else 0, "select": n // 10}
    label = ["train"] * len(groups)  # one split per composer, filled from the last composer back
    i = len(groups) - 1
    for split in ("val", "select"):
        got = 0
        while got < want[split] and i >= 0:
            label[i], got, i = split, got + len(groups[i]), i - 1
    order = {"train": 0, "select": 1, "val": 2}
    pairs = [(song, split) for songs, split in zip(groups, label) for song in songs]
    return sorted(pairs, key=lambda pair: order[pair[1]])  # stable: the composers' order within a split


def _music21():
    """music21, imported on first use: a heavy import (~1 s) that sets without scores never need,
    from the `train` extras."""
    import music21  # noqa: PLC0415 - optional and heavy, see the docstring

    return music21


def _role(part, sung_names: set[str] = frozenset()) -> str:
    """"sung", "accompaniment" or "skip" (a piano reduction of the voices "for practice only").
    By the part's name and the score's declared sounds as well as music21's instrument: MuseScore
    gives a voice an oboe's MIDI program for playback, which music21 reads as an oboe."""
    name = " ".join((part.partName or "").split())
    if "practice" in name.lower():
        return "skip"
    inst = part.getInstrument(returnDefault=False)
    sung = isinstance(inst, _music21().instrument.Vocalist) or name in sung_names or _SUNG_NAME.search(name.lower())
    return "sung" if sung else "accompaniment"


def _dynamics(part) -> tuple[list[float], list[float]]:
    marks = sorted((float(d.getOffsetInHierarchy(part)), float(d.volumeScalar or 0.5))
                   for d in part.recurse().getElementsByClass(_music21().dynamics.Dynamic))
    return [m[0] for m in marks], [m[1] for m in marks]


def _velocity(offsets: list[float], scalars: list[float], at: float, base: int) -> int:
    i = bisect.bisect_right(offsets, at) - 1
    if i < 0:
        return base
    return int(max(30, min(127, 35 + 90 * scalars[i])))


def _events(part, base: int) -> list[tuple[float, float, int, int]]:
    """(offset, quarter length, MIDI pitch, velocity) of every pitched note of a part, ties joined."""
    offsets, scalars = _dynamics(part)
    out = []
    for el in part.flatten().stripTies().notes:  # a tied note sounds once
        off = float(el.offset)
        ql = float(el.quarterLength) or 0.125
        vel = _velocity(offsets, scalars, off, base)
        for p in getattr(el, "pitches", ()):
            out.append((off, ql, int(p.midi), vel))
    return sorted(out)


def _tempo(flat, rng: random.Random) -> float:
    for mark in flat.getElementsByClass(_music21().tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm:
            return float(min(208.0, max(40.0, bpm)))
    return rng.uniform(60, 120)


def _bass_line(events: list[tuple[float, float, int, int]]) -> list[tuple[float, float, int, int]]:
    """The lowest note at each onset, held until the next onset at most, moved into `BASS_RANGE`."""
    lowest: dict[float, tuple[float, float, int, int]] = {}
    for e in events:
        if e[0] not in lowest or e[2] < lowest[e[0]][2]:
            lowest[e[0]] = e
    onsets = sorted(lowest)
    line = []
    for k, t in enumerate(onsets):
        off, ql, pitch, vel = lowest[t]
        if k + 1 < len(onsets):
            ql = min(ql, onsets[k + 1] - t)
        while pitch > BASS_RANGE[1]:
            pitch -= 12
        while pitch < BASS_RANGE[0]:
            pitch += 12
        line.append((off, ql, pitch, vel))
    return line


def arrange_score(path: Path, seconds: float, seed: int) -> tuple[Composition, dict]:
    """A `seconds`-long excerpt of one score as a four-stem `Composition` (its programs are in
    `describe()`), and what was done to it (tempo, the excerpt's first quarter, the parts, the bass)."""
    music21 = _music21()
    rng = random.Random(seed ^ 0x71ED)
    try:
        with warnings.catch_warnings():  # music21 warns about every marking it does not import
            warnings.simplefilter("ignore")
            score = music21.converter.parse(str(path))
    except Exception as exc:  # music21 raises many kinds on malformed files
        raise ScoreRefused(f"{path.name}: not a readable MusicXML score ({exc})") from exc
    parts = list(score.parts)
    sung_names = sung_part_names(path)
    roles = [_role(p, sung_names) for p in parts]
    sung = [p for p, r in zip(parts, roles) if r == "sung"]
    accompaniment = [p for p, r in zip(parts, roles) if r == "accompaniment"]
    if not sung:
        raise ScoreRefused(f"{path.name}: no sung part (by instrument or part name)")
    flat = score.flatten()
    bpm = _tempo(flat, rng)
    ts = next(iter(flat.getElementsByClass(music21.meter.TimeSignature)), None)
    beats = ts.barDuration.quarterLength if ts is not None else 4.0
    ks = next(iter(flat.getElementsByClass(music21.key.KeySignature)), None)
    key = (ks.sharps * 7) % 12 if ks is not None else 0
    window = seconds * bpm / 60.0  # in quarters
    voice = sorted(e for p in sung for e in _events(p, VOICE_VELOCITY))
    accomp = [_events(p, ACCOMPANIMENT_VELOCITY) for p in accompaniment]
    # bar starts as excerpt starts: the voice sings in at least MIN_SUNG of the window where it can
    starts = sorted({float(m.offset) for m in parts[0].getElementsByClass(music21.stream.Measure)}) or [0.0]

    def sung_share(start: float) -> float:
        spans = [(max(o, start), min(o + q, start + window)) for o, q, _, _ in voice]
        covered, last = 0.0, start
        for a, b in sorted(spans):
            a = max(a, last)
            if b > a:
                covered, last = covered + b - a, b
        return covered / window

    shares = {s: sung_share(s) for s in starts}
    good = [s for s in starts if shares[s] >= MIN_SUNG]
    start = rng.choice(good) if good else max(starts, key=lambda s: shares[s])

    def part(events, program: int, channel: int) -> Part:
        notes = []
        for off, ql, pitch, vel in events:
            if start <= off < start + window:
                tick = int(round((off - start) * PPQ))
                dur = int(round(min(ql, start + window - off) * PPQ))
                notes.append((tick, max(dur, PPQ // 8), pitch, max(1, min(127, vel + rng.randint(-6, 6)))))
        return Part(program, channel, notes)

    voice_program = rng.choice(VOICE_PROGRAMS)
    other_program = rng.choice(ACCOMPANIMENT_PROGRAMS)
    with_bass = bool(accomp) and rng.random() < P_BASS
    bass_program = rng.choice(LIED_BASS_PROGRAMS)
    lowest = min(accomp, key=lambda ev: sum(e[2] for e in ev) / max(1, len(ev))) if accomp else []
    stems = {
        "drums": [],
        "bass": [part(_bass_line(lowest), bass_program, 2)] if with_bass else [],
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
