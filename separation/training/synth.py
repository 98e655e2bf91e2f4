"""`clearstem-synth`: an instrument bank written here, so the separator does not learn one bank.

Why: every training render came from one soundfont (the Csound GM bank). A separator trained on
one bank learns that bank's samples — its piano, its kit, its "choir aahs" — and held-out music
played on other instruments scores far lower. The licence-clean banks we can install are few
(the others are GPL, ShareAlike or derived from the bank reserved for evaluation), so this module
synthesises its own: every timbre is drawn per song from families with random parameters, which
gives the model instruments no soundfont has, under our own licence
(`LicenseRef-ClearStem-own-work`).

It reads the same per-stem MIDI files FluidSynth reads (the set's sources), so a song rendered with
this bank and with a soundfont is the same composition; the "bank file" the manifest pins is this
module's source (its SHA-256), so a change here is a different bank.

What it makes (all seeded per song and stem):

* **melodic parts** (bass, other): band-limited wavetable oscillators (harmonic spectra drawn per
  timbre: saw, square, pulse, random additive, organ drawbars, detuned unison), a bright and a
  dark table per note crossfaded by a filter envelope (plucks, brass swells), FM pairs, mallets
  with inharmonic partials, ADSR or exponential decay, optional vibrato, chorus-like detune and a
  pan per part. GM program families steer the choice (a pad program gets slow attacks and unison,
  a piano program a plucked decay) but do not fix it.
* **vocals**: a source-filter voice — a glottal-like harmonic source (spectral tilt drawn per
  singer) shaped by vowel formants (F1–F4 of /a e i o u/ and two mixed vowels, scaled for a
  lower or higher voice), a vowel glide inside each note, vibrato with a delayed onset, a
  portamento from the previous note, breath noise through the same formants, and a consonant-like
  noise burst on some onsets. It is voice-*like* — no words, no recorded voice — and the model
  card says so.
* **drums**: a kit drawn per song: pitch-swept sine kicks with a click, snares of tonal body plus
  band-passed noise, claps as noise bursts, hats/rides/crashes from inharmonic square clusters and
  noise, pitched toms, shaker, tambourine, cowbell; each GM key maps to its piece, velocity scales
  it, three variants per piece alternate so repeated hits are not identical.

Pure numpy/scipy + mido; no Django, no clearstem.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import mido
import numpy as np
from scipy.signal import butter, lfilter, sosfilt

BANK_ID = "clearstem-synth"
TABLE = 2048
#: harmonics stop below this share of the sample rate (band-limited: no aliasing)
NYQUIST_SHARE = 0.45


def source_sha256() -> str:
    """The bank's pin: this module's source."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# MIDI
# ------------------------------------------------------------------------------------------
def read_notes(midi_path) -> list[tuple[float, float, int, int, int, int]]:
    """(start s, end s, pitch, velocity, program, channel) of every note, in start order."""
    mid = mido.MidiFile(str(midi_path))
    now = 0.0
    program = {}
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes = []
    for msg in mid:  # merged tracks, delta times in seconds (tempo applied)
        now += msg.time
        if msg.type == "program_change":
            program[msg.channel] = msg.program
        elif msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = open_notes.get((msg.channel, msg.note))
            if stack:
                start, vel = stack.pop(0)
                notes.append((start, max(now, start + 0.01), msg.note, vel, program.get(msg.channel, 0), msg.channel))
    notes.sort()
    return notes


# ------------------------------------------------------------------------------------------
# oscillators and envelopes
# ------------------------------------------------------------------------------------------
def _table(amps: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One period (TABLE samples) with harmonic k + 1 at amplitude amps[k], RMS 1."""
    spec = np.zeros(TABLE // 2 + 1, np.complex128)
    k = min(amps.size, TABLE // 2 - 1)
    ph = np.zeros(k) if phases is None else phases[:k]
    spec[1:k + 1] = amps[:k] * np.exp(1j * ph)
    wave = np.fft.irfft(spec, TABLE)
    rms = float(np.sqrt(np.mean(wave ** 2)))
    return wave / rms if rms > 0 else wave


def _read(table: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Linear-interpolated table read at `phase` (in periods)."""
    x = (phase % 1.0) * TABLE
    i = x.astype(np.int64)
    frac = x - i
    return table[i] * (1 - frac) + table[(i + 1) % TABLE] * frac


def _limit(amps: np.ndarray, f_max: float, rate: int) -> np.ndarray:
    """Drop harmonics that would pass NYQUIST_SHARE of the rate at the note's highest pitch."""
    k_max = max(1, int(NYQUIST_SHARE * rate / max(f_max, 1.0)))
    return amps[:k_max]


def _adsr(n: int, rate: int, a: float, d: float, s: float, r: float, held: int) -> np.ndarray:
    """Attack/decay/sustain over `held` samples, then release; `n` = held + release samples."""
    t = np.arange(n) / rate
    env = np.where(t < a, t / max(a, 1e-4), s + (1 - s) * np.exp(-(t - a) / max(d, 1e-4)))
    if held < n:
        level = env[max(held - 1, 0)]
        rel_t = (np.arange(n - held)) / rate
        env[held:] = level * np.exp(-rel_t / max(r / 4, 1e-4))
    return env


def _pan(pan: float) -> np.ndarray:
    """Constant-power gains (left, right) for pan in [-1, 1]."""
    ang = (pan + 1) * np.pi / 4
    return np.array([np.cos(ang), np.sin(ang)])


# ------------------------------------------------------------------------------------------
# melodic timbres
# ------------------------------------------------------------------------------------------
FAMILIES = ("saw", "square", "pulse", "additive", "organ", "unison", "pluck", "fm", "mallet")
# GM program -> families it may get (the first is the likeliest); anything else: any family
_BY_PROGRAM = [
    (range(0, 8), ("pluck", "additive", "fm")),        # pianos
    (range(8, 16), ("mallet", "fm", "pluck")),         # chromatic percussion
    (range(16, 24), ("organ", "additive", "square")),  # organs
    (range(24, 32), ("pluck", "saw", "pulse")),        # guitars
    (range(32, 40), ("saw", "square", "pluck", "fm", "additive", "pulse")),  # basses
    (range(40, 56), ("unison", "additive", "saw")),    # strings, ensembles
    (range(56, 64), ("saw", "pulse", "additive")),     # brass
    (range(64, 80), ("additive", "square", "pulse")),  # reeds, pipes
    (range(80, 88), ("saw", "square", "pulse", "fm")),  # synth leads
    (range(88, 96), ("unison", "additive", "organ")),  # pads
]


def _families_for(program: int) -> tuple[str, ...]:
    for span, fams in _BY_PROGRAM:
        if program in span:
            return fams
    return FAMILIES


class Timbre:
    """One melodic instrument, drawn from `rng` (a part keeps it for the whole song)."""

    def __init__(self, rng: np.random.Generator, program: int, bass: bool):
        fams = _families_for(program)
        self.family = fams[0] if rng.random() < 0.45 else str(rng.choice(fams))
        self.bass = bass
        k = np.arange(1, TABLE // 2)
        tilt = rng.uniform(1.0, 2.0) if bass else rng.uniform(0.7, 1.6)
        if self.family == "saw":
            amps = 1.0 / k ** tilt
        elif self.family == "square":
            amps = np.where(k % 2 == 1, 1.0 / k ** tilt, rng.uniform(0, 0.08) / k)
        elif self.family == "pulse":
            duty = rng.uniform(0.1, 0.4)
            amps = np.abs(np.sin(np.pi * k * duty)) / k ** tilt
        elif self.family == "organ":
            amps = np.zeros(k.size)
            for h in (1, 2, 3, 4, 6, 8, 10, 12, 16):
                if h <= amps.size:
                    amps[h - 1] = rng.uniform(0, 1) if h > 1 else 1.0
        else:  # additive, unison, pluck, fm, mallet start from a random spectrum
            amps = rng.uniform(0.2, 1.0, k.size) / k ** tilt
            if rng.random() < 0.4:
                amps[1::2] *= rng.uniform(0.1, 0.6)  # hollow, clarinet-like
        if bass:  # a bass's upper partials sit low: a fixed lowpass at 4-24 harmonics
            amps = amps / np.sqrt(1 + (k / rng.uniform(4, 24)) ** 4)
        self.amps = amps
        self.phases = rng.uniform(0, 2 * np.pi, k.size)
        # brightness: the dark table is the bright one through a lowpass at `dark` harmonics
        self.dark_k = rng.uniform(1.5, 6.0)
        self.filter_decay = rng.uniform(0.05, 0.8)
        self.filter_amount = 0.0 if self.family in ("organ",) else rng.uniform(0.2, 1.0)
        perc = self.family in ("pluck", "mallet") or (self.family == "fm" and rng.random() < 0.5)
        self.percussive = perc
        if perc:
            self.decay = rng.uniform(0.25, 2.5) * (1.6 if bass else 1.0)
            self.attack = rng.uniform(0.001, 0.006)
        else:
            slow = self.family == "unison" or program in range(88, 96) or program in range(40, 56)
            self.attack = rng.uniform(0.08, 0.6) if slow and rng.random() < 0.7 else rng.uniform(0.003, 0.05)
            self.decay = rng.uniform(0.1, 1.0)
        self.sustain = rng.uniform(0.4, 1.0)
        self.release = rng.uniform(0.03, 0.6) if not bass else rng.uniform(0.02, 0.2)
        self.vibrato = (rng.uniform(4.5, 6.5), rng.uniform(5, 25)) if rng.random() < 0.3 else None
        self.voices = int(rng.integers(2, 5)) if self.family == "unison" else 1
        self.detune = rng.uniform(4, 18)  # cents between unison voices
        self.fm_ratio = float(rng.choice([0.5, 1.0, 2.0, 3.0, 3.5, 4.0])) if self.family == "fm" else 0.0
        self.fm_index = rng.uniform(0.5, 4.0)
        self.mallet_ratios = np.array([1.0, rng.uniform(2.6, 4.1), rng.uniform(5.0, 6.8), rng.uniform(8.5, 10.5)])
        self.drive = rng.uniform(1.0, 3.0) if rng.random() < 0.25 else 0.0
        self.pan = float(np.clip(rng.normal(0, 0.35 if not bass else 0.08), -0.9, 0.9))
        self.width = rng.uniform(0, 0.5) if self.voices > 1 else 0.0

    def note(self, f0: float, held: int, rate: int, vel: float, rng: np.random.Generator) -> np.ndarray:
        """[2, held + release] samples of one note."""
        rel = int(self.release * rate)
        if self.percussive:
            rel = max(rel, int(min(self.decay, 3.0) * rate * 0.5))
        n = held + rel
        t = np.arange(n) / rate
        if self.percussive:
            env = np.minimum(t / self.attack, 1.0) * np.exp(-t / (self.decay * (110.0 / max(f0, 55.0)) ** 0.3))
            if held < n:
                env[held:] *= np.exp(-np.arange(n - held) / rate / max(self.release, 0.05))
        else:
            env = _adsr(n, rate, self.attack, self.decay, self.sustain, self.release, held)
        freq = np.full(n, f0)
        if self.vibrato is not None:
            rate_hz, cents = self.vibrato
            onset = np.clip((t - 0.15) / 0.3, 0, 1)
            freq = freq * 2 ** (cents * onset * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 6.3)) / 1200)
        if self.family == "mallet":
            out = np.zeros(n)
            for j, ratio in enumerate(self.mallet_ratios):
                if ratio * f0 < NYQUIST_SHARE * rate:
                    out += np.sin(2 * np.pi * np.cumsum(freq * ratio) / rate) * np.exp(-t * (1 + 3 * j) / self.decay) / (1 + j)
            stereo = out[None, :] * _pan(self.pan)[:, None]
            return stereo * (env * vel)[None, :]
        if self.family == "fm":
            index = self.fm_index * (1 - self.filter_amount * (1 - np.exp(-t / self.filter_decay)))
            top = f0 * (1 + self.fm_ratio * (index.max() + 1))
            scale = min(1.0, NYQUIST_SHARE * rate / top)  # keep the sidebands below Nyquist
            mod = np.sin(2 * np.pi * np.cumsum(freq * self.fm_ratio) / rate)
            out = np.sin(2 * np.pi * np.cumsum(freq) / rate + index * scale * mod)
            stereo = out[None, :] * _pan(self.pan)[:, None]
            return stereo * (env * vel)[None, :]
        amps = _limit(self.amps, float(freq.max()) * 2 ** (self.detune * self.voices / 2400), rate)
        bright = _table(amps, self.phases)
        kk = np.arange(1, amps.size + 1)
        dark = _table(amps / np.sqrt(1 + (kk / self.dark_k) ** 4), self.phases)
        mix = self.filter_amount * np.exp(-t / self.filter_decay) + (1 - self.filter_amount) if self.filter_amount else 1.0
        out = np.zeros((2, n))
        for v in range(self.voices):
            cents = (v - (self.voices - 1) / 2) * self.detune if self.voices > 1 else 0.0
            phase = np.cumsum(freq * 2 ** (cents / 1200)) / rate + rng.uniform(0, 1)
            wave = _read(bright, phase) * mix + _read(dark, phase) * (1 - mix)
            side = (v / max(self.voices - 1, 1) * 2 - 1) * self.width if self.voices > 1 else 0.0
            out += wave[None, :] * _pan(float(np.clip(self.pan + side, -1, 1)))[:, None] / np.sqrt(self.voices)
        if self.drive:
            out = np.tanh(out * self.drive) / np.tanh(self.drive)
        return out * (env * vel)[None, :]


# ------------------------------------------------------------------------------------------
# the voice
# ------------------------------------------------------------------------------------------
#: formant centre frequencies (Hz) and bandwidths for a lower adult voice; a higher voice scales them
VOWELS = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 160, 200)),
    "e": ((530, 1840, 2480, 3450), (70, 100, 150, 200)),
    "i": ((270, 2290, 3010, 3700), (60, 90, 150, 200)),
    "o": ((570, 840, 2410, 3350), (70, 90, 150, 200)),
    "u": ((300, 870, 2240, 3300), (60, 90, 150, 200)),
    "ae": ((660, 1720, 2410, 3400), (80, 110, 160, 200)),
    "er": ((490, 1350, 1690, 3300), (70, 100, 120, 200)),
}
_FORMANT_GAINS = (1.0, 0.6, 0.3, 0.15)


def _formant_gain(freqs: np.ndarray, vowel: str, scale: float) -> np.ndarray:
    centres, widths = VOWELS[vowel]
    g = np.full(freqs.shape, 0.02)
    for c, w, a in zip(centres, widths, _FORMANT_GAINS):
        g = g + a / (1 + ((freqs - c * scale) / (w * scale)) ** 2)
    return g


class Voice:
    """A singer drawn from `rng`: register, source tilt, vibrato, breathiness."""

    def __init__(self, rng: np.random.Generator):
        self.scale = rng.uniform(1.0, 1.25)  # formant scaling: lower to higher voice
        self.tilt = rng.uniform(0.9, 1.6)
        self.vib_rate = rng.uniform(4.8, 6.6)
        self.vib_cents = rng.uniform(15, 60)
        self.vib_delay = rng.uniform(0.08, 0.35)
        self.breath = rng.uniform(0.01, 0.08)
        self.glide = rng.uniform(0.02, 0.09)
        self.consonants = rng.uniform(0.2, 0.8)
        self.attack = rng.uniform(0.02, 0.08)
        self.release = rng.uniform(0.05, 0.2)
        self.pan = float(np.clip(rng.normal(0, 0.1), -0.3, 0.3))
        self.vowels = list(rng.permutation(list(VOWELS)))[: int(rng.integers(3, len(VOWELS) + 1))]

    def note(self, f0: float, prev_f0: float | None, held: int, rate: int, vel: float,
             rng: np.random.Generator) -> np.ndarray:
        n = held + int(self.release * rate)
        t = np.arange(n) / rate
        log_f = np.full(n, np.log2(f0))
        if prev_f0 is not None and abs(np.log2(prev_f0 / f0)) < 1.0:
            log_f += np.log2(prev_f0 / f0) * np.exp(-t / self.glide)
        onset = np.clip((t - self.vib_delay) / 0.25, 0, 1)
        log_f += self.vib_cents * onset * np.sin(2 * np.pi * self.vib_rate * t + rng.uniform(0, 6.3)) / 1200
        drift = lfilter([1.0], [1.0, -0.9995], rng.normal(0, 1, n))  # slow pitch drift, a few cents
        log_f += drift / (np.std(drift) + 1e-9) * rng.uniform(2, 8) / 1200
        freq = 2 ** log_f
        k = np.arange(1, int(NYQUIST_SHARE * rate / freq.max()) + 1)
        k = k[: TABLE // 2 - 1]
        source = 1.0 / k ** self.tilt
        v1, v2 = (str(v) for v in rng.choice(self.vowels, 2))
        a = _table(source * _formant_gain(k * f0, v1, self.scale))
        b = _table(source * _formant_gain(k * f0, v2, self.scale))
        phase = np.cumsum(freq) / rate
        glide = np.clip((t - 0.4 * held / rate) / max(0.3 * held / rate, 0.02), 0, 1)
        out = _read(a, phase) * (1 - glide) + _read(b, phase) * glide
        # breath: noise through the first vowel's formants (not broadband)
        white = rng.normal(0, 1, n)
        noise = np.zeros(n)
        for c, g in zip(VOWELS[v1][0][:3], _FORMANT_GAINS):
            lo, hi = max(c * self.scale * 0.8, 60), min(c * self.scale * 1.25, 0.45 * rate)
            noise += g * sosfilt(butter(2, [lo, hi], "bandpass", fs=rate, output="sos"), white)
        out += self.breath * noise / (np.std(noise) + 1e-9)
        env = _adsr(n, rate, self.attack, 0.3, 0.85, self.release, held)
        out *= env
        if rng.random() < self.consonants:  # a consonant-like burst before the vowel
            m = int(rng.uniform(0.015, 0.06) * rate)
            lo = rng.uniform(1500, 4000)
            burst = sosfilt(butter(2, [lo, min(lo * 2.5, 0.45 * rate)], "bandpass", fs=rate, output="sos"),
                            rng.normal(0, 1, m)) * np.hanning(2 * m)[:m][::-1]
            out[:m] += burst * rng.uniform(0.3, 1.0) / (np.std(burst) + 1e-9) * 0.3
        return out[None, :] * _pan(self.pan)[:, None] * vel


# ------------------------------------------------------------------------------------------
# drums
# ------------------------------------------------------------------------------------------
def _noise(rng, n):
    return rng.normal(0, 1, n)


def _band(x, lo, hi, rate, order=2):
    hi = min(hi, 0.45 * rate)
    return sosfilt(butter(order, [lo, hi], "bandpass", fs=rate, output="sos"), x)


def _high(x, lo, rate, order=2):
    return sosfilt(butter(order, lo, "highpass", fs=rate, output="sos"), x)


def _metal(rng, n, rate, base):
    """Inharmonic square cluster (the classic cymbal recipe), high-passed."""
    t = np.arange(n) / rate
    ratios = np.array([1.0, 1.342, 1.2312, 1.6532, 1.9523, 2.1523]) * rng.uniform(0.9, 1.1, 6)
    x = sum(np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 6.3))) for r in ratios)
    return _high(x, 5000 * rng.uniform(0.8, 1.3), rate)


class Kit:
    """A drum kit drawn from `rng`; pieces are made once per variant and reused per hit."""

    def __init__(self, rng: np.random.Generator, rate: int):
        self.rate = rate
        self.p = {
            "kick": dict(f_end=rng.uniform(38, 62), f_start=rng.uniform(90, 260), sweep=rng.uniform(0.01, 0.06),
                         decay=rng.uniform(0.12, 0.5), click=rng.uniform(0, 0.5), drive=rng.uniform(0, 2.5)),
            "snare": dict(body=rng.uniform(150, 260), body_decay=rng.uniform(0.04, 0.15), lo=rng.uniform(800, 2500),
                          hi=rng.uniform(6000, 12000), decay=rng.uniform(0.08, 0.3), mix=rng.uniform(0.3, 0.9)),
            "hat": dict(base=rng.uniform(250, 450), closed=rng.uniform(0.02, 0.07), open=rng.uniform(0.25, 0.7),
                        noise=rng.uniform(0.2, 0.8)),
            "ride": dict(base=rng.uniform(300, 500), decay=rng.uniform(0.8, 2.0), bell=rng.uniform(0.2, 0.7)),
            "crash": dict(base=rng.uniform(250, 420), decay=rng.uniform(1.2, 2.5)),
            "tom": dict(low=rng.uniform(70, 110), ratio=rng.uniform(1.3, 1.7), decay=rng.uniform(0.15, 0.5)),
            "clap": dict(lo=rng.uniform(700, 1500), bursts=int(rng.integers(2, 5)), gap=rng.uniform(0.006, 0.015),
                         decay=rng.uniform(0.08, 0.25)),
        }
        self.pans = {"kick": 0.0, "snare": rng.uniform(-0.15, 0.15), "hat": rng.uniform(0.15, 0.5),
                     "ride": rng.uniform(-0.5, -0.15), "crash": rng.uniform(-0.6, 0.6), "tom_low": rng.uniform(-0.5, 0),
                     "tom_high": rng.uniform(0, 0.5), "clap": rng.uniform(-0.2, 0.2), "perc": rng.uniform(-0.6, 0.6)}
        # a mixing engineer's balance (kick and snare lead, metal sits lower), ±3 dB per kit
        base = {"kick": 1.0, "snare": 0.8, "rim": 0.5, "clap": 0.6, "hat": 0.3, "ride": 0.3, "crash": 0.4,
                "tom": 0.7, "perc": 0.3}
        self.levels = {k: v * 10 ** (rng.uniform(-3, 3) / 20) for k, v in base.items()}
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.rng = rng

    def piece(self, key: int) -> tuple[str, str]:
        """(sound, pan slot) for a GM percussion key."""
        table = {35: "kick", 36: "kick", 37: "rim", 38: "snare", 40: "snare", 39: "clap", 42: "hat_closed",
                 44: "hat_pedal", 46: "hat_open", 49: "crash", 57: "crash", 51: "ride", 59: "ride", 53: "ride_bell",
                 41: "tom_low", 43: "tom_low", 45: "tom_low", 47: "tom_high", 48: "tom_high", 50: "tom_high",
                 70: "shaker", 54: "tambourine", 56: "cowbell"}
        sound = table.get(key, "shaker" if key > 60 else "snare")
        slot = ("hat" if sound.startswith("hat") else "ride" if sound.startswith("ride") else
                sound if sound in self.pans else "perc")
        return sound, slot

    def hit(self, key: int, variant: int) -> tuple[np.ndarray, float]:
        sound, slot = self.piece(key)
        ck = (sound, variant)
        if ck not in self.cache:
            self.cache[ck] = self._make(sound, key)
        return self.cache[ck], self.pans[slot]

    def _make(self, sound: str, key: int) -> np.ndarray:
        rng, rate, p = self.rng, self.rate, self.p
        jitter = rng.uniform(0.95, 1.05)

        def env(n, decay):
            return np.exp(-np.arange(n) / rate / decay)

        if sound == "kick":
            q = p["kick"]
            n = int(q["decay"] * 4 * rate)
            t = np.arange(n) / rate
            f = q["f_end"] * jitter + (q["f_start"] - q["f_end"]) * np.exp(-t / q["sweep"])
            x = np.sin(2 * np.pi * np.cumsum(f) / rate) * env(n, q["decay"])
            m = int(0.004 * rate)
            x[:m] += q["click"] * _high(_noise(rng, m), 2000, rate) * np.linspace(1, 0, m)
            if q["drive"]:
                x = np.tanh(x * (1 + q["drive"]))
        elif sound in ("snare", "rim"):
            q = p["snare"]
            n = int(q["decay"] * 4 * rate) if sound == "snare" else int(0.04 * rate)
            t = np.arange(n) / rate
            body = np.sin(2 * np.pi * q["body"] * jitter * t) * env(n, q["body_decay"])
            if sound == "rim":
                x = np.sin(2 * np.pi * rng.uniform(1500, 2500) * t) * env(n, 0.008) + 0.3 * body
            else:
                x = (1 - q["mix"]) * body + q["mix"] * _band(_noise(rng, n), q["lo"], q["hi"], rate) * env(n, q["decay"]) * 3
        elif sound == "clap":
            q = p["clap"]
            n = int((q["decay"] * 4 + q["bursts"] * q["gap"]) * rate)
            x = np.zeros(n)
            nz = _band(_noise(rng, n), q["lo"], q["lo"] * 4, rate) * 3
            for b in range(q["bursts"]):
                s = int(b * q["gap"] * rate)
                x[s:] += nz[: n - s] * env(n - s, 0.01 if b < q["bursts"] - 1 else q["decay"])
        elif sound.startswith("hat"):
            q = p["hat"]
            decay = {"hat_closed": q["closed"], "hat_pedal": q["closed"] * 1.5, "hat_open": q["open"]}[sound]
            n = int(decay * 5 * rate)
            x = (1 - q["noise"]) * _metal(rng, n, rate, q["base"]) + q["noise"] * _high(_noise(rng, n), 7000, rate)
            x = x * env(n, decay)
        elif sound.startswith("ride"):
            q = p["ride"]
            n = int(q["decay"] * 3 * rate)
            t = np.arange(n) / rate
            x = _metal(rng, n, rate, q["base"]) * 0.5 * env(n, q["decay"])
            bell = sum(np.sin(2 * np.pi * q["base"] * r * 2 * t) for r in (1.0, 1.51, 2.37)) * env(n, q["decay"] * 0.6)
            x = x + (q["bell"] * (2.0 if sound == "ride_bell" else 1.0)) * bell * 0.3
        elif sound == "crash":
            q = p["crash"]
            n = int(q["decay"] * 3 * rate)
            x = (_metal(rng, n, rate, q["base"]) * 0.5 + _high(_noise(rng, n), 4000, rate)) * env(n, q["decay"])
        elif sound.startswith("tom"):
            q = p["tom"]
            step = {41: 0, 43: 1, 45: 2, 47: 3, 48: 4, 50: 5}.get(key, 2)
            f0 = q["low"] * q["ratio"] ** (step / 2) * jitter
            n = int(q["decay"] * 4 * rate)
            t = np.arange(n) / rate
            f = f0 * (1 + 0.5 * np.exp(-t / 0.03))
            x = np.sin(2 * np.pi * np.cumsum(f) / rate) * env(n, q["decay"])
            x += 0.2 * _band(_noise(rng, n), 500, 4000, rate) * env(n, 0.03)
        elif sound == "cowbell":
            n = int(0.5 * rate)
            t = np.arange(n) / rate
            x = _band(np.sign(np.sin(2 * np.pi * 540 * jitter * t)) + np.sign(np.sin(2 * np.pi * 800 * jitter * t)),
                      400, 3000, rate) * env(n, 0.12)
        elif sound == "tambourine":
            n = int(0.4 * rate)
            x = (_metal(rng, n, rate, 900) * 0.5 + _band(_noise(rng, n), 5000, 12000, rate)) * env(n, 0.1)
        else:  # shaker
            n = int(0.15 * rate)
            shape = np.sin(np.linspace(0, np.pi, n)) ** 2
            x = _band(_noise(rng, n), 4000, 11000, rate) * shape
        peak = float(np.abs(x).max())
        group = ("hat" if sound.startswith("hat") else "ride" if sound.startswith("ride") else "tom"
                 if sound.startswith("tom") else sound if sound in self.levels else "perc")
        return x / peak * self.levels[group] if peak > 0 else x


# ------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------
def render_midi(midi_path, n: int, rate: int, seed: int) -> np.ndarray:
    """One stem's MIDI with instruments drawn from `seed`, as float32 [2, n] (dry, unnormalised
    beyond a per-part level: the set's builder applies one gain per song)."""
    rng = np.random.default_rng(seed)
    notes = read_notes(midi_path)
    out = np.zeros((2, n))
    if not notes:
        return out.astype(np.float32)
    drums = [x for x in notes if x[5] == 9]
    melodic = [x for x in notes if x[5] != 9]
    if drums:
        kit = Kit(rng, rate)
        counts: dict[int, int] = {}
        for start, _end, key, vel, _prog, _ch in drums:
            s = int(start * rate)
            if s >= n:
                continue
            variant = counts.get(key, 0) % 3
            counts[key] = counts.get(key, 0) + 1
            x, pan = kit.hit(key, variant)
            x = x[: n - s] * (vel / 127) ** 1.3
            out[:, s:s + x.size] += x[None, :] * _pan(pan)[:, None]
    by_channel: dict[int, list] = {}
    for x in melodic:
        by_channel.setdefault(x[5], []).append(x)
    for _channel, part in sorted(by_channel.items()):
        program = part[0][4]
        if program in (52, 53, 54, 85):  # the vocals stem's voice programs
            inst = Voice(rng)
        else:
            inst = Timbre(rng, program, bass=program in range(32, 40))
        level = rng.uniform(0.5, 1.0)
        prev = None
        for start, end, pitch, vel, _prog, _ch in part:
            s = int(start * rate)
            if s >= n:
                continue
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            held = max(int((end - start) * rate), int(0.01 * rate))
            if isinstance(inst, Voice):
                x = inst.note(f0, prev, held, rate, (vel / 127) ** 1.2, rng)
                prev = f0
            else:
                x = inst.note(f0, held, rate, (vel / 127) ** 1.2, rng)
            x = x[:, : n - s]
            out[:, s:s + x.shape[1]] += x * level
    # a gentle DC block (the kick's sweep and asymmetric waveforms leave a little)
    b, a = np.array([1.0, -1.0]), np.array([1.0, -0.9995])
    out = lfilter(b, a, out, axis=1)
    return out.astype(np.float32)
