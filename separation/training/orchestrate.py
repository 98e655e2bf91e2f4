"""A third composer with habits neither `compose` nor `arrange` has: ensemble pieces (our own
work, licence `LicenseRef-ClearStem-own-work`).

Why a third one: both earlier composers write *songs* — a singer over a band, a drum kit all
the way through, a bass program on the roots, one or two accompaniment parts. The separators
trained on them put orchestral, solo-piano and instrumental recordings into the vocals stem and
into stems the recording has no source for (README, "Real recordings": 18–33 % of the energy),
and lost on the one set by another generator when trained longer on the same two composers
(stop 43). Real catalogues (and MIDI by other hands: game, film, folk and chamber music) are
full of what this composer writes:

* **no voice, no kit** — a third of the pieces have no vocals stem at all, many have no drums, or
  only orchestral percussion (bass drum, cymbal swells, snare rolls, triangle) or hand drums
  (congas, bongos, timbales, agogo, guiro, cabasa: keys the other composers never play). A silent
  stem is an answer the separator must learn to give;
* **ensembles, not accompaniment** — three to six parts in *other* from roles: voice-led pads,
  counter-melodies in contrary motion, arpeggios up to 32nd notes, ostinato cells of odd lengths
  that phase against the bar, block-chord stabs, string tremolo, timpani, and a *low line* on
  cello, bassoon, tuba, trombone or a piano's left hand — *other* in the bass register, so
  register alone never says "bass";
* **melodies that are not vocals** — when no one sings, the tune is on a violin, flute, oboe,
  clarinet, trumpet, whistle, square or saw lead; when someone sings, an instrument doubles the
  voice at the unison or octave in some sections, or answers it in its rests;
* **choirs** — the vocals stem as a two- to four-part choir (aahs, oohs) singing voice-led
  chords, not only one melodic line; and, only when asked for (`vocals="choir_tune"`), a choir
  as hymns and chorales have it: the top voice sings the tune over the others' chords, so a
  melody on a voice stays *vocals* in choir pieces too (when the choir only sings chords, the
  tune is on an instrument in *other*: the roles of a song's singer and band reversed);
* **harmony and time** — circle-of-fifths sequences, a descending lament bass with inversions,
  pedal points, modal vamps, chromatic-mediant moves (chords outside the key); compound time
  (jigs, 6/8 ballads as triplet subdivisions), 3/4, 5/4 and 7/4; **rubato** — the tempo breathes
  and slows at section ends (written into the note times: the MIDI tempo stays one number, so
  everything that reads `bpm` and ticks still places notes right); dynamics by section with
  crescendos, and expression (CC 11) swells on sustained parts; pitch bends on synth leads and
  slides on synth bass.

Textures (each a distribution, not a template): `chamber`, `symphonic`, `chip` (8-bit-style
pulse and saw parts), `minimal` (mallets, interlocking ostinatos), `folk` (fiddle, whistle,
accordion, hand drums), `big_band` (brass and sax sections, walking bass, swing ride) and `keys`
(a piano carrying the piece, its left hand in the bass register).

The stem roles stay those of the other composers (`compose.Composition`): drums on channel 10,
bass on a GM bass program (32–39), vocals on GM voice programs (52, 53, 54, 85), everything else
in *other*. Pure: the standard library and `compose`'s MIDI writer; no Django, no clearstem.
"""
from __future__ import annotations

import math
import random

from .compose import MODES, PITCHWHEEL, PPQ, VOICE_PROGRAMS, Composition, Part

COMPOSER = "orchestrate"
EXPRESSION = 11

# GM percussion keys (channel 10)
(BASS_DRUM, KICK, RIM, SNARE, CLAP, E_SNARE, TOM_LL, CHH, TOM_L, PHH, TOM_LM, OHH, TOM_HM, CRASH, TOM_H, RIDE,
 TAMB, COWBELL, CRASH2, BONGO_H, BONGO_L, CONGA_MUTE, CONGA_H, CONGA_L, TIMBALE_H, TIMBALE_L, AGOGO_H, AGOGO_L,
 CABASA, MARACAS, GUIRO, CLAVES, WOODBLOCK, TRIANGLE, SHAKER) = (
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 48, 49, 50, 51, 54, 56, 57, 60, 61, 62, 63, 64, 65, 66, 67, 68,
    69, 70, 73, 75, 76, 81, 82)

TEXTURES = {
    # meters (quarter beats per bar), subdivisions of a beat (4: 16ths; 3: triplets, compound time), bpm range,
    # P(drums), drum kinds, P(bass), bass programs, vocals (P none, P choir, P melody), roles in other with
    # their program pools, lead programs, rubato depth
    "chamber": dict(meters=(3, 4, 4, 2), subs=(4, 4, 3), bpm=(54, 108), drums=0.15, kits=("orchestral", "hand"),
                    bass=0.45, bass_programs=(32, 33, 35), vocals=(0.4, 0.3, 0.3), rubato=0.09,
                    roles={"pad": (48, 49, 40, 41, 42, 44), "counter": (40, 41, 42, 68, 70, 71, 69, 73, 60),
                           "arp": (46, 40, 41, 45), "low": (42, 43, 70, 45), "tremolo": (44, 40, 41)},
                    leads=(40, 41, 68, 71, 73, 69, 42)),
    "symphonic": dict(meters=(4, 3, 4, 2), subs=(4, 4, 3), bpm=(60, 140), drums=0.65, kits=("orchestral", "epic"),
                      bass=0.55, bass_programs=(32, 33, 35, 38), vocals=(0.35, 0.4, 0.25), rubato=0.07,
                      roles={"pad": (48, 49, 50, 61, 60, 89), "counter": (56, 60, 68, 71, 73, 40, 57),
                             "stab": (61, 57, 56, 48, 59), "low": (58, 57, 70, 43, 42), "timpani": (47,),
                             "arp": (46, 45, 9, 10), "tremolo": (44,)},
                      leads=(56, 60, 68, 71, 73, 40, 57, 69)),
    "chip": dict(meters=(4, 4, 3), subs=(4, 4, 3), bpm=(110, 184), drums=0.85, kits=("chip", "breaks"),
                 bass=0.8, bass_programs=(38, 39, 38, 36), vocals=(0.5, 0.05, 0.45), rubato=0.0,
                 roles={"arp": (80, 81, 82, 84, 87), "counter": (80, 81, 83, 86), "stab": (81, 80, 62, 63),
                        "pad": (90, 88, 95, 81), "ostinato": (80, 84, 98, 8)},
                 leads=(80, 81, 83, 84, 86, 87, 82)),
    "minimal": dict(meters=(4, 5, 6, 7, 3), subs=(4, 4, 3), bpm=(72, 132), drums=0.4, kits=("sparse", "hand"),
                    bass=0.6, bass_programs=(32, 33, 38, 39, 34), vocals=(0.45, 0.25, 0.3), rubato=0.02,
                    roles={"ostinato": (8, 9, 11, 12, 13, 10, 0, 4, 46, 108), "pad": (88, 89, 91, 92, 94, 95, 49, 19),
                           "counter": (71, 73, 11, 4, 5, 68), "arp": (12, 13, 11, 0, 46)},
                    leads=(73, 71, 11, 4, 75, 79)),
    "folk": dict(meters=(2, 3, 4, 2), subs=(3, 4, 3), bpm=(84, 150), drums=0.55, kits=("hand", "bodhran"),
                 bass=0.5, bass_programs=(32, 33, 34, 35), vocals=(0.4, 0.1, 0.5), rubato=0.04,
                 roles={"comp": (24, 25, 21, 23, 105, 106, 107, 15), "counter": (110, 73, 78, 22, 109, 111, 72, 74),
                        "pad": (21, 23, 109, 19, 20, 49), "low": (42, 70, 21, 43), "arp": (105, 46, 24, 107)},
                 leads=(110, 73, 78, 22, 72, 74, 109, 111, 75, 105)),
    "big_band": dict(meters=(4, 4, 3), subs=(3, 3, 4), bpm=(96, 210), drums=0.9, kits=("swing", "latin"),
                     bass=0.85, bass_programs=(32, 32, 33, 35), vocals=(0.35, 0.1, 0.55), rubato=0.03,
                     roles={"stab": (61, 56, 57, 65, 66, 67, 64), "comp": (0, 1, 4, 26, 11), "pad": (66, 65, 64, 67, 71),
                            "counter": (57, 65, 66, 56, 73, 71), "low": (58, 57, 67, 70)},
                     leads=(56, 65, 66, 64, 57, 59, 71, 73, 11)),
    "keys": dict(meters=(4, 3, 4, 2), subs=(4, 3, 4), bpm=(58, 150), drums=0.3, kits=("sparse", "swing"),
                 bass=0.35, bass_programs=(32, 33, 35, 34), vocals=(0.45, 0.05, 0.5), rubato=0.1,
                 roles={"piano_lh": (0, 1, 2, 3, 4, 5, 6, 7), "pad": (48, 49, 89, 19, 16), "counter": (40, 42, 71, 73, 11)},
                 leads=(0, 1, 2, 3, 4, 5, 6, 11)),
}
# chord qualities as semitones above the root
QUALITIES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "maj7": (0, 4, 7, 11),
             "min7": (0, 3, 7, 10), "dom7": (0, 4, 7, 10), "hdim7": (0, 3, 6, 10), "sus4": (0, 5, 7),
             "sus2": (0, 2, 7), "add9": (0, 4, 7, 14)}
HARMONIES = ("functional", "circle", "lament", "pedal", "vamp", "mediant")
# (lowest, highest) MIDI note per register
RANGES = {"soprano": (60, 81), "alto": (55, 74), "tenor": (48, 69), "bass_voice": (40, 62),
          "low": (31, 55), "bass": (28, 50), "mid": (52, 76), "high": (64, 93)}


def _diatonic(scale: tuple, deg: int, seventh: bool) -> tuple[int, str]:
    """(root semitones above the tonic, quality) of the chord on scale degree `deg`."""
    pcs = [scale[(deg + k) % 7] + 12 * ((deg + k) // 7) for k in (0, 2, 4, 6)]
    third, fifth, sev = pcs[1] - pcs[0], pcs[2] - pcs[0], pcs[3] - pcs[0]
    base = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}.get((third, fifth), "maj")
    if seventh:
        base = {("maj", 11): "maj7", ("min", 10): "min7", ("maj", 10): "dom7", ("dim", 10): "hdim7"}.get((base, sev), base)
    return pcs[0] % 12 + 12 * (deg // 7), base


def _progression(rng: random.Random, kind: str, scale: tuple, n: int) -> list[tuple[int, str, int]]:
    """n chords as (root semitones above the tonic, quality, bass semitones above the tonic)."""
    sev = rng.random() < 0.4
    out: list[tuple[int, str, int]] = []
    if kind == "circle":  # diatonic descending fifths, then home
        degs = [0, 3, 6, 2, 5, 1, 4, 0]
        start = rng.choice([0, 0, 3])
        seq = [degs[(start + i) % len(degs)] for i in range(n)]
    elif kind == "lament":  # a bass stepping down from the tonic; the chords follow it (inversions)
        degs, basses = [0, 4, 3, 4, 5, 1, 4, 0], [0, -1, -2, -3, -2, -4, -3, 0]
        for i in range(n):
            root, q = _diatonic(scale, degs[i % 8], sev and i % 2 == 1)
            if i % 8 in (3, 6):
                q = "maj" if q in ("min", "dim") else ("dom7" if q.endswith("7") else q)  # a raised leading note
            b = basses[i % 8]
            out.append((root, q, scale[b % 7] - 12 * (b < 0)))
        return out
    elif kind == "pedal":  # upper chords move over one bass note
        seq = [rng.choice([0, 3, 4, 1, 5, 6]) if i % 2 else 0 for i in range(n)]
        for d in seq:
            root, q = _diatonic(scale, d, sev)
            out.append((root, rng.choice([q, q, "sus4"]) if d else q, 0))
        return out
    elif kind == "vamp":  # two chords, modal colour
        other = rng.choice([1, 6, 3, 5])
        seq = [0 if i % 2 == 0 else other for i in range(n)]
    elif kind == "mediant":  # chromatic mediants: major chords a third away, outside the key
        roots = [0]
        for _ in range(n - 1):
            roots.append((roots[-1] + rng.choice([3, 4, 8, 9, 5, 7])) % 12 if rng.random() < 0.7 else 0)
        return [(r, rng.choice(["maj", "maj", "min", "maj7"]), r) for r in roots]
    else:  # functional: tonic - predominant - dominant walks with cadences
        nxt = {0: (3, 5, 1, 4, 2), 1: (4, 6), 2: (5, 3), 3: (4, 0, 1, 6), 4: (0, 5), 5: (1, 3), 6: (0, 2)}
        seq, d = [], 0
        for i in range(n):
            seq.append(d)
            d = 4 if i % 4 == 2 else 0 if i % 4 == 3 else rng.choice(nxt[d])
    for d in seq:
        root, q = _diatonic(scale, d, sev and rng.random() < 0.6)
        bass = root if rng.random() < 0.75 else (root + QUALITIES[q][1]) % 12  # first inversion now and then
        out.append((root, q, bass))
    return out


def _near(pcs: set[int], target: float, lo: int, hi: int) -> int:
    """The note of pitch classes `pcs` in [lo, hi] nearest `target`."""
    best = min((p for p in range(lo, hi + 1) if p % 12 in pcs), key=lambda p: (abs(p - target), p), default=None)
    return int(best if best is not None else min(max(round(target), lo), hi))


def _voice_lead(prev: list[int] | None, pcs: list[int], n: int, lo: int, hi: int, rng: random.Random) -> list[int]:
    """n notes of chord `pcs` in [lo, hi], each voice moving as little as it can from `prev`."""
    if not prev or len(prev) != n:
        span = (hi - lo) / (n + 1)
        return sorted(_near({pcs[i % len(pcs)]}, lo + span * (i + 1), lo, hi) for i in range(n))
    out = []
    for i, p in enumerate(prev):
        want = {pcs[i % len(pcs)]} if rng.random() < 0.5 else set(pcs)
        out.append(_near(want, p, lo, hi))
    return sorted(out)


def _envelope(rng: random.Random, bars: int, meter: int, depth: float, slow_ends: list[int]) -> list[float]:
    """Relative tempo per 1/24 beat: a slow breath of `depth` and a ritardando into each bar of
    `slow_ends` (the last bar of a section), back to tempo after it."""
    steps = bars * meter * 24
    phase, phase2 = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    period = rng.uniform(4, 12) * meter * 24
    out = []
    for i in range(steps):
        r = 1 + depth * (0.7 * math.sin(2 * math.pi * i / period + phase) + 0.3 * math.sin(5.3 * math.pi * i / period + phase2))
        bar, pos = divmod(i, meter * 24)
        if bar in slow_ends and depth > 0:
            r *= 1 - 2.5 * depth * (pos / (meter * 24)) ** 2
        out.append(max(0.6, r))
    return out


#: who sings: the texture's odds draw one of the first three; "choir_tune" (the top voice of a
#: choir sings the tune) only when forced, so every piece drawn before it existed is unchanged
VOCAL_MODES = ("none", "choir", "melody", "choir_tune")


def orchestrate(seed: int, seconds: float, vocals: str | None = None) -> Composition:
    """A `seconds`-long excerpt of an ensemble piece, every draw from `seed` (same seed, same MIDI).
    `vocals` forces who sings ("none", "choir", "melody", "choir_tune") instead of the texture's
    odds (the draw is still made, so without it every piece is the one the seed wrote before it
    existed)."""
    if vocals is not None and vocals not in VOCAL_MODES:
        raise ValueError(f"vocals must be one of {', '.join(VOCAL_MODES)}, not {vocals!r}")
    rng = random.Random(seed ^ 0x0C4E57)  # never the same draws as compose(seed) or arrange(seed)
    texture = rng.choice(sorted(TEXTURES))
    spec = TEXTURES[texture]
    meter = rng.choice(spec["meters"])
    sub = rng.choice(spec["subs"])
    bpm = rng.uniform(*spec["bpm"])
    if sub == 3 and meter == 2:
        bpm *= 0.8  # a jig or 6/8 ballad counts in dotted quarters
    key = rng.randrange(12)
    mode = rng.choice(["major", "major", "minor", "minor", "dorian", "mixolydian", "harmonic_minor"])
    scale = MODES[mode]
    step_t = PPQ // sub
    bar_steps = meter * sub
    bars = max(2, int(seconds * bpm / 60.0 / meter) + 2)

    # sections of 2-8 bars, each with a dynamic and a density; the excerpt starts mid-piece
    sections, b = [], 0
    while b < bars:
        n = rng.choice([2, 4, 4, 4, 8])
        sections.append((b, min(bars, b + n), rng.uniform(0.45, 1.0), rng.random() < 0.35))
        b += n
    slow_ends = [e - 1 for _, e, _, _ in sections if rng.random() < 0.6]
    tempo = _envelope(rng, bars, meter, spec["rubato"] * rng.uniform(0.3, 1.2), slow_ends)
    warp = [0.0]
    for r in tempo:  # ticks at each 1/24 beat: slower tempo, more ticks of the fixed MIDI tempo
        warp.append(warp[-1] + PPQ / 24 / r)
    jitter = rng.uniform(3, 14)

    def tick(step: float, humanise: bool = True) -> int:
        """Ticks at grid step `step` (1/sub beat; triplets are the swing), through the rubato warp."""
        beat = step / sub
        i = min(len(warp) - 2, max(0, int(beat * 24)))
        t = warp[i] + (warp[i + 1] - warp[i]) * (beat * 24 - i)
        return max(0, int(t + (rng.gauss(0, jitter) if humanise else 0)))

    def length(step: float, steps: float) -> int:
        return max(10, tick(step + steps, False) - tick(step, False) - 8)

    def dyn(bar: int, pos: float = 0.0) -> float:
        s0, e, level, cresc = next((s for s in sections if s[0] <= bar < s[1]), sections[-1])
        frac = (bar - s0 + pos) / max(1, e - s0)
        return min(1.0, level * (0.7 + 0.5 * frac if cresc else 1.0))

    def vel(bar: int, pos: float = 0.0, accent: float = 0.0, base: int = 92) -> int:
        return max(12, min(127, int(base * dyn(bar, pos) + accent + rng.gauss(0, 5))))

    # harmony: a progression per section, chord rhythm per section
    harmony = rng.choice(HARMONIES)
    chords = []  # (bar, first step in bar, steps, (root, quality, bass))
    for s0, e, _, _ in sections:
        per_bar = rng.choice([1, 1, 2]) if meter in (2, 4) else 1
        every = 2 if rng.random() < 0.25 and per_bar == 1 else 1
        n = (e - s0) * per_bar // every + 1
        prog = _progression(rng, harmony, scale, max(2, n))
        i = 0
        for bar in range(s0, e, every):
            for c in range(per_bar):
                chords.append((bar, c * bar_steps // per_bar, bar_steps * every // per_bar, prog[i % len(prog)]))
                i += 1

    def pcs_of(ch) -> list[int]:
        root, q, _ = ch
        return [(key + root + iv) % 12 for iv in QUALITIES[q]]

    def chord_at(bar: int, step: int):
        cands = [c for c in chords if c[0] * bar_steps + c[1] <= bar * bar_steps + step]
        return (cands[-1] if cands else chords[0])[3]

    scale_pcs = {(key + s) % 12 for s in scale}

    # a melody: rhythm motifs stated, varied and sequenced; chord tones on strong steps
    def melody(lo: int, hi: int, rest_p: float, motion: float) -> list[tuple[int, float, float, int]]:
        """(bar, step, steps, pitch) over the whole excerpt."""
        cells = []
        for _ in range(3):
            cell, left = [], bar_steps * rng.choice([1, 2])
            while left > 0:
                d = min(left, rng.choice([1, 1, 2, 2, 2, 3, 4, 4, 6, 8] if sub == 4 else [1, 1, 2, 3, 3, 6]))
                cell.append((d, rng.random() < rest_p))
                left -= d
            cells.append(cell)
        out, cur = [], rng.uniform(lo + 4, hi - 4)
        pos = 0
        total = bars * bar_steps
        while pos < total:
            cell = rng.choice(cells)
            shift = rng.choice([-2, -1, 0, 0, 1, 2]) * motion
            for d, rest in cell:
                if pos >= total:
                    break
                bar, st = divmod(pos, bar_steps)
                if not rest:
                    strong = st % sub == 0
                    cur = min(hi - 2, max(lo + 2, cur + rng.gauss(shift, 2.5 * motion)))
                    ch = set(pcs_of(chord_at(bar, st)))
                    pitch = _near(ch if strong or rng.random() < 0.4 else (scale_pcs | ch), cur, lo, hi)
                    out.append((bar, st, d, pitch))
                pos += d
        return out

    stems: dict[str, list[Part]] = {"drums": [Part(0, 9)], "bass": [], "vocals": [], "other": []}

    # vocals: none, a choir, or a melody (which rests in some sections)
    p_none, p_choir, _ = spec["vocals"]
    draw = rng.random()
    vocal_mode = "none" if draw < p_none else "choir" if draw < p_none + p_choir else "melody"
    vocal_mode = vocals or vocal_mode
    tune = melody(*RANGES[rng.choice(["soprano", "alto", "tenor"])], rest_p=0.18, motion=1.0)
    silent_sections = {s0 for s0, _, _, _ in sections if rng.random() < 0.3}
    def silent(bar: int) -> bool:
        return any(s0 <= bar < e and s0 in silent_sections for s0, e, _, _ in sections)

    if vocal_mode in ("choir", "choir_tune"):
        voices = rng.choice([2, 3, 4, 4])
        regs = ["soprano", "alto", "tenor", "bass_voice"][:voices]
        parts = [Part(rng.choice((52, 53, 52, 54)), ch) for ch in range(voices)]
        chord_parts, lo, hi = parts, RANGES[regs[-1]][0], RANGES[regs[0]][1]
        if vocal_mode == "choir_tune":  # the top voice sings the tune, the others its chords below it
            top, chord_parts = parts[0], parts[1:]
            up = 12 if min(p for _, _, _, p in tune) < RANGES["alto"][0] else 0  # a tenor's tune: room below it
            for bar, st, d, p in tune:
                if not silent(bar):
                    top.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, d * 0.95), p + up,
                                      vel(bar, base=88)))
            lo = RANGES["bass_voice"][0]
            hi = max(lo + 12, min(p for _, _, _, p in tune) + up - 1)
        prev = None
        for bar, st, steps, ch in chords:
            if silent(bar):
                prev = None
                continue
            notes = _voice_lead(prev, pcs_of(ch), len(chord_parts), lo, hi, rng)
            prev = notes
            for part, p in zip(chord_parts, sorted(notes, reverse=True)):
                part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, steps), p, vel(bar, base=80)))
        stems["vocals"] = parts
    elif vocal_mode == "melody":
        voice = Part(rng.choice(VOICE_PROGRAMS), 0)
        for bar, st, d, p in tune:
            if not silent(bar):
                voice.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, d * 0.95), p, vel(bar, base=90)))
        stems["vocals"] = [voice]
    else:
        stems["vocals"] = [Part(rng.choice(VOICE_PROGRAMS), 0)]  # the stem exists and is silent

    # other: 3-6 roles on distinct channels (never 9)
    roles = list(spec["roles"])
    rng.shuffle(roles)
    chosen = roles[: rng.randint(min(3, len(roles)), min(len(roles), 5))]
    channels = iter([c for c in range(16) if c != 9])
    lead_prog = rng.choice(spec["leads"])
    tune_sung = vocal_mode in ("melody", "choir_tune")
    if not tune_sung or rng.random() < 0.35:  # the tune on an instrument: alone, or doubling/answering
        lead = Part(lead_prog, next(channels))
        octave = rng.choice([0, 0, 12, -12]) if tune_sung else rng.choice([0, 12])
        for bar, st, d, p in tune:
            sung = tune_sung and not silent(bar)
            if sung and rng.random() < 0.5:
                continue  # doubles the voice only part of the time
            lead.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, d * 0.9), min(108, p + octave),
                               vel(bar, base=88)))
        if lead_prog >= 80 and lead_prog <= 87 and rng.random() < 0.6:  # synth leads bend into notes
            for t, _, _, _ in lead.notes[:: rng.choice([3, 4, 6])]:
                lead.controls += [(max(0, t - 40), PITCHWHEEL, -rng.choice([1024, 2048])), (t + 60, PITCHWHEEL, 0)]
        stems["other"].append(lead)
    for role in chosen:
        program = rng.choice(spec["roles"][role])
        part = Part(program, next(channels))
        lo, hi = RANGES["mid"]
        if role == "pad":
            prev = None
            for bar, st, steps, ch in chords:
                prev = _voice_lead(prev, pcs_of(ch), rng.choice([3, 3, 4]), lo - 4, hi - 4, rng)
                for p in prev:
                    part.notes.append((tick(bar * bar_steps + st, False), length(bar * bar_steps + st, steps), p, vel(bar, base=64)))
                t = tick(bar * bar_steps + st, False)
                part.controls += [(t, EXPRESSION, 60), (t + length(bar * bar_steps + st, steps) // 2, EXPRESSION, 110)]
        elif role in ("counter", "low"):
            line_lo, line_hi = RANGES["low"] if role == "low" else RANGES[rng.choice(["mid", "high", "tenor"])]
            line = melody(line_lo, line_hi, rest_p=0.25, motion=-0.7 if role == "counter" else 0.5)
            keep = 2 if role == "counter" else 1
            for bar, st, d, p in line:
                if d >= keep or rng.random() < 0.3:
                    part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, d), p, vel(bar, base=78)))
        elif role in ("arp", "ostinato"):
            rate = rng.choice([1, 1, 2]) if role == "arp" else 1
            cell = [rng.randrange(4) for _ in range(rng.choice([3, 5, 6, 7]))] if role == "ostinato" else None
            reg = RANGES[rng.choice(["mid", "high"])]
            direction = rng.choice(["up", "down", "updown"])
            i = 0
            for bar in range(bars):
                for st2 in range(bar_steps * rate):
                    st = st2 / rate
                    pcs = pcs_of(chord_at(bar, int(st)))
                    notes = _voice_lead(None, pcs, 4, reg[0], reg[1], rng)
                    if cell is not None:
                        p = notes[cell[i % len(cell)] % len(notes)]
                    else:
                        seq = notes if direction == "up" else notes[::-1] if direction == "down" else notes + notes[-2:0:-1]
                        p = seq[i % len(seq)]
                    i += 1
                    part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, 1 / rate), p,
                                       vel(bar, st / bar_steps, 10 if st % sub == 0 else 0, base=70)))
        elif role in ("stab", "comp"):
            hits = sorted(rng.sample(range(bar_steps), k=max(1, min(bar_steps, rng.choice([1, 2, 3, 4])))))
            prev = None
            for bar in range(bars):
                for st in hits:
                    prev = _voice_lead(prev, pcs_of(chord_at(bar, st)), rng.choice([3, 4]), lo - 5, hi, rng)
                    for p in prev:
                        part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, 1 if role == "stab" else 2),
                                           p, vel(bar, base=84)))
        elif role == "tremolo":
            for bar, st, steps, ch in chords:
                p = _near(set(pcs_of(ch)), rng.uniform(*RANGES["mid"]), *RANGES["mid"])
                for k in range(int(steps * 4 / sub * 2)):  # 32nd notes
                    s = bar * bar_steps + st + k * sub / 8
                    part.notes.append((tick(s, False), length(s, sub / 8), p, vel(bar, base=58)))
        elif role == "timpani":
            for bar, st, steps, ch in chords:
                p = _near({(key + ch[0]) % 12, (key + ch[0] + 7) % 12}, 43, 36, 53)
                if rng.random() < 0.3:  # a roll
                    for k in range(steps * 2):
                        part.notes.append((tick(bar * bar_steps + st + k / 2), length(bar * bar_steps + st + k / 2, 0.5), p,
                                           vel(bar, k / (steps * 2), base=50 + 3 * k)))
                elif rng.random() < 0.7:
                    part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, 2), p, vel(bar, base=96)))
        elif role == "piano_lh":  # a left hand in the bass register: stride, alberti or broken octaves
            pattern = rng.choice(["stride", "alberti", "octaves"])
            for bar in range(bars):
                for beat in range(meter):
                    st = beat * sub
                    ch = chord_at(bar, st)
                    root = _near({(key + ch[2]) % 12}, 38, 28, 50)
                    pcs = pcs_of(ch)
                    if pattern == "stride":
                        notes = [root] if beat % 2 == 0 else _voice_lead(None, pcs, 3, 50, 62, rng)
                        for p in notes:
                            part.notes.append((tick(bar * bar_steps + st), length(bar * bar_steps + st, sub * 0.8), p, vel(bar, base=80)))
                    else:
                        upper = _voice_lead(None, pcs, 3, root + 3, root + 19, rng)
                        seq = [root, upper[-1], upper[0], upper[-1]] if pattern == "alberti" else [root, root + 12]
                        for k, p in enumerate(seq):
                            s = bar * bar_steps + st + k * sub / len(seq)
                            part.notes.append((tick(s), length(s, sub / len(seq)), p, vel(bar, base=72)))
        stems["other"].append(part)
    if not any(p.notes for p in stems["other"]):  # never an empty ensemble
        stems["other"][0].notes.append((0, length(0, bar_steps), _near(set(pcs_of(chords[0][3])), 64, 52, 76), 80))

    # bass: a bass program, sometimes absent, sometimes resting a section
    if rng.random() < spec["bass"]:
        bass = Part(rng.choice(spec["bass_programs"]), 0)
        kind = rng.choice(["roots", "pedal", "walking", "octaves", "arpeggio", "sustained"])
        if texture == "big_band":
            kind = rng.choice(["walking", "walking", "roots"])
        rests = {s0 for s0, _, _, _ in sections if rng.random() < 0.2}
        for bar, st, steps, ch in chords:
            if any(s0 <= bar < e and s0 in rests for s0, e, _, _ in sections):
                continue
            root = _near({(key + (ch[2] if kind != "pedal" else 0)) % 12}, 38, *RANGES["bass"])
            if kind in ("roots", "pedal", "sustained"):
                per = steps if kind == "sustained" else max(1, sub)
                for k in range(0, steps, per):
                    part_len = per * (0.95 if kind == "sustained" else rng.choice([0.5, 0.9]))
                    bass.notes.append((tick(bar * bar_steps + st + k), length(bar * bar_steps + st + k, part_len), root, vel(bar, base=92)))
            elif kind == "walking":
                nxt = chord_at(bar + 1, 0)
                target = _near({(key + nxt[2]) % 12}, root, *RANGES["bass"])
                beats = max(1, steps // sub)
                for k in range(beats):
                    p = root if k == 0 else _near(scale_pcs, root + (target - root) * k / beats + rng.choice([-2, 2]), *RANGES["bass"])
                    if k == beats - 1 and beats > 1:
                        p = target + rng.choice([-1, 1])
                    bass.notes.append((tick(bar * bar_steps + st + k * sub), length(bar * bar_steps + st + k * sub, sub * 0.9), p,
                                       vel(bar, base=90)))
            elif kind == "octaves":
                for k in range(0, steps, max(1, sub // 2)):
                    bass.notes.append((tick(bar * bar_steps + st + k), length(bar * bar_steps + st + k, sub / 2 * 0.8),
                                       root + (12 if (k // max(1, sub // 2)) % 2 else 0), vel(bar, base=90)))
            else:  # arpeggio through the chord
                tones = _voice_lead(None, pcs_of(ch), 3, root, root + 14, rng)
                for k in range(0, steps, max(1, sub // 2 if sub == 4 else sub)):
                    bass.notes.append((tick(bar * bar_steps + st + k), length(bar * bar_steps + st + k, 1.5),
                                       ([root] + tones)[(k // max(1, sub // 2)) % 4], vel(bar, base=88)))
        if bass.program in (38, 39) and rng.random() < 0.5:  # synth bass slides into some notes
            for t, _, _, _ in bass.notes[:: rng.choice([4, 8])]:
                bass.controls += [(max(0, t - 30), PITCHWHEEL, -rng.choice([2048, 4096])), (t + 40, PITCHWHEEL, 0)]
        stems["bass"] = [bass]
    else:
        stems["bass"] = [Part(rng.choice(spec["bass_programs"]), 0)]  # silent

    # drums: orchestral, epic toms, chip, breaks, swing, latin, hand drums, bodhran or sparse
    if rng.random() < spec["drums"]:
        kit = rng.choice(spec["kits"])
        drums = stems["drums"][0]
        starts = {s0 for s0, _, _, _ in sections}
        grid = _kit(kit, meter, sub, rng)
        for bar in range(bars):
            if kit in ("orchestral",) and rng.random() < 0.4:
                continue  # orchestral percussion plays now and then
            for st, k, v in grid:
                drums.notes.append((tick(bar * bar_steps + st), step_t, k, vel(bar, st / bar_steps, base=v)))
            if bar in starts:
                drums.notes.append((tick(bar * bar_steps), PPQ, rng.choice([CRASH, CRASH2]), vel(bar, base=100)))
            if bar + 1 in starts and kit not in ("sparse",) and rng.random() < 0.6:  # a roll or fill into the section
                roll = SNARE if kit == "orchestral" else rng.choice([SNARE, TOM_H, TOM_L, TOM_LL, TIMBALE_H, CONGA_H])
                for k in range(sub * 2):
                    s = bar * bar_steps + bar_steps - sub + k / 2
                    drums.notes.append((tick(s), step_t // 2, roll, vel(bar, 1.0, base=50 + 5 * k)))
    return Composition(seed=seed, style=f"{COMPOSER}:{texture}", bpm=bpm, meter=meter, key=key, mode=mode,
                       bars=bars, stems=stems)


def _kit(kit: str, meter: int, sub: int, rng: random.Random) -> list[tuple[float, int, int]]:
    """One bar of drums as (grid step, key, base velocity)."""
    steps = meter * sub
    out: list[tuple[float, int, int]] = []

    def add(key: int, where, v: int, p: float = 1.0):
        out.extend((s, key, v) for s in where if 0 <= s < steps and rng.random() < p)

    beats = range(0, steps, sub)
    if kit == "orchestral":
        add(BASS_DRUM, [0], 100)
        add(TRIANGLE, beats, 60, 0.4)
        add(RIDE, [0], 70, 0.3)  # a suspended cymbal
    elif kit == "epic":
        add(BASS_DRUM, [0, sub * meter // 2], 110)
        add(rng.choice([TOM_LL, TOM_L]), rng.sample(range(steps), k=min(steps, 4)), 96)
        add(SNARE, [s for s in beats if s], 90, 0.5)
    elif kit == "chip":
        add(KICK, [0] + ([steps // 2] if meter % 2 == 0 else []) + rng.sample(range(steps), 1), 110)
        add(E_SNARE, [s for i, s in enumerate(beats) if i % 2], 100)
        add(CHH, range(0, steps, 1 if rng.random() < 0.5 else 2), 70)
    elif kit == "breaks":
        add(KICK, [0, 5 if sub == 4 else 4, 10 if steps > 10 else 2], 110)
        add(SNARE, [sub, 3 * sub], 105)
        add(rng.choice([CHH, RIDE]), range(0, steps, 2), 75)
        add(SNARE, range(steps), 40, 0.15)  # ghosts
    elif kit == "swing":
        add(RIDE, list(beats) + [b + sub - 1 for b in beats[1::2]], 80)
        add(PHH, [sub, 3 * sub], 70)
        add(KICK, beats, 40, 0.5)  # feathered
        add(SNARE, rng.sample(range(steps), k=2), 60, 0.5)
    elif kit == "latin":
        add(CONGA_H, [s for s in range(steps) if s % sub in (2, 3)], 85, 0.8)
        add(CONGA_L, [sub * meter - sub + 1], 90)
        add(CLAVES, [0, 3, 6, 10, 12][: max(2, meter + 1)], 80)
        add(TIMBALE_H, rng.sample(range(steps), k=2), 75, 0.6)
        add(COWBELL, beats, 80, 0.7)
        add(KICK, [0, 2 * sub + 1], 85, 0.7)
    elif kit == "hand":
        add(rng.choice([BONGO_H, CONGA_MUTE]), range(0, steps, 1), 70, 0.55)
        add(rng.choice([BONGO_L, CONGA_L]), beats, 85)
        add(rng.choice([SHAKER, CABASA, MARACAS, GUIRO]), range(steps), 55, 0.7)
        add(rng.choice([AGOGO_H, AGOGO_L, WOODBLOCK]), rng.sample(range(steps), k=min(steps, 3)), 70, 0.8)
    elif kit == "bodhran":
        add(TOM_LL, range(0, steps, 1), 70, 0.8)
        add(TOM_L, beats, 95)
        add(TAMB, [s for s in range(steps) if s % sub == sub - 1], 60, 0.7)
    else:  # sparse
        add(rng.choice([RIM, CLAVES, SHAKER, WOODBLOCK]), range(0, steps, rng.choice([1, 2])), 55, 0.6)
        add(KICK, [0], 80, 0.7)
    return out
