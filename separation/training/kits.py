"""Recorded drum kits for the drums stem of training examples: Hydrogen drumkits (Debian's
`hydrogen-drumkits`) played from a song's GM channel-10 part. No Django.

Why (stop 76): every bank we train on brings one kit, and the network learns kits, not the role
of a kit. On grooves played by a bank of another make v19's drums fall from ~7 dB (its own two
banks' kits) to ~1.5 dB (FreePats) and ~0.5 dB (our synthesiser's kit), under mixture/4 on some
sets, and a third whole bank (v37) repaired that bank's kit only. Drum kits are cheap to play
(one-shot samples at note onsets, no pitch, no sustain), so a training run can put a recorded kit
of another maker under any song's drum part at the place an example is cut (`Player.render`),
without rendering a new set: `separation.train --kits ... --kit-swap P`.

Which kits: only those whose terms allow commercial use of what is made with them, by the same
policy as the banks (`licences.py`): ColomboAcousticDrumkit (an acoustic kit, GPL-2.0-or-later with
a composition exception, as FreePats), rumpf_kit_z01 (analog samples, CC-BY-3.0: attribution,
which the run's record and the model card keep) and Audiophob (an electronic kit, CC0). The
package's other kits are GPL without the exception or CC-BY-SA: not used (see `licences.py`).
Each kit is pinned by one digest over its files (as FreePats' tree); a changed kit is refused.

How a GM note is played: each kit instrument is classed by its name (kick, snare, hat, tom, ...);
each GM percussion key has a class and fallbacks (a conga falls back to a tom, a shaker to a closed
hat), and plays the first instrument of the first class the kit has (one of that class its name
places at that very key first: "d#4 - cymbal 1" plays GM's ride, 51); the velocity picks the layer
(Hydrogen's `min`/`max`), and scales it linearly, times the layer's gain and the instrument's
volume, panned by Hydrogen's `pan_L`/`pan_R`; an open hat is cut (5 ms fade) by the next closed or
pedal hat, as a drummer's foot does. Note-offs are ignored (one-shot samples, as in Hydrogen).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .freepats import tree_sha256
from .synth import read_notes

KIT_ROOT = Path("/usr/share/hydrogen/data/drumkits")
PACKAGE = "hydrogen-drumkits 2017.09.19~dfsg-1 (Debian)"


@dataclass(frozen=True)
class KitSource:
    id: str
    folder: str
    licence: str
    attribution: str
    tree_sha256: str


KITS: dict[str, KitSource] = {k.id: k for k in (
    KitSource("hydrogen-colombo", "ColomboAcousticDrumkit",
              "LicenseRef-Hydrogen-GPL-2.0-or-later-composition-exception",
              "ColomboAcousticDrumkit, 2006 Marcos Guglielmetti",
              "30c2089767dcc3ab5d78b48d67309888c80006ee45d027d14c930d8d29f4a43c"),
    KitSource("hydrogen-rumpf", "rumpf_kit_z01_h2", "CC-BY-3.0",
              "rumpf_kit_z01 by Emanuel Rumpf (sf.net/projects/rumpf-kit), CC BY 3.0",
              "b50880fdbbab72b6ab6af0b1f5beee46f89d8646b461b76f20f95f9c86cd03ce"),
    KitSource("hydrogen-audiophob", "Audiophob", "CC0-1.0",
              "Audiophob kit (soundcloud.com/audiophobdubstep), CC0",
              "fb2513d875d42e02b980cfde9c22389cb8e93c9584f8152fb64868f6c632f836"),
)}

#: GM percussion key -> classes to try in order (the first a kit has plays the note)
_HAT = ("hat_closed",)
GM_CLASSES: dict[int, tuple[str, ...]] = {
    35: ("kick",), 36: ("kick",), 37: ("stick", "snare"), 38: ("snare",), 40: ("snare",),
    39: ("clap", "snare"), 42: _HAT, 44: ("hat_pedal",) + _HAT, 46: ("hat_open",) + _HAT,
    41: ("tom_low", "tom_mid", "tom_high"), 43: ("tom_low", "tom_mid", "tom_high"),
    45: ("tom_mid", "tom_low", "tom_high"), 47: ("tom_mid", "tom_high", "tom_low"),
    48: ("tom_high", "tom_mid", "tom_low"), 50: ("tom_high", "tom_mid", "tom_low"),
    49: ("crash", "ride"), 52: ("crash", "ride"), 55: ("crash", "ride"), 57: ("crash", "ride"),
    51: ("ride", "crash"), 59: ("ride", "crash"), 53: ("ride_bell", "ride", "crash"),
    54: ("shaker",) + _HAT, 56: ("cowbell", "stick"), 67: ("cowbell", "stick"), 68: ("cowbell", "stick"),
    69: ("shaker",) + _HAT, 70: ("shaker",) + _HAT, 82: ("shaker",) + _HAT,
    75: ("stick", "cowbell"), 76: ("stick", "cowbell"), 77: ("stick", "cowbell"),
    80: ("ride_bell", "ride"), 81: ("ride_bell", "ride"),
} | {k: ("tom_high", "tom_mid", "tom_low") for k in (60, 62, 65)} | {
    k: ("tom_mid", "tom_low", "tom_high") for k in (61, 63, 64, 66)}

#: an instrument's class from its name, first match wins (kit authors' names: "Closed HH",
#: "bassdrum", "redo super opaco" (Spanish redoblante, a snare), "c#4 - crash", "ride-cup")
_NAME_CLASSES = (
    (r"pedal", "hat_pedal"), (r"open.*(hh|hat)|(hh|hat).*open", "hat_open"),
    (r"hh|hat", "hat_closed"), (r"kick|bass ?drum|\bbd\b", "kick"), (r"clap", "clap"),
    (r"stick|rim", "stick"), (r"snare|redo", "snare"),
    (r"tom.*(low|floor)|(low|floor).*tom", "tom_low"), (r"tom.*(hi|high)|(hi|high).*tom", "tom_high"),
    (r"tom", "tom_mid"), (r"ride.*(cup|bell)|(cup|bell).*ride", "ride_bell"), (r"ride", "ride"),
    (r"crash|cymbal|splash|china", "crash"), (r"cowbell", "cowbell"), (r"shak|tamb|maraca", "shaker"),
)
OPEN_HAT_FADE_S = 0.005
#: the tail of a note that started before an example still sounds in it: notes this long before count
TAIL_S = 4.0


class KitError(RuntimeError):
    pass


def class_of(name: str) -> str | None:
    low = name.lower()
    return next((cls for pattern, cls in _NAME_CLASSES if re.search(pattern, low)), None)


_NOTE_NAME = re.compile(r"^\s*([a-g])(#?)(\d)\s*-")
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def declared_key(name: str) -> int | None:
    """The MIDI key a kit names an instrument by ("c3 - bass drum 1": 36, Hydrogen's octave
    numbering, C3 = 36), or None."""
    m = _NOTE_NAME.match(name.lower())
    return 12 * int(m.group(3)) + _PITCH_CLASS[m.group(1)] + (m.group(2) == "#") if m else None


@dataclass
class Layer:
    lo: float
    hi: float
    gain: float
    audio: np.ndarray  # [2, n] float32 at the player's rate


@dataclass
class Instrument:
    name: str
    cls: str
    key: int | None  # the GM key its name declares ("d#4 - cymbal 1": 51), if any
    volume: float
    pan: tuple[float, float]
    layers: list[Layer]

    def layer(self, velocity: float) -> Layer:
        """Hydrogen's choice: the layer whose [min, max] holds the velocity, else the nearest."""
        inside = [ly for ly in self.layers if ly.lo <= velocity <= ly.hi]
        if inside:
            return inside[0]
        return min(self.layers, key=lambda ly: min(abs(velocity - ly.lo), abs(velocity - ly.hi)))


def _text(node, tag: str, ns: str, default: str | None = None) -> str | None:
    child = node.find(ns + tag)
    return child.text.strip() if child is not None and child.text is not None else default


def _read_sample(path: Path, rate: int) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.T
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    x = x[:2]
    if sr != rate:
        g = np.gcd(sr, rate)
        x = resample_poly(x, rate // g, sr // g, axis=1).astype(np.float32)
    return x


def read_drumkit(folder: Path, rate: int = 44100) -> dict[str, list[Instrument]]:
    """{class: instruments in the kit's order} from a Hydrogen `drumkit.xml` (the layered format
    of Hydrogen ≥ 0.9.4, `<layer>` under `<instrument>` or its `<instrumentComponent>`, and the older
    one-`<filename>` format); instruments with no sample or a name of no known class are left out."""
    try:
        root = ET.parse(folder / "drumkit.xml").getroot()
    except (OSError, ET.ParseError) as exc:
        raise KitError(f"{folder}: no readable drumkit.xml ({exc})") from exc
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    classes: dict[str, list[Instrument]] = {}
    for node in root.iter(ns + "instrument"):
        name = _text(node, "name", ns, "") or ""
        cls = class_of(name)
        if cls is None:
            continue
        specs = [(_text(ly, "filename", ns), float(_text(ly, "min", ns, "0")), float(_text(ly, "max", ns, "1")),
                  float(_text(ly, "gain", ns, "1"))) for ly in node.iter(ns + "layer")]
        if not specs and _text(node, "filename", ns):
            specs = [(_text(node, "filename", ns), 0.0, 1.0, 1.0)]
        layers = [Layer(lo, hi, gain, _read_sample(folder / fn, rate)) for fn, lo, hi, gain in specs if fn]
        if not layers:
            continue
        pan = (float(_text(node, "pan_L", ns, "1")), float(_text(node, "pan_R", ns, "1")))
        classes.setdefault(cls, []).append(
            Instrument(name, cls, declared_key(name), float(_text(node, "volume", ns, "1")), pan, layers))
    if not classes:
        raise KitError(f"{folder}: no instrument of a known class")
    return classes


class Player:
    """One pinned kit, loaded once, playing GM drum parts at any place in a song."""

    def __init__(self, kit: str | KitSource, root: Path = KIT_ROOT, rate: int = 44100):
        if isinstance(kit, str):
            if kit not in KITS:
                raise KitError(f"unknown kit {kit!r}; known: {', '.join(sorted(KITS))}")
            kit = KITS[kit]
        self.source, self.rate = kit, rate
        folder = root / kit.folder
        if not folder.is_dir():
            raise KitError(f"kit {kit.id}: {folder} is missing (install Debian's hydrogen-drumkits)")
        digest = tree_sha256(folder)
        if digest != kit.tree_sha256:
            raise KitError(f"kit {kit.id}: its files hash to {digest}, pinned {kit.tree_sha256}; "
                           "re-read its licence before re-pinning")
        self.classes = read_drumkit(folder, rate)

    def instrument(self, key: int) -> Instrument | None:
        for cls in GM_CLASSES.get(key, ()):
            if cls in self.classes:
                pick = self.classes[cls]
                named = [i for i in pick if i.key == key]  # a partly-GM kit's own choice for this key
                if named:
                    return named[0]
                # the second kick/snare of a kit plays GM's second key of that drum (35 / 40)
                return pick[1] if key in (35, 40) and len(pick) > 1 else pick[0]
        return None

    def render(self, notes: list[tuple], start_s: float, n: int) -> np.ndarray:
        """The drum notes of `notes` (`synth.read_notes` tuples; channel 10 only) sounding in
        [start_s, start_s + n / rate), as float32 [2, n]."""
        out = np.zeros((2, n), np.float32)
        end_s = start_s + n / self.rate
        drums = [x for x in notes if x[5] == 9 and start_s - TAIL_S <= x[0] < end_s]
        hats = [x[0] for x in drums if x[2] in (42, 44)]
        for onset, _end, key, vel, _prog, _ch in drums:
            inst = self.instrument(key)
            if inst is None:
                continue
            v = vel / 127
            layer = inst.layer(v)
            x = layer.audio * (v * layer.gain * inst.volume)
            x = x * np.asarray(inst.pan, np.float32)[:, None]
            if inst.cls == "hat_open":
                cut = next((h for h in hats if h > onset), None)
                if cut is not None:
                    keep = int((cut - onset) * self.rate)
                    fade = int(OPEN_HAT_FADE_S * self.rate)
                    x = x[:, :keep + fade].copy()
                    tail = x[:, keep:]
                    tail *= np.linspace(1, 0, tail.shape[1], dtype=np.float32)[None, :]
            s = int(round((onset - start_s) * self.rate))
            a, b = max(s, 0), min(s + x.shape[1], n)
            if b > a:
                out[:, a:b] += x[:, a - s:b - s]
        return out


def drum_notes(midi_path: Path) -> list[tuple]:
    """A part's channel-10 notes (`synth.read_notes` tuples)."""
    return [x for x in read_notes(midi_path) if x[5] == 9]


def record(kit_ids: list[str]) -> list[dict]:
    """What a run trained with, for its config and card: each kit's source, licence and pin."""
    return [{"id": k, "package": PACKAGE, "folder": KITS[k].folder, "licence": KITS[k].licence,
             "attribution": KITS[k].attribution, "tree_sha256": KITS[k].tree_sha256} for k in kit_ids]
