"""Mixture identification bench (issue 17): MIDI from the music21 corpus, rendered by FluidSynth.

    .venv/bin/python -m bench.mixtures [--quick] [--catalog 100] [--noncatalog 50] [--seed 17]

Audio: pieces of the music21 corpus in several styles (Bach chorales, Palestrina masses,
Monteverdi madrigals, trecento/Josquin polyphony, Ryan's Mammoth and O'Neill's fiddle tunes,
Essen folk songs, Haydn/Mozart/Beethoven quartet movements). A *track* is one or more pieces of
one style played back to back (a chorale with its verses, a set of reels) for 60–120 s, with
random General MIDI programs per part, a tempo with changes, humanised timing and velocity,
sometimes a drum part, and FluidSynth's reverb/chorus sends; it is rendered with one of three
Debian soundfonts (`bench.soundfonts`: the Csound GM bank, TimGM6mb, OPL-3 FM — never the GM
soundfont reserved for the held-out evaluation or anything built from it, nor any game-music
package) and mastered (EQ, compression, reverb,
level). Non-catalog tracks come from the same styles, soundfonts and program pools: the hard
negatives.

Splits: every piece is used by one track only. Tracks are dealt per style into a *calibration*
split and a *test* split (different pieces). Both catalogs are indexed together (every query
sees every reference), but the landmark thresholds are chosen on calibration queries only
(`calibrate`) and every figure reported under "test" comes from test queries.

Queries (per catalog track): MP3 re-encode of the full track, excerpts 30/15/8 s, −12 dB gain,
white noise at 10 dB SNR, 22.05 kHz mono; mixtures of 15 s: two catalog tracks at equal level
(both must be found), a catalog track with a non-catalog track 6 dB below, a catalog track
12 dB *under* a louder non-catalog track, and a crossfade from one catalog track to another
(both must be found). Non-catalog tracks get the single-song transforms and non-catalog
mixtures: anything reported there is a wrong recording. A wrong recording is any reported
recording that is not in the query, over every query.

Matchers: landmarks alone (`fingerprint.landmarks`), Chromaprint alone (`fingerprint.scan` with
the speed grid + `fingerprint.matcher`), their union, and the product's verdict
(`fingerprint.fusion.fuse` with thresholds calibrated on the calibration split): recordings
present, and recordings only suspected — a job with a suspect waits for review, so the bench
reports how often that happens wrongly ("false review") and how many missed recordings it catches.

A tune printed in two collections (Ryan's and O'Neill's share reels; Bach set one chorale melody
in several cantatas) is one composition: a track never uses a tune another track uses. Latency: decode + landmark extraction
+ matching for a 15 s WAV and a 4-minute MP3 against the bench catalog.

Rendered audio is cached under var/bench-cache/mixtures (a rerun skips parsing and rendering).
Writes bench/results/mixtures.json and prints a summary.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from scipy.signal import lfilter, oaconvolve, resample_poly, sosfilt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import soundfonts  # noqa: E402
from bench.identify import mp3_bytes  # noqa: E402  (one MP3 encoder for the benches)
from bench.scratch import scratch_dir  # noqa: E402
from fingerprint import landmarks as lm  # noqa: E402
from fingerprint.fusion import FusionParams, align_chromaprint, fuse, side_by_side  # noqa: E402
from fingerprint.matcher import Candidate, Match, MatchParams  # noqa: E402

SR = 44100
CACHE = ROOT / "var" / "bench-cache" / "mixtures"
SOUNDFONTS = soundfonts.SOUNDFONTS  # see bench.soundfonts for why only these

# General MIDI program pools
STRINGS = (40, 41, 42, 43, 44, 45, 48, 49)
WINDS = (68, 69, 70, 71, 72, 73, 74, 75, 56, 57, 58, 60, 61)
VOICES = (52, 53, 54, 85)
KEYS = (0, 1, 2, 4, 5, 6, 7, 16, 17, 19, 20, 21, 46)
PLUCKED = (24, 25, 26, 27, 104, 105, 106, 107, 46)
FOLK = (21, 22, 23, 40, 41, 73, 75, 78, 109, 110, 24, 25, 105, 71)
SYNTH = (80, 81, 82, 87, 88, 89, 90, 91, 62, 63, 50, 51)
BASS = (32, 33, 34, 35, 38, 39, 42, 43, 58, 70)

#: style -> (corpus selector, program pool for upper parts, pool for the lowest part, bpm range,
#:           probability of a drum part)
STYLES = {
    "chorale": ("bach/bwv", STRINGS + WINDS + VOICES + (19, 20, 48, 52), BASS + (19, 20), (60, 100), 0.1),
    "palestrina": ("palestrina/", VOICES + STRINGS + WINDS + (19, 20), BASS + VOICES, (90, 150), 0.0),
    "madrigal": ("monteverdi/", VOICES + STRINGS + PLUCKED + WINDS, BASS + VOICES, (80, 130), 0.1),
    "early": ("trecento/|josquin/", VOICES + WINDS + PLUCKED + (6, 46), BASS + (6,), (80, 140), 0.1),
    "fiddle": ("ryansMammoth/", FOLK + STRINGS[:2] + WINDS, BASS, (90, 150), 0.4),
    "oneills": ("oneills1850/", FOLK + WINDS + PLUCKED, BASS, (90, 150), 0.4),
    "folk": ("essenFolksong/", FOLK + KEYS + VOICES + SYNTH, BASS, (70, 130), 0.3),
    "quartet": ("haydn/|mozart/|beethoven/", STRINGS + WINDS + KEYS + SYNTH, BASS, (70, 150), 0.15),
}


# ------------------------------------------------------------------------------------------
# corpus: pieces -> note events (cached as JSON)
# ------------------------------------------------------------------------------------------
def _corpus_pieces(style: str) -> list[str]:
    """Corpus references of one style; a '#N' tail names tune N of a multi-tune ABC file."""
    from music21 import corpus

    pattern = re.compile(STYLES[style][0].replace("|", "|^"))
    out = []
    for p in sorted(str(x) for x in corpus.getPaths()):
        rel = p.split("/corpus/", 1)[1]
        if not pattern.match(rel):
            continue
        if style == "chorale" and not rel.endswith(".mxl"):
            continue
        if rel.endswith(".rntxt") or (style == "quartet" and not rel.endswith(".mxl")):
            continue
        if style == "palestrina" and not rel.endswith(".krn"):
            continue
        if style in ("oneills", "folk"):
            text = Path(p).read_text(errors="replace")
            numbers = re.findall(r"^X:\s*(\d+)", text, flags=re.M)
            out += [f"{rel}#{n}" for n in numbers]
        else:
            out.append(rel)
    return out


def _piece_events(ref: str) -> list[list[tuple[float, float, int, int]]]:
    """Parts of one piece as (onset in quarters, length in quarters, MIDI pitch, velocity)."""
    key = hashlib.sha1(ref.encode()).hexdigest()[:16]
    path = CACHE / "events" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    from music21 import corpus

    name, _, number = ref.partition("#")
    try:
        score = corpus.parse(name, number=int(number)) if number else corpus.parse(name)
        if hasattr(score, "scores"):  # an Opus despite the number
            score = score.scores[0]
        try:
            score = score.stripTies()
        except Exception:  # noqa: BLE001 - malformed ties: keep the notes as written
            pass
        parts = []
        for part in (score.parts or [score]):
            notes = []
            for n in part.flatten().notes:
                ql = float(n.duration.quarterLength)
                if ql <= 0:
                    continue
                vel = n.volume.velocity if n.volume is not None and n.volume.velocity else 80
                for p in n.pitches:
                    notes.append((round(float(n.offset), 4), round(ql, 4), int(p.midi), int(vel)))
            if notes:
                parts.append(sorted(notes))
    except Exception:  # noqa: BLE001 - the corpus has a few files music21 cannot read
        parts = []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(parts))
    return parts


# ------------------------------------------------------------------------------------------
# tracks: MIDI with programs, tempo map, humanisation, drums
# ------------------------------------------------------------------------------------------
def _plan_tracks(n_tracks: int, seed: int, min_s: float, max_s: float) -> list[dict]:
    """Deal `n_tracks` tracks over the styles; each gets pieces no other track uses."""
    rng = np.random.default_rng(seed)
    styles = list(STYLES)
    pools = {s: list(rng.permutation(_corpus_pieces(s))) for s in styles}
    plans = []
    for i in range(n_tracks):
        style = styles[i % len(styles)]
        lo, hi = STYLES[style][3]
        plans.append({"id": i, "style": style, "seconds": float(rng.uniform(min_s, max_s)),
                      "bpm": float(rng.uniform(lo, hi)), "soundfont": SOUNDFONTS[int(rng.integers(0, len(SOUNDFONTS)))],
                      "seed": int(rng.integers(0, 2**31)), "pool": pools[style]})
    return plans


def _tune_signature(parts) -> tuple:
    """The melody's first 12 pitch intervals (transposition-free): the same tune printed in two
    collections (Ryan's and O'Neill's share many reels; Bach harmonised one chorale melody in
    several cantatas) is one composition, and the bench must not call finding it "wrong"."""
    top = max(parts, key=lambda part: sum(p for _, _, p, _ in part) / max(len(part), 1))
    onsets: dict = {}
    for o, _, p, _ in top:
        onsets[o] = max(onsets.get(o, 0), p)
    pitches = [onsets[o] for o in sorted(onsets)]
    return tuple(int(b - a) for a, b in zip(pitches, pitches[1:]))[:12]


def _fill_pieces(plan: dict, used: set[str]) -> list[tuple[str, list]]:
    """Pieces for a track until its duration is covered (at its base tempo); a piece whose tune
    another track already uses is skipped (see `_tune_signature`)."""
    pieces, seconds = [], 0.0
    pool = plan["pool"]
    while seconds < plan["seconds"] and pool:
        ref = pool.pop(0)
        if ref in used:
            continue
        parts = _piece_events(ref)
        if not parts or sum(len(p) for p in parts) < 16:
            continue
        sig = "tune:" + ",".join(map(str, _tune_signature(parts)))
        if sig in used:
            continue
        used.add(ref)
        used.add(sig)
        length = max(o + d for part in parts for o, d, _, _ in part)
        pieces.append((ref, parts))
        seconds += length * 60 / plan["bpm"] + 1.0
    return pieces


def _track_midi(plan: dict, pieces: list[tuple[str, list]]):
    """Note events of a track as (seconds on, seconds off, channel, pitch, velocity) plus
    (channel, program, reverb, chorus, volume, pan) settings."""
    rng = np.random.default_rng(plan["seed"])
    _, upper, lower, _, p_drums = STYLES[plan["style"]]
    n_parts = max(len(parts) for _, parts in pieces)
    channels = [c for c in range(16) if c != 9][:min(n_parts, 15)]
    programs = [int(rng.choice(upper)) for _ in channels]
    if len(channels) > 1:
        programs[-1] = int(rng.choice(lower))
    if n_parts == 1 and rng.random() < 0.5:  # a monophonic tune: add a lower doubling
        channels.append(len(channels))
        programs.append(int(rng.choice(lower)))
    settings = [(c, p, int(rng.integers(10, 90)), int(rng.integers(0, 60)), int(rng.integers(70, 120)),
                 int(rng.integers(20, 108))) for c, p in zip(channels, programs)]
    events = []
    t0 = 0.0
    bpm = plan["bpm"]
    for k, (_, parts) in enumerate(pieces):
        # tempo map of this piece: a few changes (piecewise constant) and a final ritardando
        length = max(o + d for part in parts for o, d, _, _ in part)
        cuts = np.sort(rng.uniform(0, length, int(rng.integers(0, 3))))
        bounds = np.r_[0, cuts, length]
        factors = np.r_[1.0, rng.uniform(0.85, 1.15, cuts.size)] * (bpm * rng.uniform(0.92, 1.08) if k else bpm)
        sec_at = np.r_[0, np.cumsum(np.diff(bounds) * 60 / factors)]

        def to_s(q, bounds=bounds, factors=factors, sec_at=sec_at, length=length):
            i = np.clip(np.searchsorted(bounds, q, side="right") - 1, 0, factors.size - 1)
            s = sec_at[i] + (q - bounds[i]) * 60 / factors[i]
            rit = np.clip(q - (length - 4), 0, None)  # the last 4 quarters slow down to 0.7
            return s + rit * rit / 8 * 60 / factors[i] * 0.43

        for j, part in enumerate(parts):
            ch = channels[j % len(channels)]
            arr = np.array(part, dtype=np.float64)
            on = to_s(arr[:, 0]) + rng.normal(0, 0.008, arr.shape[0])
            off = to_s(arr[:, 0] + arr[:, 1]) - 0.02
            level = rng.uniform(0.6, 1.0)
            vel = np.clip(arr[:, 3] * level + rng.normal(0, 8, arr.shape[0]), 20, 127)
            keep = on < plan["seconds"] - t0 + 1
            on, off, arr, vel = on[keep], off[keep], arr[keep], vel[keep]
            for a, b, p, v in zip(on, off, arr[:, 2], vel):
                events.append((t0 + max(a, 0), t0 + max(b, a + 0.03), ch, int(p), int(v)))
            if n_parts == 1 and len(channels) > 1:  # the doubling, an octave (or two) below
                for a, b, p, v in zip(on, off, arr[:, 2], vel):
                    if rng.random() < 0.7:
                        events.append((t0 + max(a, 0), t0 + max(b, a + 0.03), channels[-1],
                                       int(p) - 12 * int(rng.integers(1, 3)), int(v * 0.8)))
        end = float(to_s(length))
        if rng.random() < p_drums:  # a simple kit on the beat grid
            q = 0.0
            pattern = int(rng.integers(0, 3))
            while q < length and to_s(q) < plan["seconds"] - t0 + 1:
                s = t0 + float(to_s(q))
                beat = int(round(q)) % 4
                if pattern == 0 and beat in (0, 2) or pattern == 1 and beat == 0 or pattern == 2 and q % 1 == 0:
                    events.append((s, s + 0.1, 9, 36, int(rng.integers(90, 120))))
                if beat in (1, 3) and q % 1 == 0:
                    events.append((s, s + 0.1, 9, 38 if pattern != 2 else 39, int(rng.integers(80, 110))))
                events.append((s, s + 0.05, 9, 42 if rng.random() < 0.85 else 46, int(rng.integers(45, 80))))
                q += 0.5
        t0 += end + float(rng.uniform(0.3, 1.5))
        if t0 > plan["seconds"]:
            break
    return events, settings


def _batch_midi(tracks: list[tuple[list, list]], gap: float = 4.0):
    """One MIDI file for several tracks, played back to back with `gap` seconds of silence;
    returns it and each track's (start, end) in seconds."""
    import mido

    ticks_per_s = 960  # tempo 500000 µs/quarter at 480 ticks/quarter
    msgs, spans, t0 = [], [], 0.0
    for events, settings in tracks:
        for ch in range(16):
            msgs.append((t0, 0, mido.Message("control_change", channel=ch, control=123, value=0)))
            msgs.append((t0, 0, mido.Message("control_change", channel=ch, control=121, value=0)))
        for ch, prog, rev, cho, vol, pan in settings:
            msgs.append((t0, 1, mido.Message("program_change", channel=ch, program=prog)))
            for cc, val in ((91, rev), (93, cho), (7, vol), (10, pan)):
                msgs.append((t0, 1, mido.Message("control_change", channel=ch, control=cc, value=val)))
        start = t0 + 0.5
        end = start
        for on, off, ch, pitch, vel in events:
            if not 0 <= pitch <= 127:
                continue
            msgs.append((start + on, 3, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            msgs.append((start + off, 2, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
            end = max(end, start + off)
        spans.append((start, end))
        t0 = end + gap
    msgs.sort(key=lambda m: (m[0], m[1]))
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))
    now = 0
    for t, _, msg in msgs:
        tick = int(round(t * ticks_per_s))
        tr.append(msg.copy(time=tick - now))
        now = tick
    return mid, spans


def _render_batch(mid, spans, soundfont: str) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        mid.save(f"{tmp}/in.mid")
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(SR), "-F", f"{tmp}/out.wav", soundfont,
                        f"{tmp}/in.mid"], check=True, capture_output=True)
        audio, _ = sf.read(f"{tmp}/out.wav", always_2d=True, dtype="float32")
    out = []
    for start, end in spans:
        a, b = int(start * SR), int((end + 1.0) * SR)  # keep the release tail
        seg = audio[a:b].T
        out.append(np.ascontiguousarray(seg))
    return out


def _biquad(kind: str, f0: float, gain_db: float, q: float = 0.7) -> np.ndarray:
    """RBJ cookbook biquad as one SOS row."""
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / SR
    alpha = np.sin(w0) / (2 * q)
    c = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * c, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * c, 1 - alpha / a_]
    else:
        sa = 2 * np.sqrt(a_) * alpha
        if kind == "low":
            b = [a_ * ((a_ + 1) - (a_ - 1) * c + sa), 2 * a_ * ((a_ - 1) - (a_ + 1) * c), a_ * ((a_ + 1) - (a_ - 1) * c - sa)]
            a = [(a_ + 1) + (a_ - 1) * c + sa, -2 * ((a_ - 1) + (a_ + 1) * c), (a_ + 1) + (a_ - 1) * c - sa]
        else:
            b = [a_ * ((a_ + 1) + (a_ - 1) * c + sa), -2 * a_ * ((a_ - 1) + (a_ + 1) * c), a_ * ((a_ + 1) + (a_ - 1) * c - sa)]
            a = [(a_ + 1) - (a_ - 1) * c + sa, 2 * ((a_ - 1) - (a_ + 1) * c), (a_ + 1) - (a_ - 1) * c - sa]
    return np.r_[np.array(b) / a[0], np.array(a) / a[0]][None, :]


def master(audio: np.ndarray, seed: int) -> np.ndarray:
    """EQ (shelves + a bell), RMS compression, a little convolution reverb, then level."""
    rng = np.random.default_rng(seed)
    sos = np.concatenate([_biquad("low", rng.uniform(80, 250), rng.uniform(-6, 6)),
                          _biquad("high", rng.uniform(2500, 8000), rng.uniform(-6, 6)),
                          _biquad("peak", rng.uniform(300, 3000), rng.uniform(-6, 6), rng.uniform(0.5, 2))])
    x = sosfilt(sos, audio, axis=1).astype(np.float32)
    # compression: RMS per 256-sample block, ratio 2–4 above a threshold 6–18 dB under the
    # loudest block, ~50 ms release, gain interpolated back to the samples
    n = x.shape[1]
    blocks = np.pad(x, ((0, 0), (0, -n % 256))).reshape(2, -1, 256)
    env_db = 10 * np.log10(lfilter([0.3], [1, -0.7], np.mean(blocks ** 2, axis=(0, 2))) + 1e-12)
    thresh = env_db.max() - rng.uniform(6, 18)
    ratio = rng.uniform(2, 4)
    gain_db = -np.clip(env_db - thresh, 0, None) * (1 - 1 / ratio)
    gain_db = lfilter([0.1], [1, -0.9], gain_db - gain_db[0]) + gain_db[0]
    gain = 10 ** (np.interp(np.arange(n), np.arange(gain_db.size) * 256 + 128, gain_db) / 20)
    x = (x * gain).astype(np.float32)
    if rng.random() < 0.6:  # a room: exponentially decaying noise, RT60 0.3–1.5 s
        rt60 = rng.uniform(0.3, 1.5)
        n = int(rt60 * SR)
        t = np.arange(n) / SR
        ir = rng.standard_normal((2, n)) * np.exp(-6.9 * t / rt60)
        ir /= np.sqrt(np.sum(ir ** 2, axis=1, keepdims=True))
        wet = np.stack([oaconvolve(x[c].astype(np.float32), ir[c].astype(np.float32))[: x.shape[1]] for c in range(2)])
        x = x + rng.uniform(0.1, 0.3) * wet
    peak = float(np.abs(x).max()) or 1.0
    return (x * (10 ** (-rng.uniform(0.3, 6) / 20) / peak)).astype(np.float32)


class CorpusExhausted(ValueError):
    """A planned track found no piece left in its style's corpus (every one taken by earlier tracks)."""


def require_pieces(tracks: list[dict]) -> None:
    """Refuse, before anything is rendered, tracks the corpus had no pieces left for (stop 80: the
    plan's 328th track, a quartet, has none, and its render failed deep inside the worker pool)."""
    empty = [f"{t['id']} ({t['style']})" for t in tracks if not t["pieces"]]
    if empty:
        raise CorpusExhausted(f"the corpus has no pieces left for track{'s' if len(empty) > 1 else ''} "
                              f"{', '.join(empty)}: ask for fewer tracks")


def take_usable(tracks: list[dict], usable: int) -> list[dict]:
    """The first `usable` of `tracks` the corpus had pieces for, in order (stop 81: holdout4's
    block starts past where the quartets ran out); refused (`CorpusExhausted`) if there are fewer."""
    kept = [t for t in tracks if t["pieces"]]
    if len(kept) < usable:
        span = f"{tracks[0]['id']}–{tracks[-1]['id']}" if tracks else "(none)"
        raise CorpusExhausted(f"tracks {span} have {len(kept)} the corpus has pieces for, {usable} asked: "
                              "ask for fewer")
    return kept[:usable]


def build_tracks(n_tracks: int, seed: int, min_s: float, max_s: float, workers: int = 2,
                 first: int = 0, usable: int | None = None) -> list[dict]:
    """Render (or load from the cache) `n_tracks` mastered tracks: dicts with id, style,
    soundfont, pieces, audio (int16 [2, n] at 44.1 kHz). With `first`, only tracks `first`… are
    rendered and returned: the ones before are still planned (a track's pieces depend on which
    pieces earlier tracks took), but a split of later tracks need not render them. A track the
    corpus has no pieces left for is refused before any render (`CorpusExhausted`); with
    `usable`, such tracks are left out instead and the first `usable` of the others are rendered
    (refused if there are fewer): a held-out block of tracks past where a style ran out."""
    soundfonts.require(SOUNDFONTS)
    plans = _plan_tracks(n_tracks, seed, min_s, max_s)
    _prefetch(plans, workers)
    used: set[str] = set()
    tracks = []
    for plan in plans:
        pieces = _fill_pieces(plan, used)
        tag = hashlib.sha1(json.dumps([plan["seed"], plan["soundfont"], plan["seconds"], plan["bpm"],
                                       [r for r, _ in pieces]]).encode()).hexdigest()[:16]
        tracks.append({"id": plan["id"], "style": plan["style"], "soundfont": Path(plan["soundfont"]).stem,
                       "pieces": [r for r, _ in pieces], "plan": plan, "parts": pieces,
                       "file": CACHE / "audio" / f"{tag}.flac"})
    tracks = tracks[first:] if usable is None else take_usable(tracks[first:], usable)
    require_pieces(tracks)
    todo = [t for t in tracks if not t["file"].exists()]
    batches = []
    for sf2 in SOUNDFONTS:
        mine = [t for t in todo if t["plan"]["soundfont"] == sf2]
        for i in range(0, len(mine), 8):
            batches.append((sf2, mine[i:i + 8]))

    for t in tracks:
        del t["plan"]["pool"]
    jobs = [(sf2, [(t["plan"], t["parts"], t["file"]) for t in group]) for sf2, group in batches]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_render_job, jobs))
    for t in tracks:
        audio, _ = sf.read(t["file"], always_2d=True, dtype="int16")
        t["audio"] = np.ascontiguousarray(audio.T)
        del t["parts"]
    return tracks


#: Pieces parsed ahead per track of a style (tunes and chorales are short, several make a track).
PIECES_PER_TRACK = {"fiddle": 6, "oneills": 6, "folk": 6, "chorale": 4}


def _prefetch(plans: list[dict], workers: int) -> None:
    """Parse (in parallel) the pieces the tracks will probably use, so `_fill_pieces` mostly
    reads the cache; music21 parsing is the slow part of a first run."""
    want: list[str] = []
    for style in STYLES:
        mine = [pl for pl in plans if pl["style"] == style]
        if mine:
            want += mine[0]["pool"][: len(mine) * PIECES_PER_TRACK.get(style, 2)]
    todo = [ref for ref in want if not (CACHE / "events" / f"{hashlib.sha1(ref.encode()).hexdigest()[:16]}.json").exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_piece_events, todo, chunksize=4))


def _render_job(job) -> None:
    sf2, group = job
    midis = [_track_midi(plan, parts) for plan, parts, _ in group]
    mid, spans = _batch_midi(midis)
    for (plan, _, file), audio in zip(group, _render_batch(mid, spans, sf2)):
        out = master(audio[:, : int(plan["seconds"] * SR)], plan["seed"] + 1)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.flac")
        sf.write(tmp, out.T, SR, subtype="PCM_16")
        os.replace(tmp, file)


#: Roles of consecutive blocks of len(STYLES) tracks (one per style), cycled: 40 % test catalog,
#: 20 % calibration catalog, 20 % test non-catalog, 20 % calibration non-catalog.
ROLE_CYCLE = (("test", True), ("calibration", True), ("test", False), ("test", True), ("calibration", False))


def assign_roles(tracks: list[dict]) -> None:
    for t in tracks:
        split, catalog = ROLE_CYCLE[(t["id"] // len(STYLES)) % len(ROLE_CYCLE)]
        t["split"], t["catalog"] = split, catalog


# ------------------------------------------------------------------------------------------
# queries
# ------------------------------------------------------------------------------------------
SINGLE = ("mp3_full", "excerpt_30s", "excerpt_15s", "excerpt_8s", "gain_-12dB", "noise_10dB", "mono_22k",
          "speed_+3%")
MIXES = ("mix_equal", "mix_minus6", "under_12", "crossfade")
NON_CONDITIONS = ("mp3_full", "excerpt_15s", "noise_10dB", "mix_equal", "under_12")
MIX_SECONDS = 15.0


def plan_queries(tracks: list[dict], rng: np.random.Generator, mixes_per_track: int) -> list[dict]:
    """Query specs (no audio yet): per catalog track the single-song transforms and
    `mixes_per_track` of each mixture; per non-catalog track a few queries that must match
    nothing. Partners come from the same split."""
    specs = []
    by = {(s, c): [t for t in tracks if t["split"] == s and t["catalog"] == c]
          for s in ("calibration", "test") for c in (True, False)}
    dur = {t["id"]: t["audio"].shape[1] / SR for t in tracks}

    def start(tid, secs):
        return float(rng.uniform(0, max(0.0, dur[tid] - secs)))

    def other(pool, not_id):
        choices = [t["id"] for t in pool if t["id"] != not_id]
        return int(rng.choice(choices))

    for t in tracks:
        split, tid = t["split"], t["id"]
        cats, nons = by[(split, True)], by[(split, False)]
        if t["catalog"]:
            for cond in SINGLE:
                secs = {"excerpt_30s": 30, "excerpt_8s": 8, "mono_22k": 30, "speed_+3%": 30}.get(cond, 15)
                if cond == "mp3_full":
                    parts = [(tid, 0.0, dur[tid], 0.0)]
                else:
                    parts = [(tid, start(tid, secs), secs, 0.0)]
                specs.append({"cond": cond, "split": split, "catalog": True, "truth": [tid], "parts": parts})
            for _ in range(mixes_per_track):
                b, n = other(cats, tid), other(nons, -1)
                m = MIX_SECONDS
                specs.append({"cond": "mix_equal", "split": split, "catalog": True, "truth": [tid, b],
                              "parts": [(tid, start(tid, m), m, 0.0), (b, start(b, m), m, 0.0)]})
                specs.append({"cond": "mix_minus6", "split": split, "catalog": True, "truth": [tid],
                              "parts": [(tid, start(tid, m), m, 0.0), (n, start(n, m), m, -6.0)]})
                n = other(nons, -1)
                specs.append({"cond": "under_12", "split": split, "catalog": True, "truth": [tid],
                              "parts": [(tid, start(tid, m), m, -12.0), (n, start(n, m), m, 0.0)]})
                b = other(cats, tid)
                specs.append({"cond": "crossfade", "split": split, "catalog": True, "truth": [tid, b],
                              "parts": [(tid, start(tid, 16), 16, 0.0), (b, start(b, 16), 16, 0.0)]})
        else:
            for cond in NON_CONDITIONS:
                if cond == "mp3_full":
                    parts = [(tid, 0.0, dur[tid], 0.0)]
                elif cond in ("excerpt_15s", "noise_10dB"):
                    parts = [(tid, start(tid, 15), 15, 0.0)]
                else:
                    n = other(nons, tid)
                    parts = [(tid, start(tid, 15), 15, 0.0 if cond == "mix_equal" else -12.0), (n, start(n, 15), 15, 0.0)]
                specs.append({"cond": cond, "split": split, "catalog": False, "truth": [], "parts": parts})
    return specs


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-9)


def render_query(spec: dict, audio_of, rng: np.random.Generator):
    """(audio float32 [2, n] or MP3 bytes, sample rate) for a query spec."""
    clips = []
    for tid, st, secs, _ in spec["parts"]:
        a = audio_of(tid)
        i = int(st * SR)
        clips.append(a[:, i:i + int(secs * SR)].astype(np.float32) / 32768)
    cond = spec["cond"]
    if cond == "crossfade":  # 12 s of A, a 4 s equal-power crossfade, 12 s of B
        a, b = clips
        a, b = a * (_rms(b) / _rms(a)) ** 0.5, b * (_rms(a) / _rms(b)) ** 0.5
        fade = int(4 * SR)
        w = np.linspace(0, np.pi / 2, fade, dtype=np.float32)
        mid = a[:, -fade:] * np.cos(w) + b[:, :fade] * np.sin(w)
        x = np.concatenate([a[:, :-fade], mid, b[:, fade:]], axis=1)
    elif len(clips) == 2:
        (_, _, _, ga), (_, _, _, gb) = spec["parts"]
        n = min(c.shape[1] for c in clips)
        a, b = clips[0][:, :n], clips[1][:, :n]
        ref = max(_rms(a), _rms(b))  # levels are relative RMS
        x = a * (ref / _rms(a)) * 10 ** (ga / 20) + b * (ref / _rms(b)) * 10 ** (gb / 20)
    else:
        x = clips[0]
    if cond == "gain_-12dB":
        x = x * 10 ** (-12 / 20)
    elif cond == "noise_10dB":
        noise = rng.standard_normal(x.shape).astype(np.float32)
        x = x + noise * (_rms(x) / _rms(noise)) * 10 ** (-10 / 20)
    if cond != "gain_-12dB":
        x = x * min(1.0, 0.95 / max(float(np.abs(x).max()), 1e-9))
    if cond == "mono_22k":
        return resample_poly(x.mean(axis=0), 1, 2).astype(np.float32)[None], SR // 2
    if cond == "speed_+3%":  # turntable-style: 3 % faster and 3 % higher (100 samples played as 97)
        return resample_poly(x, 97, 100, axis=1).astype(np.float32), SR
    if cond == "mp3_full":
        return cached_mp3(spec["parts"][0][0], x), SR
    return x.astype(np.float32), SR


def cached_mp3(tag, audio: np.ndarray) -> bytes:
    """MP3 of a whole track, cached (LAME runs at ~30x real time here)."""
    path = CACHE / "mp3" / f"{_STATE.get('tags', {}).get(tag, tag)}.mp3"
    if path.exists():
        return path.read_bytes()
    data = mp3_bytes(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def write_query(folder: Path, name: str, audio, rate: int) -> Path:
    if isinstance(audio, bytes):
        path = folder / f"{name}.mp3"
        path.write_bytes(audio)
    else:
        path = folder / f"{name}.wav"
        sf.write(path, np.clip(audio, -1, 1).T, rate, subtype="PCM_16")
    return path


def decode_blocks(path):
    """The PCM `fingerprint.scan` fingerprints: 11025 Hz mono s16, in ~4 s blocks."""
    from fingerprint.scan import BLOCK, FP_RATE
    from sharedcore.media import decode_mono

    with av.open(str(path)) as container:
        yield from decode_mono(container, container.streams.audio[0], FP_RATE, BLOCK)


def landmark_query(path, index: lm.LandmarkIndex, params: lm.LandmarkParams):
    """Decode + extract + match: (matches, rejected, seconds of audio)."""
    ex = lm.LandmarkExtractor("query")
    n = 0
    for block in decode_blocks(path):
        n += block.size
        ex.feed(block)
    h, t = ex.finish()
    pmap = ex.peak_map()
    matches, rejected = lm.match_landmarks(index.lookup, h, t, params, peaks=index.peaks_of, query_map=pmap)
    return matches, rejected, n / 11025, h.size, pmap


# ------------------------------------------------------------------------------------------
# the run (worker state is set before the pool forks)
# ------------------------------------------------------------------------------------------
_STATE: dict = {}
#: Collect every candidate (thresholds applied after calibration). The shipped bars decide
#: which candidates are accepted while matching, and so which may explain shorter ones away
#: (`landmarks._explains`); a calibration far from them would make that slightly inexact.
COLLECT = lm.LandmarkParams(rejected=1000)


def _run_query(job):
    i, spec, seed = job
    from fingerprint.matcher import identify_speeds
    from fingerprint.scan import QUERY_VARIANTS, scan_audio

    tracks = _STATE["tracks"]
    audio, rate = render_query(spec, lambda tid: tracks[tid]["audio"], np.random.default_rng(seed))
    folder = Path(_STATE["tmp"]) / f"w{os.getpid()}"
    folder.mkdir(exist_ok=True)
    path = write_query(folder, f"q{i}", audio, rate)
    t0 = time.perf_counter()
    matches, rejected, secs, n_hashes, pmap = landmark_query(path, _STATE["lm_index"], COLLECT)
    t1 = time.perf_counter()
    cands = [m.as_dict() | {"gates": _gates(m)} for m in matches + rejected]
    cp, cp_cands, alignment = [], [], {}
    if _STATE["chromaprint"] is not None:
        scan = scan_audio(str(path), speed_variants=QUERY_VARIANTS)
        found: list = []
        cp_m = identify_speeds(_STATE["chromaprint"], scan.variants, candidates=found)
        index = _STATE["lm_index"]
        cp_m, checks = align_chromaprint(cp_m, index.peaks_of, pmap, good_enough=FusionParams().corroborate_score)
        cp = [m.as_dict() for m in cp_m]
        cp_cands = [c.as_dict() for c in found]
        alignment = {k: (v.as_dict() if v is not None else None) for k, v in checks.items()}
    t2 = time.perf_counter()
    path.unlink()
    return {"i": i, "cond": spec["cond"], "split": spec["split"], "catalog": spec["catalog"], "truth": spec["truth"],
            "seconds": secs, "query_hashes": n_hashes, "landmarks": cands, "chromaprint": cp, "cp_candidates": cp_cands,
            "alignment": alignment,
            "lm_ms": (t1 - t0) * 1000, "cp_ms": (t2 - t1) * 1000}


def _gates(m: lm.LandmarkMatch) -> bool:
    """Everything but the score threshold (which calibration chooses)."""
    p = lm.LandmarkParams()
    return m.votes >= p.min_votes and m.duration_s >= p.min_seconds and m.vote_seconds >= p.min_vote_seconds


def _pct(xs, q):
    xs = sorted(xs)
    return float(xs[int(round(q * (len(xs) - 1)))]) if xs else float("nan")


def _match(c: dict) -> lm.LandmarkMatch:
    return lm.LandmarkMatch(**{k: v for k, v in c.items() if k != "gates"})


def _accepted(c: dict, acc: lm.LandmarkParams) -> bool:
    """Whether a collected candidate clears `acc`'s acceptance (score bar for its segment's
    length, votes, vote seconds, segment length)."""
    return acc.accepts(_match(c))


def _fused(r: dict, acc: lm.LandmarkParams, fusion: FusionParams):
    """The product's verdict on one query (fingerprint.fusion.fuse, as the upload path runs it)."""
    lm_m, lm_r = [], []
    for c in r["landmarks"]:
        (lm_m if _accepted(c, acc) else lm_r).append(_match(c))
    alignment = {int(k): (lm.LandmarkMatch(**v) if v is not None else None) for k, v in r["alignment"].items()}
    return fuse([Match(**m) for m in r["chromaprint"]], [Candidate(**c) for c in r["cp_candidates"]], lm_m, lm_r,
                landmarks_ran=True, cp_params=MatchParams(), lm_params=acc, params=fusion, alignment=alignment)


def _decide(results: list[dict], acc: lm.LandmarkParams, fusion: FusionParams | None = None) -> None:
    """Per query: keys reported by landmarks at `acc`'s bars, by Chromaprint, their union, and
    the product's fused verdict (present, and suspected: the job would wait for review)."""
    fusion = fusion or FusionParams()
    for r in results:
        r["lm_keys"] = {c["key"] for c in r["landmarks"] if _accepted(c, acc)}
        r["cp_keys"] = {c["key"] for c in r["chromaprint"]}
        r["union_keys"] = r["lm_keys"] | r["cp_keys"]
        verdict = _fused(r, acc, fusion)
        r["product_keys"] = set(verdict.present)
        r["suspect_keys"] = set(verdict.suspects)
        r["decided_by"] = {k: v["decided_by"] for k, v in verdict.present.items()}


def _review_table(results: list[dict]) -> dict:
    """How often the product would send a job to review: queries with a suspect that is not
    in them (friction for a licensed producer; every such query is a false review), and catalog
    recordings missed by the acceptance but caught as suspects (the review's purpose)."""
    out: dict = {}
    for cond in SINGLE + MIXES:
        rs = [r for r in results if r["cond"] == cond]
        if not rs:
            continue
        false_review = sum(1 for r in rs if r["suspect_keys"] - set(r["truth"]))
        missed = [(r, k) for r in rs for k in r["truth"] if k not in r["product_keys"]]
        caught = sum(1 for r, k in missed if k in r["suspect_keys"])
        out[cond] = {"queries": len(rs), "false_review": false_review, "missed": len(missed),
                     "missed_caught_by_review": caught}
    return out


def _table(results: list[dict], chromaprint: bool) -> dict:
    """Recall per condition (catalog queries) and wrong recordings (every query)."""
    out: dict = {"recall": {}, "wrong": {}, "queries": len(results)}
    matchers = ("landmarks", "chromaprint", "union", "product") if chromaprint else ("landmarks",)
    for name in matchers:
        key = {"landmarks": "lm_keys", "chromaprint": "cp_keys", "union": "union_keys", "product": "product_keys"}[name]
        rec: dict = {}
        wrong = []
        for r in results:
            truth = set(r["truth"])
            if r["catalog"]:
                rec.setdefault(r["cond"], []).append(truth <= r[key])
            for k in r[key] - truth:
                wrong.append({"cond": r["cond"], "catalog_query": r["catalog"], "truth": r["truth"], "found": k})
        out["recall"][name] = {c: round(float(np.mean(v)), 4) for c, v in rec.items()}
        out["wrong"][name] = {"count": len(wrong), "examples": wrong[:10]}
    out["per_condition_queries"] = {c: sum(1 for r in results if r["catalog"] and r["cond"] == c)
                                    for c in SINGLE + MIXES}
    return out


def _margin(results: list[dict], acc: lm.LandmarkParams) -> dict:
    """Per segment-length band (shorter than `long_seconds`, and at least that): the highest
    wrong candidate's score, the lowest true one found, and the bar."""
    out = {}
    def is_long(c):
        return c["duration_s"] >= acc.long_seconds and c["presence"] >= acc.long_min_presence

    for band, in_band in (("short", lambda c: not is_long(c)), ("long", is_long)):
        wrong = [c["score"] for r in results for c in r["landmarks"]
                 if c["gates"] and in_band(c) and c["key"] not in r["truth"]]
        found = [c["score"] for r in results for c in r["landmarks"]
                 if c["key"] in r["truth"] and in_band(c) and _accepted(c, acc)]
        bar = acc.acceptance(acc.long_seconds, 1.0) if band == "long" else acc.min_score
        out[band] = {"max_wrong_score": round(max(wrong, default=0.0), 4),
                     "min_true_score_found": round(min(found, default=0), 4), "threshold": round(bar, 4)}
    # the presence criterion's own margin: the most of a recording's peaks any wrong candidate
    # over a long segment held (at a score that would otherwise pass the long bar)
    out["long"]["max_wrong_presence"] = round(max(
        (c["presence"] for r in results for c in r["landmarks"] if c["gates"] and c["key"] not in r["truth"]
         and c["duration_s"] >= acc.long_seconds and c["score"] >= acc.acceptance(acc.long_seconds, 1.0)),
        default=0.0), 3)
    true_all = []
    for r in results:
        found_keys = {c["key"] for c in r["landmarks"] if c["key"] in r["truth"] and _accepted(c, acc)}
        true_all += [k in found_keys for k in r["truth"]]
    out["true_below_threshold"] = int(sum(not f for f in true_all))
    out["true_total"] = len(true_all)
    return out


def _index_stats(refs: list[tuple], seconds: float, query_hashes: int, query_seconds: float, hits_per_hash: float,
                 index: lm.LandmarkIndex) -> dict:
    n_hashes = sum(r[1].size for r in refs)
    n_peaks = sum(r[3].size for r in refs)
    tonal = sum(int(((r[3] & lm.PEAK_TONAL_BIT) != 0).sum()) for r in refs)
    counts = index.value_counts()
    p = counts / counts.sum()
    bytes_per_s = (4 * n_hashes + 4 * n_peaks) / seconds  # a large (bucketed) segment: 4 B per hash (one uint32 posting)
    out = {"reference_seconds": round(seconds, 1), "ref_peaks_per_s": round(n_peaks / seconds, 1),
           "ref_tonal_peaks_per_s": round(tonal / seconds, 1), "ref_hashes_per_s": round(n_hashes / seconds, 1),
           "query_hashes_per_s": round(query_hashes / query_seconds, 1),
           "bytes_per_reference_second": round(bytes_per_s, 1),
           "hash_bits": lm.F_BITS + lm.DF_BITS + lm.DT_BITS, "hash_entropy_bits": round(float(-(p * np.log2(p)).sum()), 2),
           "hits_per_query_hash": round(hits_per_hash, 3), "hits_per_hash_bound": lm.HITS_PER_HASH,
           "index_entries": index.entries}
    for n_rec in (10_000, 100_000):  # 200 s per recording, hits grow with the index
        scale = n_rec * 200 / seconds
        out[f"at_{n_rec}"] = {"index_bytes": int(bytes_per_s * 200 * n_rec),
                              "hits_per_15s_query_uncapped": int(hits_per_hash * scale * query_hashes / query_seconds * 15)}
    return out


def calibrate_landmarks(cal: list[dict], margin: float, long_seconds: float = lm.LandmarkParams().long_seconds
                        ) -> lm.LandmarkParams:
    """The landmark bars from the calibration split only: `min_score` just above every wrong
    candidate (that passes the other gates), `long_min_score` just above every wrong candidate
    whose segment lasts `long_seconds` or more, whatever its presence (`long_min_presence` is a
    fixed share, not calibrated: see `LandmarkParams`)."""
    wrong = [c for r in cal for c in r["landmarks"] if c["gates"] and c["key"] not in r["truth"]]
    min_score = min(0.99, max((c["score"] for c in wrong), default=0.0) + margin)
    long_min = min(min_score, max((c["score"] for c in wrong if c["duration_s"] >= long_seconds), default=0.0) + margin)
    return lm.LandmarkParams(min_score=round(min_score, 4), long_min_score=round(long_min, 4), long_seconds=long_seconds,
                             long_min_presence=lm.LandmarkParams().long_min_presence)


def calibrate_fusion(cal: list[dict], acc: lm.LandmarkParams, review_rate: float) -> FusionParams:
    """Fusion thresholds from the calibration split only.

    - landmark review score: the lowest score at which at most `review_rate` of calibration
      queries would get a suspect that is not in them (never above the acceptance score);
    - corroborate_score: a Chromaprint match needs the landmark alignment check to score above
      every wrong Chromaprint match's check on the calibration split (at least 0.30)."""
    base = FusionParams()
    worst = []
    for r in cal:
        scores = [c["score"] for c in r["landmarks"] if c["key"] not in r["truth"] and c["votes"] >= base.landmark_min_votes
                  and c["vote_seconds"] >= base.landmark_min_vote_seconds and c["duration_s"] >= base.landmark_min_seconds
                  and not _accepted(c, acc)]
        worst.append(max(scores, default=0.0))
    review = min(acc.min_score, _pct(worst, 1 - review_rate) + 0.01) if worst else acc.min_score
    wrong_checks = [(v or {}).get("score", 0.0) for r in cal for k, v in r["alignment"].items()
                    if int(k) not in r["truth"]]
    corroborate = min(0.9, max(0.30, max(wrong_checks, default=0.0) + 0.02))
    return FusionParams(landmark_review_score=round(review, 4), corroborate_score=round(corroborate, 4),
                        reject_below=min(base.reject_below, corroborate))


def at_shipped_defaults(test: list[dict], chromaprint: bool = True) -> dict:
    """The test split judged at the thresholds the product ships with (LandmarkParams and
    FusionParams defaults = the settings' defaults, chosen on earlier runs' calibration splits),
    not at this run's own calibration: what a deployment with default settings would decide."""
    _decide(test, lm.LandmarkParams(), FusionParams())
    table = _table(test, chromaprint)
    out = {"landmark_min_score": lm.LandmarkParams().min_score, "landmark_long_min_score": lm.LandmarkParams().long_min_score,
           "landmark_review_score": FusionParams().landmark_review_score,
           "recall": table["recall"], "wrong": {k: v["count"] for k, v in table["wrong"].items()},
           "wrong_examples": {k: v["examples"][:3] for k, v in table["wrong"].items() if v["count"]}}
    if chromaprint:
        out["review"] = _review_table(test)
    return out


def _decided_by_counts(results: list[dict]) -> dict:
    out: dict = {}
    for r in results:
        for k, by in r["decided_by"].items():
            if k in r["truth"]:
                out.setdefault(r["cond"], {}).setdefault(by, 0)
                out[r["cond"]][by] += 1
    return out


def product_query(path, cp_indexes, index: lm.LandmarkIndex, params: lm.LandmarkParams, fusion: FusionParams,
                  stages: dict | None = None):
    """What an upload costs: one decoding pass (Chromaprint at the query's speed variants +
    landmark print), both matchers (Chromaprint against the catalog at every reference speed:
    `cp_indexes`, see `chromaprint_indexes`), fusion. `stages`, when given, gets each stage's
    wall time appended (ms; the scan's CPU time too, all threads), so the figure can be taken
    apart."""
    from fingerprint.matcher import identify_speeds
    from fingerprint.scan import QUERY_VARIANTS, scan_audio

    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        if stages is not None:
            stages.setdefault(name, []).append((now - clock[0]) * 1000)
        clock[0] = now

    cpu0 = time.process_time()
    scan = scan_audio(str(path), speed_variants=QUERY_VARIANTS, landmarks="query")
    if stages is not None:
        stages.setdefault("scan_cpu", []).append((time.process_time() - cpu0) * 1000)
    lap("scan")
    found: list = []
    _, h, t, pmap = scan.landmarks
    chromaprint = partial(identify_speeds, cp_indexes, scan.variants, candidates=found)
    landmarks = partial(lm.match_landmarks, index.lookup, h, t, params, peaks=index.peaks_of, query_map=pmap)
    if _STATE.get("sequential_matchers"):  # as before stop 35, for comparison
        cp, (lm_m, lm_r) = chromaprint(), landmarks()
    else:  # as fingerprint.services.identify_query runs them
        cp, (lm_m, lm_r) = side_by_side(chromaprint, landmarks)
    lap("matchers")
    cp, alignment = align_chromaprint(cp, index.peaks_of, pmap, params, good_enough=fusion.corroborate_score)
    lap("alignment")
    verdict = fuse(cp, found, lm_m, lm_r, landmarks_ran=True, cp_params=MatchParams(), lm_params=params,
                   params=fusion, alignment=alignment)
    lap("fusion")
    return verdict


_BARS = ("min_score", "long_min_score", "long_seconds", "long_min_presence")


def chromaprint_indexes(catalog: list[dict]) -> list[tuple]:
    """The catalog's Chromaprint indexes as the product keeps them: (speed, index) at 1.0 and at
    every reference speed, from one scan of each reference (`fingerprint.matcher.speed_indexes`)."""
    from fingerprint.matcher import speed_indexes
    from fingerprint.scan import REFERENCE_SPEEDS, scan_audio

    return speed_indexes({t["id"]: scan_audio(str(t["file"]), reference_speeds=REFERENCE_SPEEDS) for t in catalog})


def judge(results: list[dict], args, with_chromaprint: bool) -> dict:
    """Thresholds from the calibration split, then every figure of the test split (at them and
    at the shipped defaults). `results` are the per-query candidates (`_run_query`, or a dump)."""
    cal = [r for r in results if r["split"] == "calibration"]
    test = [r for r in results if r["split"] == "test"]
    acc = calibrate_landmarks(cal, args.margin)
    fusion = calibrate_fusion(cal, acc, args.review_rate) if with_chromaprint else FusionParams()
    _decide(results, acc, fusion)
    summary = {
        "set": {"seconds_per_track": [60, 120], "mixes_per_track": args.mixes, "seed": args.seed,
                "splits": "thresholds chosen on 'calibration' queries (their own pieces); every figure under "
                          "'test' comes from test queries (other pieces); both catalogs are indexed together"},
        "landmark_params": {"extract": lm.DEFAULT.__dict__, "match": lm.LandmarkParams().__dict__},
        "calibrated_landmarks": {k: getattr(acc, k) for k in _BARS},
        "calibrated_fusion": fusion.__dict__,
        "module_default_landmarks": {k: getattr(lm.LandmarkParams(), k) for k in _BARS},
        "test": _table(test, with_chromaprint),
        "calibration": _table(cal, False),
        "margin_test": _margin(test, acc),
        "margin_calibration": _margin(cal, acc),
    }
    if with_chromaprint:
        summary["test"]["review"] = _review_table(test)
        summary["calibration"]["review"] = _review_table(cal)
        summary["test"]["decided_by"] = _decided_by_counts(test)
    summary["test_at_shipped_defaults"] = at_shipped_defaults(test, with_chromaprint)
    _decide(test, acc, fusion)
    return summary


def measure_latency(catalog: list[dict], index: lm.LandmarkIndex, cp_index, params: lm.LandmarkParams,
                    fusion: FusionParams, quick: bool = False, long_runs: int = 5) -> dict:
    """One query at a time: decode + extract + match (landmarks alone), and the product path
    (`product_query`): 15 s WAV excerpts and 4-minute MP3s of test catalog tracks."""
    tmp = scratch_dir("clearstem-mixlat-")
    lat: dict = {"15s_wav": [], "4min_mp3": [], "cp_15s_wav": [], "cp_4min_mp3": []}  # cp_*: the product path
    stages: dict = {"15s_wav": {}, "4min_mp3": {}}  # the product path's stages
    test_cat = [t for t in catalog if t["split"] == "test"]

    def timed(path, name: str) -> None:
        t0 = time.perf_counter()
        landmark_query(path, index, params)
        lat[name].append((time.perf_counter() - t0) * 1000)
        if cp_index is not None:
            t0 = time.perf_counter()
            product_query(path, cp_index, index, params, fusion, stages=stages[name])
            lat["cp_" + name].append((time.perf_counter() - t0) * 1000)

    for k in range(3 if quick else 20):
        t = test_cat[k % len(test_cat)]
        p = write_query(tmp, f"l{k}", t["audio"][:, SR * 20: SR * 35].astype(np.float32) / 32768, SR)
        timed(p, "15s_wav")
    for k in range(2 if quick else long_runs):
        parts = [test_cat[(k + j) % len(test_cat)]["audio"] for j in range(4)]
        long = np.concatenate(parts, axis=1)[:, : 240 * SR].astype(np.float32) / 32768
        p = write_query(tmp, f"long{k}", cached_mp3("long-" + "-".join(_STATE["tags"][test_cat[(k + j) % len(test_cat)]["id"]]
                                                                        for j in range(4)), long), SR)
        timed(p, "4min_mp3")
    out: dict = {}
    out["latency_ms"] = {k: {"p50": round(_pct(v, 0.5), 1), "p95": round(_pct(v, 0.95), 1), "n": len(v)}
                         for k, v in lat.items() if v}
    out["latency_stages_p50_ms"] = {name: {k: round(_pct(v, 0.5), 1) for k, v in st.items()}
                                    for name, st in stages.items() if st}
    # the machine's 1-minute load average when the latency runs ended: on a shared machine,
    # above its core count the figures are inflated by other work, not this code's
    out["latency_load_average"] = round(os.getloadavg()[0], 2)
    out["latency_note"] = ("landmarks: decode (PyAV, as fingerprint.scan) + extraction + matching against the "
                           "bench catalog; cp_*: the product path — one fingerprint.scan.scan_audio pass with "
                           "Chromaprint at the query's speed variants and the landmark print, both matchers "
                           "(Chromaprint against the catalog at every reference speed), fusion")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 tracks, one mixture of each kind per track (~2 min)")
    ap.add_argument("--tracks", type=int, default=160, help="tracks rendered (multiple of 40 keeps the role mix)")
    ap.add_argument("--mixes", type=int, default=2, help="mixtures of each kind per catalog track")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-chromaprint", action="store_true")
    ap.add_argument("--margin", type=float, default=0.02, help="added to the highest wrong score on calibration")
    ap.add_argument("--review-rate", type=float, default=0.02,
                    help="share of calibration queries the landmark review threshold may send to review wrongly")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mixtures.json")
    ap.add_argument("--dump", type=Path, default=None, help="also write every query's raw candidates (JSON)")
    ap.add_argument("--redecide", type=Path, default=None,
                    help="calibrate and decide again from a --dump (no audio: seconds, for changes to the decision "
                         "rules; no index or latency figures)")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the latency figures, at the shipped thresholds (render/load, index, measure)")
    ap.add_argument("--latency-runs", type=int, default=5, help="4-minute MP3 queries timed")
    ap.add_argument("--hits-per-hash", type=float, default=lm.HITS_PER_HASH or 0,
                    help="the landmark lookup's bound (CLEARSTEM_LANDMARK_HITS_PER_HASH; 0: none)")
    ap.add_argument("--sequential-matchers", action="store_true",
                    help="latency: Chromaprint, then landmarks (before stop 35) instead of side by side")
    args = ap.parse_args(argv)
    _STATE["sequential_matchers"] = args.sequential_matchers
    lm.HITS_PER_HASH = args.hits_per_hash or None  # before the query workers start (they inherit it)
    if args.redecide:
        summary = judge(json.loads(args.redecide.read_text()), args, with_chromaprint=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2, default=str))
        _print(summary)
        print(f"results: {args.out}")
        return json.loads(json.dumps(summary, default=str))
    if args.quick:
        args.tracks, args.mixes = 40, 1
    t_start = time.perf_counter()

    tracks = build_tracks(args.tracks, args.seed, 60, 120, workers=args.workers)
    assign_roles(tracks)
    t_render = time.perf_counter() - t_start
    by_id = {t["id"]: t for t in tracks}
    catalog = [t for t in tracks if t["catalog"]]

    # references: the same decode path as uploads
    t0 = time.perf_counter()
    refs = []
    for t in catalog:
        ex = lm.LandmarkExtractor("reference")
        for block in decode_blocks(t["file"]):
            ex.feed(block)
        h, tt = ex.finish()
        refs.append((t["id"], h, tt, ex.peaks()))
    index = lm.LandmarkIndex.build(refs)
    ref_seconds = sum(t["audio"].shape[1] / SR for t in catalog)
    t_lm_refs = time.perf_counter() - t0
    cp_index = None
    if not args.no_chromaprint:
        cp_index = chromaprint_indexes(catalog)
    t_refs = time.perf_counter() - t0

    if args.latency_only:
        _STATE.update(tags={t["id"]: Path(t["file"]).stem for t in tracks})
        summary = measure_latency(catalog, index, cp_index, lm.LandmarkParams(), FusionParams(), args.quick,
                                  args.latency_runs)
        print(json.dumps(summary, indent=2))
        return summary
    rng = np.random.default_rng(args.seed)
    specs = plan_queries(tracks, rng, args.mixes)
    jobs = [(i, s, args.seed * 100_003 + i) for i, s in enumerate(specs)]
    _STATE.update(tracks=by_id, lm_index=index, chromaprint=cp_index, tmp=str(scratch_dir("clearstem-mix-")),
                  tags={t["id"]: Path(t["file"]).stem for t in tracks})
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_run_query, jobs, chunksize=4))
    t_queries = time.perf_counter() - t0

    summary = judge(results, args, with_chromaprint=cp_index is not None)
    summary["set"] |= {"tracks": len(tracks), "styles": list(STYLES), "soundfonts": [Path(s).name for s in SOUNDFONTS],
                       "catalog": {s: sum(1 for t in catalog if t["split"] == s) for s in ("calibration", "test")},
                       "noncatalog": {s: sum(1 for t in tracks if not t["catalog"] and t["split"] == s)
                                      for s in ("calibration", "test")}}
    acc = lm.LandmarkParams(**summary["calibrated_landmarks"])
    fusion = FusionParams(**summary["calibrated_fusion"])

    # index figures (hits per query hash measured on 15 s queries of the bench)
    q15 = [r for r in results if r["cond"] == "excerpt_15s"]
    sample = q15[: 20]
    hits = qh = 0
    for r in sample:
        spec = specs[r["i"]]
        audio, rate = render_query(spec, lambda tid: by_id[tid]["audio"], np.random.default_rng(0))
        pcm = resample_poly(audio.mean(axis=0), 1, 4)
        h, _ = lm.landmarks(np.clip(pcm * 32768, -32768, 32767).astype(np.int16))
        hits += index.lookup(h)[0].size
        qh += h.size
    summary["index"] = _index_stats(refs, ref_seconds, sum(r["query_hashes"] for r in q15),
                                    sum(r["seconds"] for r in q15), hits / max(qh, 1), index)

    # latency, one query at a time: decode + extract + match (landmarks); scan + identify (Chromaprint)
    summary |= measure_latency(catalog, index, cp_index, acc, fusion, args.quick, args.latency_runs)
    summary["timing_s"] = {"render_or_load": round(t_render, 1), "references": round(t_refs, 1),
                           "landmark_references": round(t_lm_refs, 1), "queries": round(t_queries, 1),
                           "total": round(time.perf_counter() - t_start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, default=str))
    if args.dump:
        keep = ("i", "cond", "split", "catalog", "truth", "landmarks", "chromaprint", "cp_candidates", "alignment")
        args.dump.write_text(json.dumps([{k: r[k] for k in keep} for r in results], default=str))
    _print(summary)
    print(f"results: {args.out}")
    return json.loads(json.dumps(summary, default=str))


def _print(s: dict) -> None:
    st = s["set"]
    if "tracks" in st:  # not known when decided again from a dump
        print(f"{st['tracks']} tracks ({st['catalog']} catalog, {st['noncatalog']} non-catalog), music21 corpus "
              f"rendered with {', '.join(st['soundfonts'])}")
    print(f"calibrated landmark bars {s['calibrated_landmarks']}")
    test = s["test"]
    names = list(test["recall"])
    print(f"TEST split: {'condition':<13}" + "".join(f"{n:>13}" for n in names) + f"{'queries':>9}")
    for c in SINGLE + MIXES:
        if c in test["recall"]["landmarks"]:
            print(f"            {c:<13}" + "".join(f"{test['recall'][n].get(c, float('nan')):13.1%}" for n in names)
                  + f"{test['per_condition_queries'][c]:9d}")
    print("            wrong recordings (all test queries): "
          + ", ".join(f"{n} {test['wrong'][n]['count']}" for n in names) + f" of {test['queries']} queries")
    if "review" in test:
        print("            review (product): " + ", ".join(
            f"{c} {v['false_review']}/{v['queries']} false, {v['missed_caught_by_review']}/{v['missed']} missed caught"
            for c, v in test["review"].items() if v["false_review"] or v["missed"]) + " (others: none)")
        print(f"            calibrated fusion: {s['calibrated_fusion']}")
    if (d := s.get("test_at_shipped_defaults")) and "product" in d["recall"]:
        print(f"SHIPPED DEFAULTS (landmark min {d['landmark_min_score']}, long {d['landmark_long_min_score']}, "
              f"review {d['landmark_review_score']}), "
              "test split, product: " + ", ".join(f"{c} {v:.1%}" for c, v in d["recall"]["product"].items())
              + f"; wrong: {d['wrong']['product']}; false reviews: "
              + str(sum(v["false_review"] for v in d.get("review", {}).values())))
    mg = s["margin_test"]
    for band in ("short", "long"):
        b = mg[band]
        print(f"score margin (test, {band} segments): highest wrong {b['max_wrong_score']}, lowest true found "
              f"{b['min_true_score_found']}, bar {b['threshold']}"
              + (f"; highest presence of a wrong candidate over a long segment above that bar {b['max_wrong_presence']}"
                 if band == "long" else ""))
    print(f"  {mg['true_below_threshold']}/{mg['true_total']} true recordings not accepted")
    if "index" not in s:
        return
    ix = s["index"]
    print(f"references: {ix['ref_peaks_per_s']} peaks/s ({ix['ref_tonal_peaks_per_s']} tonal), {ix['ref_hashes_per_s']} "
          f"hashes/s, {ix['bytes_per_reference_second']} B per reference second; queries {ix['query_hashes_per_s']} "
          f"hashes/s; hash {ix['hash_bits']} bits, entropy {ix['hash_entropy_bits']} bits")
    for k, v in s["latency_ms"].items():
        print(f"latency {k:<12} p50 {v['p50']:7.1f} ms  p95 {v['p95']:7.1f} ms  (n={v['n']})")
    if "latency_load_average" in s:
        print(f"        (load average {s['latency_load_average']} on {os.cpu_count()} cores when they were measured)")
    for name, st in s.get("latency_stages_p50_ms", {}).items():
        print(f"product path {name} stages, p50 ms: " + ", ".join(f"{k} {v}" for k, v in st.items()))
    print(f"time: {s['timing_s']}")


if __name__ == "__main__":
    main()
