"""What every corpus of scores by other hands shares (`lieder`, `quartets`): reading compressed
MusicXML, the composer's death year from the corpus's README, a part's notes with the score's
dynamics, the tempo, a bass line, which scores a set uses and how they split by composer, and
what a rebuild depends on. Pure: music21 (imported on first use) and the standard library.

Why one module: both corpora are OpenScore checkouts of the same shape (`scores/<composer>/…`,
a README per composer with the years, CC0 encodings of public-domain compositions), and a set's
split must keep composers apart the same way whichever corpus a song came from.
"""
from __future__ import annotations

import bisect
import random
import re
import subprocess
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .compose import PPQ, Part

LICENCE_ENCODING = "CC0-1.0"
LICENCE_COMPOSITION = "LicenseRef-PublicDomain"
#: life + 70 years (the EU's and UK's term, the longest of the common ones) as of 2026
PUBLIC_DOMAIN_DIED_BY = 1955
BASS_RANGE = (28, 55)  # E1..G3
_DIED = re.compile(r"\((?:[^()]*?)(\d{4})?\s*[–-]\s*(\d{4})\s*\)")

Event = tuple[float, float, int, int]  # (offset in quarters, quarter length, MIDI pitch, velocity)


class ScoreRefused(ValueError):
    """A score a corpus module cannot arrange (unreadable, or missing what the arrangement needs)."""


@dataclass(frozen=True)
class Score:
    """One corpus file: its path relative to the checkout, its composer's directory and death
    year, and whether any part is sung (Lieder; a quartet has no singer)."""
    path: str
    composer: str
    died: int | None
    sung: bool = False


def musicxml(path: Path) -> bytes:
    """The score document inside a compressed MusicXML (.mxl) file, or a plain one's bytes."""
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:
        container = ET.fromstring(z.read("META-INF/container.xml"))
        rootfile = next(el.get("full-path") for el in container.iter() if el.tag.endswith("rootfile"))
        return z.read(rootfile)


def death_year(readme_text: str) -> int | None:
    """The death year in a composer README's first lines, e.g. `__British composer (1877–1953)__`."""
    for line in readme_text.splitlines()[:6]:
        m = _DIED.search(line)
        if m:
            return int(m.group(2))
    return None


def corpus_files(root: Path, pattern: str, source: str) -> list[tuple[Path, str, int | None]]:
    """(file, composer directory, death year) of every score `pattern` finds under a checkout's
    `scores/`, sorted; the years from each composer's README."""
    scores_dir = root / "scores"
    if not scores_dir.is_dir():
        raise FileNotFoundError(f"{root} is not a checkout of {source} (no scores/ folder): git clone {source} {root}")
    died: dict[str, int | None] = {}
    out = []
    for path in sorted(scores_dir.glob(pattern)):
        composer = path.relative_to(scores_dir).parts[0]
        if composer not in died:
            readme = scores_dir / composer / "README.md"
            died[composer] = death_year(readme.read_text(encoding="utf-8")) if readme.is_file() else None
        out.append((path, composer, died[composer]))
    return out


def public_domain(score: Score) -> bool:
    return score.died is not None and score.died <= PUBLIC_DOMAIN_DIED_BY


def tools(root: Path) -> dict:
    """What an arrangement depends on besides the seed: the checkout's commit (when it is a git
    checkout) and music21's version. Recorded in a set's manifest so that a rebuild that differs
    can say why (stop 52 rebuilt a set whose Lieder songs differed and could not tell)."""
    import importlib.metadata  # noqa: PLC0415 - only a set with scores asks

    commit = None  # a copy without git: each score's SHA-256 in the manifest still pins it
    if (root / ".git").exists():  # not a folder inside some other repository
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return {"corpus_commit": commit, "music21": importlib.metadata.version("music21")}


def trained_on(manifest: dict, source: str) -> tuple[set[str], set[str]]:
    """(composers, score paths) of corpus `source` a training set's manifest holds: the composers of
    its train and select songs (what weights trained on it heard) and every score it used, in any
    split. A set built without both (`choose(..., exclude=...)`) judges such weights on composers
    they never heard."""
    scored = [s for s in manifest.get("sources", []) if s.get("kind") == "score-arrangement"
              and s["score"].get("corpus") == source]
    return ({s["score"]["composer"] for s in scored if s["split"] in ("train", "select")},
            {s["score"]["path"] for s in scored})


def choose(scores: list[Score], n: int, seed: int, per_composer: int, usable: Callable[[Score], bool], salt: int,
           what: str, why: str, exclude: tuple[set[str], set[str]] = (set(), set())) -> list[tuple[Score, str]]:
    """`n` usable scores with their split, composers kept apart: composers in an order drawn from
    `seed` (with the corpus's `salt`), at most `per_composer` songs each (drawn), the last composers'
    songs `val` (at least n // 5 songs), those before them `select` (at least n // 10), the rest
    `train` — so val and select are songs by composers the train split never heard. `exclude`
    (`trained_on` of another set): composers and scores never to choose. `what` (the option, with
    `{n}`) and `why` (what makes a score usable) word the error when there are too few."""
    rng = random.Random(seed ^ salt)
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
        raise ValueError(f"{what.format(n=n)}: only {total} usable scores ({why}) at {per_composer} per composer")
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


def music21():
    """music21, imported on first use: a heavy import (~1 s) that sets without scores never need,
    from the `train` extras."""
    import music21 as m21  # noqa: PLC0415 - optional and heavy, see the docstring

    return m21


def dynamics(part) -> tuple[list[float], list[float]]:
    marks = sorted((float(d.getOffsetInHierarchy(part)), float(d.volumeScalar or 0.5))
                   for d in part.recurse().getElementsByClass(music21().dynamics.Dynamic))
    return [m[0] for m in marks], [m[1] for m in marks]


def velocity(offsets: list[float], scalars: list[float], at: float, base: int) -> int:
    i = bisect.bisect_right(offsets, at) - 1
    if i < 0:
        return base
    return int(max(30, min(127, 35 + 90 * scalars[i])))


def events(part, base: int) -> list[Event]:
    """(offset, quarter length, MIDI pitch, velocity) of every pitched note of a part, ties joined."""
    offsets, scalars = dynamics(part)
    out = []
    for el in part.flatten().stripTies().notes:  # a tied note sounds once
        off = float(el.offset)
        ql = float(el.quarterLength) or 0.125
        vel = velocity(offsets, scalars, off, base)
        for p in getattr(el, "pitches", ()):
            out.append((off, ql, int(p.midi), vel))
    return sorted(out)


def clamp_bpm(bpm: float) -> float:
    return float(min(208.0, max(40.0, bpm)))


def first_tempo(flat, rng: random.Random) -> float:
    """The score's first metronome mark, or a drawn tempo where it gives none."""
    for mark in flat.getElementsByClass(music21().tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm:
            return clamp_bpm(bpm)
    return rng.uniform(60, 120)


def bass_line(notes: list[Event]) -> list[Event]:
    """The lowest note at each onset, held until the next onset at most, moved into `BASS_RANGE`."""
    lowest: dict[float, Event] = {}
    for e in notes:
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


def covered_share(notes: list[Event], start: float, window: float) -> float:
    """The share of the window [start, start + window) in which at least one of `notes` sounds."""
    spans = [(max(o, start), min(o + q, start + window)) for o, q, _, _ in notes]
    covered, last = 0.0, start
    for a, b in sorted(spans):
        a = max(a, last)
        if b > a:
            covered, last = covered + b - a, b
    return covered / window


def parse(path: Path):
    """The music21 score of a MusicXML file, or `ScoreRefused` saying why not."""
    try:
        with warnings.catch_warnings():  # music21 warns about every marking it does not import
            warnings.simplefilter("ignore")
            return music21().converter.parse(str(path))
    except Exception as exc:  # music21 raises many kinds on malformed files
        raise ScoreRefused(f"{path.name}: not a readable MusicXML score ({exc})") from exc


def excerpt(notes: list[Event], program: int, channel: int, start: float, window: float, rng: random.Random) -> Part:
    """The notes that start within [start, start + window) quarters as a `Part` in ticks from the
    excerpt's start, cut at its end, each velocity moved by a drawn −6..+6."""
    out = []
    for off, ql, pitch, vel in notes:
        if start <= off < start + window:
            tick = int(round((off - start) * PPQ))
            dur = int(round(min(ql, start + window - off) * PPQ))
            out.append((tick, max(dur, PPQ // 8), pitch, max(1, min(127, vel + rng.randint(-6, 6)))))
    return Part(program, channel, out)
