"""Procedural songs as per-stem General MIDI, composed here (our own work, licence
`LicenseRef-ClearStem-own-work`).

Not one generator's habits: each seed picks a *style* (eight, each with its own meter, tempo
range, drum grammar, bass line, accompaniment texture and instrument pools), a key (all twelve),
a mode (major, minor, dorian, mixolydian, harmonic minor), a chord progression from the mode's
pool, a density, swing, and a melody model (step/leap mix, phrase length, rests, range). Timing
and velocity are humanised per note. A song is four MIDI files, one per stem:

* drums — channel 10 (index 9), GM percussion keys;
* bass — a GM bass program (32–39);
* vocals — the melody on a GM voice program (52 choir aahs, 53 voice oohs, 54 synth voice,
  85 lead voice): voice-like timbres from the soundfont, **not** sung words (`voice.py` can sing
  the same melody as espeak-ng syllables instead);
* other — one or two parts (chords, arpeggios, pads, counter-lines) on any other melodic program.

Pure: mido and the standard library; no Django, no clearstem.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import mido

PPQ = 480
STEMS = ("drums", "bass", "vocals", "other")
VOICE_PROGRAMS = (52, 53, 54, 85)
BASS_PROGRAMS = tuple(range(32, 40))
#: the `controller` of a Part.controls entry that is a pitch bend
PITCHWHEEL = -1
MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
# progressions as scale degrees (0-based), one chord per bar (or two per bar where the style says)
PROGRESSIONS = {
    "major": [(0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 0, 4), (1, 4, 0, 0), (0, 3, 4, 3), (5, 3, 0, 4), (0, 2, 3, 4)],
    "minor": [(0, 5, 6, 4), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 2, 6), (0, 3, 6, 2)],
    "dorian": [(0, 3, 0, 3), (0, 6, 3, 0), (0, 1, 0, 6)],
    "mixolydian": [(0, 6, 3, 0), (0, 3, 6, 3), (0, 4, 6, 3)],
    "harmonic_minor": [(0, 3, 4, 0), (0, 5, 1, 4), (0, 3, 5, 4)],
}
# GM percussion keys
KICK, SNARE, RIM, CLAP, CHH, PHH, OHH, RIDE, CRASH, TOM_L, TOM_H, SHAKER, COWBELL, TAMB = (
    36, 38, 37, 39, 42, 44, 46, 51, 49, 45, 50, 70, 56, 54)


@dataclass
class Part:
    program: int
    channel: int
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (tick, dur, pitch, vel)
    #: (tick, controller, value): a control change, or a pitch bend (-8192..8191) where the
    #: controller is PITCHWHEEL (-1). Only `orchestrate` writes them; a part without any writes
    #: the same MIDI as before they existed.
    controls: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Composition:
    seed: int
    style: str
    bpm: float
    meter: int  # beats per bar
    key: int  # pitch class of the tonic
    mode: str
    bars: int
    stems: dict[str, list[Part]]
    # sections as (kind, first bar, end bar) where the composer writes a form (`arrange`); empty
    # for `compose`'s one-loop songs, and then absent from describe() (their manifests unchanged)
    form: list[tuple[str, int, int]] = field(default_factory=list)

    def describe(self) -> dict:
        out = {"seed": self.seed, "style": self.style, "bpm": round(self.bpm, 2), "meter": f"{self.meter}/4",
               "key": self.key, "mode": self.mode, "bars": self.bars,
               "programs": {s: [p.program for p in parts] for s, parts in self.stems.items()}}
        if self.form:
            out["form"] = [list(section) for section in self.form]
        return out

    def midi(self, stem: str) -> mido.MidiFile:
        """One stem as a type-1 MIDI file: a conductor track, then a track per part."""
        mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
        conductor = mido.MidiTrack([
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.bpm), time=0),
            mido.MetaMessage("time_signature", numerator=self.meter, denominator=4, time=0),
        ])
        mid.tracks.append(conductor)
        for part in self.stems[stem]:
            events = []
            for tick, dur, pitch, vel in part.notes:
                events.append((max(tick, 0), 1, pitch, vel))
                events.append((max(tick, 0) + max(dur, 10), 0, pitch, 0))
            for tick, control, value in part.controls:  # pitch < 0 marks a control; before notes at its tick
                events.append((max(tick, 0), 0, -1, control, value))
            events.sort()  # note-offs (0) before note-ons (1) at the same tick
            track = mido.MidiTrack()
            if part.channel != 9:
                track.append(mido.Message("program_change", program=part.program, channel=part.channel, time=0))
            now = 0
            for tick, on, pitch, *rest in events:
                if pitch < 0:
                    control, value = rest
                    msg = (mido.Message("pitchwheel", pitch=value, channel=part.channel, time=tick - now)
                           if control == PITCHWHEEL else
                           mido.Message("control_change", control=control, value=value, channel=part.channel, time=tick - now))
                else:
                    msg = mido.Message("note_on" if on else "note_off", note=pitch, velocity=rest[0], channel=part.channel,
                                       time=tick - now)
                track.append(msg)
                now = tick
            mid.tracks.append(track)
        return mid


# Style: meter, bpm range, swing range, chords per bar, drum grammar, bass kind, accompaniment kinds,
# "other" program pool.
STYLES = {
    "rock": dict(meter=4, bpm=(96, 150), swing=(0, 0), cpb=1, drums="rock", bass="eighths",
                 comp=("power", "strum"), programs=(29, 30, 27, 25, 0, 18)),
    "ballad": dict(meter=4, bpm=(58, 84), swing=(0, 0), cpb=1, drums="ballad", bass="whole",
                   comp=("arpeggio", "pad"), programs=(0, 1, 48, 49, 89, 4, 46)),
    "waltz": dict(meter=3, bpm=(96, 176), swing=(0, 0), cpb=1, drums="waltz", bass="oompah",
                  comp=("oompah", "arpeggio"), programs=(21, 0, 22, 40, 41, 73, 71)),
    "swing": dict(meter=4, bpm=(100, 190), swing=(0.55, 0.67), cpb=2, drums="swing", bass="walking",
                  comp=("shell", "stab"), programs=(26, 4, 5, 11, 65, 66, 56)),
    "house": dict(meter=4, bpm=(116, 130), swing=(0, 0.54), cpb=1, drums="house", bass="offbeat",
                  comp=("pad", "arpeggio", "stab"), programs=(81, 80, 90, 91, 88, 62, 63)),
    "funk": dict(meter=4, bpm=(88, 116), swing=(0, 0.56), cpb=1, drums="funk", bass="syncopated",
                 comp=("chop", "stab"), programs=(27, 28, 61, 62, 16, 7)),
    "bossa": dict(meter=4, bpm=(120, 150), swing=(0, 0), cpb=1, drums="bossa", bass="bossa",
                  comp=("bossa", "pad"), programs=(24, 0, 73, 11, 48)),
    "march": dict(meter=2, bpm=(100, 124), swing=(0, 0), cpb=1, drums="march", bass="oompah",
                  comp=("oompah", "counter"), programs=(56, 57, 58, 60, 71, 72, 68)),
}


def _drum_grid(kind: str, meter: int, rng: random.Random, density: float) -> dict[int, list[int]]:
    """16th-step grid for one bar: step -> keys."""
    steps = meter * 4
    g: dict[int, list[int]] = {s: [] for s in range(steps)}

    def add(key, where, p=1.0):
        for s in where:
            if s < steps and rng.random() < p:
                g[s].append(key)

    beats = range(0, steps, 4)
    if kind == "rock":
        add(KICK, [0, 8] + rng.sample([6, 10, 14, 3], rng.randint(0, 2)))
        add(SNARE, [4, 12])
        add(CHH if rng.random() < 0.7 else RIDE, range(0, steps, 2 if density < 0.7 else 1), 0.95)
    elif kind == "ballad":
        add(KICK, [0] + ([10] if rng.random() < 0.5 else []))
        add(RIM if rng.random() < 0.5 else SNARE, [8] if meter == 4 else [4])
        add(CHH, range(0, steps, 4 if density < 0.5 else 2), 0.9)
    elif kind == "waltz":
        add(KICK, [0])
        add(CHH if rng.random() < 0.5 else RIDE, [4, 8])
        add(SNARE, [4, 8], 0.3 * density)
    elif kind == "swing":
        add(RIDE, [0, 4, 8, 12] + [6, 14])  # 6/14 become the swung "and"
        add(PHH, [4, 12])
        add(KICK, [0, 8], 0.3)
        add(SNARE, rng.sample(range(steps), 2), 0.4 * density)
    elif kind == "house":
        add(KICK, beats)
        add(OHH, [2, 6, 10, 14])
        add(CLAP if rng.random() < 0.6 else SNARE, [4, 12])
        add(CHH, range(1, steps, 2), 0.5 * density)
        add(SHAKER, range(steps), 0.4 * density)
    elif kind == "funk":
        add(KICK, [0, 10] + rng.sample([3, 6, 7, 13, 14], rng.randint(1, 3)))
        add(SNARE, [4, 12])
        add(SNARE, [7, 9, 15], 0.35)  # ghost notes (velocity lowered below)
        add(CHH, range(steps), 0.9)
    elif kind == "bossa":
        add(KICK, [0, 3, 8, 11])
        add(RIM, [0, 6, 12] + ([3, 10] if rng.random() < 0.5 else [4, 10]))
        add(CHH if rng.random() < 0.5 else SHAKER, range(0, steps, 2))
    elif kind == "march":
        add(KICK, beats)
        add(SNARE, range(steps), 0.35 + 0.4 * density)
        add(CRASH, [0], 0.2)
    return g


def compose(seed: int, seconds: float, style: str | None = None) -> Composition:
    rng = random.Random(seed)
    style = style or rng.choice(sorted(STYLES))
    st = STYLES[style]
    meter = st["meter"]
    bpm = rng.uniform(*st["bpm"])
    swing = rng.uniform(*st["swing"]) if st["swing"][1] > 0 else 0.0
    density = rng.uniform(0.3, 1.0)
    key = rng.randrange(12)
    mode = rng.choice(["major", "major", "minor", "minor", "dorian", "mixolydian", "harmonic_minor"])
    scale = MODES[mode]
    prog = list(rng.choice(PROGRESSIONS[mode]))
    beat_s = 60.0 / bpm
    bars = max(1, int(seconds / (meter * beat_s)) + 1)
    bar_t = meter * PPQ
    step_t = PPQ // 4
    human = rng.uniform(0, 12)  # timing jitter, ticks

    def jitter(t):
        return t + int(rng.gauss(0, human))

    def swung(step):  # 16th step -> tick, swinging off-beat 8ths
        t = step * step_t
        if swing and step % 2 == 0 and (step // 2) % 2 == 1:
            t = (step // 4) * PPQ + int(swing * PPQ)
        return t

    def pitch(degree, octave_base):  # scale degree (may exceed 7) -> MIDI note
        return octave_base + key + scale[degree % 7] + 12 * (degree // 7)

    chords = []  # (start tick, dur ticks, degree)
    cpb = st["cpb"]
    for b in range(bars):
        for c in range(cpb):
            chords.append((b * bar_t + c * bar_t // cpb, bar_t // cpb, prog[(b * cpb + c) % len(prog)]))

    drums = Part(0, 9)
    grid = _drum_grid(st["drums"], meter, rng, density)
    fill_every = rng.choice([4, 8, 0])
    for b in range(bars):
        fill = fill_every and b % fill_every == fill_every - 1
        for s, keys in grid.items():
            if fill and s >= meter * 4 - 4:
                keys = [rng.choice([TOM_L, TOM_H, SNARE])]
            for k in keys:
                vel = rng.randint(90, 120) if k in (KICK, SNARE, CLAP, CRASH) else rng.randint(50, 90)
                if k == SNARE and s in (7, 9, 15) and st["drums"] == "funk":
                    vel = rng.randint(30, 50)
                drums.notes.append((jitter(b * bar_t + swung(s)), step_t, k, vel))
        if b == 0 or (fill_every and b % fill_every == 0):
            if rng.random() < 0.6:
                drums.notes.append((b * bar_t, PPQ, CRASH, rng.randint(80, 110)))

    bass = Part(rng.choice(BASS_PROGRAMS), 1)
    base = 28 if rng.random() < 0.5 else 33  # E1..A1 region
    for t0, dur, deg in chords:
        root = pitch(deg, base)
        fifth = pitch(deg + 4, base)
        kind = st["bass"]
        if kind == "eighths":
            for k in range(0, dur, PPQ // 2):
                if rng.random() < 0.6 + 0.4 * density:
                    bass.notes.append((jitter(t0 + k), PPQ // 2 - 30, root + (12 if rng.random() < 0.1 else 0), 100))
        elif kind == "whole":
            bass.notes.append((t0, dur - 40, root, 95))
            if rng.random() < density:
                bass.notes.append((t0 + dur // 2 + dur // 4, dur // 4 - 20, fifth, 85))
        elif kind == "oompah":
            for k in range(0, dur, PPQ * (1 if meter != 2 else 1)):
                if k % (meter * PPQ) == 0 or (meter == 2 and k == PPQ):
                    bass.notes.append((jitter(t0 + k), PPQ - 60, root if (k // PPQ) % 2 == 0 else fifth, 100))
        elif kind == "walking":
            walk = [0, 2, 4, rng.choice([5, 6, 3])]
            for i, k in enumerate(range(0, dur, PPQ)):
                bass.notes.append((jitter(t0 + k), PPQ - 30, pitch(deg + walk[i % 4], base), rng.randint(85, 105)))
        elif kind == "offbeat":
            for k in range(PPQ // 2, dur, PPQ):
                bass.notes.append((jitter(t0 + k), PPQ // 2 - 40, root + 12 * (rng.random() < 0.3), 105))
        elif kind == "syncopated":
            for s in range(0, dur // step_t):
                if s == 0 or rng.random() < 0.25 + 0.25 * density:
                    p = root + rng.choice([0, 0, 12, 7, 10]) if s else root
                    bass.notes.append((jitter(t0 + swung(s)), step_t - 10, p, rng.randint(80, 115)))
        elif kind == "bossa":
            for k, p in ((0, root), (PPQ + PPQ // 2, fifth), (2 * PPQ, fifth), (3 * PPQ + PPQ // 2, root)):
                if k < dur:
                    bass.notes.append((jitter(t0 + k), PPQ // 2 + 60, p, 95))

    others = []
    n_parts = 1 if density < 0.55 else 2
    comps = list(st["comp"])
    rng.shuffle(comps)
    pool = list(st["programs"])
    rng.shuffle(pool)
    for i in range(n_parts):
        part = Part(pool[i % len(pool)], 3 + i)
        kind = comps[i % len(comps)]
        octave = 48 + 12 * (i + (kind in ("arpeggio", "counter")))
        for t0, dur, deg in chords:
            triad = [pitch(deg + k, octave) for k in (0, 2, 4)]
            if kind in ("shell", "stab") and style == "swing":
                triad = [pitch(deg, octave), pitch(deg + 2, octave), pitch(deg + 6, octave)]
            if kind == "pad":
                for p in triad:
                    part.notes.append((t0, dur - 20, p, rng.randint(55, 75)))
            elif kind == "power":
                for k in range(0, dur, PPQ // 2):
                    for p in (triad[0], triad[0] + 7):
                        part.notes.append((jitter(t0 + k), PPQ // 2 - 40, p, rng.randint(80, 100)))
            elif kind == "strum":
                for k in range(0, dur, PPQ):
                    for j, p in enumerate(triad + [triad[0] + 12]):
                        part.notes.append((jitter(t0 + k + 15 * j), PPQ - 50, p, rng.randint(65, 90)))
            elif kind == "arpeggio":
                rate = rng.choice([PPQ // 2, PPQ // 4]) if density > 0.5 else PPQ // 2
                seq = triad + [triad[0] + 12] if rng.random() < 0.5 else triad + [triad[1] + 12, triad[2] + 12]
                for j, k in enumerate(range(0, dur, rate)):
                    part.notes.append((jitter(t0 + k), rate - 10, seq[j % len(seq)], rng.randint(60, 85)))
            elif kind == "oompah":
                for k in range(PPQ, dur, PPQ):
                    for p in triad:
                        part.notes.append((jitter(t0 + k), PPQ // 2, p, rng.randint(60, 80)))
            elif kind in ("shell", "stab", "chop"):
                steps = [s for s in range(dur // step_t) if rng.random() < (0.15 + 0.2 * density)] or [0]
                for s in steps:
                    for p in triad:
                        part.notes.append((jitter(t0 + swung(s)), step_t * rng.choice([1, 2, 3]), p, rng.randint(70, 100)))
            elif kind == "bossa":
                for s in (0, 3, 6, 10, 12):
                    if s * step_t < dur:
                        for p in triad:
                            part.notes.append((jitter(t0 + s * step_t), 2 * step_t, p, rng.randint(60, 80)))
            elif kind == "counter":
                for k in range(0, dur, PPQ):
                    part.notes.append((jitter(t0 + k), PPQ - 30, pitch(deg + rng.choice([0, 2, 4, 5]), octave), 80))
        others.append(part)

    vocals = Part(rng.choice(VOICE_PROGRAMS), 2)
    mel_base = 48 if key > 6 else 60  # tonic between F#3 and F#4: a singer's range
    leapiness = rng.uniform(0.1, 0.45)
    rest_p = rng.uniform(0.05, 0.3)
    durations = rng.choice([(1, 1, 2, 2, 3, 4), (2, 2, 2, 4), (1, 1, 1, 2, 2), (2, 4, 4, 6)])  # in 8ths
    phrase = rng.choice([2, 4]) * bar_t
    t, deg = 0, rng.choice([0, 2, 4])
    total = bars * bar_t
    while t < total:
        d = rng.choice(durations) * PPQ // 2
        if t % phrase > phrase - PPQ or rng.random() < rest_p:  # breathe at phrase ends, and rests
            t += d
            continue
        step = rng.choice([-4, -3, 3, 4, 5]) if rng.random() < leapiness else rng.choice([-2, -1, -1, 1, 1, 2])
        deg = max(-2, min(11, deg + step))
        # land on a chord tone on strong beats
        chord_deg = next((c for c0, cd, c in chords if c0 <= t < c0 + cd), 0)
        if t % PPQ == 0 and (deg - chord_deg) % 7 not in (0, 2, 4):
            deg += 1
        vocals.notes.append((jitter(t), max(d - rng.randint(20, 80), 60), pitch(deg, mel_base),
                             rng.randint(80, 110)))
        t += d

    return Composition(seed=seed, style=style, bpm=bpm, meter=meter, key=key, mode=mode, bars=bars,
                       stems={"drums": [drums], "bass": [bass], "vocals": [vocals], "other": others})
