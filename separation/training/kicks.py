"""Kick drums synthesised here, layered over a training example's drums at the song's kick notes.

Why (stop 83): on banks v48 never heard, its *bass* estimate is largely the true *drums*: fitting
each estimate by least squares to the four true stems (8 val songs × 10 s), 51 % of the bass
estimate's energy is drums on FreePats `compose` and 42 % on clearstem-synth `compose`, against
0.5 % on TimGM6mb, and its drums estimate keeps 13–27 % of the true drums' amplitude (TimGM6mb:
88 %). The kick is heard as bass. v44's run layered three recorded kits over the banks' drums and
left that unchanged (41 % and 53 %): a network that has met a handful of kicks takes a kick of
another make — a short, low, decaying event on the beat — for a bass note. Kicks are cheap to
make, and what makes one a kick (a pitch that falls fast, a body that dies in well under a
second, a beater's click, on the drum part's kick notes) can be drawn wide, so each example here
gets a kick of its own.

Two families, one drawn per example (each hit varies a little in pitch and decay):

* **swept**: a sine (sometimes driven towards a square) whose pitch falls exponentially from
  70–350 Hz to 30–90 Hz, an exponential body decay (time constant) of 50–500 ms (a tight
  electronic kick to a boom; longer, a kick becomes an 808 bass note, which is the bass's), a click (a filtered noise burst or one cycle of a 1–4 kHz tone) — the drum
  machines' kick, the most common kick in produced music;
* **membrane**: a struck drum's modes (a 40–95 Hz fundamental and 3–6 partials near a circular
  membrane's ratios, each jittered, higher ones dying faster), a pitch that dips as the head's
  tension relaxes, a lowpassed beater noise — the family of an acoustic bass drum's samples.

Then half the time a soft saturation and always a one-pole lowpass at 2–12 kHz (another mic,
another desk). Mono, near the centre, as kicks are mixed. Pure numpy; a function of its rng.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

KICK_KEYS = (35, 36)
#: a hit this long before an example starts may still sound in it
TAIL_S = 1.5
#: a circular membrane's first overtone ratios (Bessel zeros over the first)
MEMBRANE_RATIOS = (1.59, 2.14, 2.30, 2.65, 2.92, 3.16)


def source_sha256() -> str:
    """This module's source: a run pins it, since its kicks are what the examples were made with."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def draw(rng: np.random.Generator) -> dict:
    """One kick's design (JSON-able): the family and its parameters."""
    family = "swept" if rng.random() < 0.5 else "membrane"
    p: dict = {"family": family, "drive": float(rng.uniform(1.5, 6.0)) if rng.random() < 0.5 else 0.0,
               "lowpass_hz": float(np.exp(rng.uniform(np.log(2000), np.log(12000)))),
               "pan": float(rng.uniform(-0.1, 0.1))}
    if family == "swept":
        decay = float(np.exp(rng.uniform(np.log(0.05), np.log(0.5))))
        sweep = float(np.exp(rng.uniform(np.log(0.005), np.log(0.08))))
        p |= {"f_start": float(np.exp(rng.uniform(np.log(70), np.log(350)))), "f_end": float(rng.uniform(30, 90)),
              "sweep_s": min(sweep, decay / 3),  # the body falls to its low pitch while it still sounds: a kick, not a zap
              "decay_s": decay,
              "shape": float(rng.uniform(0.0, 3.0)) if rng.random() < 0.4 else 0.0,
              "click": "noise" if rng.random() < 0.5 else "tone",
              "click_hz": float(np.exp(rng.uniform(np.log(1000), np.log(4000)))),
              "click_db": float(rng.uniform(-24, -6))}
    else:
        n = int(rng.integers(3, 7))
        ratios = [r * float(rng.uniform(0.93, 1.07)) for r in MEMBRANE_RATIOS[:n]]
        p |= {"f0": float(rng.uniform(40, 95)), "ratios": ratios,
              "partial_db": [float(rng.uniform(-24, -4)) for _ in ratios],
              "partial_phase": [float(rng.uniform(0, 2 * np.pi)) for _ in ratios],
              "decay_s": float(np.exp(rng.uniform(np.log(0.06), np.log(0.45)))),
              "dip": float(rng.uniform(0.0, 0.4)), "dip_s": float(rng.uniform(0.01, 0.06)),
              "beater_hz": float(np.exp(rng.uniform(np.log(500), np.log(5000)))),
              "beater_db": float(rng.uniform(-20, -4))}
    return p


def _onepole_lowpass(x: np.ndarray, hz: float, rate: int) -> np.ndarray:
    a = float(np.exp(-2 * np.pi * hz / rate))
    return lfilter([1 - a], [1, -a], x).astype(np.float32)


def hit(p: dict, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One hit of kick `p`, mono float32, peak 1 (this hit's pitch and decay moved by a few per cent)."""
    tune, life = float(rng.uniform(0.97, 1.03)), float(rng.uniform(0.9, 1.1))
    decay = p["decay_s"] * life
    n = int(min(TAIL_S, 7 * decay) * rate)
    t = np.arange(n) / rate
    env = np.exp(-t / decay)
    if p["family"] == "swept":
        f = (p["f_end"] + (p["f_start"] - p["f_end"]) * np.exp(-t / p["sweep_s"])) * tune
        phase = 2 * np.pi * np.cumsum(f) / rate
        body = np.sin(phase)
        if p["shape"]:  # towards a square: a driven oscillator
            body = np.tanh((1 + p["shape"]) * body) / np.tanh(1 + p["shape"])
        x = body * env
        k = int(0.004 * rate)
        if p["click"] == "noise":
            burst = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.001 * rate))
            burst = burst - _onepole_lowpass(burst, p["click_hz"] / 4, rate)  # a highpassed tick
        else:
            m = min(k, int(rate / p["click_hz"]))
            burst = np.sin(2 * np.pi * p["click_hz"] * np.arange(m) / rate)
        x[:len(burst)] += burst / max(np.abs(burst).max(), 1e-9) * 10 ** (p["click_db"] / 20)
    else:
        f0 = p["f0"] * tune * (1 + p["dip"] * np.exp(-t / p["dip_s"]))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        x = np.sin(phase) * env
        for r, db, ph in zip(p["ratios"], p["partial_db"], p["partial_phase"]):
            x += 10 ** (db / 20) * np.sin(r * phase + ph) * env ** (r * 1.5)
        k = int(0.02 * rate)
        beater = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.003 * rate))
        beater = _onepole_lowpass(beater, p["beater_hz"], rate)
        x[:k] += beater / max(np.abs(beater).max(), 1e-9) * 10 ** (p["beater_db"] / 20)
    if p["drive"]:  # saturated, then the envelope again: a driven kick must not sustain like a bass note
        x = np.tanh(p["drive"] * x) / np.tanh(p["drive"]) * env
    x = _onepole_lowpass(x.astype(np.float32), p["lowpass_hz"], rate)
    fade = min(n, int(0.005 * rate))  # no click where the tail is cut
    x[n - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return (x / max(float(np.abs(x).max()), 1e-9)).astype(np.float32)


def render(notes: list[tuple], start_s: float, n: int, rng: np.random.Generator, rate: int = 44100,
           design: dict | None = None) -> tuple[np.ndarray, dict]:
    """The kick notes (GM 35, 36, channel 10) of `notes` (`synth.read_notes` tuples) sounding in
    [start_s, start_s + n / rate), played by one kick drawn from `rng` (or `design`), as
    (float32 [2, n], the design). Silence where the part has no kick there."""
    p = design or draw(rng)
    out = np.zeros(n, np.float32)
    end_s = start_s + n / rate
    for onset, _end, key, vel, _prog, ch in notes:
        if ch != 9 or key not in KICK_KEYS or not start_s - TAIL_S <= onset < end_s:
            continue
        x = hit(p, rate, rng) * (vel / 127)
        s = int(round((onset - start_s) * rate))
        a, b = max(s, 0), min(s + len(x), n)
        if b > a:
            out[a:b] += x[a - s:b - s]
    left, right = np.cos((p["pan"] + 1) * np.pi / 4), np.sin((p["pan"] + 1) * np.pi / 4)
    return np.stack([out * left, out * right]).astype(np.float32), p
