"""A sung-syllable vocal line from espeak-ng (opt-in: `--espeak-vocals FRACTION`).

Each melody note becomes one syllable ("na", "la", "oh", "hey", short words) spoken by
espeak-ng's own formant voices (never the `mb/` MBROLA voices: their diphone databases are
non-commercial) with a flat pitch contour (SSML `range="0"`) chosen near the note (`-p`), then
resampled to the note's exact frequency, cut to its length and enveloped. The result is voice
with consonants, vowels and a human-like formant structure — robotic, but closer to singing than
a GM choir patch. Licence: see `licences.LICENCES["LicenseRef-espeak-ng-output"]`.

`--flite-vocals FRACTION` does the same with Flite's CMU voices (`sing(..., engine="flite")`):
statistical and diphone models built from recordings of real speakers (CMU ARCTIC's slt and awb,
Kal's diphones), under CMU's permissive licence (`LicenseRef-CMU-Flite`, commercial use allowed),
so the vocals stem hears human-derived voices whose licence lets the weights serve commercial
jobs. Flite holds a flat contour at the pitch asked for (`int_f0_target_mean` with a zero
`int_f0_target_stddev`: measured within 4 % for slt from 100 to 600 Hz, for awb and kal16 at
150 and 300 Hz; `rms` ignores it and is not used); the resampling fixes the rest. Weakness: the voices are 16 kHz, so
these vocals hold nothing above 8 kHz (no sibilance or air up there).
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from sharedcore.hashing import file_sha256

from .compose import PPQ, Composition

VOICES = ("en+f3", "en+f4", "en+f2", "en+m3", "en+m1", "en-us+f3", "en-us+m3", "en+klatt4")
SYLLABLES = ("naa", "laa", "daa", "ooh", "aah", "maa", "loo", "noo", "hey", "yeah", "oh", "mmm", "baby", "away",
             "tonight", "shine", "alone", "home", "fire", "rain")
_CACHE: dict[tuple, tuple[np.ndarray, float]] = {}


#: Flite voices that follow the pitch asked for (measured), and whether each is a man's (sung an
#: octave lower). Each is a shared library; the manifest pins the one used by its SHA-256.
FLITE_VOICES = {"slt": False, "awb": True, "kal16": True}
FLITE_WORDS = ("la", "na", "oh", "ah", "day", "love", "night", "away", "home", "fire", "rain", "shine",
               "baby", "yeah", "go", "free", "sky", "hold on", "my heart", "tonight")
FLITE_RATE = 16000
#: A source's `vocals.kind` for these: the manifest and the card's statement key on it.
FLITE_KIND = "Flite CMU voices singing words on the melody (separation.training.voice)"
_FLITE_LIBS: dict[str, dict] = {}


def available(engine: str = "espeak-ng") -> bool:
    return shutil.which("flite" if engine == "flite" else "espeak-ng") is not None


@functools.cache  # asked once per song; the installed engine does not change during a run
def version(engine: str = "espeak-ng") -> str:
    if engine == "flite":
        # `flite --version` exits 1 after printing "  version: flite-2.2-current Sep 2018 (http://...)"
        out = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
        if "version:" not in out:
            raise RuntimeError(f"flite --version printed no version: {out!r}")
        return out.split("version:")[1].split("(")[0].strip()
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("Data at")[0].strip()


def flite_voice_library(name: str) -> dict:
    """The shared library that holds a Flite voice, by file name and SHA-256 (what the manifest pins:
    another build of the voice is another input)."""
    if name not in _FLITE_LIBS:
        wanted = f"libflite_cmu_us_{name}.so.1"
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        paths = [line.split("=>")[-1].strip() for line in out.splitlines() if wanted in line]
        if not paths:
            raise RuntimeError(f"Flite voice {name} not found ({wanted}): apt-get install flite")
        path = Path(paths[0]).resolve()
        _FLITE_LIBS[name] = {"file": path.name, "sha256": file_sha256(path)}
    return _FLITE_LIBS[name]


def _f0(x: np.ndarray, sr: int, min_corr: float = 0.0) -> float:
    """Median autocorrelation pitch over voiced 40 ms frames (espeak's flat contour makes it stable).
    `min_corr` > 0 also skips frames whose best lag correlates less than that share of their energy
    (fricatives: Flite's words have more of them, and noise reads as a high pitch)."""
    fr = int(0.04 * sr)
    lo, hi = int(sr / 1100), int(sr / 60)
    out = []
    for i in range(0, len(x) - fr, fr):
        s = x[i:i + fr] - x[i:i + fr].mean()
        if np.sqrt(np.mean(s ** 2)) < 0.01:
            continue
        ac = np.correlate(s, s, "full")[fr - 1:][lo:hi]
        # the shortest lag within 10 % of the best one: a period's multiples correlate almost as well
        # (picking them would read the pitch an octave or more low)
        lag = int(np.nonzero(ac >= 0.9 * ac.max())[0][0])
        if min_corr and ac[lag] < min_corr * float(np.dot(s, s)):
            continue
        out.append(sr / (lo + lag))
    return float(np.median(out)) if out else 0.0


def _syllable(voice: str, p: int, text: str, speed: int) -> tuple[np.ndarray, float]:
    key = (voice, p, text, speed)
    if key not in _CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-p", str(p), "-s", str(speed), "-m", "-w", str(path),
                            f'<speak><prosody range="0">{text}</prosody></speak>'], check=True, capture_output=True)
            x, sr = sf.read(path, dtype="float64")
        if sr != 22050:
            raise RuntimeError(f"espeak-ng wrote {sr} Hz, expected 22050")
        nz = np.nonzero(np.abs(x) > 1e-3)[0]
        x = x[nz[0]:nz[-1] + 1] if len(nz) else x
        _CACHE[key] = (x, _f0(x, sr))
    return _CACHE[key]


def _flite_syllable(voice: str, hz: int, text: str, stretch: float) -> tuple[np.ndarray, float]:
    key = ("flite", voice, hz, text, stretch)
    if key not in _CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.wav"
            subprocess.run(["flite", "-voice", voice, "--setf", f"int_f0_target_mean={hz}", "--setf",
                            "int_f0_target_stddev=0", "--setf", f"duration_stretch={stretch}", "-t", text,
                            "-o", str(path)], check=True, capture_output=True)
            x, sr = sf.read(path, dtype="float64")
        if sr != FLITE_RATE:
            raise RuntimeError(f"flite wrote {sr} Hz, expected {FLITE_RATE}")
        nz = np.nonzero(np.abs(x) > 1e-3)[0]
        x = x[nz[0]:nz[-1] + 1] if len(nz) else x
        _CACHE[key] = (x, _f0(x, sr, min_corr=0.5))
    return _CACHE[key]


def sing(comp: Composition, n: int, rng: np.random.Generator, sr: int = 44100,
         engine: str = "espeak-ng") -> tuple[np.ndarray, dict]:
    """The composition's vocal melody as syllables from `engine` (espeak-ng or flite): mono
    float64 [n], and what was used."""
    if engine == "flite":
        return _sing_flite(comp, n, rng, sr)
    voice = str(rng.choice(VOICES))
    speed = int(rng.integers(70, 130))
    words = [str(w) for w in rng.choice(SYLLABLES, size=int(rng.integers(3, 8)), replace=False)]
    octave = -12 if "+m" in voice else 0  # male voices sing the line an octave lower
    out = np.zeros(n)
    for start, length, target, vel in _notes(comp, n, sr, octave):
        p = int(np.clip(round(np.log(target / 110) / np.log(310 / 110) * 99), 0, 99))
        x, f0 = _syllable(voice, p, str(rng.choice(words)), speed)
        if f0 <= 0:
            continue
        ratio = Fraction(2 * f0 / target).limit_denominator(200)  # 22.05 kHz -> 44.1 kHz and the pitch fix
        _place(out, resample_poly(x, ratio.numerator, ratio.denominator)[:length], start, vel, sr)
    return out, {"engine": version(), "voice": voice, "speed_wpm": speed, "syllables": words, "transpose": octave}


def _notes(comp: Composition, n: int, sr: int, octave: int):
    """(start sample, length in samples, frequency in Hz, velocity) of each vocal note that starts
    inside the `n` samples, transposed by `octave` semitones."""
    sec_per_tick = 60.0 / comp.bpm / PPQ
    for part in comp.stems["vocals"]:
        for tick, dur, pitch, vel in part.notes:
            start = int(max(tick, 0) * sec_per_tick * sr)
            length = int(dur * sec_per_tick * sr)
            if start < n and length > 0:
                yield start, length, 440.0 * 2 ** ((pitch + octave - 69) / 12), vel


def _place(out: np.ndarray, y: np.ndarray, start: int, vel: int, sr: int) -> None:
    """Add one sung note at `start`, faded in and out (no clicks where it is cut to the note)."""
    fade_in, fade_out = min(len(y), int(0.01 * sr)), min(len(y), int(0.04 * sr))
    env = np.ones(len(y))
    env[:fade_in] *= np.linspace(0, 1, fade_in)
    if fade_out:
        env[len(y) - fade_out:] *= np.linspace(1, 0, fade_out)
    y = y * env * (vel / 127)
    end = min(len(out), start + len(y))
    out[start:end] += y[: end - start]


def _sing_flite(comp: Composition, n: int, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict]:
    """Each note one word or syllable, asked of Flite at the note's pitch (rounded to a hertz,
    clamped to 70-600 Hz where the voices follow it) and at a duration stretch that brings the
    word near the note's length (quarter steps, so words are reused from the cache), then
    resampled to the exact pitch and cut to the note."""
    voice = str(rng.choice(list(FLITE_VOICES)))
    words = [str(w) for w in rng.choice(FLITE_WORDS, size=int(rng.integers(3, 8)), replace=False)]
    octave = -12 if FLITE_VOICES[voice] else 0
    out = np.zeros(n)
    for start, length, target, vel in _notes(comp, n, sr, octave):
        hz = int(np.clip(round(target), 70, 600))
        text = str(rng.choice(words))
        plain, _ = _flite_syllable(voice, hz, text, 1.0)
        stretch = float(np.clip(round(4 * length / sr / max(len(plain) / FLITE_RATE, 1e-3)) / 4, 0.5, 3.0))
        x, f0 = _flite_syllable(voice, hz, text, stretch)
        if f0 <= 0:
            continue
        ratio = Fraction(sr * f0 / (FLITE_RATE * target)).limit_denominator(400)
        _place(out, resample_poly(x, ratio.numerator, ratio.denominator)[:length], start, vel, sr)
    return out, {"engine": version("flite"), "voice": voice,
                 "voice_library": flite_voice_library(voice), "syllables": words, "transpose": octave}
