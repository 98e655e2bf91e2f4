"""A voice detector for kit-less chunks: does a voice sound in this mixture? No Django.

Why it exists: a kit-routed model (`separation.bandsplit.KitRouted`) sends the chunks without a
drum kit to an expert fine-tuned on orchestras, and that expert gains on instrumental music but
loses on a voice over a piano (stop 69: Lieder −0.28 dB, the quartets' sung line under
mixture/4). Neither network's vocals estimate tells a voice from an instrument — on voiceless
orchestras it is as loud as the Lieder's singer — so the router needs a cue of its own. This is
that cue: a small classifier of the chunk's mixture, trained on the training renders' own stems.

How it learns the voice rather than the genre: every example is a training song's accompaniment
(bass + other) with its vocals stem mixed back in at a random gain or left out, so each
accompaniment is heard both ways and only the voice tells the labels apart (README, "Next
candidate, v33"). Input: the chunk's channels averaged, resampled to 16 kHz, scaled to unit RMS
(a level the gate cannot lean on), a 64-band log-mel spectrogram; three small convolutions, the
mean over time, one logit (> 0 leans to a voice). Its threshold is not 0: it is fixed on
development chunks by a declared rule (`bench.kit_route --gate`).

    python -m separation.voice_gate fit --data var/train-set17 --out var/gate33.pt
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import nn

RATE = 16000  # the gate hears up to 8 kHz: formants and their movement, not cymbals
IN_RATE = 44100  # what the engines cut chunks at
N_FFT, HOP, N_MELS, F_MIN, F_MAX = 1024, 512, 64, 50.0, 8000.0
FLOOR_DB = -100.0
VOICED_DB, VOICELESS_DB = -20.0, -40.0  # a crop's vocals re its mix: labelled 1 at or above, 0 below
CROP_S = 10.0


def log_mel(mono: torch.Tensor) -> torch.Tensor:
    """[B, T] at `RATE` -> [B, 1, N_MELS, frames]: dB of the unit-RMS signal's mel power."""
    rms = mono.square().mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-8)
    window = torch.hann_window(N_FFT, device=mono.device)
    power = torch.stft(mono / rms, N_FFT, HOP, window=window, return_complex=True).abs().square()
    fb = AF.melscale_fbanks(N_FFT // 2 + 1, F_MIN, F_MAX, N_MELS, RATE).to(mono.device)
    mel = torch.einsum("bft,fm->bmt", power, fb)
    return (10 * torch.log10(mel.clamp_min(1e-10))).clamp_min(FLOOR_DB).unsqueeze(1) / 20


class VoiceGate(nn.Module):
    """[B, C, T] chunks at 44.1 kHz -> [B] logits (a voice sounds: > 0 leans yes)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(32 * (N_MELS // 4), 1)

    def score_features(self, feats: torch.Tensor) -> torch.Tensor:
        h = self.net(feats).mean(dim=-1)  # [B, 32, N_MELS/4]: over time, keep where in frequency
        return self.head(h.flatten(1)).squeeze(1)

    def forward(self, x: torch.Tensor, rate: int = IN_RATE) -> torch.Tensor:
        mono = x.float().mean(dim=1)
        if rate != RATE:
            mono = AF.resample(mono, rate, RATE)
        return self.score_features(log_mel(mono))


# ---- training (python -m separation.voice_gate fit) -------------------------------------------

def _mono16k(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = torch.from_numpy(audio.mean(axis=1))
    return AF.resample(mono, rate, RATE).numpy().astype(np.float16)


def kitless_train_renders(data: Path, split: str = "train", with_kit: bool = False) -> list[dict]:
    """The renders of `split` whose true drums stem is silent: what a kit-routed model's gate
    decides on (with `with_kit`, every render of `split`: `fit` leaves their drums out, so their
    voices are heard over more kinds of accompaniment). Refuses a set with none (a typo'd folder
    must not train on nothing)."""
    from separation.train import SILENT_RMS  # noqa: PLC0415 - train imports bandsplit, which imports this module

    manifest = json.loads((data / "manifest.json").read_bytes())
    silent_dbfs = 20 * math.log10(SILENT_RMS)
    renders = [r for r in manifest["renders"] if r["split"] == split
               and (with_kit or r["stems"]["drums"].get("rms_dbfs", -200.0) < silent_dbfs)]
    if not renders:
        raise SystemExit(f"{data} has no kit-less '{split}' renders")
    return renders


def _level_db(x: np.ndarray) -> float:
    return 10 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


def random_eq(rng: np.random.Generator, eq_db: float) -> torch.Tensor:
    """[N_MELS] dB: a random tilt (up to ±`eq_db` from the lowest band to the highest) and a random
    bell (up to ±`eq_db`/2, 8 bands wide at half height, anywhere): another bank's, room's or
    microphone's colour, so a gate cannot learn the training banks' (stop 70, v34)."""
    bands = np.arange(N_MELS, dtype=np.float64)
    tilt = rng.uniform(-eq_db, eq_db) * (bands / (N_MELS - 1) - 0.5)
    bell = rng.uniform(-eq_db / 2, eq_db / 2) * np.exp(-0.5 * ((bands - rng.uniform(0, N_MELS - 1)) / (8 / 2.355)) ** 2)
    return torch.from_numpy((tilt + bell).astype(np.float32))


def fit(data: Path, out: Path, steps: int = 4000, batch: int = 32, lr: float = 1e-3, seed: int = 0,
        log_every: int = 200, with_kit: bool = False, eq_db: float = 0.0, cosine: bool = False) -> dict:
    """Train a gate as README "Next candidate, v33" declares (with `with_kit`, `eq_db` and
    `cosine`, as "Next candidate, v34" does: every render's voices, random colour, a decaying
    rate); write its weights to `out` and a record of the run beside them (`out` with `.json`)."""
    renders = kitless_train_renders(data, with_kit=with_kit)
    t0 = time.time()
    songs = [{s: _mono16k(data / r["stems"][s]["path"]) for s in ("bass", "other", "vocals")} for r in renders]
    print(f"{len(songs)} {'' if with_kit else 'kit-less '}train renders loaded in {time.time() - t0:.0f} s", file=sys.stderr,
          flush=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    gate = VoiceGate()
    opt = torch.optim.Adam(gate.parameters(), lr=lr)
    n = int(CROP_S * RATE)
    labels_seen, losses = [0, 0], []
    for step in range(1, steps + 1):
        xs, ys = [], []
        while len(xs) < batch:
            song = songs[rng.integers(len(songs))]
            length = min(len(v) for v in song.values())
            start = int(rng.integers(0, max(length - n, 0) + 1))
            part = {s: v[start:start + n].astype(np.float32) for s, v in song.items()}
            acc = part["bass"] * 10 ** (rng.uniform(-6, 6) / 20) + part["other"] * 10 ** (rng.uniform(-6, 6) / 20)
            with_voice = rng.random() < 0.5
            if with_voice:
                voice = part["vocals"] * 10 ** (rng.uniform(-10, 3) / 20)
                mix = acc + voice
                rel = _level_db(voice) - _level_db(mix)
                if VOICELESS_DB <= rel < VOICED_DB:
                    continue  # neither clearly sung nor clearly not: drawn again
                label = float(rel >= VOICED_DB)
            else:
                mix, label = acc, 0.0
            if _level_db(mix) < -90:
                continue  # a silent crop says nothing
            if len(mix) < n:
                mix = np.pad(mix, (0, n - len(mix)))
            xs.append(mix)
            ys.append(label)
        labels_seen[1] += int(sum(ys))
        labels_seen[0] += len(ys) - int(sum(ys))
        feats = log_mel(torch.from_numpy(np.stack(xs)))
        if eq_db:
            feats = feats + torch.stack([random_eq(rng, eq_db) for _ in xs])[:, None, :, None] / 20  # features: dB/20
        if cosine:
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        logits = gate.score_features(feats)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % log_every == 0:
            print(f"step {step}: loss {np.mean(losses[-log_every:]):.4f} ({time.time() - t0:.0f} s)", file=sys.stderr,
                  flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in gate.state_dict().items()}, out)
    record = {"data": str(data), "data_manifest_sha256": hashlib.sha256((data / "manifest.json").read_bytes()).hexdigest(),
              "renders": len(renders), "banks": sorted({r["soundfont"] for r in renders}),
              "steps": steps, "batch": batch, "lr": lr, "seed": seed, "with_kit_songs": with_kit, "eq_db": eq_db,
              "lr_schedule": "cosine to 0" if cosine else "constant", "examples": {"voiceless": labels_seen[0],
              "voiced": labels_seen[1]}, "final_loss": float(np.mean(losses[-log_every:])),
              "seconds": round(time.time() - t0, 1)}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train a gate on a training set's kit-less train renders")
    f.add_argument("--data", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--steps", type=int, default=4000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--with-kit-songs", action="store_true",
                   help="also the renders with a drum kit, their drums left out (more voices, more accompaniments)")
    f.add_argument("--eq-db", type=float, default=0.0, help="a random tilt of up to ±DB and a bell of ±DB/2 per example")
    f.add_argument("--cosine", action="store_true", help="decay the rate to 0 along a cosine")
    a = p.parse_args(argv)
    if not (a.data / "manifest.json").is_file():
        p.error(f"{a.data} is not a training set (no manifest.json)")
    if a.steps < 1:
        p.error("--steps must be at least 1")
    if not (math.isfinite(a.eq_db) and 0 <= a.eq_db <= 40):
        p.error("--eq-db must be between 0 and 40")
    torch.set_num_threads(a.threads)
    print(json.dumps(fit(a.data, a.out, a.steps, seed=a.seed, with_kit=a.with_kit_songs, eq_db=a.eq_db,
                         cosine=a.cosine)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
