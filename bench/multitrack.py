"""A multitrack test set the bench builds itself: MIDI it composes per stem, rendered by
FluidSynth with a General MIDI soundfont from Debian (`bench.soundfonts`), mixture = sum.

Not the held-out data (we never use the openttd-openmsx or simutrans-data packages).
"""
from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from bench.soundfonts import DEBIAN_PACKAGES, TIMGM6MB, require

# TimGM6mb: the soundfont the trained separator never sees in training (validation only, see
# separation.training.licences), so the separation bench scores it on an unseen instrument set.
# The GM soundfont Debian's fluidsynth recommends is reserved for the held-out evaluation and is
# never used here, not even as a fallback.
SOUNDFONTS = (TIMGM6MB,)
STEMS = ("vocals", "drums", "bass", "other")
VOICE_PROGRAMS = (52, 53, 54, 85)  # choir aahs, voice oohs, synth voice, lead voice
BASS_PROGRAMS = (32, 33, 34, 38, 39)
OTHER_PROGRAMS = ((0, 48), (4, 49), (24, 50), (1, 89), (16, 48), (25, 91))  # (chords, pad)
#: the first song seed of "the default set" every README figure quotes; other seeds are new songs of its kind
DEFAULT_SEED = 9000


def soundfont() -> str:
    return require(SOUNDFONTS)[0]


def _track(events, tempo, channel=0, program=None):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=tempo))
    if program is not None:
        tr.append(mido.Message("program_change", program=program, channel=channel))
    now = 0
    for tick, kind, note, vel in sorted(events, key=lambda e: (e[0], e[1] == "on")):
        tr.append(mido.Message(f"note_{kind}", note=note, velocity=vel, channel=channel, time=tick - now))
        now = tick
    return mid


def compose(seed: int, seconds: float):
    """Four MIDI files (one per stem) for one song."""
    rng = random.Random(seed)
    bpm = rng.randint(80, 150)
    tempo = mido.bpm2tempo(bpm)
    beat = 480
    beats = int(seconds * bpm / 60)
    root = rng.randint(40, 47)
    scale = [0, 2, 3, 5, 7, 8, 10] if rng.random() < 0.5 else [0, 2, 4, 5, 7, 9, 11]
    prog = [0, rng.choice([3, 5]), rng.choice([4, 5]), rng.choice([0, 3, 5])]
    ev = {s: [] for s in STEMS}

    def note(stem, start, dur, pitch, vel):
        ev[stem] += [(start, "on", pitch, vel), (start + max(dur, 1), "off", pitch, 0)]

    kick = {0, 8} | {rng.choice([6, 10, 14])}
    for step in range(beats * 4):  # 16ths
        t = step * beat // 4
        s = step % 16
        if s in kick:
            note("drums", t, beat // 4, 36, rng.randint(100, 120))
        if s in (4, 12):
            note("drums", t, beat // 4, 38, rng.randint(90, 115))
        if s % 2 == 0:
            note("drums", t, beat // 8, 42 if rng.random() < 0.85 else 46, rng.randint(50, 80))
    for bar in range(beats // 4 + 1):
        deg = prog[bar % 4]
        chord = [root + 12 + scale[(deg + k) % 7] for k in (0, 2, 4)]
        for k in range(8):
            if rng.random() < 0.85:
                note("bass", bar * 4 * beat + k * beat // 2, beat // 2 - 20, root + scale[deg % 7] - 12 + (12 if k % 4 == 3 else 0), 100)
        for pitch in chord:
            note("other", bar * 4 * beat, 4 * beat - 30, pitch + 12, 70)
    t = 0
    idx = rng.randint(0, 6)
    while t < beats * beat:
        dur = rng.choice([1, 1, 2, 2, 3, 4]) * beat // 2
        if rng.random() < 0.2:
            t += dur
            continue
        idx = max(0, min(13, idx + rng.randint(-2, 2)))
        note("vocals", t, dur - 40, root + 24 + scale[idx % 7] + 12 * (idx // 7), rng.randint(85, 110))
        t += dur
    chords_prog, pad_prog = rng.choice(OTHER_PROGRAMS)
    return {
        "drums": _track(ev["drums"], tempo, channel=9),
        "bass": _track(ev["bass"], tempo, program=rng.choice(BASS_PROGRAMS)),
        "vocals": _track(ev["vocals"], tempo, program=rng.choice(VOICE_PROGRAMS)),
        "other": _track(ev["other"], tempo, program=chords_prog),
    }


def render(mid: mido.MidiFile, rate: int, seconds: float, sf2: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        mid.save(f"{tmp}/in.mid")
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(rate), "-F", f"{tmp}/out.wav", sf2,
                        f"{tmp}/in.mid"], check=True, capture_output=True)
        audio, _ = sf.read(f"{tmp}/out.wav", always_2d=True, dtype="float32")
    n = int(seconds * rate)
    audio = audio.T[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def build_set(folder: Path, songs: int, seconds: float, rate: int = 44100, seed0: int = DEFAULT_SEED) -> list[dict]:
    if not shutil.which("fluidsynth"):
        raise SystemExit(f"fluidsynth not found: apt-get install {' '.join(DEBIAN_PACKAGES)}")
    sf2 = soundfont()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(songs):
        stems = {name: render(mid, rate, seconds, sf2) for name, mid in compose(seed0 + i, seconds).items()}
        peak = max(float(np.abs(sum(stems.values())).max()), 1e-9)
        stems = {k: v * (0.9 / peak) for k, v in stems.items()}
        mix = sum(stems.values())
        path = folder / f"song{i:02d}.wav"
        sf.write(path, mix.T, rate, subtype="FLOAT")
        out.append({"path": path, "stems": stems, "mixture": mix})
    return out
