"""A second composer with other habits than `compose`: songs with a form (our own work, licence
`LicenseRef-ClearStem-own-work`).

Why a second one: every training song came from `compose`, whose songs are one loop from the
first bar to the last — the singer never stops, nothing enters or leaves, the harmony is a
four-chord cycle of triads, the accompaniment is one or two parts — and a model learns those
habits as if they were music (on songs from another generator its *other* stem fell below 0 dB,
README "Training"). Real excerpts differ in exactly those ways, so this composer writes them:

* **form** — the excerpt is cut from a song of intro / verse / chorus / instrumental break /
  bridge / outro sections, entered at a random point; the voice rests in intros and breaks, drums
  drop out of breakdowns, the bass sits out intros, parts enter and leave, and a crash and a fill
  mark section changes. Silence in a stem is something the model must learn to output;
* **leads that are not vocals** — instrumental sections carry a melody on a sax, trumpet, flute,
  violin, whistle or synth lead, in the *other* stem: a lead line is not a voice by its shape;
* **harmony** — a chord walk over functional harmony (sevenths, suspensions, secondary dominants,
  borrowed chords, inversions) with a harmonic rhythm per section, and a key change a step up for
  a last chorus now and then;
* **meters and feels** — 4/4 straight or shuffled (triplet, 12/8 feel), 3/4 with a 9/8 lilt, 6/4,
  5/4 and 7/4; a drum grammar per groove (boom-bap, breakbeat, one-drop, clave, double-kick,
  drum'n'bass, brushes, trap hats, disco, half-time) with ghost notes, accents and hand percussion;
* **vocal lines** — motifs stated and varied, pickups, syllable-like note values, held phrase
  ends, a higher chorus, and a backing voice in thirds in some choruses (a second vocals part);
* **other** — two to four parts from roles (pad, comping with voice-leading inversions,
  arpeggio, counter-line, stabs, plucked ostinato) on programs drawn from the whole melodic
  General MIDI range except the bass and voice programs.

A song is the same four stems as `compose` (`compose.Composition`, so the renderers and the
manifest take either): drums on channel 10, bass on a GM bass program (32–39), vocals on GM voice
programs (52, 53, 54, 85) — voice-like timbres, no words — and everything else in *other*.
Pure: the standard library and `compose`'s MIDI writer; no Django, no clearstem.
"""
from __future__ import annotations

import random

from .compose import (
    BASS_PROGRAMS,
    CHH,
    CLAP,
    COWBELL,
    CRASH,
    KICK,
    MODES,
    OHH,
    PHH,
    PPQ,
    RIDE,
    RIM,
    SHAKER,
    SNARE,
    TAMB,
    TOM_H,
    TOM_L,
    VOICE_PROGRAMS,
    Composition,
    Part,
)

COMPOSER = "arrange"
LEAD_CHANNEL = 4  # the instrumental lead's part in *other* (no other part uses this channel)
# GM hand percussion beyond compose's kit
BONGO_H, BONGO_L, CONGA_MUTE, CONGA_H, CONGA_L, CLAVES, CABASA, SPLASH, CHINA, TOM_M, RIDE_BELL = (
    60, 61, 62, 63, 64, 75, 69, 55, 52, 47, 53)
# melodic programs "other" may use: not bass (32-39), not voices (52-54, 85), no sound effects (120-127)
OTHER_PROGRAMS = tuple(p for p in range(120) if not (32 <= p <= 39 or p in (52, 53, 54, 85)))
LEAD_PROGRAMS = (56, 57, 64, 65, 66, 68, 71, 72, 73, 75, 78, 40, 80, 81, 29, 30, 22, 11, 13)
PAD_PROGRAMS = (48, 49, 50, 51, 88, 89, 90, 91, 92, 94, 95, 19, 16, 17, 44, 61)
COMP_PROGRAMS = (0, 1, 2, 4, 5, 6, 7, 24, 25, 26, 27, 28, 16, 18, 46, 105, 107)
PLUCK_PROGRAMS = (8, 9, 10, 11, 12, 13, 14, 15, 45, 46, 104, 106, 108, 112, 114, 115, 24, 25)
GROOVES = {  # meter (quarter beats per bar), bpm range, triplet feel, drum grammar
    "boom-bap": (4, (82, 98), True), "breakbeat": (4, (120, 140), False), "one-drop": (4, (66, 84), False),
    "clave": (4, (92, 124), False), "double-kick": (4, (140, 190), False), "dnb": (4, (160, 178), False),
    "brushes": (4, (90, 160), True), "trap": (4, (130, 150), False), "disco": (4, (110, 128), False),
    "half-time": (4, (70, 90), False), "shuffle": (4, (100, 140), True), "lilt": (3, (60, 100), True),
    "six": (6, (80, 120), False), "five": (5, (100, 150), False), "seven": (7, (110, 150), False),
}
SECTIONS = {  # which stems play, and how loud, in each kind of section
    "intro": dict(vocals=False, drums=0.5, bass=0.5, lead=0.3, energy=0.6),
    "verse": dict(vocals=True, drums=0.9, bass=1.0, lead=0.0, energy=0.75),
    "chorus": dict(vocals=True, drums=1.0, bass=1.0, lead=0.0, energy=1.0),
    "break": dict(vocals=False, drums=0.8, bass=0.9, lead=1.0, energy=0.9),
    "bridge": dict(vocals=True, drums=0.6, bass=0.8, lead=0.2, energy=0.7),
    "breakdown": dict(vocals=False, drums=0.0, bass=0.6, lead=0.5, energy=0.5),
    "outro": dict(vocals=False, drums=0.7, bass=0.8, lead=0.5, energy=0.6),
}
#: section kinds where the voice rests (an instrumental lead may play)
VOICE_RESTS = tuple(kind for kind, spec in SECTIONS.items() if not spec["vocals"])
FORMS = [
    ["intro", "verse", "chorus", "verse", "chorus", "break", "chorus", "outro"],
    ["intro", "verse", "verse", "chorus", "bridge", "chorus", "outro"],
    ["verse", "chorus", "breakdown", "chorus", "break", "outro"],
    ["intro", "break", "verse", "chorus", "break", "verse", "chorus"],
    ["intro", "verse", "bridge", "chorus", "breakdown", "chorus", "chorus", "outro"],
]
# functional harmony: scale degree -> degrees it may move to (weights by repetition)
NEXT = {0: (3, 4, 5, 1, 3, 4, 2), 1: (4, 4, 6), 2: (5, 3, 5), 3: (4, 0, 1, 4, 6), 4: (0, 0, 5, 3),
        5: (1, 3, 4, 3), 6: (0, 2)}


def voice_rest_spans(description: dict, frames: int, rate: int) -> list[tuple[int, int]]:
    """[start, end) audio frames where the song's form rests the voice, from a manifest's
    `composition` of an `arrange` song (bpm, meter, form; none for `compose`'s songs). A
    separator should leave its vocals stem silent there; `bench.separate` measures what it puts
    in instead."""
    bar_s = int(str(description["meter"]).split("/")[0]) * 60.0 / float(description["bpm"])
    spans = []
    for kind, first, end in description.get("form", []):
        lo, hi = min(frames, int(first * bar_s * rate)), min(frames, int(end * bar_s * rate))
        if kind in VOICE_RESTS and hi > lo:
            spans.append((lo, hi))
    return spans


def _drums(groove: str, meter: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """One bar's pattern for a groove: (16th step, GM key, velocity); `arrange` places the steps,
    late off-beats included where the song has a triplet feel."""
    steps = meter * 4
    hits: list[tuple[int, int, int]] = []

    def add(key, where, p=1.0, vel=(80, 110)):
        for s in where:
            if 0 <= s < steps and rng.random() < p:
                hits.append((s, key, rng.randint(*vel)))

    ghost = (25, 45)
    if groove == "boom-bap":
        add(KICK, [0, 7, 10] + rng.sample([3, 8, 14], 1))
        add(SNARE, [4, 12])
        add(CHH, range(0, steps, 2), 0.95, (55, 85))
        add(SNARE, [6, 9, 15], 0.3, ghost)
    elif groove == "breakbeat":
        add(KICK, [0, 2, 10, 11])
        add(SNARE, [4, 12])
        add(SNARE, [7, 9, 15], 0.6, ghost)
        add(RIDE if rng.random() < 0.4 else CHH, range(0, steps, 2), 1.0, (60, 90))
    elif groove == "one-drop":
        add(KICK, [8])
        add(RIM, [8])
        add(CHH, range(0, steps, 2), 0.9, (45, 75))
        add(OHH, [14], 0.4)
    elif groove == "clave":
        add(CLAVES, [0, 3, 6, 10, 12])
        add(KICK, [0, 6, 8, 14], 0.9)
        add(CONGA_H, [2, 6, 10, 14], 0.9, (60, 90))
        add(CONGA_L, [7, 15], 0.8)
        add(CONGA_MUTE, [4, 12], 0.7)
        add(CABASA, range(steps), 0.7, (40, 70))
    elif groove == "double-kick":
        add(KICK, range(steps), 0.95, (85, 115))
        add(SNARE, [4, 12])
        add(CHINA if rng.random() < 0.3 else CRASH, [0], 0.6)
        add(RIDE, range(0, steps, 2), 0.8, (60, 90))
    elif groove == "dnb":
        add(KICK, [0, 10])
        add(SNARE, [4, 12])
        add(SNARE, [7, 14], 0.4, ghost)
        add(CHH, range(0, steps, 2), 1.0, (55, 85))
        add(OHH, [6], 0.3)
        add(RIDE_BELL, [2, 10], 0.3)
    elif groove == "brushes":
        add(SNARE, range(steps), 0.7, (20, 45))
        add(RIDE, [0, 4, 8, 12] + [6, 14][:max(0, meter - 2)], 1.0, (55, 80))
        add(PHH, range(4, steps, 8))
        add(KICK, [0], 0.5, (40, 70))
    elif groove == "trap":
        add(KICK, [0, 3, 10] + rng.sample([6, 7, 11, 14], 1))
        add(CLAP if rng.random() < 0.6 else SNARE, [8])
        add(CHH, range(steps), 1.0, (50, 90))
    elif groove == "disco":
        add(KICK, range(0, steps, 4))
        add(SNARE if rng.random() < 0.5 else CLAP, [4, 12])
        add(OHH, range(2, steps, 4))
        add(TAMB, range(0, steps, 2), 0.6, (40, 70))
    elif groove == "half-time":
        add(KICK, [0, 3] + rng.sample([10, 11, 14], 1))
        add(SNARE, [8])
        add(CHH, range(0, steps, 2), 0.9, (50, 80))
        add(SNARE, [5, 13], 0.3, ghost)
    elif groove == "shuffle":
        add(KICK, [0, 8] + rng.sample([6, 14], 1))
        add(SNARE, [4, 12])
        add(RIDE if rng.random() < 0.5 else CHH, range(0, steps, 2), 1.0, (55, 85))
    elif groove == "lilt":
        add(KICK, [0])
        add(RIM if rng.random() < 0.5 else SNARE, [4, 8], 0.8, (50, 80))
        add(CHH, range(0, steps, 2), 0.9, (40, 70))
        add(SHAKER, range(steps), 0.5, (30, 60))
    else:  # six, five, seven: kick on groupings of the bar, snare at its middle
        groups = {"six": [0, 12], "five": [0, 12], "seven": [0, 8, 16]}[groove]
        add(KICK, groups)
        add(SNARE, [s + 4 for s in groups] + ([steps - 4] if groove == "seven" else []))
        add(CHH if rng.random() < 0.6 else RIDE, range(0, steps, 2), 0.95, (50, 85))
        add(COWBELL if rng.random() < 0.3 else SHAKER, range(0, steps, 4), 0.6, (40, 70))
    if rng.random() < 0.25:  # hand percussion over any groove
        add(rng.choice([BONGO_H, BONGO_L, CONGA_H, TAMB, SHAKER]), range(1, steps, 2), 0.5, (35, 70))
    return hits


def _chord_walk(rng: random.Random, n: int, start: int = 0) -> list[tuple[int, str]]:
    """n chords as (scale degree, colour): a walk over NEXT with cadences onto the tonic."""
    out, deg = [], start
    for i in range(n):
        colour = rng.choices(["triad", "seventh", "sus4", "sus2", "add9", "secondary"], [5, 3, 1, 1, 1, 1])[0]
        out.append((deg, colour))
        deg = 0 if i % 4 == 2 and rng.random() < 0.3 else rng.choice(NEXT[deg])
    return out


def arrange(seed: int, seconds: float) -> Composition:
    """A `seconds`-long excerpt of a song with a form, every draw from `seed` (same seed, same MIDI)."""
    rng = random.Random(seed ^ 0x5EC0)  # never the same draws as compose(seed)
    groove = rng.choice(sorted(GROOVES))
    meter, bpm_range, triplet = GROOVES[groove]
    triplet = triplet and rng.random() < 0.8
    bpm = rng.uniform(*bpm_range)
    key = rng.randrange(12)
    mode = rng.choice(["major", "major", "minor", "minor", "dorian", "mixolydian", "harmonic_minor"])
    scale = MODES[mode]
    bar_t = meter * PPQ
    bars = max(2, int(seconds * bpm / 60.0 / meter) + 1)
    step_t = PPQ // 4
    feel = {p: rng.gauss(0, 6) for p in ("drums", "bass", "vocals", "other")}  # laid back or pushed
    spread = rng.uniform(2, 14)

    def at(part: str, t: int) -> int:
        return max(0, int(t + feel[part] + rng.gauss(0, spread)))

    def grid(step: int) -> int:  # 16th step -> tick; with a triplet feel the off-beat 8th falls at 2/3
        if triplet:
            beat, sub = divmod(step, 4)
            return beat * PPQ + (0, PPQ // 3, 2 * PPQ // 3, 5 * PPQ // 6)[sub]
        return step * step_t

    # the form, entered at a random point: (kind, first bar, bars)
    form = rng.choice(FORMS)
    lengths = [rng.choice([2, 4, 4, 4, 8]) if kind not in ("intro", "outro") else rng.choice([2, 4]) for kind in form]
    skip = rng.randrange(0, sum(lengths))
    timeline, b = [], 0
    while b < skip + bars:
        for kind, n in zip(form, lengths):
            timeline.append((kind, b, n))
            b += n
    sections = [(kind, s - skip, n) for kind, s, n in timeline if s + n > skip and s - skip < bars]
    modulate = rng.random() < 0.25
    last_chorus = max((s for kind, s, _ in sections if kind == "chorus"), default=None)

    def transpose(bar: int) -> int:
        return 2 if modulate and last_chorus is not None and bar >= last_chorus and last_chorus > 0 else 0

    def pitch(deg: int, base: int, bar: int) -> int:
        return base + key + transpose(bar) + scale[deg % 7] + 12 * (deg // 7)

    # chords: a harmonic rhythm per section kind; a progression per kind, repeated within it
    chords = []  # (tick, dur, degree, colour, bar, section)
    progs: dict[str, list] = {}
    for kind, s0, n in sections:
        per_bar = rng.choice([1, 1, 2]) if meter in (4, 6) else 1
        if kind not in progs:
            progs[kind] = _chord_walk(rng, rng.choice([2, 4]) * per_bar, start=rng.choice([0, 0, 3, 5]))
        prog = progs[kind]
        for bb in range(n):
            bar = s0 + bb
            if not 0 <= bar < bars:
                continue
            for c in range(per_bar):
                deg, colour = prog[(bb * per_bar + c) % len(prog)]
                chords.append((bar * bar_t + c * bar_t // per_bar, bar_t // per_bar, deg, colour, bar, kind))

    def voicing(deg: int, colour: str, base: int, bar: int, inversion: int = 0) -> list[int]:
        if colour == "secondary":  # V of the chord: a major triad a fifth above, leading tone raised
            root = pitch(deg + 4, base, bar)
            notes = [root, root + 4, root + 7, root + 10]
        else:
            degs = {"triad": (0, 2, 4), "seventh": (0, 2, 4, 6), "sus4": (0, 3, 4), "sus2": (0, 1, 4),
                    "add9": (0, 2, 4, 8)}[colour]
            notes = [pitch(deg + d, base, bar) for d in degs]
        for _ in range(inversion % len(notes)):
            notes = notes[1:] + [notes[0] + 12]
        return notes

    def section_of(bar: int) -> str:
        return next((kind for kind, s, n in sections if s <= bar < s + n), "verse")

    # drums: the groove, fills before section changes, crashes on them, none in breakdowns
    drums = Part(0, 9)
    pattern = _drums(groove, meter, rng)
    alt = _drums(groove, meter, rng)  # a variation for choruses
    starts = {s for _, s, _ in sections}
    for bar in range(bars):
        spec = SECTIONS[section_of(bar)]
        if spec["drums"] == 0 or (section_of(bar) == "intro" and rng.random() < 0.3):
            continue
        fill = (bar + 1) in starts and rng.random() < 0.7
        bar_hits = alt if section_of(bar) == "chorus" else pattern
        for s, k, v in bar_hits:
            if fill and s >= meter * 4 - 4:
                continue
            drums.notes.append((at("drums", bar * bar_t + grid(s)), step_t, k, max(1, min(127, int(v * spec["drums"]
                                                                                                 + 10 * spec["energy"])))))
        if fill:
            toms = [TOM_H, TOM_M, TOM_L, SNARE]
            for j, s in enumerate(range(meter * 4 - 4, meter * 4)):
                drums.notes.append((at("drums", bar * bar_t + grid(s)), step_t, toms[j % 4] if rng.random() < 0.7
                                    else SNARE, rng.randint(80, 115)))
        if bar in starts and rng.random() < 0.8:
            drums.notes.append((bar * bar_t, 2 * PPQ, rng.choice([CRASH, CRASH, SPLASH, CHINA]), rng.randint(85, 115)))

    # bass: a pattern per section kind
    bass = Part(rng.choice(BASS_PROGRAMS), 1)
    base = rng.choice([24, 28, 31, 33])
    kinds = {k: rng.choice(["pedal", "root-fifth", "octaves", "funk", "walking", "sparse", "arp", "approach"])
             for k in SECTIONS}
    for i, (t0, dur, deg, _colour, bar, kind) in enumerate(chords):
        spec = SECTIONS[kind]
        if rng.random() > spec["bass"] + 0.1:
            continue
        root, fifth = pitch(deg, base, bar), pitch(deg + 4, base, bar)
        nxt = pitch(chords[i + 1][2], base, chords[i + 1][4]) if i + 1 < len(chords) else root
        style = kinds[kind]
        vel = int(80 + 30 * spec["energy"])
        if style == "pedal":
            bass.notes.append((at("bass", t0), dur - 30, root, vel))
        elif style == "root-fifth":
            for k in range(0, dur, PPQ):
                bass.notes.append((at("bass", t0 + k), PPQ - 60, root if (k // PPQ) % 2 == 0 else fifth, vel))
        elif style == "octaves":
            for k in range(0, dur, PPQ // 2):
                bass.notes.append((at("bass", t0 + grid(k // step_t)), PPQ // 2 - 50, root + 12 * ((k // (PPQ // 2)) % 2),
                                   vel - 10 * ((k // (PPQ // 2)) % 2)))
        elif style == "funk":
            for s in range(dur // step_t):
                if s == 0 or rng.random() < 0.35:
                    ghost = rng.random() < 0.25
                    bass.notes.append((at("bass", t0 + grid(s)), step_t - 20 if not ghost else step_t // 2,
                                       root + rng.choice([0, 0, 12, 7, 10, 5]), vel - (45 if ghost else 0)))
        elif style == "walking":
            for j, k in enumerate(range(0, dur, PPQ)):
                p = pitch(deg + [0, 2, 4, 5][j % 4], base, bar)
                if k + PPQ >= dur:  # a chromatic approach to the next root
                    p = nxt + rng.choice([-1, 1])
                bass.notes.append((at("bass", t0 + k), PPQ - 40, p, vel - rng.randint(0, 15)))
        elif style == "sparse":
            bass.notes.append((at("bass", t0), PPQ * 3 // 2, root, vel))
            if dur > 2 * PPQ and rng.random() < 0.6:
                bass.notes.append((at("bass", t0 + dur - PPQ // 2), PPQ // 2 - 30, fifth, vel - 15))
        elif style == "arp":
            seq = [root, root + 7, root + 12, root + 7 + (3 if mode != "major" else 4)]
            for j, k in enumerate(range(0, dur, PPQ // 2)):
                bass.notes.append((at("bass", t0 + grid(k // step_t)), PPQ // 2 - 20, seq[j % 4], vel - 5))
        else:  # approach: root on the beat, a passing note into the next chord
            bass.notes.append((at("bass", t0), max(dur - PPQ // 2 - 40, 60), root, vel))
            bass.notes.append((at("bass", t0 + dur - PPQ // 2), PPQ // 2 - 30, nxt - 1 if nxt > root else nxt + 1, vel - 10))

    # vocals: motifs per section kind, varied on repeats; rests in instrumental sections
    lead_voice = Part(rng.choice(VOICE_PROGRAMS), 2)
    backing = Part(rng.choice(VOICE_PROGRAMS), 5) if rng.random() < 0.45 else None
    mel_base = 55 + (key - 7) % 12 - key  # the tonic between G3 and F#4: a singer's range
    motifs: dict[str, list[tuple[int, int]]] = {}  # kind -> [(eighths, degree step)]
    syllable = rng.choice([(1, 1, 1, 2), (1, 1, 2, 2, 3), (2, 2, 1, 1, 4), (1, 2, 1, 2, 6)])
    lead_line = Part(rng.choice(LEAD_PROGRAMS), LEAD_CHANNEL)
    for kind, s0, n in sections:
        spec = SECTIONS[kind]
        sing = spec["vocals"]
        play_lead = not sing and rng.random() < spec["lead"] + 0.3
        if not sing and not play_lead:
            continue
        if kind not in motifs:
            motifs[kind] = [(rng.choice(syllable), rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                            for _ in range(rng.randint(3, 7))]
        motif = motifs[kind]
        lift = 2 if kind == "chorus" else (0 if kind == "verse" else 1)
        phrase_bars = rng.choice([1, 2]) if meter >= 5 else 2
        part = lead_voice if sing else lead_line
        deg = rng.choice([0, 2, 4]) + lift
        for pb in range(0, n, phrase_bars):
            bar0 = s0 + pb
            if bar0 >= bars or bar0 + phrase_bars <= 0:
                continue
            t = bar0 * bar_t + rng.choice([0, 0, PPQ // 2, PPQ, -PPQ // 2])  # pickups and late entries
            end = (bar0 + phrase_bars) * bar_t - rng.choice([PPQ // 2, PPQ, 2 * PPQ])
            varied = [(d, st + (rng.choice([-1, 1]) if rng.random() < 0.3 else 0)) for d, st in motif]
            j = 0
            while t < end:
                eighths, step = varied[j % len(varied)]
                dur = eighths * PPQ // 2
                if t + dur >= end:  # hold the phrase's last note
                    dur = max(end - t, PPQ // 2)
                deg = max(-3 + lift, min(7 + lift, deg + step))
                bar = t // bar_t
                chord = next((c for c in chords if c[0] <= t < c[0] + c[1]), None)
                if chord and t % PPQ == 0 and (deg - chord[2]) % 7 not in (0, 2, 4):
                    deg += 1  # chord tones on the beats
                p = pitch(deg, mel_base if sing else mel_base + 12 * (lead_line.program in (72, 73, 75, 78)), bar)
                vel = int(rng.randint(75, 105) * (0.85 + 0.15 * spec["energy"]))
                if t >= 0:
                    part.notes.append((at("vocals" if sing else "other", t), max(dur - rng.randint(10, 90), 60), p, vel))
                    if sing and backing is not None and kind == "chorus":
                        harmony = pitch(deg + rng.choice([2, -3]), mel_base, bar)
                        backing.notes.append((at("vocals", t + 8), max(dur - 60, 60), harmony, vel - 20))
                t += dur
                j += 1

    # other: parts by role, each playing in the sections its role suits
    roles = ["comp"] + rng.sample(["pad", "arp", "counter", "stabs", "pluck"], rng.randint(1, 3))
    others = []
    used: set[int] = {lead_line.program}
    for i, role in enumerate(roles):
        pool = {"pad": PAD_PROGRAMS, "comp": COMP_PROGRAMS, "pluck": PLUCK_PROGRAMS}.get(role, OTHER_PROGRAMS)
        program = rng.choice([p for p in pool if p not in used] or list(pool))
        used.add(program)
        part = Part(program, (6, 7, 8, 10, 11)[i])
        base_o = rng.choice([48, 55, 60])
        inversion = 0
        rhythm = sorted(rng.sample(range(meter * 4), rng.randint(2, max(3, meter * 2))))
        silent_in = set(rng.sample(sorted(SECTIONS), rng.randint(0, 3)))
        for t0, dur, deg, colour, bar, kind in chords:
            if kind in silent_in and role != "comp":
                continue
            energy = SECTIONS[kind]["energy"]
            inversion = (inversion + rng.choice([0, 1, 2])) % 3  # voice leading, roughly
            notes = voicing(deg, colour, base_o, bar, inversion)
            vel = int(rng.randint(55, 85) * (0.7 + 0.3 * energy))
            if role == "pad":
                for p in notes:
                    part.notes.append((t0, dur - 10, p, vel - 10))
            elif role == "comp":
                for s in rhythm:
                    if s * step_t < dur:
                        for j, p in enumerate(notes):
                            part.notes.append((at("other", t0 + grid(s) + 6 * j), step_t * rng.choice([1, 2, 3]), p, vel))
            elif role == "arp":
                rate = rng.choice([PPQ // 2, PPQ // 4, PPQ // 3 if triplet else PPQ // 4])
                seq = notes + notes[-2:0:-1]
                for j, k in enumerate(range(0, dur, rate)):
                    part.notes.append((at("other", t0 + k), rate - 10, seq[j % len(seq)] + 12, vel - 5))
            elif role == "counter":
                for k in range(0, dur, PPQ * rng.choice([1, 2])):
                    part.notes.append((at("other", t0 + k), PPQ * 2 - 40, rng.choice(notes) + 12, vel))
            elif role == "stabs":
                for s in rng.sample(range(max(1, dur // step_t)), min(2, max(1, dur // step_t))):
                    for p in notes[:3]:
                        part.notes.append((at("other", t0 + grid(s)), step_t, p + 12, min(127, vel + 20)))
            else:  # pluck: an ostinato on chord tones
                pat = [rng.choice(notes) + 12 for _ in range(rng.choice([3, 4, 6]))]
                for j, k in enumerate(range(0, dur, PPQ // 2)):
                    part.notes.append((at("other", t0 + k), PPQ // 2 - 10, pat[j % len(pat)], vel - 10))
        others.append(part)
    if lead_line.notes:
        others.append(lead_line)

    vocals = [lead_voice] + ([backing] if backing is not None and backing.notes else [])
    form_bars = [(kind, max(s, 0), min(s + n, bars)) for kind, s, n in sections]
    comp = Composition(seed=seed, style=f"{COMPOSER}:{groove}", bpm=bpm, meter=meter, key=key, mode=mode, bars=bars,
                       stems={"drums": [drums], "bass": [bass], "vocals": vocals, "other": others}, form=form_bars)
    return comp
