"""The General MIDI soundfonts every bench renders with, in one place, and why only these.

Debian's MuseScore General (every size) is built in part from the GM bank that is reserved for
our held-out evaluation, so it is out, like that bank itself and the game-music packages.
What is left, all from Debian: the Csound GM bank (public domain, sampled), TimGM6mb (GPL-2,
small sampled bank) and OPL-3 FM (CC-BY-SA-4.0, FM synthesis: a very different timbre, which
keeps a bench from rewarding one sample set's habits). Benches never ship audio, so the
licences matter less here than for training (`separation.training.licences`), but the
reservation does.
"""
from __future__ import annotations

from pathlib import Path

CSOUND_GM = "/usr/share/sounds/sf2/sf_GMbank.sf2"
TIMGM6MB = "/usr/share/sounds/sf2/TimGM6mb.sf2"
OPL3_FM = "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2"
SOUNDFONTS = (CSOUND_GM, TIMGM6MB, OPL3_FM)
#: What `make bench` installs for them (scripts/bootstrap.sh with BENCH=1).
DEBIAN_PACKAGES = ("fluidsynth", "csound-soundfont", "timgm6mb-soundfont", "opl3-soundfont")


def require(paths=SOUNDFONTS) -> tuple[str, ...]:
    """`paths`, after checking each is installed (a bench silently rendering with fewer fonts
    would report figures for a different set)."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SystemExit(f"missing soundfont(s) {', '.join(missing)}: apt-get install {' '.join(DEBIAN_PACKAGES)}")
    return tuple(paths)
