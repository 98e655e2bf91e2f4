"""A sung-syllable vocal line from espeak-ng (opt-in: `--espeak-vocals FRACTION`).

Each melody note becomes one syllable ("na", "la", "oh", "hey", short words) spoken by
espeak-ng's own formant voices (never the `mb/` MBROLA voices: their diphone databases are
non-commercial) with a flat pitch contour (SSML `range="0"`) chosen near the note (`-p`), then
resampled to the note's exact frequency, cut to its length and enveloped. The result is voice
with consonants, vowels and a human-like formant structure — robotic, but closer to singing than
a GM choir patch. Licence: see `licences.LICENCES["LicenseRef-espeak-ng-output"]`.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .compose import PPQ, Composition

VOICES = ("en+f3", "en+f4", "en+f2", "en+m3", "en+m1", "en-us+f3", "en-us+m3", "en+klatt4")
SYLLABLES = ("naa", "laa", "daa", "ooh", "aah", "maa", "loo", "noo", "hey", "yeah", "oh", "mmm", "baby", "away",
             "tonight", "shine", "alone", "home", "fire", "rain")
_CACHE: dict[tuple, tuple[np.ndarray, float]] = {}


def available() -> bool:
    return shutil.which("espeak-ng") is not None


def version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("Data at")[0].strip()


def _f0(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch over voiced 40 ms frames (espeak's flat contour makes it stable)."""
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


def sing(comp: Composition, n: int, rng: np.random.Generator, sr: int = 44100) -> tuple[np.ndarray, dict]:
    """The composition's vocal melody as espeak-ng syllables: mono float64 [n], and what was used."""
    voice = str(rng.choice(VOICES))
    speed = int(rng.integers(70, 130))
    words = [str(w) for w in rng.choice(SYLLABLES, size=int(rng.integers(3, 8)), replace=False)]
    octave = -12 if "+m" in voice else 0  # male voices sing the line an octave lower
    sec_per_tick = 60.0 / comp.bpm / PPQ
    out = np.zeros(n)
    for part in comp.stems["vocals"]:
        for tick, dur, pitch, vel in part.notes:
            start = int(max(tick, 0) * sec_per_tick * sr)
            length = int(dur * sec_per_tick * sr)
            if start >= n or length <= 0:
                continue
            target = 440.0 * 2 ** ((pitch + octave - 69) / 12)
            p = int(np.clip(round(np.log(target / 110) / np.log(310 / 110) * 99), 0, 99))
            x, f0 = _syllable(voice, p, str(rng.choice(words)), speed)
            if f0 <= 0:
                continue
            ratio = Fraction(2 * f0 / target).limit_denominator(200)  # 22.05 kHz -> 44.1 kHz and the pitch fix
            y = resample_poly(x, ratio.numerator, ratio.denominator)[:length]
            fade_in, fade_out = min(len(y), int(0.01 * sr)), min(len(y), int(0.04 * sr))
            env = np.ones(len(y))
            env[:fade_in] *= np.linspace(0, 1, fade_in)
            if fade_out:
                env[len(y) - fade_out:] *= np.linspace(1, 0, fade_out)
            y = y * env * (vel / 127)
            end = min(n, start + len(y))
            out[start:end] += y[: end - start]
    return out, {"engine": version(), "voice": voice, "speed_wpm": speed, "syllables": words, "transpose": octave}
