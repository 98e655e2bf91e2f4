"""EXPERIMENTAL DRAFT, in progress (issue 17). Mixture identification bench: MIDI from the music21 corpus, rendered by FluidSynth.

    .venv/bin/python -m bench.mixtures [--quick] [--catalog 100] [--noncatalog 50] [--seed 17]

Audio: pieces of the music21 corpus in several styles (Bach chorales, Palestrina masses,
Monteverdi madrigals, trecento/Josquin polyphony, Ryan's Mammoth and O'Neill's fiddle tunes,
Essen folk songs, Haydn/Mozart/Beethoven quartet movements). A *track* is one or more pieces of
one style played back to back (a chorale with its verses, a set of reels) for 60–120 s, with
random General MIDI programs per part, a tempo with changes, humanised timing and velocity,
sometimes a drum part, and FluidSynth's reverb/chorus sends; it is rendered with one of two
Debian soundfonts (MuseScore General Lite, TimGM6mb — never the GM soundfont reserved for
the held-out evaluation, nor any game-music package) and mastered (EQ, compression, reverb,
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
the speed grid + `fingerprint.matcher`), and their union. Latency: decode + landmark extraction
+ matching for a 15 s WAV and a 4-minute MP3 against the bench catalog.

Rendered audio is cached under var/bench-cache/mixtures (a rerun skips parsing and rendering).
Writes bench/results/mixtures.json and prints a summary.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter, oaconvolve, sosfilt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


SR = 44100
CACHE = ROOT / "var" / "bench-cache" / "mixtures"
# Only MuseScore General Lite and TimGM6mb: the soundfont reserved for the held-out evaluation, never.
SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "/usr/share/sounds/sf2/TimGM6mb.sf2")

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
                      "bpm": float(rng.uniform(lo, hi)), "soundfont": SOUNDFONTS[int(rng.integers(0, 2))],
                      "seed": int(rng.integers(0, 2**31)), "pool": pools[style]})
    return plans


def _fill_pieces(plan: dict, used: set[str]) -> list[tuple[str, list]]:
    """Pieces for a track until its duration is covered (at its base tempo)."""
    pieces, seconds = [], 0.0
    pool = plan["pool"]
    while seconds < plan["seconds"] and pool:
        ref = pool.pop(0)
        if ref in used:
            continue
        parts = _piece_events(ref)
        if not parts or sum(len(p) for p in parts) < 16:
            continue
        used.add(ref)
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


def build_tracks(n_tracks: int, seed: int, min_s: float, max_s: float, workers: int = 2) -> list[dict]:
    """Render (or load from the cache) `n_tracks` mastered tracks: dicts with id, style,
    soundfont, pieces, audio (int16 [2, n] at 44.1 kHz)."""
    plans = _plan_tracks(n_tracks, seed, min_s, max_s)
    used: set[str] = set()
    tracks = []
    for plan in plans:
        pieces = _fill_pieces(plan, used)
        tag = hashlib.sha1(json.dumps([plan["seed"], plan["soundfont"], plan["seconds"], plan["bpm"],
                                       [r for r, _ in pieces]]).encode()).hexdigest()[:16]
        tracks.append({"id": plan["id"], "style": plan["style"], "soundfont": Path(plan["soundfont"]).stem,
                       "pieces": [r for r, _ in pieces], "plan": plan, "parts": pieces,
                       "file": CACHE / "audio" / f"{tag}.flac"})
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
