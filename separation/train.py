"""Train the band-split separator (`separation.bandsplit`) on a rendered training set, seeded and
resumable, so the shipped weights can be reproduced from the set's manifest (issue 16).

    python -m separation.train --data DIR --out RUN [--steps 20000] [--batch 4] [--seconds 6]
        [--seed 0] [--lr 1e-3] [--threads 2] [--device auto] [--checkpoint-every 100]
        [--select-every 1000] [--workers 0] [--allow-noncommercial] [--init WEIGHTS.pt] [--decay-steps 0]
        [--loss l1|sdr] [--loss-stems vocals] [--bank-mix 0.5] [--timbre 0.5]
        [--kits hydrogen-colombo hydrogen-rumpf hydrogen-audiophob --kit-swap 0.5 [--kit-layer]] [--synth-kicks 0.5]
    python -m separation.train --data DIR --out RUN        # again: resumes from RUN/last.pt
    python -m separation.train export RUN/best.pt --to FILE  # the weights, for separation.install_model
    python -m separation.train export RUN/best.pt --to separation/weights/NAME.pt --data DIR --name NAME
                                                             # + the model card the repository ships
    python -m separation.train export RUN/best.pt --to FILE --base WEIGHTS.pt [--blend W]
        [--specialist-precision float16] [--data DIR --name NAME]
                                                             # a --loss-stems run: its stems over WEIGHTS'
    python -m separation.train export RUN/last.pt --to FILE --base WEIGHTS.pt --kit-routed-below DB [--data DIR --name NAME]
                                                             # the run separates WEIGHTS' kit-less chunks
    python -m separation.train soup RUN_A/best.pt RUN_B/best.pt --to SOUP.pt --data DIR [--covers DIR_A]
        [--score] [--start WEIGHTS.pt]                       # their weights' average, exported like a run

DIR is a set built by `python -m separation.training.data` (its manifest is re-hashed first; a
set whose manifest says `commercial_use: false` is refused unless --allow-noncommercial, and the
run then records that its weights are not commercial-clean).

Reproducibility: example k of step s is a pure function of (seed, s, k) — which train render,
where in it, which stems of other renders are swapped in, and every augmentation parameter
(`separation.training.augment`) — so a run stopped and resumed at any checkpoint sees the same
examples in the same order as one that never stopped, and the optimiser state travels with the
checkpoint. RUN/last.pt is written every --checkpoint-every steps (atomically: a run killed
mid-write keeps the previous one); RUN/best.pt is the checkpoint with the best mean SDR on the
`select` split (unseen compositions, training soundfonts), never on `val` (whose soundfont the
weights must never see, not even through model selection). RUN/log.jsonl has one line per
logged step and per selection.

--init starts from exported weights (with their card); with --layers above theirs (same --dim)
the network is deepened: their layers first, the new ones starting as the identity
(`bandsplit.load_deeper`), recorded in the run and the card; with the same --layers and a --dim
that their width divides, it is widened: each unit copied, the same function
(`bandsplit.load_wider`). A fine-tune scores its start on
`select` as step 0, which stays best.pt until a step beats it; `export` refuses a step-0 best.pt
(no new weights: the run never beat what it started from).

Loss: L1 on the waveform plus L1 on STFT magnitudes, per stem, on examples normalised like the
engine normalises its chunks (`bandsplit.normalise`); `--loss sdr`: minus the stems' mean SDR;
`--loss sdr-sounding`: the same over the stems that sound somewhere in the batch (kit-less sets).
`--bank-mix P` (stop 74): with probability P an example's stems each come from a random bank's
render of the same song at the same place (a set rendered with several banks, e.g. `rebuild
--add-bank`): the renders share the notes and timing (aligned within ~10 ms), so the mixture is a
song that could exist, with a drum kit from one bank over a bass from another — combinations no
bank alone makes, so a stem has to be told by its role more than by one bank's timbre. No draw at
P = 0, so older runs resume and make the same examples.
`--timbre P` (stop 75): with probability P each stem of an example is recoloured as another
instrument of its kind might sound (`augment.recolour`: transposed on its own, resonances moved,
sometimes saturated) — timbres no bank has, so that a stem is told by its role; no draw at P = 0.
`--kits K [K ...] --kit-swap P` (stop 76): with probability P an example's drums are replayed from
the song's drum part (its MIDI, at the same place) by one of the recorded kits K
(`separation.training.kits`, Hydrogen drumkits whose terms allow commercial use, each pinned),
at the level the bank's kit had there; every other stem as rendered. Every bank brings one kit,
and the network learns kits, not the role of one; these are kits of other makers. The kits and
P are recorded in the run and the card, and their licences in the card's `weights_licence`.
`--kit-layer` adds the kit's replay to the bank's drums (0 to 12 dB under them) instead of
replacing them (stop 77), so every example keeps the bank kit too.
`--synth-kicks P` (stop 83): with probability P an example's drums get a kick synthesised for that
example (`separation.training.kicks`: swept or membrane, drawn wide) added at the song's kick notes,
0 to 12 dB under the drums: on banks it never heard v48 takes the kick for bass, and recorded kits
did not change that. No draw at P = 0; recorded in the run and named in the card.
`--loss-stems S [S ...]` trains a *specialist*: the loss (and the choice of best.pt on `select`)
counts only those stems, and `export --base` puts the run's estimate of them over the weights it
started from, in one file (`bandsplit.WithSpecialist`): the base's other stems stay exactly as
they were. `export --base W --take S [S ...]` does the same with some stems of any fine-tune of W,
or of another network W of any width (the two run side by side: `specialist_dim`, stop 62).
`export … --blend W` (0 < W < 1) weighs those stems instead of replacing: W × the run's estimate
+ (1 − W) × the base's, an ensemble of two networks (`specialist_weight`, stop 77); `--blend
drums=0.5 bass=0.25` gives each stem its own W (stop 80);
`--specialist-precision float16` stores the run's network in float16 (stop 78: two float32
networks of v19's size are 25.6 MB), as kit-routed exports store their expert.

`soup` averages the weights of runs fine-tuned from one start (a "model soup", Wortsman et al.
2022): fine-tunes of one start tend to stay in one basin of the loss, so their average can keep
what each learned with one network's cost. It refuses runs that differ in anything but their data,
seed, rate and length (other starts, shapes, losses or stems), and needs `--data`, a set whose
manifest lists every input any of them learned from (each other set named with `--covers` and
checked render by render): that manifest is what the card pins, so provenance stays one hash.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import bandsplit, voice_gate
from .training import kicks, lieder, quartets, voice
from .training import kits as drum_kits
from .training import licences as licences_policy
from .training.augment import augment
from .training.freepats import BANK_ID as FREEPATS_BANK
from .training.sonivox import BANK_ID as SONIVOX_BANK
from .training.synth import BANK_ID as SYNTH_BANK

OWN_WORK = "LicenseRef-ClearStem-own-work"  # what ClearStem made itself: its songs, its synthesised kicks

RUN_FORMAT = "clearstem-training-run/1"


class TrainingSetError(Exception):
    """The training set cannot be used (missing, tampered with, or not licensed for this run)."""


def load_set(data: Path, allow_noncommercial: bool = False) -> dict:
    """The set's manifest, after checking its hash; refuses a non-commercial set unless allowed."""
    try:
        raw = (data / "manifest.json").read_bytes()
        pinned = (data / "manifest.sha256").read_text().split()[0]
    except (FileNotFoundError, IndexError) as exc:
        raise TrainingSetError(f"{data} is not a training set (manifest.json / manifest.sha256 missing)") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != pinned:
        raise TrainingSetError(f"{data}/manifest.json has SHA-256 {digest}, manifest.sha256 says {pinned}")
    manifest = json.loads(raw)
    if not manifest.get("commercial_use") and not allow_noncommercial:
        raise TrainingSetError("the set's manifest says commercial_use false (see its splits' not_commercial_because); "
                               "pass --allow-noncommercial to train weights that are not commercial-clean")
    manifest["_sha256"] = digest
    return manifest


class Examples:
    """Training examples as a pure function of (seed, step, k): see the module docstring."""

    def __init__(self, data: Path, manifest: dict, split: str, seconds: float, seed: int, rate: int = 44100,
                 bank_mix: float = 0.0, timbre: float = 0.0, kits: list[str] = (), kit_swap: float = 0.0,
                 kit_layer: bool = False, synth_kicks: float = 0.0):
        self.data, self.seconds, self.seed, self.rate, self.bank_mix = data, seconds, seed, rate, bank_mix
        self.timbre, self.kit_swap, self.kit_layer, self.synth_kicks = timbre, kit_swap, kit_layer, synth_kicks
        try:
            self.players = [drum_kits.Player(k, rate=rate) for k in kits]
        except drum_kits.KitError as exc:
            raise TrainingSetError(str(exc)) from exc
        if kit_swap and not self.players:
            raise TrainingSetError("--kit-swap needs --kits: the recorded kits to replay the drum parts with")
        self._drum_midi = {s["id"]: data / s["files"]["drums"]["path"]  # only kit swaps and kicks read the MIDI
                           for s in (manifest["sources"] if kit_swap or synth_kicks else ())
                           if "drums" in s.get("files", {})}
        self._drum_notes: dict[str, list] = {}
        self.renders = [r for r in manifest["renders"] if r["split"] == split]
        if not self.renders:
            raise TrainingSetError(f"the set has no '{split}' renders")
        self._banks: dict[str, list[dict]] = {}  # song -> its renders in this split, one per bank
        for r in self.renders:
            self._banks.setdefault(r["song"], []).append(r)
        if bank_mix and max(len(g) for g in self._banks.values()) < 2:
            raise TrainingSetError(f"--bank-mix needs songs rendered with more than one bank; every '{split}' "
                                   "song of this set has one render")
        self.n = int(round(seconds * rate))
        self._lengths: dict[str, int] = {}

    def _read(self, render: dict, stem: str, start: int) -> np.ndarray:
        path = self.data / render["stems"][stem]["path"]
        x, _ = sf.read(path, start=start, frames=self.n, dtype="float32", always_2d=True)
        x = x.T
        return np.pad(x, ((0, 0), (0, self.n - x.shape[1]))) if x.shape[1] < self.n else x

    def _frames(self, render: dict) -> int:
        """A render's length, read from its header once (every example asks for two)."""
        path = render["mixture"]["path"]
        if path not in self._lengths:
            self._lengths[path] = sf.info(self.data / path).frames
        return self._lengths[path]

    def picks(self, rng: np.random.Generator) -> tuple[dict[str, dict], int]:
        """The render each stem of an example is read from (one render, or with `bank_mix` each stem
        a random bank's render of that song), and the frame it starts at."""
        render = self.renders[int(rng.integers(len(self.renders)))]
        start = int(rng.integers(max(self._frames(render) - self.n, 1)))
        sources = {s: render for s in bandsplit.STEMS}
        if self.bank_mix and rng.random() < self.bank_mix:  # no draw at 0: older runs see the same examples
            banks = self._banks[render["song"]]
            sources = {s: banks[int(rng.integers(len(banks)))] for s in bandsplit.STEMS}
        return sources, start

    def example(self, step: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(mixture [2, n], stems [S, 2, n]) float32."""
        rng = np.random.default_rng([self.seed, step, k])
        sources, start = self.picks(rng)
        stems = {s: self._read(sources[s], s, start) for s in bandsplit.STEMS}
        if self.kit_swap and rng.random() < self.kit_swap:  # no draw at 0: older runs see the same examples
            stems["drums"] = self.kit_drums(sources["drums"]["song"], start, stems["drums"], rng)
        if self.synth_kicks and rng.random() < self.synth_kicks:  # likewise no draw at 0
            stems["drums"] = self.kick_drums(sources["drums"]["song"], start, stems["drums"], rng)
        donor = self.renders[int(rng.integers(len(self.renders)))]
        d_start = int(rng.integers(max(self._frames(donor) - self.n, 1)))
        pool = [{s: self._read(donor, s, d_start) for s in bandsplit.STEMS}]
        out, mix, _ = augment(stems, rng, self.rate, pool=pool, timbre=self.timbre)
        return mix, np.stack([out[s] for s in bandsplit.STEMS])

    def kit_drums(self, song: str, start: int, rendered: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The song's drum part at frame `start`, replayed by a random recorded kit at the RMS the
        bank's kit had there; the bank's drums as they were where they are silent (a rest, a
        kit-less song) or the kit has nothing for the notes. With `kit_layer` the kit is added to the
        bank's drums at 0 to -12 dB re their RMS instead of replacing them: every example keeps
        the bank kit a network already separates well (stop 77: replacing it cost ~0.1 dB on
        TimGM6mb's drums while gaining ~2 dB on FreePats')."""
        player = self.players[int(rng.integers(len(self.players)))]
        level = float(np.sqrt(np.mean(rendered.astype(np.float64) ** 2)))
        if level < SILENT_RMS or song not in self._drum_midi:
            return rendered
        played = player.render(self._notes(song), start / self.rate, self.n)
        own = float(np.sqrt(np.mean(played.astype(np.float64) ** 2)))
        if own < SILENT_RMS * 1e-2:
            return rendered
        if self.kit_layer:
            gain = level / own * 10 ** (rng.uniform(-12.0, 0.0) / 20)
            return (rendered + played * gain).astype(np.float32)
        return (played * (level / own)).astype(np.float32)

    def _notes(self, song: str) -> list:
        if song not in self._drum_notes:
            self._drum_notes[song] = drum_kits.drum_notes(self._drum_midi[song])
        return self._drum_notes[song]

    def kick_drums(self, song: str, start: int, drums: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The drums with a kick synthesised for this example (`kicks`) added at the song's kick
        notes, 0 to 12 dB under the drums' RMS (stop 83: unheard kicks were taken for bass); the
        drums as they were where they are silent or the part has no kick in this example."""
        level = float(np.sqrt(np.mean(drums.astype(np.float64) ** 2)))
        if level < SILENT_RMS or song not in self._drum_midi:
            return drums
        played, _ = kicks.render(self._notes(song), start / self.rate, self.n, rng, self.rate)
        own = float(np.sqrt(np.mean(played.astype(np.float64) ** 2)))
        if own < SILENT_RMS * 1e-2:
            return drums
        return (drums + played * (level / own * 10 ** (rng.uniform(-12.0, 0.0) / 20))).astype(np.float32)

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.example(step, k) for k in range(size)]
        return (torch.from_numpy(np.stack([p[0] for p in pairs])),
                torch.from_numpy(np.stack([p[1] for p in pairs])))


class StepBatches(torch.utils.data.IterableDataset):
    """The batches of steps [start, end) in step order, each `(step, mixtures, stems)`. With a
    DataLoader of W workers, worker w makes steps w, w + W, ... and the loader takes one from
    each in turn, so the order (and every batch) is the same for any W: a GPU is fed by many
    CPU cores without changing what is trained on."""

    def __init__(self, examples: Examples, start: int, end: int, size: int):
        super().__init__()
        self.examples, self.start, self.end, self.size = examples, start, end, size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, n = (info.id, info.num_workers) if info else (0, 1)
        if info:
            torch.set_num_threads(1)
        for step in range(self.start + w, self.end, n):
            mix, ref = self.examples.batch(step, self.size)
            yield step, mix, ref


def loss_fn(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """L1 on the waveform + L1 on STFT magnitudes; est/ref [B, S, 2, T]. v1's loss: in absolute
    units, so a stem counts by its loudness."""
    wave = (est - ref).abs().mean()
    b, s, c, t = est.shape
    spec = (bandsplit.stft(est.reshape(b * s, c, t)).abs() - bandsplit.stft(ref.reshape(b * s, c, t)).abs())
    return wave + spec.abs().mean() / 10


def sdr_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Minus the mean over stems of each stem's SDR in dB over the whole batch; est/ref [B, S, 2, T].

    What `bench.separate` reports, as a loss: every stem counts the same in dB whatever its level
    (the L1 loss weighs a quiet voice under a loud band by its loudness), and, as in a song's SDR,
    energies are summed over the batch's excerpts before the ratio, so an excerpt where a stem is
    silent adds its leak to that stem's error instead of being a ratio of its own (which would
    blow up on silence and be excluded by the metric)."""
    return -batch_sdr(est, ref)[0].mean()


def batch_sdr(est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([S] each stem's SDR in dB over the batch, [S] each stem's mean square in the batch)."""
    energy = ref.square().sum(dim=(0, 2, 3))
    den = (ref - est).square().sum(dim=(0, 2, 3)) + 1e-8
    return 10 * torch.log10((energy + 1e-8) / den), energy / ref[:, 0].numel()


def sounding_sdr_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`sdr_loss` over the stems that sound somewhere in the batch; est/ref [B, S, 2, T].

    Why (stop 72): on kit-less music (orchestras, Lieder, quartets) most batches have no drums in
    any excerpt, and a stem silent in every excerpt has no signal to compare its leak with: its
    "SDR" is the 1e-8 floor over the leak, −40 to −80 dB, which outweighs the sounding stems' few dB
    and drove a kit-less run's loss from −4 to +14 in its first 30 steps. As the metric leaves out a
    silent true stem, so does this loss; a stem that sounds in one excerpt still counts its leak in
    the others (so the network still learns to leave an absent kit out). A batch where no counted
    stem sounds (a vocals specialist's batch of instrumentals) teaches nothing: zero, with no gradient."""
    sdr_db, mean_square = batch_sdr(est, ref)
    sounding = mean_square.sqrt() >= SILENT_RMS
    if not bool(sounding.any()):
        return (est * 0).sum()
    return -sdr_db[sounding].mean()


LOSSES = {"l1": loss_fn, "sdr": sdr_loss, "sdr-sounding": sounding_sdr_loss}


def forward_normalised(model: torch.nn.Module, mix: torch.Tensor) -> torch.Tensor:
    x, mean, std = bandsplit.normalise(mix)
    return model(x) * std.unsqueeze(1) + mean.unsqueeze(1)


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """MDX-style SDR in dB: 10 log10(Σ ref² / Σ (ref − est)²)."""
    num = float(np.sum(np.square(ref, dtype=np.float64))) + 1e-8
    den = float(np.sum(np.square(ref - est, dtype=np.float64))) + 1e-8
    return 10 * math.log10(num / den)


#: a reference stem quieter than this RMS is silent (a piece with no voice or no kit): it has no
#: SDR (minus infinity would wreck the median), here and in `bench.separate`
SILENT_RMS = 1e-4


def silent(ref: np.ndarray) -> bool:
    """A reference stem with no SDR (quieter than SILENT_RMS): training's selection and
    `bench.separate` leave it out alike."""
    return float(np.sqrt(np.mean(np.square(ref, dtype=np.float64)))) < SILENT_RMS


def evaluate(model: torch.nn.Module, data: Path, renders: list[dict], seconds: float = 10.0,
             rate: int = 44100, composer_of: dict[str, str] | None = None) -> dict:
    """Median SDR per stem over `renders` (the first `seconds` of each), and their mean; with
    `composer_of` (song id -> composer) and more than one composer among them, also each
    composer's mean (`by_composer`): a mixed select split can hide a gain on one composer paid
    for on another (stop 44), and this makes the trade visible in the run's log. `per_song` keeps
    each render's SDRs (`<song>.<soundfont>` -> stem -> dB; silent stems left out), so two runs'
    logs can be compared song by song: a difference of medians over 16 songs did not hold a
    0.1 dB line (stop 59), a paired comparison is what such a gate needs."""
    model.eval()
    device = next(model.parameters()).device
    n = int(seconds * rate)
    rows: list[tuple[str, dict[str, float]]] = []
    with torch.inference_mode():
        for r in renders:
            mix, _ = sf.read(data / r["mixture"]["path"], frames=n, dtype="float32", always_2d=True)
            est = forward_normalised(model, torch.from_numpy(mix.T.copy())[None].to(device))[0].float().cpu().numpy()
            got = {}
            for i, s in enumerate(bandsplit.STEMS):
                ref, _ = sf.read(data / r["stems"][s]["path"], frames=n, dtype="float32", always_2d=True)
                if not silent(ref):
                    got[s] = sdr(ref.T, est[i])
            rows.append((r["song"], got))
    model.train()
    out = _medians(rows) | {"per_song": {f"{r['song']}.{r['soundfont']}": got for r, (_, got) in zip(renders, rows)}}
    groups = {composer_of.get(song) for song, _ in rows} if composer_of else set()
    if len(groups) > 1 and None not in groups:
        each = {c: _medians([row for row in rows if composer_of[row[0]] == c]) for c in sorted(groups)}
        out["by_composer"] = {c: m["sdr_mean"] for c, m in each.items()}
        # per stem too: a specialist's other outputs are untrained, so only its own stems' figures mean anything
        out["by_composer_stems"] = {c: m["sdr_median"] for c, m in each.items()}
    return out


def _medians(rows: list[tuple[str, dict[str, float]]]) -> dict:
    med = {s: float(np.median(v)) if (v := [got[s] for _, got in rows if s in got]) else float("nan")
           for s in bandsplit.STEMS}
    return {"sdr_median": med, "sdr_mean": float(np.nanmean(list(med.values()))), "songs": len(rows)}


def composers(manifest: dict) -> dict[str, str]:
    """Song id -> the composer that wrote it (`compose`, `arrange`, `orchestrate`, or `lieder` and
    `quartets` for the scores they arranged), from each source's `origin` (`separation.training.<module>.<function>(...)`)."""
    return {s["id"]: s["origin"].split("(")[0].split(".")[2] for s in manifest["sources"] if "origin" in s}


def load_init(path: Path, args, flag: str = "--init", any_width: bool = False) -> dict:
    """Exported weights to start from (fine-tuning), with their card (`path` with suffix .json,
    as `export` writes it): the card must pin the file's SHA-256 and match the architecture, and
    weights that are not commercial-clean are refused unless --allow-noncommercial. What the run
    records (`config["init"]`) travels into the new card, so the new weights' provenance names
    everything that shaped them: this set *and* the set the starting weights learned from.
    `any_width`: weights that only go beside the run's network (`--base`), never into it."""
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingSetError(f"{flag} {path}: its model card {card_path} is missing or unreadable") from exc
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if card.get("sha256") != digest:
        raise TrainingSetError(f"{flag} {path} has SHA-256 {digest}, its card pins {card.get('sha256')}")
    cfg = card.get("config") or {}
    if cfg.get("kit_routed"):
        raise TrainingSetError(f"{flag} {path} is a base network with a kit-less expert (two networks); start from "
                               "a plain one, e.g. its base's weights")
    if cfg.get("specialist"):
        raise TrainingSetError(f"{flag} {path} is a base network with a specialist (two networks); start from "
                               "a plain one, e.g. its base's weights")
    # Same width and no more layers: a shallower start is deepened (`bandsplit.load_deeper`); same
    # depth and a width that divides the run's: a narrower start is widened (`bandsplit.load_wider`).
    same_width = cfg.get("dim") == args.dim and isinstance(cfg.get("layers"), int) and 0 < cfg["layers"] <= args.layers
    narrower = (isinstance(cfg.get("dim"), int) and 0 < cfg["dim"] < args.dim and args.dim % cfg["dim"] == 0
                and cfg.get("layers") == args.layers)
    beside = any_width and isinstance(cfg.get("dim"), int) and isinstance(cfg.get("layers"), int) and cfg["dim"] > 0
    if card.get("architecture") != bandsplit.ARCHITECTURE or not (same_width or narrower or beside):
        raise TrainingSetError(f"{flag} {path} is {card.get('architecture')} {card.get('config')}, this run is "
                               f"{bandsplit.ARCHITECTURE} {{'dim': {args.dim}, 'layers': {args.layers}}} "
                               "(a start must have the same width and at most as many layers, or the same "
                               "layers and a width that divides the run's)")
    if not card.get("commercial_use") and not args.allow_noncommercial:
        raise TrainingSetError(f"{flag} {path} is not commercial-clean (its card says commercial_use false); "
                               "pass --allow-noncommercial to start from it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    record = {"name": card.get("name"), "weights_sha256": digest,
              "training_data_manifest_sha256": card.get("training_data_manifest_sha256"),
              "training_data": card.get("training_data"), "init": card.get("training", {}).get("init"),
              "commercial_use": bool(card.get("commercial_use"))}
    if beside:  # nothing of it goes into the run's network
        return {"state": state, "record": record}
    if cfg["layers"] < args.layers:  # recorded only when deepened, so older runs still resume
        record["deepened_from_layers"] = cfg["layers"]
    if cfg["dim"] < args.dim:  # likewise only when widened
        record["widened_from_dim"] = cfg["dim"]
    return {"state": state, "record": record}


def widen_start(model: torch.nn.Module, state: dict, seed: int) -> None:
    """A narrower start widened into `model` (`bandsplit.load_wider`), its symmetry-breaking
    shares drawn from the run's seed alone, so `soup --start` rebuilds the very same start."""
    bandsplit.load_wider(model, state, torch.Generator().manual_seed(seed))


def learning_rate(step: int, peak: float, steps: int, decay_steps: int = 0) -> float:
    """A linear warm-up over the first 200 steps (Adam's moments start empty, also when fine-tuning),
    then `peak`; with `decay_steps`, a linear decay to zero over the run's last `decay_steps` steps.
    Why the option: at a constant rate a fine-tune's `select` score wandered by ±0.1 dB between
    selections (stop 38), and annealing is the usual remedy; measured in stop 39 (README,
    "Annealing"): `select` rose steadily, but the run made no candidate that beats v1."""
    rate = peak * min(1.0, (step + 1) / 200)
    if decay_steps > 0:
        rate *= min(1.0, max(0.0, (steps - step) / decay_steps))
    return rate


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    manifest = load_set(args.data, args.allow_noncommercial)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = {"format": RUN_FORMAT, "data_manifest_sha256": manifest["_sha256"], "seed": args.seed,
              "batch": args.batch, "seconds": args.seconds, "lr": args.lr, "dim": args.dim, "layers": args.layers,
              "architecture": bandsplit.ARCHITECTURE, "stems": list(bandsplit.STEMS),
              "commercial_use": bool(manifest.get("commercial_use"))}
    if args.decay_steps:  # the rate then depends on the run's length too; only recorded when used, so
        config |= {"steps": args.steps, "decay_steps": args.decay_steps}  # older runs still resume
    if args.loss != "l1":  # only recorded when not v1's, so older runs still resume
        config["loss"] = args.loss
    if args.loss_stems:  # a specialist (see the module docstring); recorded only then
        config["loss_stems"] = list(args.loss_stems)
    if args.bank_mix:  # recorded only when used, so older runs still resume
        config["bank_mix"] = args.bank_mix
    if args.timbre:  # likewise recorded only when used
        config["timbre"] = args.timbre
    if args.kit_swap:  # likewise; the kits' pins and licences travel to the card
        config |= {"kit_swap": args.kit_swap, "kits": drum_kits.record(args.kits)}
        if args.kit_layer:  # recorded only when used: older kit-swap runs still resume
            config["kit_layer"] = True
        config["commercial_use"] = config["commercial_use"] and all(
            licences_policy.commercial_ok(k["licence"]) for k in config["kits"])
    if args.synth_kicks:  # recorded only when used, so older runs still resume; pinned: another
        config |= {"synth_kicks": args.synth_kicks, "kicks_sha256": kicks.source_sha256()}  # kicks.py refuses a resume
    counted = [bandsplit.STEMS.index(s) for s in args.loss_stems or bandsplit.STEMS]
    init = load_init(args.init, args) if args.init else None
    if init is not None:
        config["init"] = init["record"]
        config["commercial_use"] = config["commercial_use"] and init["record"]["commercial_use"]
    torch.manual_seed(args.seed)
    model = bandsplit.BandSplitRNN(args.dim, args.layers).to(device)
    if init is not None and init["record"].get("widened_from_dim"):
        widen_start(model, init["state"], args.seed)
    elif init is not None:
        bandsplit.load_deeper(model, init["state"])  # the same layers: a plain load
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, best = 0, -math.inf
    last = out / "last.pt"
    if last.exists():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        if ckpt["config"] != config:
            changed = sorted(k for k in config.keys() | ckpt["config"].keys() if ckpt["config"].get(k) != config.get(k))
            raise TrainingSetError(f"{last} was trained with other settings ({', '.join(changed)}); "
                                   "use another --out to start a new run")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, best = ckpt["step"], ckpt["best_select_sdr"]
        print(f"resuming {last} at step {step}", flush=True)
    examples = Examples(args.data, manifest, "train", args.seconds, args.seed, bank_mix=args.bank_mix,
                        timbre=args.timbre, kits=args.kits if args.kit_swap else [], kit_swap=args.kit_swap,
                        kit_layer=args.kit_layer, synth_kicks=args.synth_kicks)
    select = [r for r in manifest["renders"] if r["split"] == "select"]
    composer_of = composers(manifest)
    log = (out / "log.jsonl").open("a")
    model.train()
    t0, losses = time.perf_counter(), []

    def checkpoint(path: Path) -> None:
        _save(path, {"config": config, "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "step": step, "best_select_sdr": best})

    def score_select() -> float:
        ev = evaluate(model, args.data, select, composer_of=composer_of)
        score = selection_score(ev, args.loss_stems)
        rec = {"step": step, "select": ev} | ({"select_score": score} if args.loss_stems else {})
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        return score

    if select and init is not None and step == 0:
        # a fine-tune is chosen against where it started: the start is scored as step 0 and is
        # best.pt until a step beats it (stop 52: a specialist whose every step was worse than its
        # start on select was exported, and judged worse on four sets of five)
        best = score_select()
        checkpoint(out / "best.pt")
    loader = torch.utils.data.DataLoader(StepBatches(examples, step, args.steps, args.batch), batch_size=None,
                                         num_workers=args.workers, prefetch_factor=4 if args.workers else None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    for batch_step, mix, ref in loader:
        if batch_step != step:  # the loader's order is the contract that makes runs reproducible
            raise RuntimeError(f"batch of step {batch_step} arrived at step {step}")
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, args.lr, args.steps, args.decay_steps)
        with autocast:  # bf16 on a GPU; the STFTs and the loss stay in float32
            est = forward_normalised(model, mix.to(device, non_blocking=True))
        loss = LOSSES[args.loss](est.float()[:, counted], ref.to(device, non_blocking=True)[:, counted])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % args.log_every == 0:
            rec = {"step": step, "loss": round(float(np.mean(losses)), 5),
                   "s_per_step": round((time.perf_counter() - t0) / len(losses), 3)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            t0, losses = time.perf_counter(), []
        if select and (step % args.select_every == 0 or step == args.steps):
            score = score_select()
            if score > best:
                best = score
                checkpoint(out / "best.pt")
        if step % args.checkpoint_every == 0 or step == args.steps:
            checkpoint(last)
    log.close()
    return {"step": step, "best_select_sdr": best}


def selection_score(ev: dict, stems: list[str] | None) -> float:
    """What best.pt is chosen on: the mean of the stems' medians on `select`; a specialist run
    counts only the stems it is trained for (its other stems will never be used)."""
    if not stems:
        return ev["sdr_mean"]
    return float(np.nanmean([ev["sdr_median"][s] for s in stems]))


#: corpora of scores by other hands (`separation.training.lieder`, `.quartets`): what their pieces are
SCORE_CORPORA = {lieder.SOURCE: ("songs for voice and piano", "OpenScore Lieder"),
                 quartets.SOURCE: ("string quartets", "OpenScore String Quartets")}


def training_statement(manifest: dict, init: dict | None = None, also: dict | None = None,
                       kits: tuple[float, list[dict], bool] | None = None, synth_kicks: float = 0.0,
                       kicks_sha256: str | None = None) -> tuple[str, str]:
    """(training_data, weights_licence) for the registry, from a set's manifest: what the weights
    learned from (the train and select splits only: val never enters them), in words a label's
    lawyer can check against the manifest it names; with `init` (a run's `config["init"]`), also
    the weights it started from and what those learned from. `also` (`other_base`): another
    network whose stems ship beside these, its inputs' licences and commercial use counted too.
    `kits`: (P, `kits.record`, layered) of a `--kit-swap` run, the recorded kits its drums were
    replayed by (layered: `--kit-layer`, over the bank's drums). `synth_kicks`, `kicks_sha256`: a `--synth-kicks` run's P and the pinned source of its kicks."""
    used = [r for r in manifest["renders"] if r["split"] in ("train", "select")]
    songs = sorted({r["song"] for r in used})
    fonts = {f["id"]: f for f in manifest["soundfonts"]}
    used_fonts = sorted({r["soundfont"] for r in used})
    sources = {s["id"]: s for s in manifest["sources"]}
    licences = sorted({lic for s in manifest["sources"] if s["id"] in songs for lic in s.get("licences", [s["licence"]])}
                      | {fonts[f]["licence"] for f in used_fonts} | set((also or {}).get("licences", ()))
                      | {k["licence"] for k in (kits or (0, []))[1]} | ({OWN_WORK} if synth_kicks else set()))
    scored = [s for s in songs if sources.get(s, {}).get("kind") == "score-arrangement"]
    styles = sorted({sources[s]["composition"]["style"] for s in songs
                     if "composition" in sources.get(s, {}) and s not in scored})
    vocals = sorted({str((sources[s].get("vocals") or {}).get("kind", "")) for s in songs if s in sources} - {""})
    fonts_words = "; ".join(
        f"ClearStem's own synthesiser (separation/training/synth.py, {fonts[f]['licence']})" if f == SYNTH_BANK
        else f"Sonivox EAS's wavetable ({fonts[f]['file']}, {fonts[f]['licence']})" if f == SONIVOX_BANK
        else f"FreePats' GUS patches played by TiMidity++ ({fonts[f]['licence']})" if f == FREEPATS_BANK
        else f"{fonts[f]['file']} ({fonts[f]['licence']})" for f in used_fonts)
    if SYNTH_BANK in used_fonts:  # that bank sings the melody with its formant voice, whatever the source says
        vocals = [*vocals, "in the synthesiser's renders, its source-filter formant voice (no words)"]
    if SONIVOX_BANK in used_fonts:  # the sources say FluidSynth; those renders played the programs in Sonivox
        vocals = [*vocals, "in the Sonivox renders, the same GM voice programs from its wavetable"]
    if FREEPATS_BANK in used_fonts:  # FreePats has one voice: every voice program plays its Voice Oohs
        vocals = [*vocals, "in the FreePats renders, every GM voice program played by its one sampled voice (Voice Oohs)"]
    # Flite's voices are models built from recorded speakers: "no human voice" would not be true of them
    voice_words = ("no recording of a voice (Flite's voices are statistical and diphone models built from "
                   "recordings of real speakers, CMU licence)" if voice.FLITE_KIND in vocals else "no human voice")
    by_people = ""
    for corpus, (what, name) in SCORE_CORPORA.items():  # songs by other hands, per corpus
        of_corpus = [s for s in scored if sources[s]["score"].get("corpus") == corpus]
        if not of_corpus:
            continue
        people = sorted({sources[s]["score"]["composer"] for s in of_corpus})
        by_people += (f" and {len(of_corpus)} excerpts of {what} by {len(people)} "
                      f"composer{'s' if len(people) > 1 else ''} who died "
                      f"by {max(sources[s]['score']['composer_died'] for s in of_corpus)}, from the {name} "
                      "corpus (CC0 encodings of public-domain compositions; each score's path and SHA-256 in the "
                      "manifest), arranged into stems by ClearStem")
    made_here = (f"{len(songs) - len(scored)} songs composed procedurally by ClearStem ({', '.join(styles)})"
                 if len(songs) > len(scored) else "")
    data = (f"ClearStem training set, manifest SHA-256 {manifest['_sha256']}: "
            f"{made_here}{by_people if made_here else by_people[len(' and '):]}, rendered per stem with {fonts_words}; "
            f"vocals stem: {', '.join(vocals) or 'see the manifest'} — {voice_words}, no third-party "
            + ("recordings" if not kits else "recordings but the drum kits' below")
            + (" or MIDI" if not scored else ", no third-party music but those scores"))
    if kits:
        how = ("the bank's drums with the song's drum part replayed over them, 0 to 12 dB quieter, by"
               if kits[2] else "the song's drum part replayed by")
        data += (f"; in {kits[0]:.0%} of the training examples the drums stem was {how} "
                 "one of these recorded drum kits (Debian's hydrogen-drumkits, separation/training/kits.py): "
                 + "; ".join(f"{k['attribution']} ({k['licence']}, files SHA-256 {k['tree_sha256']})" for k in kits[1]))
    if synth_kicks:
        data += (f"; in {synth_kicks:.0%} of the training examples a kick synthesised by ClearStem for that example "
                 f"(separation/training/kicks.py{f', source SHA-256 {kicks_sha256}' if kicks_sha256 else ''}, "
                 f"{OWN_WORK}) was added to the drums at the song's kick notes, "
                 "0 to 12 dB under them")
    if init:
        own = data
        data += f"; fine-tuned from {init['name']} (weights SHA-256 {init['weights_sha256']}), "
        if init.get("deepened_from_layers"):
            data += f"deepened from its {init['deepened_from_layers']} layers (the new ones started as the identity), "
        if init.get("widened_from_dim"):
            data += f"widened from its {init['widened_from_dim']} features per band (each copied, same function), "
        # Weights trained further on the set they came from would otherwise state that set twice.
        if init["training_data"] == own:
            data += "which learned from this same set"
        elif init["training_data"].startswith(own + "; "):
            data += "which learned from this same set and was itself " + init["training_data"][len(own) + 2:]
        else:
            data += f"whose training data was: {init['training_data']}"
    commercial = (bool(manifest.get("commercial_use")) and (not init or bool(init.get("commercial_use")))
                  and (not also or bool(also.get("commercial_use")))
                  and all(licences_policy.commercial_ok(k["licence"]) for k in (kits or (0, []))[1]))
    weights = (f"ClearStem's own weights; every training input's licence allows commercial use ({', '.join(licences)})"
               if commercial else f"ClearStem's own weights; NOT commercial-clean (inputs: {', '.join(licences)})")
    return data, weights


def specialist_over(ckpt: dict, base: Path | None, take: list[str] | None = None,
                    blend: float | dict[str, float] | None = None, precision: torch.dtype = torch.float32) -> tuple[dict, dict]:
    """(state dict, config) of a checkpoint as the registry loads it: a plain network, or — for a
    `--loss-stems` run, which must be given the weights it started from as `base` — the base
    with the run's network as its specialist (`bandsplit.WithSpecialist`). `take` names the stems
    the run's network supplies instead: some of a fine-tune's stems over its start's, e.g. all
    but one that the fine-tune made worse (stop 51's candidate lost only in the bass). With `blend`
    w those stems are w·the run's estimate + (1 − w)·the base's (`specialist_weight`; a dict
    gives each stem its own w, e.g. {"drums": 0.5, "bass": 0.25}, stop 80). The
    specialist's weights are stored in `precision` (float16 halves what a second network adds to
    the file; the registry loads them back into float32), the base's as they are."""
    cfg = ckpt["config"]
    state = {k: v.contiguous() for k, v in ckpt["model"].items()}
    config = {"dim": cfg["dim"], "layers": cfg["layers"]}
    trained = cfg.get("loss_stems") or cfg["stems"]
    if take is not None:
        if base is None:
            raise TrainingSetError("--take goes over the weights the run started from: give them with --base")
        if len(set(take)) != len(take) or not set(take) < set(cfg["stems"]):
            raise TrainingSetError(f"--take names some of the stems {cfg['stems']}, each once and not all of them "
                                   f"(all: export the run itself, without --base), got {take}")
        if not set(take) <= set(trained):
            raise TrainingSetError(f"--take {' '.join(take)}: this run trained only {', '.join(trained)}")
    stems = take or cfg.get("loss_stems")
    if blend is not None and not stems:
        raise TrainingSetError("--blend is for a specialist (a --loss-stems run, or --take) over --base")
    if precision != torch.float32 and not stems:
        raise TrainingSetError("--specialist-precision is for a specialist (a --loss-stems run, or --take) over --base")
    if blend is not None:
        try:
            weights = bandsplit.blend_weights(stems, blend)  # each stem's, in the run's order, as floats
        except ValueError as exc:
            raise TrainingSetError(f"--blend weighs a specialist's stems against --base's: {exc}") from None
    if not stems:
        if base is not None:
            raise TrainingSetError("--base is for a specialist (a --loss-stems run, or --take); this run trained "
                                   "every stem")
        return state, config
    init = cfg.get("init") or {}
    if base is None:
        raise TrainingSetError(f"this run is a specialist for {', '.join(stems)}: export it with --base, the weights "
                               f"it started from ({init.get('name')}, SHA-256 {init.get('weights_sha256')})")
    digest = hashlib.sha256(base.read_bytes()).hexdigest()
    if take is not None and digest != init.get("weights_sha256"):
        other_base(base, cfg)  # the stems not taken come from another exported network of the same width
    elif digest != init.get("weights_sha256"):
        raise TrainingSetError(f"--base {base} has SHA-256 {digest}; this specialist was fine-tuned from "
                               f"{init.get('name')} ({init.get('weights_sha256')}): it goes over those weights")
    base_state = torch.load(base, map_location="cpu", weights_only=True)
    state = ({f"base.{k}": v.contiguous() for k, v in base_state.items()}
             | {f"specialist.{k}": (v.to(precision) if v.is_floating_point() else v).contiguous()
                for k, v in state.items()})
    base_layers = bandsplit.layer_count(base_state)  # a deepened run's start (or --base) has fewer than it
    base_dim = bandsplit.width(base_state)  # a --base of another width: the run's network goes beside it
    deeper = {"specialist_layers": cfg["layers"]} if base_layers != cfg["layers"] else {}
    wider = {"specialist_dim": cfg["dim"]} if base_dim != cfg["dim"] else {}
    blended = {} if blend is None else {"specialist_weight": weights if isinstance(blend, dict) else float(blend)}
    return state, config | {"dim": base_dim, "layers": base_layers,
                            "specialist": [s for s in cfg["stems"] if s in stems]} | deeper | wider | blended


#: How `export --specialist-precision` may store a specialist (the base stays as it is).
SPECIALIST_PRECISIONS = {"float32": torch.float32, "float16": torch.float16}

#: How a kit-routed file stores its expert (`kit_routed_over`); its card says so.
EXPERT_DTYPE = torch.float16


def kit_routed_over(ckpt: dict, base: Path, below_db: float, vocals_below_db: float | None = None,
                    gate: Path | None = None, gate_below: float | None = None) -> tuple[dict, dict]:
    """(state dict, config) of a run's network as the expert of a kit-routed model over `base`, the
    weights the run was fine-tuned from (`bandsplit.KitRouted`: the base separates every chunk where
    its drums estimate is at least `below_db` dB re the mixture — or, with `vocals_below_db`, its
    vocals estimate at least that, or, with a voice `gate` (`separation.voice_gate`), where its
    logit is at least `gate_below` — the expert every other). The
    expert's weights are stored in float16 — two networks of v19's size in float32 are just over
    25 MB — and loaded back into float32, so the file is what the card pins and the engine runs."""
    cfg = ckpt["config"]
    if cfg.get("loss_stems"):
        raise TrainingSetError("a kit-routed expert separates every stem: export a run trained on every stem's loss")
    init = cfg.get("init") or {}
    digest = hashlib.sha256(base.read_bytes()).hexdigest()
    if digest != init.get("weights_sha256"):
        raise TrainingSetError(f"--base {base} has SHA-256 {digest}; the expert was fine-tuned from "
                               f"{init.get('name')} ({init.get('weights_sha256')}): it routes over those weights")
    if not all(math.isfinite(v) for v in (below_db, vocals_below_db, gate_below) if v is not None):
        raise TrainingSetError(f"routing thresholds must be finite, got {below_db}, {vocals_below_db}, {gate_below}")
    if (gate is None) != (gate_below is None):
        raise TrainingSetError("--voice-gate and --voice-gate-below go together")
    base_state = torch.load(base, map_location="cpu", weights_only=True)
    if bandsplit.layer_count(base_state) != cfg["layers"] or bandsplit.width(base_state) != cfg["dim"]:
        raise TrainingSetError("the expert and the base must have one shape (a deepened or widened run cannot route)")
    state = ({f"base.{k}": v.contiguous() for k, v in base_state.items()}
             | {f"expert.{k}": (v.to(EXPERT_DTYPE) if v.is_floating_point() else v).contiguous()
                for k, v in ckpt["model"].items()})
    routed = {"below_db": float(below_db)} | ({} if vocals_below_db is None else {"vocals_below_db": float(vocals_below_db)})
    if gate is not None:
        gate_state, record = voice_gate_weights(gate)
        if record.get("data_manifest_sha256") != cfg["data_manifest_sha256"]:
            raise TrainingSetError(f"--voice-gate {gate} learned from set {record.get('data_manifest_sha256')}, the "
                                   f"expert from {cfg['data_manifest_sha256']}: the card states one set's licences, "
                                   "so fit the gate on the expert's set")
        state |= {f"gate.{k}": v for k, v in gate_state.items()}
        routed["voice_gate"] = {"below": float(gate_below)} | record
    return state, {"dim": cfg["dim"], "layers": cfg["layers"], "kit_routed": routed}


def voice_gate_weights(gate: Path) -> tuple[dict, dict]:
    """A trained voice gate's state dict, checked against `VoiceGate`'s shape, and what a card
    records of it: its SHA-256 and its training record (`gate` with `.json`, which `fit` writes)."""
    try:
        state = torch.load(gate, map_location="cpu", weights_only=True)
        record = json.loads(gate.with_suffix(".json").read_text())
        voice_gate.VoiceGate().load_state_dict(state)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise TrainingSetError(f"--voice-gate {gate} is not a voice gate with its record beside it "
                               f"({gate.with_suffix('.json')}): {exc}") from exc
    kept = ("data_manifest_sha256", "renders", "banks", "steps", "batch", "lr", "seed", "with_kit_songs", "eq_db",
            "lr_schedule")
    return state, {"sha256": hashlib.sha256(gate.read_bytes()).hexdigest()} | {k: record[k] for k in kept if k in record}


def other_base(base: Path, cfg: dict) -> dict:
    """What a card records of `--base` weights that are not the run's start (`--take` over another
    exported network, e.g. a model whose bass stem finds better than the start's): checked as a
    start is (`load_init`: its card pins it, commercial-clean), of any width (its network runs
    beside the run's: `specialist_dim`) and any depth (`specialist_layers`), with the
    training manifest its card names beside it (`<name>.training-manifest.json`, as
    `separation/weights/` ships), whose inputs' licences the new card must count too."""
    args = argparse.Namespace(dim=cfg["dim"], layers=cfg["layers"], allow_noncommercial=False)
    record = load_init(base, args, flag="--base", any_width=True)["record"]
    shipped = base.with_name(f"{base.stem}.training-manifest.json")
    try:
        raw = shipped.read_bytes()
    except OSError as exc:
        raise TrainingSetError(f"--base {base}: the training manifest its card names is not beside it ({shipped}); "
                               "the new card must state its inputs' licences") from exc
    if hashlib.sha256(raw).hexdigest() != record["training_data_manifest_sha256"]:
        raise TrainingSetError(f"--base {base}: {shipped} is not the training manifest its card names "
                               f"({record['training_data_manifest_sha256']})")
    return {k: record[k] for k in ("name", "weights_sha256", "training_data_manifest_sha256", "training_data",
                                   "commercial_use")} | {"licences": json.loads(raw)["weights_licence_inputs"]}


def card_statement(manifest: dict, cfg: dict) -> tuple[str, str]:
    """(training_data, weights_licence) of a card: `training_statement` for the set and the start,
    wrapped in what a soup (`cfg["soup"]`) and a specialist (`cfg["loss_stems"]`) add. `cfg` is a
    run's config, or the same keys read back from a card (the shipped models' test does that)."""
    base = cfg.get("base")  # the stems not taken come from another network than the run's start
    training_data, weights_licence = training_statement(
        manifest, cfg.get("init"), base,
        (cfg["kit_swap"], cfg["kits"], bool(cfg.get("kit_layer"))) if cfg.get("kit_swap") else None,
        cfg.get("synth_kicks", 0.0), cfg.get("kicks_sha256"))
    averaged, each = "", ""
    if cfg.get("soup"):  # which runs, and that this set lists what the others learned from
        runs = [i for i in cfg["soup"] if "step" in i]
        words = "; ".join(f"seed {i['seed']}, {i['step']} steps at rate {i['lr']:g} on set {i['data_manifest_sha256']}"
                          + ("" if i["data_manifest_sha256"] == cfg["data_manifest_sha256"]
                             else ", every input of which the set below lists") for i in runs)
        if len(runs) < len(cfg["soup"]):  # WiSE-FT: one run and the weights it was fine-tuned from
            averaged = f"the uniform average of the weights of one run and of the start it was fine-tuned from ({words}), "
            each = "the run: "
        else:
            averaged = f"the uniform average of the weights of {len(runs)} runs from one start ({words}), "
            each = "each "
    over = cfg.get("taken_stems") or cfg.get("loss_stems")
    if over:  # the base's own statement is inside init's: it learned what the specialist did first
        others = ", ".join(s for s in cfg["stems"] if s not in over)
        loss = cfg.get("loss_stems") or []
        whose = ("that stem's loss" if loss == over and len(loss) == 1 else "those stems' loss" if loss == over
                 else f"the loss of {' and '.join(loss)}")  # --take may keep some of the stems it trained
        trained = (f"a specialist network trained on {whose} only" if loss
                   else "a network fine-tuned on every stem's loss, only these stems taken from "
                   + ("the average" if averaged else "it"))
        if cfg.get("specialist_precision"):
            trained += f" (stored in {cfg['specialist_precision']})"
        kept = (f"{base['name']} unchanged (weights SHA-256 {base['weights_sha256']}), whose training data was: "
                f"{base['training_data']}" if base else
                f"{cfg['init']['name']} unchanged (weights SHA-256 {cfg['init']['weights_sha256']})")
        weight = cfg.get("specialist_weight")
        if isinstance(weight, dict):  # each stem weighed on its own
            trained = (f"per stem, (1 − w) × {(base or cfg['init'])['name']}'s estimate + w × that of "
                       f"{averaged}{each}{trained}, w = " + ", ".join(f"{w:g} for {s}" for s, w in weight.items()))
            averaged = each = ""
        elif weight is not None:  # both networks' estimates of those stems, weighed
            trained = (f"{1 - weight:g} × {(base or cfg['init'])['name']}'s estimate + {weight:g} × that of "
                       f"{averaged}{each}{trained}")
            averaged = each = ""  # said inside the weighed estimate
        training_data = f"{others}: {kept}; {', '.join(over)}: {averaged}{each}{trained}, on {training_data}"
    elif cfg.get("kit_routed"):  # the base is the expert's start: its statement is inside init's
        routed = cfg["kit_routed"]
        kept = f"{cfg['init']['name']} unchanged (weights SHA-256 {cfg['init']['weights_sha256']})"
        stored = routed.get("expert_precision", "float32")
        if "voice_gate" in routed:  # the expert's condition first: it is the narrower one
            gate = routed["voice_gate"]
            renders = "train renders, their drums left out," if gate.get("with_kit_songs") else "kit-less train renders"
            colour = f", each example's colour tilted at random by up to ±{gate['eq_db']:g} dB" if gate.get("eq_db") else ""
            training_data = (f"two networks and a voice detector, chosen per 10 s chunk: where the first network's "
                             f"drums estimate is under {routed['below_db']:.2f} dB re the mixture and the detector's "
                             f"logit is under {gate['below']:.3f} (no drum kit, no voice heard), {averaged}{each}a "
                             f"network fine-tuned from the other (stored in {stored}) on {training_data}; elsewhere, "
                             f"{kept}. The detector (separation.voice_gate, weights SHA-256 {gate.get('sha256')}) "
                             f"learned from the stems of the {renders} of training set "
                             f"{gate.get('data_manifest_sha256')} ({gate.get('renders')} renders, "
                             f"{', '.join(gate.get('banks', []))}), re-mixed with and without their vocals{colour}")
        elif "vocals_below_db" in routed:
            training_data = (f"two networks, chosen per 10 s chunk by the first one's drums and vocals estimates: "
                             f"where the drums are under {routed['below_db']:.2f} dB and the vocals under "
                             f"{routed['vocals_below_db']:.2f} dB re the mixture (no drum kit, no voice), {averaged}"
                             f"{each}a network fine-tuned from the other (stored in {stored}) on {training_data}; "
                             f"elsewhere, {kept}")
        else:
            training_data = (f"two networks, chosen per 10 s chunk by the first one's drums estimate: where it is at "
                             f"least {routed['below_db']:.2f} dB re the mixture, {kept}; elsewhere (no drum kit), "
                             f"{averaged}{each}a network fine-tuned from it (stored in {stored}) on {training_data}")
    elif averaged:
        training_data = f"{averaged}{each}trained on {training_data}"
    return training_data, weights_licence


#: What a card's `training` records of the run its specialist network came from (`export`), which
#: re-exporting that network needs; the stems taken and the weights they go over are chosen anew.
RUN_SETTINGS_ON_CARD = ("seed", "batch", "seconds", "lr", "soup", "init", "decay_steps", "loss", "loss_stems",
                        "bank_mix", "timbre", "kit_swap", "kits", "kit_layer", "synth_kicks", "kicks_sha256")


def taken_as_checkpoint(weights: Path, state: dict) -> dict:
    """Exported weights that hold a run's network over other weights (`--take`, `--loss-stems`:
    `specialist.*`), read back, with their card beside them, as that run's checkpoint, so `export`
    can put its stems over other weights again from what `separation/weights/` ships — the run's
    own checkpoint need not survive (stop 54: v5's soup file was lost with a machine; v6 is v5's
    drums, vocals and *other* over v2). The network is the run's, tensor for tensor; the card
    supplies the run's settings (`RUN_SETTINGS_ON_CARD`) and set, and must pin these weights."""
    card_path = weights.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingSetError(f"{weights} is not a run's checkpoint, and exported weights are re-exported with "
                               f"their card beside them ({card_path}): {exc}") from exc
    if hashlib.sha256(weights.read_bytes()).hexdigest() != card.get("sha256"):
        raise TrainingSetError(f"{card_path} does not pin {weights} (its sha256 differs)")
    if not card["config"].get("specialist"):
        raise TrainingSetError(f"{weights} is one network, not a run's over other weights: use it as --init or "
                               "--base, or ship it as it is")
    training = card["training"]
    run_layers = card["config"].get("specialist_layers", card["config"]["layers"])  # the run's own network
    run_dim = card["config"].get("specialist_dim", card["config"]["dim"])  # likewise its width
    config = {"dim": run_dim, "layers": run_layers, "stems": card["stems"],
              "data_manifest_sha256": card["training_data_manifest_sha256"], "commercial_use": card["commercial_use"],
              **{k: training[k] for k in RUN_SETTINGS_ON_CARD if k in training}}
    if "run_steps" in training:
        config["steps"] = training["run_steps"]
    model = {k.removeprefix("specialist."): v for k, v in state.items() if k.startswith("specialist.")}
    return {"step": training["steps"], "best_select_sdr": training["best_select_sdr_mean"], "model": model,
            "config": config}


def export(checkpoint: Path, to: Path, data: Path | None = None, name: str | None = None,
           base: Path | None = None, take: list[str] | None = None, kit_routed_below: float | None = None,
           kit_routed_vocals_below: float | None = None, voice_gate: Path | None = None,
           voice_gate_below: float | None = None, blend: float | dict[str, float] | None = None,
           specialist_precision: str = "float32") -> dict:
    """The weights of a checkpoint as a plain state dict (what the registry pins and loads), and
    what the registry needs to know about them. With the training set (`data`) and a `name`,
    also the model card `to` with suffix .json — what `separation/weights/` ships beside the
    weights (the registry's `BUILTIN_MODELS` pins their SHA-256). A specialist run goes over
    `base`, the weights it started from (`specialist_over`), as do the stems `take` names; with
    `kit_routed_below`, the run is the expert for `base`'s kit-less chunks (`kit_routed_over`; with
    `kit_routed_vocals_below`, for those with no voice either; with `voice_gate`, for those where
    that detector's logit is under `voice_gate_below`); with `blend` w, the specialist's stems are
    w·its estimate + (1 − w)·`base`'s; with `specialist_precision` "float16", the specialist's
    weights are stored in float16 (two float32 networks of v19's size are just over 25 MB).
    `checkpoint` may also be weights exported that way (`taken_as_checkpoint`)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if "config" not in ckpt:  # exported weights, not a run's checkpoint
        ckpt = taken_as_checkpoint(checkpoint, ckpt)
    if ckpt["step"] == 0 and ckpt["config"].get("init"):
        raise TrainingSetError(f"{checkpoint} is the run's start, step 0: no step of the run beat the --init weights "
                               f"({ckpt['config']['init'].get('name')}) on select ({ckpt['best_select_sdr']:.3f}); "
                               "there are no new weights to export")
    if (kit_routed_vocals_below is not None or voice_gate is not None) and kit_routed_below is None:
        raise TrainingSetError("--kit-routed-vocals-below and --voice-gate add to --kit-routed-below: give it too")
    if kit_routed_below is not None:
        if base is None or take or blend is not None or specialist_precision != "float32":
            raise TrainingSetError("a kit-routed export needs --base, the weights the expert started from, and no "
                                   "--take, --blend or --specialist-precision (its expert is float16 already)")
        state, config = kit_routed_over(ckpt, base, kit_routed_below, kit_routed_vocals_below, voice_gate,
                                        voice_gate_below)
    else:
        if specialist_precision not in SPECIALIST_PRECISIONS:
            raise TrainingSetError(f"--specialist-precision is one of {', '.join(SPECIALIST_PRECISIONS)}, "
                                   f"got {specialist_precision}")
        state, config = specialist_over(ckpt, base, take, blend, SPECIALIST_PRECISIONS[specialist_precision])
    to.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, to)
    cfg = (ckpt["config"] | ({"taken_stems": config["specialist"]} if take else {})
           | ({"specialist_weight": config["specialist_weight"]} if "specialist_weight" in config else {})
           | ({"specialist_precision": specialist_precision} if specialist_precision != "float32" else {})
           | ({"kit_routed": config["kit_routed"] | {"expert_precision": str(EXPERT_DTYPE).removeprefix("torch.")}}
              if kit_routed_below is not None else {}))
    if take and hashlib.sha256(base.read_bytes()).hexdigest() != (cfg.get("init") or {}).get("weights_sha256"):
        cfg["base"] = other_base(base, ckpt["config"])
    out = {"weights": str(to), "architecture": bandsplit.ARCHITECTURE, "stems": cfg["stems"],
           "config": config, "step": ckpt["step"],
           "best_select_sdr": ckpt["best_select_sdr"], "training_data_manifest_sha256": cfg["data_manifest_sha256"],
           "commercial_use": cfg["commercial_use"]}
    if data is not None and name:
        manifest = load_set(data, allow_noncommercial=True)
        if manifest["_sha256"] != cfg["data_manifest_sha256"]:
            raise TrainingSetError(f"{checkpoint} was trained on set {cfg['data_manifest_sha256']}, "
                                   f"{data} is {manifest['_sha256']}")
        training_data, weights_licence = card_statement(manifest, cfg)
        digest = hashlib.sha256(to.read_bytes()).hexdigest()
        card = {"name": name, "architecture": bandsplit.ARCHITECTURE, "stems": cfg["stems"], "sample_rate": 44100,
                "config": out["config"], "sha256": digest, "weights_licence": weights_licence,
                "training_data": training_data, "training_data_manifest_sha256": cfg["data_manifest_sha256"],
                "commercial_use": (cfg["commercial_use"] and bool(manifest.get("commercial_use"))
                                   and bool(cfg.get("base", {}).get("commercial_use", True))),
                "training": {k: cfg[k] for k in ("seed", "batch", "seconds", "lr") if not (cfg.get("soup") and k in (
                    "seed", "lr"))} | ({"soup": cfg["soup"]} if cfg.get("soup") else {}) | {"init": cfg.get("init")} | ({
                    "decay_steps": cfg["decay_steps"], "run_steps": cfg["steps"]} if "decay_steps" in cfg else {}) | {
                    "loss": cfg.get("loss", "l1")} | ({"loss_stems": cfg["loss_stems"]} if "loss_stems" in cfg else {}) | (
                    {"taken_stems": cfg["taken_stems"]} if "taken_stems" in cfg else {}) | (
                    {"specialist_weight": cfg["specialist_weight"]} if "specialist_weight" in cfg else {}) | (
                    {"specialist_precision": cfg["specialist_precision"]} if "specialist_precision" in cfg else {}) | (
                    {"kit_routed": cfg["kit_routed"]} if "kit_routed" in cfg else {}) | (
                    {"bank_mix": cfg["bank_mix"]} if "bank_mix" in cfg else {}) | (
                    {"timbre": cfg["timbre"]} if "timbre" in cfg else {}) | (
                    {"kit_swap": cfg["kit_swap"], "kits": cfg["kits"]} if "kit_swap" in cfg else {}) | (
                    {"kit_layer": True} if cfg.get("kit_layer") else {}) | (
                    {k: cfg[k] for k in ("synth_kicks", "kicks_sha256") if k in cfg} if cfg.get("synth_kicks") else {}) | (
                    {"base": cfg["base"]} if "base" in cfg else {}) | {
                    "steps": ckpt["step"], "best_select_sdr_mean": ckpt["best_select_sdr"],
                    "recipe": "python -m separation.train --data DIR --out RUN (see README: training)"}}
        tmp = to.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, to.with_suffix(".json"))
        out |= {"card": str(to.with_suffix(".json")), "sha256": digest}
    return out


#: What every ingredient of a soup must share: the same network and start, trained for the same stems.
SOUP_SAME = ("format", "architecture", "dim", "layers", "stems", "loss", "loss_stems", "init")


def _covers(cover: dict, other: dict) -> list[str]:
    """What `other`'s train and select splits use that `cover` does not list identically (songs'
    source records, renders with their files' hashes): empty when `cover` covers it."""
    sources = {s["id"]: s for s in cover["sources"]}
    renders = {(r["song"], r["soundfont"]): r for r in cover["renders"]}
    missing = []
    for r in other["renders"]:
        if r["split"] not in ("train", "select"):
            continue
        if renders.get((r["song"], r["soundfont"])) != r:
            missing.append(f"render {r['song']}.{r['soundfont']}")
    used = {r["song"] for r in other["renders"] if r["split"] in ("train", "select")}
    missing += [f"source {src['id']}" for src in other["sources"] if src["id"] in used and sources.get(src["id"]) != src]
    return missing


def soup(checkpoints: list[Path], to: Path, data: Path, covers: list[Path] = (), score: bool = False,
         start: Path | None = None) -> dict:
    """The uniform average of the weights of `checkpoints` (runs from one start; see the module
    docstring), saved as a checkpoint `to` that `export` takes like a run's (no optimiser: a soup
    is not trained further). Its `data_manifest_sha256` is `data`'s, which must cover every
    ingredient's set; `config["soup"]` records each ingredient. With `start` (the weights the runs
    started from, checked against the SHA-256 they recorded), those weights are one more
    ingredient: one run and its start average to the middle of the fine-tune (WiSE-FT, Wortsman
    et al. 2022, which kept what a fine-tune gained on new data with less of what it cost on the
    old). With `score`, also the soup's and each ingredient's `select` scores on `data` (the
    trainer's protocol), printed and recorded."""
    if len(checkpoints) + (start is not None) < 2:
        raise TrainingSetError("a soup needs at least two checkpoints (or one and --start)")
    manifest = load_set(data, allow_noncommercial=True)
    sets = {manifest["_sha256"]: manifest}
    for d in covers:
        m = load_set(d, allow_noncommercial=True)
        if missing := _covers(manifest, m):
            raise TrainingSetError(f"{data} does not list every input {d} trained on ({len(missing)} differ, "
                                   f"e.g. {', '.join(missing[:3])}): give a set that lists them all")
        sets[m["_sha256"]] = m
    ckpts = [torch.load(c, map_location="cpu", weights_only=False) for c in checkpoints]
    first = ckpts[0]["config"]
    if not first.get("init"):
        raise TrainingSetError("a soup averages fine-tunes of one start; these runs have no --init "
                               "(networks trained from separate random starts do not average)")
    for path, ck in zip(checkpoints, ckpts):
        cfg = ck["config"]
        if differ := [k for k in SOUP_SAME if cfg.get(k) != first.get(k)]:
            raise TrainingSetError(f"{path} differs from {checkpoints[0]} in {', '.join(differ)}: a soup's "
                                   "ingredients share their network, start, loss and stems")
        if cfg["data_manifest_sha256"] not in sets:
            raise TrainingSetError(f"{path} trained on set {cfg['data_manifest_sha256']}, neither {data} nor a "
                                   "--covers set: name the set it trained on with --covers")
    if first["init"].get("widened_from_dim") and len({ck["config"]["seed"] for ck in ckpts}) > 1:
        raise TrainingSetError("these runs widened their start with different seeds (different starts): "
                               "a soup of widened runs needs one seed")
    states = [ck["model"] for ck in ckpts]
    ingredients = [{"checkpoint_sha256": hashlib.sha256(c.read_bytes()).hexdigest(), "step": ck["step"],
                    "seed": ck["config"]["seed"], "lr": ck["config"]["lr"],
                    "data_manifest_sha256": ck["config"]["data_manifest_sha256"],
                    "best_select_sdr": ck["best_select_sdr"]} for c, ck in zip(checkpoints, ckpts)]
    if start is not None:
        digest = hashlib.sha256(start.read_bytes()).hexdigest()
        if digest != first["init"]["weights_sha256"]:
            raise TrainingSetError(f"--start {start} has SHA-256 {digest}; the runs started from "
                                   f"{first['init']['name']} ({first['init']['weights_sha256']})")
        start_state = torch.load(start, map_location="cpu", weights_only=True)
        if first["init"].get("widened_from_dim"):  # the runs started from it widened: average that
            wide = bandsplit.BandSplitRNN(first["dim"], first["layers"])
            widen_start(wide, start_state, first["seed"])
            start_state = wide.state_dict()
        states.append(start_state)
        ingredients.append({"start": first["init"]["name"], "weights_sha256": digest})
    if any(st.keys() != states[0].keys() for st in states):
        raise TrainingSetError("the ingredients' networks have different parameters")
    averaged = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            averaged[k] = torch.stack([st[k].float() for st in states]).mean(dim=0).to(v.dtype)
        elif all(torch.equal(st[k], v) for st in states):
            averaged[k] = v.clone()
        else:
            raise TrainingSetError(f"{k} is not a float parameter and differs between the checkpoints")
    config = {**first, "data_manifest_sha256": manifest["_sha256"], "soup": ingredients,
              "commercial_use": all(ck["config"]["commercial_use"] for ck in ckpts)
              and all(bool(sets[i["data_manifest_sha256"]].get("commercial_use")) for i in ingredients if "step" in i)}
    selected = None
    if score:
        select = [r for r in manifest["renders"] if r["split"] == "select"]
        composer_of = composers(manifest)
        net = bandsplit.BandSplitRNN(first["dim"], first["layers"])
        scores = []
        for state in [averaged, *states]:
            net.load_state_dict(state)
            ev = evaluate(net, data, select, composer_of=composer_of)
            scores.append({"score": selection_score(ev, first.get("loss_stems")), "select": ev})
        selected = scores[0]["score"]
        config["soup_select"] = {"data_manifest_sha256": manifest["_sha256"], "soup": scores[0],
                                 "ingredients": scores[1:]}
    to.parent.mkdir(parents=True, exist_ok=True)
    _save(to, {"config": config, "model": averaged, "step": max(i.get("step", 0) for i in ingredients),
               "best_select_sdr": selected})
    return {"soup": str(to), "ingredients": ingredients, "data_manifest_sha256": manifest["_sha256"],
            "commercial_use": config["commercial_use"], **({"select": config["soup_select"]} if score else {})}


def parse_blend(words: list[str], parser: argparse.ArgumentParser) -> float | dict[str, float]:
    """`--blend`'s words: one weight ("0.5") or one per stem ("drums=0.5 bass=0.25"). A word that
    is neither, a mix of both forms or a stem named twice is a usage error (exit 2); whether the
    weights fit the run's stems is `specialist_over`'s to say."""
    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            parser.error(f"--blend: {text!r} is not a number")
    if len(words) == 1 and "=" not in words[0]:
        return number(words[0])
    pairs = [w.split("=", 1) for w in words]
    if any(len(p) != 2 or p[0] not in bandsplit.STEMS for p in pairs):
        parser.error(f"--blend: one weight, or STEM=W for each stem (STEM one of {', '.join(bandsplit.STEMS)}), "
                     f"got {' '.join(words)}")
    if len({p[0] for p in pairs}) != len(pairs):
        parser.error(f"--blend names a stem twice: {' '.join(words)}")
    return {stem: number(w) for stem, w in pairs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        ex = argparse.ArgumentParser(prog="python -m separation.train export")
        ex.add_argument("checkpoint", type=Path, help="a run's checkpoint (or a soup), or weights exported with "
                        "--take/--base (their card beside them): their run's network, to go over other weights")
        ex.add_argument("--to", type=Path, required=True)
        ex.add_argument("--data", type=Path, help="the training set: also write the model card (needs --name)")
        ex.add_argument("--name", help="the registry name the card gives the model")
        ex.add_argument("--base", type=Path, help="a --loss-stems run: the weights it started from, which it goes over")
        ex.add_argument("--take", nargs="+", choices=bandsplit.STEMS, metavar="STEM",
                        help="with --base: only these stems come from the run, the others from --base")
        ex.add_argument("--blend", nargs="+", metavar="W",
                        help="with --base: the run's stems are W x its estimate + (1 - W) x --base's, 0 < W < 1; "
                             "one W for all, or STEM=W for each of the run's stems (e.g. drums=0.5 bass=0.25)")
        ex.add_argument("--specialist-precision", choices=SPECIALIST_PRECISIONS, default="float32",
                        help="with --base: store the run's network in float16 (the registry loads it into float32)")
        ex.add_argument("--kit-routed-below", type=float, metavar="DB",
                        help="with --base: the run separates the chunks where --base's drums estimate is under DB "
                             "re the mixture, --base all others (bandsplit.KitRouted)")
        ex.add_argument("--kit-routed-vocals-below", type=float, metavar="DB",
                        help="with --kit-routed-below: only chunks whose vocals estimate is under DB too")
        ex.add_argument("--voice-gate", type=Path, metavar="GATE.pt",
                        help="with --kit-routed-below: a voice gate (python -m separation.voice_gate fit) ...")
        ex.add_argument("--voice-gate-below", type=float, metavar="LOGIT",
                        help="... and only chunks where its logit is under LOGIT go to the expert")
        a = ex.parse_args(argv[1:])
        if bool(a.data) != bool(a.name):
            ex.error("--data and --name go together")
        blend = None if a.blend is None else parse_blend(a.blend, ex)
        try:
            print(json.dumps(export(a.checkpoint, a.to, a.data, a.name, a.base, a.take, a.kit_routed_below,
                                     a.kit_routed_vocals_below, a.voice_gate, a.voice_gate_below, blend,
                                     a.specialist_precision)))
        except TrainingSetError as exc:
            raise SystemExit(f"separation.train export: {exc}") from None
        return 0
    if argv and argv[0] == "soup":
        sp = argparse.ArgumentParser(prog="python -m separation.train soup")
        sp.add_argument("checkpoints", type=Path, nargs="+")
        sp.add_argument("--to", type=Path, required=True)
        sp.add_argument("--data", type=Path, required=True,
                        help="the set whose manifest lists every input the runs learned from (the card pins it)")
        sp.add_argument("--covers", type=Path, action="append", default=[],
                        help="another run's training set, checked to be listed in --data's manifest")
        sp.add_argument("--score", action="store_true", help="score the soup and each run on --data's select split")
        sp.add_argument("--start", type=Path, help="the weights the runs started from, averaged in too (WiSE-FT)")
        a = sp.parse_args(argv[1:])
        try:
            print(json.dumps(soup(a.checkpoints, a.to, a.data, a.covers, a.score, a.start)))
        except (TrainingSetError, OSError) as exc:
            raise SystemExit(f"separation.train soup: {exc}") from None
        return 0
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=0, help="data-loading processes (augmentation runs there)")
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--select-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--allow-noncommercial", action="store_true")
    ap.add_argument("--init", type=Path, help="exported weights (with their card beside them) to start from")
    ap.add_argument("--decay-steps", type=int, default=0,
                    help="decay the learning rate linearly to zero over the run's last N steps (0: constant)")
    ap.add_argument("--loss", choices=sorted(LOSSES), default="l1",
                    help="l1: L1 on waveform and spectrum (v1's); sdr: minus each stem's SDR over the batch; "
                         "sdr-sounding: the same over the stems that sound somewhere in the batch")
    ap.add_argument("--loss-stems", nargs="+", choices=bandsplit.STEMS, metavar="STEM",
                    help="train a specialist for these stems: only they count in the loss and in choosing best.pt "
                         "(needs --init: a specialist is exported over the weights it starts from)")
    ap.add_argument("--bank-mix", type=float, default=0.0, metavar="P",
                    help="with probability P an example takes each stem from a random bank's render of the same "
                         "song (same notes, same place): timbre combinations no one bank has (0: never)")
    ap.add_argument("--kits", nargs="+", choices=sorted(drum_kits.KITS), default=[], metavar="KIT",
                    help=f"recorded drum kits for --kit-swap ({', '.join(sorted(drum_kits.KITS))})")
    ap.add_argument("--kit-swap", type=float, default=0.0, metavar="P",
                    help="with probability P an example's drums are the song's drum part replayed by one of "
                         "--kits, at the level the bank's kit had (0: never)")
    ap.add_argument("--kit-layer", action="store_true",
                    help="with --kit-swap: add the kit's replay to the bank's drums (0 to -12 dB re them) instead "
                         "of replacing them")
    ap.add_argument("--synth-kicks", type=float, default=0.0, metavar="P",
                    help="with probability P an example's drums get a kick synthesised for it (separation/training/"
                         "kicks.py) added at the song's kick notes, 0 to 12 dB under them (0: never)")
    ap.add_argument("--timbre", type=float, default=0.0, metavar="P",
                    help="with probability P each stem of an example is recoloured as another instrument of its "
                         "kind (transposed on its own, resonances moved, sometimes saturated) (0: never)")
    args = ap.parse_args(argv)
    for flag, value in (("--bank-mix", args.bank_mix), ("--timbre", args.timbre), ("--kit-swap", args.kit_swap),
                        ("--synth-kicks", args.synth_kicks)):
        if not 0 <= value <= 1:
            ap.error(f"{flag} is a probability between 0 and 1, got {value}")
    if args.kit_swap and not args.kits:
        ap.error("--kit-swap needs --kits: the recorded kits to replay the drum parts with")
    if args.kit_layer and not args.kit_swap:
        ap.error("--kit-layer goes with --kit-swap P > 0")
    if args.kits and not args.kit_swap:
        ap.error("--kits is used only with --kit-swap P > 0")
    if len(set(args.kits)) != len(args.kits):
        ap.error(f"--kits names a kit twice: {args.kits}")
    if not 0 <= args.decay_steps <= args.steps:
        ap.error(f"--decay-steps must be between 0 and --steps ({args.steps}), got {args.decay_steps}")
    if args.loss_stems and not args.init:
        ap.error("--loss-stems needs --init: a specialist's other stems are never trained, so it is exported "
                 "over the weights it started from")
    if args.loss_stems and len(set(args.loss_stems)) != len(args.loss_stems):
        ap.error(f"--loss-stems names a stem twice: {args.loss_stems}")
    try:
        result = train(args)
    except TrainingSetError as exc:
        raise SystemExit(f"separation.train: {exc}") from None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
