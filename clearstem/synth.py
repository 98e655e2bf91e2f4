"""Procedural songs for the demo, the tests and the benchmarks — no copyrighted audio needed.

Each seed gives a distinct song (tempo, key, progression, drum pattern, melody) rendered as
four stems — vocals (a vibrato voice with formants, centre), drums, bass and other (pads and
an arpeggio, panned wide) — whose sum is the mixture. Plain numpy, no Django.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEMS = ("vocals", "drums", "bass", "other")


@dataclass
class Song:
    seed: int
    sample_rate: int
    stems: dict[str, np.ndarray]  # name -> float32 [2, n]

    @property
    def mixture(self) -> np.ndarray:
        return sum(self.stems.values()).astype(np.float32)


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _env(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / sr
    a = np.clip(t / max(attack, 1e-4), 0, 1)
    r = np.clip((n / sr - t) / max(release, 1e-4), 0, 1)
    return a * r


def _pan(x: np.ndarray, pos: float) -> np.ndarray:
    """Constant-power pan, pos in [-1, 1]."""
    ang = (pos + 1) * np.pi / 4
    return np.stack([x * np.cos(ang), x * np.sin(ang)])


def render_song(seed: int, seconds: float = 30.0, sample_rate: int = 44100) -> Song:
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = int(seconds * sr)
    bpm = float(rng.uniform(84, 148))
    beat = 60.0 / bpm
    root = int(rng.integers(38, 50))
    minor = bool(rng.integers(0, 2))
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    degrees = [int(d) for d in rng.choice([0, 3, 4, 5, 1, 2], size=4, replace=True)]
    degrees[0] = 0
    stems = {s: np.zeros((2, n), np.float32) for s in STEMS}

    def place(stem: str, start: float, sig: np.ndarray):
        i = int(start * sr)
        if i >= n:
            return
        sig = sig[:, : n - i] if sig.ndim == 2 else sig[: n - i]
        if sig.ndim == 1:
            stems[stem][:, i:i + sig.size] += sig
        else:
            stems[stem][:, i:i + sig.shape[1]] += sig

    # drums: kick, snare, hats with a seed-specific pattern
    kick_steps = set(int(s) for s in rng.choice(16, size=int(rng.integers(3, 6)), replace=False)) | {0}
    snare_steps = {4, 12} | ({int(rng.integers(13, 16))} if rng.random() < 0.5 else set())
    hat_every = int(rng.choice([1, 2]))
    kn = int(0.35 * sr)
    kt = np.arange(kn) / sr
    kick = np.sin(2 * np.pi * (45 * kt + (110 / 18) * (1 - np.exp(-18 * kt)))) * np.exp(-kt * 9)
    sn = int(0.2 * sr)
    st = np.arange(sn) / sr
    snare_tone = np.sin(2 * np.pi * 185 * st) * np.exp(-st * 25)
    hn = int(0.05 * sr)
    step = beat / 4
    n_steps = int(seconds / step)
    for k in range(n_steps):
        s = k % 16
        at = k * step
        if s in kick_steps:
            place("drums", at, _pan(0.9 * kick, 0.0))
        if s in snare_steps:
            noise = rng.standard_normal(sn) * np.exp(-st * 18)
            place("drums", at, _pan(0.45 * noise + 0.35 * snare_tone, 0.05))
        if s % hat_every == 0:
            h = rng.standard_normal(hn)
            h = np.diff(h, prepend=0) * np.exp(-np.arange(hn) / sr * 70)
            place("drums", at, _pan(0.18 * h, 0.3))

    # harmony: one chord per bar
    bar = 4 * beat
    n_bars = int(np.ceil(seconds / bar))
    for b in range(n_bars):
        deg = degrees[b % 4]
        chord = [root + 12 + scale[(deg + k) % 7] + 12 * ((deg + k) // 7) for k in (0, 2, 4)]
        # bass: root, eighth-note pattern
        bass_pattern = rng.choice([0, 0, 0, 7, 12], size=8)
        for e in range(8):
            dur = beat / 2
            bn = int(dur * sr)
            bt = np.arange(bn) / sr
            f = _midi_hz(root - 12 + scale[deg % 7] + int(bass_pattern[e]))
            saw = 2 * ((f * bt) % 1) - 1
            sig = np.tanh(2.2 * (0.6 * np.sin(2 * np.pi * f * bt) + 0.25 * saw)) * _env(bn, sr, 0.005, 0.05)
            place("bass", b * bar + e * dur, _pan(0.42 * sig, 0.0))
        # pads
        pn = int(bar * sr)
        pt = np.arange(pn) / sr
        pad = np.zeros(pn)
        for note in chord:
            f = _midi_hz(note + 12)
            pad += sum(np.sin(2 * np.pi * f * (1 + dt) * pt) / (h + 1) for h, dt in enumerate((0, 0.003, -0.004)))
        pad *= _env(pn, sr, 0.25, 0.3) * 0.07
        place("other", b * bar, np.stack([pad * 0.9, pad * 0.45]))
        # arpeggio, panned right
        for e in range(8):
            an = int(beat / 2 * sr)
            at_ = np.arange(an) / sr
            f = _midi_hz(chord[e % 3] + 24)
            tri = 2 * np.abs(2 * ((f * at_) % 1) - 1) - 1
            place("other", b * bar + e * beat / 2, _pan(0.08 * tri * np.exp(-at_ * 6), 0.7))

    # vocals: a melody of sung notes with vibrato and vowel formants, centre-panned
    t = 0.0
    mel_scale = [root + 24 + s for s in scale] + [root + 36 + s for s in scale[:3]]
    idx = int(rng.integers(0, 5))
    while t < seconds:
        dur = float(rng.choice([0.5, 1, 1, 1.5, 2])) * beat
        if rng.random() < 0.2:
            t += dur
            continue
        idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(mel_scale) - 1))
        f0 = _midi_hz(mel_scale[idx])
        vn = int(dur * sr)
        vt = np.arange(vn) / sr
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * vt))) / sr
        formants = rng.choice([(700, 1200), (400, 2000), (300, 900), (500, 1700)])
        voice = np.zeros(vn)
        for h in range(1, 16):
            fh = f0 * h
            if fh > sr / 2 - 1000:
                break
            gain = sum(np.exp(-((fh - fm) / 180) ** 2) for fm in formants) + 0.25 / h
            voice += gain * np.sin(h * phase)
        voice *= _env(vn, sr, 0.04, 0.08) * 0.11
        place("vocals", t, _pan(voice, 0.0))
        t += dur

    peak = max(float(np.abs(sum(stems.values())).max()), 1e-9)
    gain = 0.89 / peak
    for s in STEMS:
        stems[s] = (stems[s] * gain).astype(np.float32)
    return Song(seed=seed, sample_rate=sr, stems=stems)
