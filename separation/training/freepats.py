"""A third licence-clean sample bank for training data: FreePats (Debian's `freepats`, GUS
patches), played by TiMidity++ (Debian's `timidity`). No Django.

Why: every shipped model learned its voices and pianos from two banks (Csound GM and Sonivox EAS),
and the stems still under mixture/4 on our judging sets — the orchestras' choir, the Lieder's
voice over its piano — are above it when the same songs are rendered with a bank the network
trained on, and under it on a bank it never heard (README, stop 72). More recorded timbres to learn
from is the lever; FreePats is the only other sampled GM set Debian ships under terms that allow
commercial use of what is made with it (the reserved GM bank and MuseScore General, built from
it, are not candidates).

Licence: GPL-2.0-or-later *with FreePats' composition exception* (debian/copyright): "if you
create a composition which uses these patches, and mix these patches or unaltered portions of
these patches into the composition, these patches do not by themselves cause the resulting
composition to be covered by the GNU General Public License". A per-stem render is such a
composition; the weights are fitted to compositions, never to the patch files.

What it is not: a full GM set. Debian's 20060219 release holds 72 of the 128 melodic programs and
56 percussion notes. `program_map()` sends each missing program to the nearest present one of its
GM family (never a voice for an instrument, always Voice Oohs for a voice program, so the stems
keep their meaning), and each missing GM percussion note to the nearest present note; the map,
the player's version and its flags are recorded in each set's manifest (`render_record`).

Pinned like a soundfont: the patch tree (every file's path and SHA-256) by one digest; a Debian
update that changes a patch is refused until someone re-reads its copyright and re-pins. TiMidity++
always reads the system's `/etc/timidity/timidity.cfg` before ours (it may name another bank, the
reserved one included), so our configuration maps every program and note, and each render is
refused unless every instrument file TiMidity opened lies in the FreePats tree.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

BANK_ID = "freepats"
PATCH_DIR = Path("/usr/share/midi/freepats")
PACKAGE = "freepats 20060219-4 (Debian)"
PLAYER_PACKAGE = "timidity"
LICENCE = "LicenseRef-FreePats-GPL-2.0-or-later-composition-exception"
ATTRIBUTION = "FreePats project (freepats.opensrc.org, now freepats.zenvoid.org), 2004 Free Software Foundation"
#: sha256 over "path\tsha256\n" of every file under PATCH_DIR, sorted by path (`tree_sha256`).
TREE_SHA256 = "a7d78bd064049a88703ffd6db380f414e6bb3462e373c7be336ca1898c0ea64c"
VOICE_PROGRAMS = (52, 53, 54, 85)  # compose.VOICE_PROGRAMS: what the vocals stem is played on
VOICE_PATCH = 53  # Voice Oohs, FreePats' one voice
GM_PERCUSSION = range(35, 82)
# dry renders, as FluidSynth's (`data.FLUIDSYNTH_FLAGS`): no reverb, chorus or delay from the player;
# -idvv: its log names every file it opens, which `render_midi` checks
TIMIDITY_FLAGS = ["-Ow", "--output-24bit", "--output-stereo", "-EFreverb=d", "-EFchorus=d", "-EFdelay=d", "-idvv"]
_OPENED = re.compile(r"^Trying to open (/.+)$", re.M)


class FreePatsError(RuntimeError):
    pass


def available() -> bool:
    return PATCH_DIR.is_dir() and shutil.which("timidity") is not None


def timidity_version() -> str:
    out = subprocess.run(["timidity", "--version"], capture_output=True, text=True).stdout
    line = next((ln.strip() for ln in out.splitlines() if ln.strip()), "")
    if not line.startswith("TiMidity++"):
        raise FreePatsError(f"timidity --version printed {out[:80]!r}")
    return line


def render_record() -> dict:
    """What shapes a FreePats render besides the patches (pinned by the bank's hash): the player,
    its flags and our map. A set records it; renders are reused, or a set rebuilt, only when equal."""
    return {"bank": BANK_ID, "player": timidity_version(), "flags": TIMIDITY_FLAGS,
            "code": "separation.training.freepats",
            "programs_mapped": {str(k): v for k, v in program_map().items() if k != v},
            "percussion_mapped": {str(k): v for k, v in drum_map().items() if k != v}}


def tree_sha256(root: Path = PATCH_DIR) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(root).as_posix()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _present(folder: str) -> dict[int, str]:
    """{program or note: patch path relative to PATCH_DIR} from the patch file names (`053_Voice_Oohs.pat`)."""
    return {int(p.name[:3]): f"{folder}/{p.name}" for p in sorted((PATCH_DIR / folder).glob("[0-9][0-9][0-9]_*.pat"))}


def program_map(present: dict[int, str] | None = None) -> dict[int, int]:
    """{GM program 0-127: the FreePats program that plays it}. A present program plays itself; a
    voice program plays Voice Oohs; any other missing one the nearest present non-voice program of
    its GM family of eight (the lower on a tie), else the nearest present non-voice program."""
    present = _present("Tone_000") if present is None else present
    if VOICE_PATCH not in present:
        raise FreePatsError(f"{PATCH_DIR}/Tone_000 has no Voice Oohs patch (053): not the pinned FreePats")
    instruments = [p for p in present if p not in VOICE_PROGRAMS]
    out = {}
    for program in range(128):
        if program in present and (program == VOICE_PATCH or program not in VOICE_PROGRAMS):
            out[program] = program
        elif program in VOICE_PROGRAMS:
            out[program] = VOICE_PATCH
        else:
            family = [p for p in instruments if p // 8 == program // 8] or instruments
            out[program] = min(family, key=lambda p: (abs(p - program), p))
    return out


def drum_map(present: dict[int, str] | None = None) -> dict[int, int]:
    """{GM percussion note 35-81: the FreePats note that plays it} (nearest present, lower on a tie)."""
    present = _present("Drum_000") if present is None else present
    notes = [n for n in present if n in GM_PERCUSSION]
    return {note: note if note in present else min(notes, key=lambda n: (abs(n - note), n)) for note in GM_PERCUSSION}


def config_text() -> str:
    """TiMidity++ configuration: every GM program of bank 0 and every GM percussion note of
    drumset 0 mapped to a FreePats patch (after the system's file, so ours wins every slot)."""
    tones, drums = _present("Tone_000"), _present("Drum_000")
    lines = [f"dir {PATCH_DIR}", "bank 0"]
    lines += [f"{program} {tones[source]}" for program, source in program_map(tones).items()]
    lines.append("drumset 0")
    lines += [f"{note} {drums[source]}" for note, source in drum_map(drums).items()]
    return "\n".join(lines) + "\n"


def check_installed() -> None:
    if not available():
        raise FreePatsError(f"FreePats or TiMidity++ is not installed (apt-get install {PACKAGE.split()[0]} "
                            f"{PLAYER_PACKAGE})")
    digest = tree_sha256()
    if digest != TREE_SHA256:
        raise FreePatsError(f"{PATCH_DIR}: tree SHA-256 {digest} is not the pinned {TREE_SHA256} of {PACKAGE}")


def render_midi(midi_path: Path, n: int, rate: int) -> np.ndarray:
    """A standard MIDI file played by TiMidity++ with FreePats, dry, as float32 [2, n] (silence
    past the file's end); refused if TiMidity opened any instrument outside the FreePats tree."""
    midi_path = Path(midi_path).resolve()
    try:  # TiMidity++ exits 0 with an empty file on a file it cannot read: read it first
        notes = sum(msg.type == "note_on" and msg.velocity > 0 for msg in mido.MidiFile(midi_path))
    except (OSError, EOFError, ValueError, KeyError) as e:
        raise FreePatsError(f"{midi_path}: not a readable MIDI file ({e})") from None
    with tempfile.TemporaryDirectory() as tmp:
        cfg, out = Path(tmp) / "freepats.cfg", Path(tmp) / "out.wav"
        cfg.write_text(config_text())
        run = subprocess.run(["timidity", "-c", str(cfg), *TIMIDITY_FLAGS, "-s", str(rate), "-o", str(out),
                              str(midi_path)], capture_output=True, text=True)
        foreign = sorted({p for p in _OPENED.findall(run.stdout + run.stderr)
                          if Path(p) not in (midi_path, cfg) and Path(p).is_file() and PATCH_DIR not in Path(p).parents})
        if foreign:
            raise FreePatsError(f"TiMidity++ opened instruments outside {PATCH_DIR}: {', '.join(foreign)} "
                                f"(from /etc/timidity/timidity.cfg?); refusing the render")
        if run.returncode != 0 or not out.is_file():
            raise FreePatsError(f"timidity failed on {midi_path} ({run.returncode}): {run.stderr.strip()[-400:]}")
        audio, got = sf.read(out, always_2d=True, dtype="float32")
    if notes and not audio.size:
        raise FreePatsError(f"timidity played none of the {notes} notes of {midi_path}: {run.stderr.strip()[-400:]}")
    if got != rate:
        raise FreePatsError(f"timidity rendered at {got} Hz, asked {rate}")
    result = np.zeros((2, n), np.float32)
    take = min(n, audio.shape[0])
    result[:, :take] = audio[:take, :2].T
    return result
