"""Render the training set per stem and write its manifest.

    python -m separation.training.data --out DIR --songs N --seed S [--seconds 30]
        [--train-soundfonts csound-gm[,sonivox-eas][,freepats][,clearstem-synth][,opl3-fm]] [--val-soundfont timgm6mb] [--sample-format flac24|float32]
        [--espeak-vocals FRACTION] [--flite-vocals FRACTION] [--allow-noncommercial] [--arranged-songs M]
        [--orchestrated-songs K [--orchestra-choirs FRACTION [--orchestra-choir-tunes FRACTION]]] [--splits val] [--lieder CHECKOUT --lieder-songs L [--lieder-per-composer 4] [--lieder-exclude MANIFEST]]
        [--quartets CHECKOUT --quartet-songs Q [--quartet-per-composer 2] [--quartet-exclude MANIFEST]]
        [--reuse-renders EARLIER_DIR]
    python -m separation.training.data --out DIR --verify   # re-hash a set against its manifest
    python -m separation.training.data --out DIR --merge SET SET [...]   # one set from rendered ones (separation.training.merge)

Layout under DIR: `midi/<song>/<stem>.mid` (the sources), `audio/<split>/<song>.<bank>/<stem>.flac`
and `mixture.flac` (24-bit FLAC, 44.1 kHz stereo; stems are quantised to the 24-bit grid first
and the mixture is their integer sum, so stems sum to the mixture *exactly*; `--sample-format
float32` writes float WAV instead, ~3x larger), `manifest.json`
(RFC 8785 canonical JSON) and `manifest.sha256` (its hash: the `training_data` reference a model
card and the registry quote). Same arguments → byte-identical files and manifest.

Split (SPLIT_POLICY): songs are composed from per-song seeds; the last ~20 % of songs are
**val** — compositions never trained on, rendered only with a soundfont never used in training
(TimGM6mb by default); the ~10 % before them are **select** — unseen compositions rendered with
the training banks, for checkpoint selection, so early stopping never looks at the val bank;
the rest are **train**. `--arranged-songs M` appends M songs with a form by the second composer
(`arrange.py`), split the same way among themselves, and `--orchestrated-songs K` K ensemble pieces
by the third (`orchestrate.py`: no voice or no kit in many, choirs, low lines in *other*, rubato)
after those, split the same way. `--lieder CHECKOUT --lieder-songs L` appends L songs by other
hands: scores of the OpenScore Lieder corpus (CC0 encodings of public-domain songs, voice and
piano) arranged into the four stems by `lieder.py`, split by composer (val and select songs are
by composers the train split never heard; `--lieder-exclude MANIFEST` leaves out the composers
another set trained on and every score it used, for a set that judges weights trained on it).
`--quartets CHECKOUT --quartet-songs Q` then appends Q excerpts of the OpenScore String Quartets
corpus (CC0 encodings of public-domain quartets) arranged by `quartets.py` (a singer may take the
top line, a bass the bottom one), split by composer the same way (`--quartet-exclude MANIFEST`).
Rendering is dry (FluidSynth reverb/chorus
off); augmentation happens at training time (`augment.py`). `--val-effects` renders the val split
with FluidSynth's own reverb and chorus on, at their defaults and the soundfont's own send levels
(what a plain `fluidsynth` command line renders): a val set as wet as other people's renders
may be, to measure what our dry renders hide (README, stop 50).

`--reuse-renders EARLIER_DIR` hard-links a render from an earlier set instead of rendering it again
when nothing that shaped it differs: the same song id, split and source record (composition, MIDI
hashes, voice), the same bank file (SHA-256), renderer version, flags, rate, length and sample
format, and the earlier files still hash to their manifest. Rendering is deterministic (same
arguments, same bytes), so the set and its manifest are what a full render would write; adding
pieces to a 14 GB set then costs the new pieces' renders, not half an hour.

`commercial_use` (top level) describes the weights: true only if every input of the splits that
shape them (train, select) has a licence in `licences.LICENCES` with `commercial_ok`. Val audio is
measurement only; it is listed with its own `commercial_use` (false for the GPL-2.0 bank).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rfc8785
import soundfile as sf
from scipy.io import wavfile

from sharedcore.hashing import file_sha256

from . import arrange, freepats, orchestrate, sonivox, synth, voice
from . import compose as composer
from . import lieder as lieder_mod
from . import merge as merging  # merge reads this module's names at call time
from . import quartets as quartets_mod
from .augment import AUGMENT_VERSION
from .licences import LICENCES, Soundfont, SoundfontRefused, commercial_ok, find_soundfont, resolve_soundfont
from .scores import ScoreRefused

FORMAT = "clearstem-training-data/1"
STEMS = composer.STEMS
RATE = 44100
PEAK = 0.9
FLUIDSYNTH_FLAGS = ["-n", "-i", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-O", "float", "-T", "wav"]
#: `--val-effects`: the same, with FluidSynth's reverb and chorus left on (its defaults).
FLUIDSYNTH_EFFECTS_FLAGS = ["-n", "-i", "-q", "-g", "0.5", "-O", "float", "-T", "wav"]
SPLIT_POLICY = ("songs [0, N - n_val - n_select): train; next n_select = N // 10: select (unseen compositions, "
                "training banks); last n_val = max(1, N // 5) when N >= 2: val (unseen compositions, a soundfont "
                "never used by train or select)")
OWN = "LicenseRef-ClearStem-own-work"
#: A sung vocal line's engine -> (the source's vocals.kind, the licence it adds to the source).
SUNG_VOCALS = {"espeak-ng": ("espeak-ng syllables on the melody (separation.training.voice)",
                             "LicenseRef-espeak-ng-output"),
               "flite": (voice.FLITE_KIND, "LicenseRef-CMU-Flite")}


def fluidsynth_version(binary: str = "fluidsynth") -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def song_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def splits_for(n: int) -> list[str]:
    n_val = max(1, n // 5) if n >= 2 else 0
    n_select = n // 10
    n_train = n - n_val - n_select
    return ["train"] * n_train + ["select"] * n_select + ["val"] * n_val


def render_stem(midi_path: Path, soundfont: Path, n: int, rate: int = RATE, effects: bool = False) -> np.ndarray:
    """One stem's MIDI through FluidSynth (dry, or with its own effects), as float32 [2, n]."""
    real, _ = resolve_soundfont(soundfont)  # every render re-checks the allow-list
    flags = FLUIDSYNTH_EFFECTS_FLAGS if effects else FLUIDSYNTH_FLAGS
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run(["fluidsynth", *flags, "-r", str(rate), "-F", str(out), str(real), str(midi_path)],
                       check=True, capture_output=True)
        audio, got = sf.read(out, always_2d=True, dtype="float32")
    if got != rate:
        raise RuntimeError(f"fluidsynth rendered at {got} Hz, asked {rate}")
    audio = audio.T[:2, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def find_bank(bank_id: str) -> tuple[Path, Soundfont]:
    """A training bank by id: an allowed soundfont, or our own synthesiser (`synth.BANK_ID`),
    pinned like a soundfont by the SHA-256 of the file that makes its sounds (its source)."""
    if bank_id == synth.BANK_ID:
        return Path(synth.__file__).resolve(), Soundfont(
            synth.BANK_ID, "synth.py", OWN, "clearstem (separation/training/synth.py)",
            "procedural instrument bank written here (separation.training.synth)", synth.source_sha256(),
            note="synthesised timbres drawn per song; vocals a source-filter voice, no recorded samples")
    if bank_id == sonivox.BANK_ID:
        path = sonivox.library_path()
        if path is None:
            raise SoundfontRefused(f"{bank_id}: {sonivox.LIBRARY} is not installed "
                                   f"(apt-get install {sonivox.PACKAGE.split()[0]})")
        path = path.resolve()
        digest = file_sha256(path)
        if digest != sonivox.SHA256:
            raise SoundfontRefused(f"{bank_id}: {path} SHA-256 {digest} is not the pinned {sonivox.SHA256} "
                                   f"of {sonivox.PACKAGE}")
        return path, Soundfont(sonivox.BANK_ID, sonivox.LIBRARY, "Apache-2.0", sonivox.PACKAGE, sonivox.ATTRIBUTION,
                               sonivox.SHA256, note="Sonivox EAS's built-in GM wavetable (Android's MIDI player), "
                               "rendered at 22.05 kHz and resampled: nothing above 11 kHz")
    if bank_id == freepats.BANK_ID:
        try:
            freepats.check_installed()
        except freepats.FreePatsError as e:
            raise SoundfontRefused(f"{bank_id}: {e}") from None
        return freepats.PATCH_DIR, Soundfont(freepats.BANK_ID, "freepats (GUS patches)", freepats.LICENCE,
                                             freepats.PACKAGE, freepats.ATTRIBUTION, freepats.TREE_SHA256,
                                             note="played by TiMidity++, dry; 72 of 128 GM programs, the rest "
                                             "mapped to the nearest of their family (separation.training.freepats)")
    return find_soundfont(bank_id)


#: banks not played by FluidSynth, so without its reverb and chorus (`effects`)
NOT_FLUIDSYNTH = (synth.BANK_ID, sonivox.BANK_ID, freepats.BANK_ID)


def render_bank(bank: tuple[Path, Soundfont], midi_path: Path, n: int, rate: int, seed: int,
                effects: bool = False) -> np.ndarray:
    """One stem's MIDI rendered with a bank (`find_bank`'s answer), as float32 [2, n]; `effects`:
    FluidSynth's own reverb and chorus (soundfonts only)."""
    path, entry = bank
    if effects and entry.id in NOT_FLUIDSYNTH:
        raise ValueError(f"{entry.id} is not rendered by FluidSynth: it has no FluidSynth effects")
    if entry.id == synth.BANK_ID:
        if synth.source_sha256() != entry.sha256:  # the module changed under a running build
            raise RuntimeError("separation/training/synth.py changed during the build")
        return synth.render_midi(midi_path, n, rate, seed)
    if entry.id == sonivox.BANK_ID:
        return sonivox.render_midi(midi_path, n, rate)
    if entry.id == freepats.BANK_ID:
        return freepats.render_midi(midi_path, n, rate)
    return render_stem(midi_path, path, n, rate, effects)


SAMPLE_FORMATS = {"flac24": ("flac", "24-bit FLAC; stems on the 24-bit grid, mixture their exact sum"),
                  "float32": ("wav", "float32 WAV; mixture the float32-rounded sum of the float32 stems")}


def quantise24(x: np.ndarray) -> np.ndarray:
    """Round to the 24-bit grid (kept as float64: sums of grid values stay exact)."""
    return np.clip(np.round(x * 2 ** 23), -(2 ** 23), 2 ** 23 - 1) / 2 ** 23


def song_gain(stems: dict[str, np.ndarray]) -> float:
    """The one gain per song: the mixture peaks at `PEAK`, unless that would push a stem past
    full scale — stems that partly cancel (a bass doubling a piano's left hand, out of phase) can
    peak above their sum — and then the loudest stem peaks at `PEAK`. Only songs that could not be
    stored before take the second branch, so every earlier set renders byte-identical."""
    peak = float(np.abs(sum(stems.values())).max())
    gain = PEAK / peak if peak > 1e-9 else 1.0
    loudest = max(float(np.abs(v).max(initial=0)) for v in stems.values())
    if loudest * gain >= 1 - 2 ** -24:  # what write_audio would refuse as outside the 24-bit range
        gain = PEAK / loudest
    return gain


def write_audio(path: Path, audio: np.ndarray, rate: int, sample_format: str) -> None:
    # a new file, never written through: the old one may be a hard link another set shares (--reuse-renders)
    path.unlink(missing_ok=True)
    if sample_format == "flac24":
        ints = np.round(audio.T * 2 ** 23).astype(np.int32)
        if np.abs(ints).max(initial=0) >= 2 ** 23:
            raise ValueError(f"{path}: a sample is outside the 24-bit range")
        sf.write(path, ints << 8, rate, subtype="PCM_24", format="FLAC")  # libsndfile keeps the top 24 bits
    else:
        write_wav(path, audio, rate)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """float32 WAV with no timestamped chunk (libsndfile's PEAK chunk carries the write time, which
    would make identical renders hash differently)."""
    wavfile.write(path, rate, np.ascontiguousarray(audio.T, dtype=np.float32))


def _file(path: Path, root: Path) -> dict:
    return {"path": path.relative_to(root).as_posix(), "sha256": file_sha256(path)}


def _chosen_scores(mod, option: str, songs_option: str, root: Path | None, n: int, per_composer: int,
                   exclude: Path | None, seed: int) -> tuple[list[tuple], tuple[set[str], set[str]]]:
    """(corpus module, checkout, score, split) of the `n` scores a build takes from one corpus of
    scores by other hands (`lieder`, `quartets`), and what `exclude` (another set's manifest) left
    out; the corpus's options checked first, in the CLI's words."""
    prefix = songs_option.rsplit("-", 1)[0]
    if n < 0 or per_composer < 1:
        raise ValueError(f"--{songs_option} must be 0 or more ({n}) and --{prefix}-per-composer 1 or more "
                         f"({per_composer})")
    if n and root is None:
        raise ValueError(f"--{songs_option} needs --{option} DIR, a checkout of {mod.SOURCE}")
    if exclude is not None and not n:
        raise ValueError(f"--{prefix}-exclude needs --{songs_option}")
    excluded = mod.trained_on(json.loads(exclude.read_bytes())) if exclude else (set(), set())
    chosen = mod.choose(mod.corpus(root), n, seed, per_composer, excluded) if n else []
    return [(mod, root, score, split) for score, split in chosen], excluded


def build(out: Path, songs: int, seed: int, seconds: float = 30.0, train_banks=("csound-gm",),
          val_bank: str = "timgm6mb", allow_noncommercial: bool = False, rate: int = RATE,
          sample_format: str = "flac24", espeak_vocals: float = 0.0, arranged: int = 0, log=print,
          flite_vocals: float = 0.0, orchestrated: int = 0, reuse: Path | None = None,
          val_effects: bool = False, lieder: Path | None = None, lieder_songs: int = 0,
          lieder_per_composer: int = 4, lieder_exclude: Path | None = None, quartets: Path | None = None,
          quartet_songs: int = 0, quartet_per_composer: int = 2, quartet_exclude: Path | None = None,
          orchestra_choirs: float = 0.0, render_splits: tuple[str, ...] | None = None,
          orchestra_choir_tunes: float = 0.0) -> dict:
    """`songs` compositions by `compose`, then `arranged` more by `arrange`, then `orchestrated`
    more by `orchestrate`, then `lieder_songs` scores of the OpenScore Lieder checkout `lieder`
    arranged by `separation.training.lieder` (song ids after them, each composer's songs with
    their own train/select/val split; the scores' split keeps their composers apart;
    `lieder_exclude`, another set's manifest whose trained composers and used scores are left out),
    then `quartet_songs` excerpts of the OpenScore String Quartets checkout `quartets` arranged by
    `separation.training.quartets` (the same way, `quartet_exclude`), each rendered with every training bank (val: `val_bank`); `reuse`, an
    earlier set whose identical renders are hard-linked (`Reusable`); `val_effects`, the val split
    rendered with FluidSynth's reverb and chorus on; `orchestra_choirs`, the fraction of the
    `orchestrate` pieces made to have a choir in the vocals stem (else the texture's odds, about
    one in eight: too few choirs for a network to learn them from); `orchestra_choir_tunes`, the
    fraction of those choirs whose top voice sings the tune (a second draw per choir piece; else
    the tune is an instrument's, in *other*); `render_splits`, render only
    these splits' songs (a judging set needs its val renders only, a fifth of the work: every
    song is still composed and listed, and each render is byte for byte a full build's)."""
    if val_effects and val_bank in NOT_FLUIDSYNTH:
        raise ValueError(f"--val-effects needs a soundfont as the val bank, not {val_bank}")
    if arranged < 0:
        raise ValueError(f"--arranged-songs must be 0 or more, not {arranged}")
    if orchestrated < 0:
        raise ValueError(f"--orchestrated-songs must be 0 or more, not {orchestrated}")
    if not 0 <= orchestra_choirs <= 1:
        raise ValueError(f"--orchestra-choirs is a fraction of the orchestrated pieces, from 0 to 1, not {orchestra_choirs}")
    if orchestra_choirs > 0 and not orchestrated:
        raise ValueError("--orchestra-choirs needs --orchestrated-songs")
    if not 0 <= orchestra_choir_tunes <= 1:
        raise ValueError(f"--orchestra-choir-tunes is a fraction of the choir pieces, from 0 to 1, not {orchestra_choir_tunes}")
    if orchestra_choir_tunes > 0 and not orchestra_choirs:
        raise ValueError("--orchestra-choir-tunes needs --orchestra-choirs")
    if render_splits is not None and (not render_splits or not set(render_splits) <= {"train", "select", "val"}):
        raise ValueError(f"--splits names splits among train, select and val, not {','.join(render_splits) or 'none'}")
    lieder_chosen, excluded = _chosen_scores(lieder_mod, "lieder", "lieder-songs", lieder, lieder_songs,
                                             lieder_per_composer, lieder_exclude, seed)
    quartets_chosen, q_excluded = _chosen_scores(quartets_mod, "quartets", "quartet-songs", quartets, quartet_songs,
                                                 quartet_per_composer, quartet_exclude, seed)
    scores = lieder_chosen + quartets_chosen  # songs by other hands, after the generated ones
    if not shutil.which("fluidsynth"):
        raise SystemExit("fluidsynth not found: apt-get install fluidsynth")
    if not (0 <= espeak_vocals <= 1 and 0 <= flite_vocals <= 1 and espeak_vocals + flite_vocals <= 1):
        raise ValueError(f"--espeak-vocals ({espeak_vocals}) and --flite-vocals ({flite_vocals}) are fractions "
                         "of the songs: each from 0 to 1, together at most 1")
    if espeak_vocals > 0 and not voice.available():
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    if flite_vocals > 0 and not voice.available("flite"):
        raise SystemExit("flite not found: apt-get install flite")
    if espeak_vocals > 0 and not commercial_ok("LicenseRef-espeak-ng-output") and not allow_noncommercial:
        raise ValueError("espeak-ng vocals are not claimed commercial-clean; pass allow_noncommercial "
                         "(--allow-noncommercial) to use them, and the manifest will say commercial_use false")
    ext = SAMPLE_FORMATS[sample_format][0]
    banks = {b: find_bank(b) for b in (*train_banks, val_bank)}
    if val_bank in train_banks:
        raise ValueError("the validation soundfont must not be a training soundfont")
    for b in train_banks:
        if not banks[b][1].commercial_ok and not allow_noncommercial:
            raise ValueError(f"{b} ({banks[b][1].licence}) is not commercial-clean; pass allow_noncommercial "
                             "(--allow-noncommercial) to train on it, and the manifest will say commercial_use false")
    if reuse is not None and out.resolve() == reuse.resolve():
        raise ValueError(f"--reuse-renders {reuse} is the set being built: name an earlier set's directory")
    earlier = Reusable(reuse, banks, rate, seconds, sample_format, val_effects) if reuse is not None else None
    generated = songs + arranged + orchestrated
    # songs by other hands are arranged first: a score its module refuses (music21 cannot read it, or
    # it lacks what the arrangement needs) is left out with the reason, and the next takes its song id
    by_hands, refused = [], []
    for corpus_mod, root, score, split in scores:
        try:
            comp, how = corpus_mod.arrange_score(root / score.path, seconds, song_seed(seed, generated + len(by_hands)))
        except ScoreRefused as exc:
            refused.append({"corpus": corpus_mod.SOURCE, "path": score.path, "split": split, "reason": str(exc)})
            log(f"left out {score.path}: {exc}")
            continue
        by_hands.append((corpus_mod, root, score, split, comp, how))
    out.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * rate))
    split_of = (splits_for(songs) + splits_for(arranged) + splits_for(orchestrated)
                + [split for _, _, _, split, _, _ in by_hands])
    sources, renders = [], []
    for i in range(generated + len(by_hands)):
        sid = f"song{i:05d}"
        by_people = by_hands[i - generated] if i >= generated else None  # (module, checkout, score, split, ...)
        write = (composer.compose if i < songs else arrange.arrange if i < songs + arranged
                 else orchestrate.orchestrate if i < generated else by_people[0].arrange_score)
        forced = {}  # `orchestra_choirs`: one draw per orchestrated piece, none when not asked for
        if (write is orchestrate.orchestrate and orchestra_choirs > 0
                and np.random.default_rng([song_seed(seed, i), 0xC401]).random() < orchestra_choirs):
            forced = {"vocals": "choir"}
            if (orchestra_choir_tunes > 0
                    and np.random.default_rng([song_seed(seed, i), 0xC402]).random() < orchestra_choir_tunes):
                forced = {"vocals": "choir_tune"}
        if by_people:
            corpus_mod, root, score, _, comp, how = by_people
        else:
            comp = write(song_seed(seed, i), seconds, **forced)
        midi_dir = out / "midi" / sid
        midi_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        for stem in STEMS:
            path = midi_dir / f"{stem}.mid"
            path.unlink(missing_ok=True)  # a new file, never written through: a merged set may link this one
            comp.midi(stem).save(path)
            files[stem] = _file(path, out)
        source = {"id": sid, "kind": "procedural-midi", "licence": OWN, "licences": [OWN],
                  "origin": f"{write.__module__}.{write.__name__}(seed={comp.seed}, seconds={seconds}"
                            + "".join(f", {k}={v!r}" for k, v in forced.items()) + ")",
                  "composition": comp.describe(), "files": files, "split": split_of[i]}
        if by_people:
            source.update({
                "kind": "score-arrangement", "licence": corpus_mod.LICENCE_ENCODING,
                "licences": [corpus_mod.LICENCE_ENCODING, corpus_mod.LICENCE_COMPOSITION],
                "origin": f"{write.__module__}.{write.__name__}({score.path!r}, seconds={seconds}, seed={comp.seed})",
                "score": {"corpus": corpus_mod.SOURCE, **_file(root / score.path, root),
                          "composer": score.composer, "composer_died": score.died,
                          "public_domain_basis": f"composer died {score.died}, life + 70 years; the encoding CC0",
                          "attribution": corpus_mod.ATTRIBUTION, **how}})
        vrng = np.random.default_rng(comp.seed)
        sung = None
        # one draw per song, and none when neither is asked for: sets without them stay byte-identical
        draw = vrng.random() if espeak_vocals > 0 or flite_vocals > 0 else 1.0
        engine = "espeak-ng" if draw < espeak_vocals else "flite" if draw < espeak_vocals + flite_vocals else None
        if not any(p.notes for p in comp.stems["vocals"]):
            engine = None  # a piece nobody sings in (`orchestrate`): its vocals stem stays silent
        if by_people:
            engine = None  # the synthetic singers sing one line; a score's duets and choirs stay GM voices
        if engine:
            mono, source["vocals"] = voice.sing(comp, n, vrng, rate, engine=engine)
            kind, licence = SUNG_VOCALS[engine]
            source["vocals"]["kind"] = kind
            source["vocals"]["level"] = float(vrng.uniform(0.7, 1.4))
            source["licences"].append(licence)
            sung = np.stack([mono, mono])
        else:
            # the first two composers always have a sung melody (arrange adds a backing voice at times)
            singing = sum(bool(p.notes) for p in comp.stems["vocals"]) if write is orchestrate.orchestrate else 1
            source["vocals"] = {"kind": "GM voice program on the score's sung parts (FluidSynth)"
                                if write is lieder_mod.arrange_score else
                                ("GM voice program on the score's top line (FluidSynth)" if any(p.notes for p in comp.stems["vocals"]) else
                                 "silent: no one sings in this piece") if write is quartets_mod.arrange_score else
                                "GM voice program on the melody (FluidSynth)" if singing == 1 else
                                "GM voice programs as a choir, its top voice on the tune (FluidSynth)"
                                if singing and forced.get("vocals") == "choir_tune" else
                                "GM voice programs as a choir in chords (FluidSynth)" if singing else
                                "silent: no one sings in this piece"}
        source["commercial_use"] = all(commercial_ok(lic) for lic in source["licences"])
        sources.append(source)
        unrendered = render_splits is not None and split_of[i] not in render_splits
        for bank in [] if unrendered else [val_bank] if split_of[i] == "val" else list(train_banks):
            linked = earlier.link(source, bank, out / "audio" / split_of[i] / f"{sid}.{bank}", out) if earlier else None
            if linked is not None:
                renders.append(linked)
                continue
            stems = {stem: render_bank(banks[bank], midi_dir / f"{stem}.mid", n, rate,
                                       song_seed(comp.seed, STEMS.index(stem)),
                                       effects=val_effects and split_of[i] == "val").astype(np.float64)
                     for stem in STEMS if not (stem == "vocals" and sung is not None)}
            if sung is not None:  # at the accompaniment's mean RMS times the song's drawn level
                ref = np.mean([np.sqrt(np.mean(v ** 2)) for v in stems.values()])
                level = source["vocals"]["level"] * ref / max(float(np.sqrt(np.mean(sung ** 2))), 1e-9)
                stems["vocals"] = sung * level
            gain = song_gain(stems)
            if sample_format == "flac24":
                stems32 = {k: quantise24(v * gain) for k, v in stems.items()}
                mix = np.sum([stems32[k] for k in STEMS], axis=0)  # exact: integers below 2**26
            else:
                stems32 = {k: (v * gain).astype(np.float32) for k, v in stems.items()}
                mix = np.sum([stems32[k] for k in STEMS], axis=0, dtype=np.float64).astype(np.float32)
            folder = out / "audio" / split_of[i] / f"{sid}.{bank}"
            folder.mkdir(parents=True, exist_ok=True)
            entry = {"song": sid, "split": split_of[i], "soundfont": bank, "gain": gain, "stems": {}}
            for stem in STEMS:
                path = folder / f"{stem}.{ext}"
                write_audio(path, stems32[stem], rate, sample_format)
                rms = float(np.sqrt(np.mean(stems32[stem].astype(np.float64) ** 2)))
                entry["stems"][stem] = {**_file(path, out), "rms_dbfs": round(20 * np.log10(max(rms, 1e-10)), 2)}
            path = folder / f"mixture.{ext}"
            write_audio(path, mix, rate, sample_format)
            entry["mixture"] = _file(path, out)
            renders.append(entry)
        log(f"{sid} {split_of[i]:6s} {comp.style:7s} {comp.bpm:5.1f} bpm")
    if earlier is not None:
        log(f"{earlier.linked} of {len(renders)} renders linked from {reuse}, the rest rendered")
    # absent when 0: earlier manifests stay byte-identical
    more = (({"arranged_songs": arranged} if arranged else {}) | ({"orchestrated_songs": orchestrated} if orchestrated else {})
            | ({"val_effects": True} if val_effects else {})
            | ({"orchestra_choirs": orchestra_choirs} if orchestra_choirs else {})
            | ({"orchestra_choir_tunes": orchestra_choir_tunes} if orchestra_choir_tunes else {})
            | ({"espeak_vocals": espeak_vocals} if espeak_vocals else {})  # a rebuild replays the shares
            | ({"flite_vocals": flite_vocals} if flite_vocals else {})
            | ({"rendered_splits": sorted(render_splits)} if render_splits is not None else {})
            | ({"lieder_songs": lieder_songs, "lieder_per_composer": lieder_per_composer,
                "lieder_code": "separation.training.lieder", "lieder_tools": lieder_mod.tools(lieder)}
               if lieder_songs else {})
            | ({"lieder_excluded": {"manifest_sha256": file_sha256(lieder_exclude),
                                   "composers": sorted(excluded[0]), "scores": len(excluded[1])}}
               if lieder_exclude else {})
            | ({"quartet_songs": quartet_songs, "quartet_per_composer": quartet_per_composer,
                "quartets_code": "separation.training.quartets", "quartets_tools": quartets_mod.tools(quartets)}
               if quartet_songs else {})
            | ({"quartets_excluded": {"manifest_sha256": file_sha256(quartet_exclude),
                                     "composers": sorted(q_excluded[0]), "scores": len(q_excluded[1])}}
               if quartet_exclude else {})
            | ({"scores_refused": refused} if refused else {}))
    manifest = make_manifest(sources, renders, banks, train_banks, val_bank, seed=seed, songs=songs,
                             seconds=seconds, rate=rate, sample_format=sample_format, **more)
    write_manifest(manifest, out)
    return manifest


class Reusable:
    """The renders of an earlier set that a build may hard-link instead of rendering again: only
    where every input of the render is the same (see the module docstring), so the result is
    byte-for-byte what rendering would write. Anything else is rendered as usual."""

    def __init__(self, earlier: Path, banks: dict, rate: int, seconds: float, sample_format: str,
                 val_effects: bool = False):
        try:
            manifest = json.loads((earlier / "manifest.json").read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--reuse-renders {earlier}: no readable manifest.json there ({exc})") from exc
        self.root, self.linked = earlier, 0
        gen, ren = manifest.get("generator", {}), manifest.get("render", {})
        same_render = (ren.get("engine") == fluidsynth_version() and ren.get("flags") == FLUIDSYNTH_FLAGS
                       and gen.get("rate") == rate and gen.get("seconds") == seconds
                       and gen.get("sample_format", "flac24") == sample_format)
        same_bank = {s["id"] for s in manifest.get("soundfonts", [])
                     if s["id"] in banks and s["sha256"] == banks[s["id"]][1].sha256}
        if freepats.BANK_ID in same_bank and ren.get("freepats") != freepats.render_record():
            same_bank.discard(freepats.BANK_ID)  # another TiMidity++ or map: the patches alone do not make the render
        self.sources = {s["id"]: s for s in manifest.get("sources", [])} if same_render else {}
        same_val = bool(gen.get("val_effects")) == val_effects  # a dry val render is not a wet one
        self.renders = {(r["song"], r["soundfont"]): r for r in manifest.get("renders", [])
                        if same_render and r["soundfont"] in same_bank and (same_val or r["split"] != "val")}

    def link(self, source: dict, bank: str, folder: Path, out: Path) -> dict | None:
        """The earlier render of `source` with `bank`, its files hard-linked into `folder`, or None
        when it differs or a file no longer hashes to the earlier manifest."""
        entry = self.renders.get((source["id"], bank))
        if entry is None or self.sources.get(source["id"]) != json.loads(rfc8785.dumps(source)):
            return None
        files = [*entry["stems"].values(), entry["mixture"]]
        if any((out / f["path"]).parent != folder or file_sha256(self.root / f["path"]) != f["sha256"]
               for f in files):
            return None
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            target = out / f["path"]
            target.unlink(missing_ok=True)
            try:
                os.link(self.root / f["path"], target)
            except OSError:  # another file system
                shutil.copyfile(self.root / f["path"], target)
        self.linked += 1
        return entry


def make_manifest(sources, renders, banks, train_banks, val_bank, **generator) -> dict:
    flite = any((s.get("vocals") or {}).get("kind") == voice.FLITE_KIND for s in sources)
    used = {}
    for r in renders:
        used.setdefault(r["soundfont"], set()).add(r["split"])
    soundfonts = []
    for bank, (path, entry) in sorted(banks.items()):
        soundfonts.append({"id": bank, "file": path.name, "path": str(path), "package": entry.package,
                           "licence": entry.licence, "attribution": entry.attribution,
                           "licence_note": LICENCES[entry.licence].why, "sha256": entry.sha256,
                           "commercial_use": entry.commercial_ok, "splits": sorted(used.get(bank, ()))})
    splits = {}
    for split in ("train", "select", "val"):
        srcs = [s for s in sources if s["split"] == split]
        sfs = [s for s in soundfonts if split in s["splits"]]
        blockers = sorted({f"source {s['id']}: {lic}" for s in srcs for lic in s["licences"] if not commercial_ok(lic)}
                          | {f"soundfont {s['id']}: {s['licence']}" for s in sfs if not s["commercial_use"]})
        splits[split] = {"songs": [s["id"] for s in srcs], "soundfonts": [s["id"] for s in sfs],
                         "commercial_use": not blockers, "not_commercial_because": blockers}
    weights_splits = ("train", "select")
    commercial = all(splits[s]["commercial_use"] for s in weights_splits) and bool(splits["train"]["songs"])
    licences = sorted({lic for s in sources if s["split"] in weights_splits for lic in s["licences"]}
                      | {s["licence"] for s in soundfonts if set(s["splits"]) & set(weights_splits)})
    return {
        "format": FORMAT,
        "generator": {"code": "separation.training.data", **generator},
        "render": {"engine": fluidsynth_version(), "flags": FLUIDSYNTH_FLAGS, "sample_rate": generator["rate"],
                   **({"val_flags": FLUIDSYNTH_EFFECTS_FLAGS} if generator.get("val_effects") else {}),
                   **({"synth": {"bank": synth.BANK_ID, "code": "separation.training.synth",
                                 "sha256": banks[synth.BANK_ID][1].sha256,
                                 "seeds": "per song and stem: song_seed(composition seed, stem index)"}}
                      if synth.BANK_ID in banks else {}),
                   **({"freepats": freepats.render_record()} if freepats.BANK_ID in banks else {}),
                   "channels": 2, "sample_format": SAMPLE_FORMATS[generator.get("sample_format", "flac24")][1],
                   "normalisation": f"mixture peak {PEAK}, one gain per song",
                   "mixture": "sum of the stored stems"},
        "stems": {"drums": "GM channel 10",
                  "bass": "GM bass programs 32-39" + ("; in score arrangements (separation.training.lieder) "
                                                     "a doubling of the accompaniment's lowest line, or silent"
                                                     if generator.get("lieder_songs") else "")
                          + ("; in quartet arrangements (separation.training.quartets) the bottom line, or silent"
                             if generator.get("quartet_songs") else ""),
                  "vocals": "the melody on GM voice programs 52/53/54/85 (choir aahs, voice oohs, synth voice, "
                            "lead voice) from the soundfont; in renders with the clearstem-synth bank, a "
                            "source-filter voice (vowel formants, vibrato, breath, consonant-like bursts) singing "
                            "no words; where a source's vocals.kind says espeak-ng, the melody as espeak-ng "
                            "syllables instead; never a human voice" if not flite else
                            "syllables instead; where it says Flite, the melody as words sung by Flite's CMU voices "
                            "(statistical and diphone models built from recordings of real speakers); never a "
                            "recording of a voice",
                  "other": "every other melodic program (chords, arpeggios, pads, counter-lines)"},
        "augmentation": {"applied": "at training time, seeded per (seed, epoch, example)",
                         "code": "separation.training.augment", "version": AUGMENT_VERSION},
        "split_policy": SPLIT_POLICY,
        "sources": sources,
        "soundfonts": soundfonts,
        "renders": renders,
        "splits": splits,
        "weights_licence_inputs": licences,
        "commercial_use": commercial,
        "commercial_use_basis": "true only if every source and soundfont of the train and select splits has a "
                                "licence allowing commercial use (separation.training.licences); val audio is "
                                "measurement only and never enters the weights",
    }


def canonical(manifest: dict) -> bytes:
    return rfc8785.dumps(manifest)


def write_manifest(manifest: dict, out: Path) -> str:
    data = canonical(manifest)
    (out / "manifest.json").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (out / "manifest.sha256").write_text(f"{digest}  manifest.json\n")
    return digest


def verify(out: Path) -> list[str]:
    """Problems with a rendered set: every listed file present with its hash, the manifest's own hash."""
    data = (out / "manifest.json").read_bytes()
    problems = []
    if (out / "manifest.sha256").read_text().split()[0] != hashlib.sha256(data).hexdigest():
        problems.append("manifest.sha256 does not match manifest.json")
    manifest = json.loads(data)
    files = [f for s in manifest["sources"] for f in s["files"].values()]
    files += [f for r in manifest["renders"] for f in (*r["stems"].values(), r["mixture"])]
    for f in files:
        path = out / f["path"]
        if not path.is_file():
            problems.append(f"{f['path']}: missing")
        elif file_sha256(path) != f["sha256"]:
            problems.append(f"{f['path']}: SHA-256 differs")
    for s in manifest["soundfonts"]:
        if Path(s["path"]).is_file() and file_sha256(s["path"]) != s["sha256"]:
            problems.append(f"soundfont {s['id']}: SHA-256 differs from the one rendered with")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m separation.training.data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--songs", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--train-soundfonts", default="csound-gm")
    ap.add_argument("--val-soundfont", default="timgm6mb")
    ap.add_argument("--allow-noncommercial", action="store_true")
    ap.add_argument("--sample-format", choices=sorted(SAMPLE_FORMATS), default="flac24")
    ap.add_argument("--espeak-vocals", type=float, default=0.0,
                    help="fraction of songs whose vocals are espeak-ng syllables (their licence is not claimed commercial)")
    ap.add_argument("--flite-vocals", type=float, default=0.0,
                    help="fraction of songs whose vocals are sung by Flite's CMU voices (CMU licence: commercial use "
                         "allowed); with --espeak-vocals, together at most 1")
    ap.add_argument("--arranged-songs", type=int, default=0,
                    help="songs with a form by the second composer (separation.training.arrange), after --songs")
    ap.add_argument("--orchestrated-songs", type=int, default=0,
                    help="ensemble pieces by the third composer (separation.training.orchestrate), after those")
    ap.add_argument("--orchestra-choirs", type=float, default=0.0, metavar="FRACTION",
                    help="this fraction of the orchestrated pieces have a choir in the vocals stem (else the "
                         "texture's odds, about one in eight)")
    ap.add_argument("--orchestra-choir-tunes", type=float, default=0.0, metavar="FRACTION",
                    help="this fraction of those choirs sing the tune in their top voice (else an instrument "
                         "carries it, in other)")
    ap.add_argument("--splits", metavar="SPLIT[,SPLIT]",
                    help="render only these splits (e.g. val: a judging set; every song is still composed and "
                         "listed in the manifest, and each render is the one a full build writes)")
    ap.add_argument("--lieder", type=Path, metavar="CHECKOUT",
                    help="a checkout of github.com/OpenScore/Lieder (CC0 scores of public-domain songs)")
    ap.add_argument("--lieder-songs", type=int, default=0,
                    help="songs from --lieder arranged into four stems (separation.training.lieder), after the others")
    ap.add_argument("--lieder-per-composer", type=int, default=4, help="at most this many songs of one composer")
    ap.add_argument("--lieder-exclude", type=Path, metavar="MANIFEST",
                    help="leave out the composers another set trained on and every score it used (a judging set)")
    ap.add_argument("--quartets", type=Path, metavar="CHECKOUT",
                    help="a checkout of github.com/OpenScore/StringQuartets (CC0 scores of public-domain quartets)")
    ap.add_argument("--quartet-songs", type=int, default=0,
                    help="excerpts from --quartets arranged into four stems (separation.training.quartets), last")
    ap.add_argument("--quartet-per-composer", type=int, default=2, help="at most this many quartets of one composer")
    ap.add_argument("--quartet-exclude", type=Path, metavar="MANIFEST",
                    help="leave out the quartet composers another set trained on and every quartet it used")
    ap.add_argument("--val-effects", action="store_true",
                    help="render the val split with FluidSynth's own reverb and chorus on (its defaults)")
    ap.add_argument("--reuse-renders", type=Path, metavar="EARLIER_DIR",
                    help="hard-link renders of an earlier set where nothing that shaped them differs")
    ap.add_argument("--verify", action="store_true", help="only check an existing set against its manifest")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="SET",
                    help="make --out from these rendered sets, renaming their songs <set>.<song> and hard-linking "
                         "their files (separation.training.merge); nothing is rendered")
    args = ap.parse_args(argv)
    if args.merge:
        try:
            manifest = merging.merge(args.merge, args.out)
        except (merging.MergeRefused, OSError) as exc:
            raise SystemExit(f"refused: {exc}") from exc
        digest = (args.out / "manifest.sha256").read_text().split()[0]
        print(f"manifest {args.out / 'manifest.json'} sha256 {digest}; {len(manifest['sources'])} songs; "
              f"commercial_use {manifest['commercial_use']}")
        return 0
    if args.verify:
        problems = verify(args.out)
        print("\n".join(problems) or "ok")
        return 1 if problems else 0
    if args.songs is None or args.seed is None:
        ap.error("--songs and --seed are required to build a set")
    try:
        manifest = build(args.out, args.songs, args.seed, args.seconds, tuple(args.train_soundfonts.split(",")),
                         args.val_soundfont, args.allow_noncommercial, sample_format=args.sample_format,
                         espeak_vocals=args.espeak_vocals, arranged=args.arranged_songs,
                         flite_vocals=args.flite_vocals, orchestrated=args.orchestrated_songs,
                         reuse=args.reuse_renders, val_effects=args.val_effects, lieder=args.lieder,
                         lieder_songs=args.lieder_songs, lieder_per_composer=args.lieder_per_composer,
                         lieder_exclude=args.lieder_exclude, quartets=args.quartets,
                         quartet_songs=args.quartet_songs, quartet_per_composer=args.quartet_per_composer,
                         quartet_exclude=args.quartet_exclude, orchestra_choirs=args.orchestra_choirs,
                         orchestra_choir_tunes=args.orchestra_choir_tunes,
                         render_splits=tuple(x for x in args.splits.split(",") if x) if args.splits is not None else None)
    except (ValueError, FileNotFoundError, json.JSONDecodeError) as exc:  # SoundfontRefused included
        raise SystemExit(f"refused: {exc}") from exc
    digest = (args.out / "manifest.sha256").read_text().split()[0]
    print(f"manifest {args.out / 'manifest.json'} sha256 {digest}; commercial_use {manifest['commercial_use']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
