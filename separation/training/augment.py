"""Augmentation that real recordings have, applied at **training time** to the dry stems on disk.

Renders are stored dry (FluidSynth's reverb and chorus off) so one render serves every epoch
and every augmentation is a seeded function of (seed, epoch, example): `augment(stems, rng)`.
What it does, per example:

* remixing across songs — with probability `p_swap` a stem is replaced by the same stem of
  another example from `pool` (cropped/tiled to length), so the model cannot learn "this bass
  always comes with that drum pattern";
* vari-speed — every stem resampled by one factor in [0.96, 1.04] (pitch and tempo shift together,
  as a tape or a DJ deck does; about ±0.7 semitone);
* per stem: gain (−12..+3 dB), EQ (low shelf, peak, high shelf, each ±6 dB), compression (a
  feed-forward compressor on a smoothed envelope, ratio 1–6), stereo placement (constant-power
  pan and a width between mono and wide);
* a shared room: one stereo reverb impulse response (decaying noise, RT60 0.15–1.2 s) with a
  per-stem send level — stems stay additive: each stem carries its own reverb tail;
* a mix-bus gain so the mixture peaks between −6 and −0.5 dBFS (applied to every stem);
* with `timbre` = P > 0 (stop 75, `separation.train --timbre P`), each stem with probability P
  gets another *instrument's* colour (`recolour`): transposed on its own by up to ±3 semitones
  (a sampler playing its samples off their keys: formants and body resonances move, tempo too),
  three narrow resonances of ±10 dB at random frequencies (another body, another mic), and half
  the time a soft saturation (an amp, a tape). Stop 74 measured that the network learns our banks'
  timbres more than the stems' roles (v19 scores 1–2.6 dB on banks of another make against ~4.5 on
  TimGM6mb); this asks whether timbres no bank has teach roles instead. At P = 0 nothing is drawn,
  so older runs make the same examples.

The mixture is always the sum of the returned stems. Pure numpy/scipy.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, lfilter, resample_poly

AUGMENT_VERSION = "augment-1"


def _biquad(kind: str, f0: float, gain_db: float, sr: int, q: float = 0.707):
    """RBJ cookbook shelving/peaking filter coefficients."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    else:
        sa = 2 * np.sqrt(a) * alpha
        if kind == "low":
            b = [a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sa)]
            den = [(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa]
        else:
            b = [a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sa)]
            den = [(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sa]
    return np.array(b) / den[0], np.array(den) / den[0]


def eq(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    p = {"low_hz": float(rng.uniform(60, 250)), "low_db": float(rng.uniform(-6, 6)),
         "peak_hz": float(np.exp(rng.uniform(np.log(300), np.log(5000)))), "peak_db": float(rng.uniform(-6, 6)),
         "peak_q": float(rng.uniform(0.5, 2.0)),
         "high_hz": float(rng.uniform(3000, 12000)), "high_db": float(rng.uniform(-6, 6))}
    for kind, f, g, q in (("low", p["low_hz"], p["low_db"], 0.707), ("peak", p["peak_hz"], p["peak_db"], p["peak_q"]),
                          ("high", p["high_hz"], p["high_db"], 0.707)):
        b, a = _biquad(kind, f, g, sr, q)
        x = lfilter(b, a, x, axis=-1)
    return x, p


def compress(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    p = {"threshold_db": float(rng.uniform(-30, -8)), "ratio": float(rng.uniform(1, 6)),
         "attack_ms": float(rng.uniform(2, 30)), "release_ms": float(rng.uniform(50, 300))}
    level = np.abs(x).max(axis=0)
    # one-pole smoothing (attack ~ release average keeps it linear-time and vectorised)
    tau = (p["attack_ms"] + p["release_ms"]) / 2000
    coef = np.exp(-1 / (tau * sr))
    env = lfilter([1 - coef], [1, -coef], level)
    env_db = 20 * np.log10(np.maximum(env, 1e-6))
    over = np.maximum(env_db - p["threshold_db"], 0)
    gain = 10 ** (-over * (1 - 1 / p["ratio"]) / 20)
    return x * gain, p


def place(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    p = {"pan": float(rng.uniform(-0.8, 0.8)), "width": float(rng.uniform(0, 1.3))}
    mid, side = (x[0] + x[1]) / 2, (x[0] - x[1]) / 2 * p["width"]
    left, right = mid + side, mid - side
    ang = (p["pan"] + 1) * np.pi / 4
    return np.stack([left * np.cos(ang) * np.sqrt(2), right * np.sin(ang) * np.sqrt(2)]), p


def room(sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    rt60 = float(rng.uniform(0.15, 1.2))
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    decay = np.exp(-6.9 * t / rt60)
    ir = rng.standard_normal((2, n)) * decay
    ir[:, : int(0.005 * sr)] = 0  # pre-delay
    ir /= np.sqrt((ir ** 2).sum(axis=1, keepdims=True))
    return ir, {"rt60_s": rt60}


def recolour(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One stem as another instrument of its kind might sound (see the module docstring). The
    result has x's length: a stem transposed up is tiled (`_fit`), as a swapped-in stem is."""
    n = x.shape[1]
    p = {"semitones": float(rng.uniform(-3, 3)), "resonances": [], "drive_db": None}
    ratio = 2 ** (p["semitones"] / 12)
    up, down = 100, int(round(100 * ratio))
    if up != down:  # played `ratio` times faster: higher and shorter
        x = _fit(resample_poly(x, up, down, axis=-1), n, 0)
    for _ in range(3):
        f0 = float(np.exp(rng.uniform(np.log(100), np.log(10000))))
        r = {"hz": f0, "db": float(rng.uniform(-10, 10)), "q": float(rng.uniform(1, 4))}
        p["resonances"].append(r)
        b, a = _biquad("peak", min(f0, 0.45 * sr), r["db"], sr, r["q"])
        x = lfilter(b, a, x, axis=-1)
    if rng.random() < 0.5:
        p["drive_db"] = float(rng.uniform(0, 18))
        peak = float(np.abs(x).max())
        if peak > 1e-9:  # drive relative to the stem's own peak, level restored: colour, not loudness
            g = 10 ** (p["drive_db"] / 20) / peak
            x = np.tanh(x * g) / np.tanh(g * peak) * peak
    return x, p


def _fit(x: np.ndarray, n: int, offset: int) -> np.ndarray:
    if x.shape[1] == 0:
        return np.zeros((2, n))
    reps = int(np.ceil((n + offset) / x.shape[1]))
    return np.tile(x, (1, reps))[:, offset:offset + n]


def augment(stems: dict[str, np.ndarray], rng: np.random.Generator, sr: int = 44100,
            pool: list[dict[str, np.ndarray]] | None = None, p_swap: float = 0.3,
            reverb: bool = True, timbre: float = 0.0) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """stems: name -> [2, n] float. Returns (augmented stems, their sum, the parameters used).
    `timbre`: the probability that a stem is `recolour`ed (0: nothing drawn)."""
    names = sorted(stems)
    n = next(iter(stems.values())).shape[1]
    params: dict = {"version": AUGMENT_VERSION, "stems": {}}
    work = {}
    for name in names:
        x = np.asarray(stems[name], np.float64)
        if pool and rng.random() < p_swap:
            donor = int(rng.integers(len(pool)))
            src = np.asarray(pool[donor][name], np.float64)
            off = int(rng.integers(max(src.shape[1], 1)))
            x = _fit(src, n, off)
            params["stems"].setdefault(name, {})["swapped_from"] = {"pool_index": donor, "offset": off}
        work[name] = x
    speed = float(rng.uniform(0.96, 1.04))
    params["speed"] = speed
    if abs(speed - 1) > 1e-3:
        up, down = 1000, int(round(1000 * speed))
        work = {k: _fit(resample_poly(v, up, down, axis=-1), n, 0) for k, v in work.items()}
    if timbre:
        for name in names:
            if rng.random() < timbre:
                work[name], params["stems"].setdefault(name, {})["timbre"] = recolour(work[name], sr, rng)
    ir, params["room"] = room(sr, rng) if reverb else (None, None)
    out = {}
    for name in names:
        x = work[name]
        sp = params["stems"].setdefault(name, {})
        x, sp["eq"] = eq(x, sr, rng)
        x, sp["compressor"] = compress(x, sr, rng)
        x, sp["placement"] = place(x, rng)
        if ir is not None:
            send = float(rng.uniform(0, 0.5))
            sp["reverb_send"] = send
            if send > 0:
                wet = np.stack([fftconvolve(x[c], ir[c])[:n] for c in range(2)])
                x = x + send * wet
        gain_db = float(rng.uniform(-12, 3))
        sp["gain_db"] = gain_db
        out[name] = x * 10 ** (gain_db / 20)
    mix = sum(out.values())
    peak = float(np.abs(mix).max())
    target = 10 ** (float(rng.uniform(-6, -0.5)) / 20)
    g = target / peak if peak > 1e-9 else 1.0
    params["bus_gain"] = g
    out = {k: (v * g).astype(np.float32) for k, v in out.items()}
    mix = np.sum([out[k] for k in names], axis=0, dtype=np.float64).astype(np.float32)
    return out, mix, params
