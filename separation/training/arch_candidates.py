"""Three small separator candidates, timed on CPU with random weights (no training yet).

    python -m separation.training.arch_candidates [--threads 2] [--seconds 10] [--repeats 3]

Each maps a stereo mixture [B, 2, T] at 44.1 kHz to [B, 4, 2, T] (drums, bass, vocals, other):

* `MaskUNet` — magnitude-spectrogram U-Net (STFT 2048/512), four levels, sigmoid masks per stem
  on the mixture's complex STFT (Spleeter/Open-Unmix family, smaller).
* `hdemucs_small` — torchaudio's HDemucs (the architecture `separation.hdemucs` already runs)
  with fewer channels: time and spectrogram branches.
* `BandSplitRNN` — band-split RNN (Luo & Yu 2022), small: 1025 bins in 28 bands, a feature per
  band, dual-path BLSTMs over time and over bands, complex masks per stem.

The timing is the forward pass only (STFT/iSTFT included), batch 1, `torch.set_num_threads`.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torchaudio.models import HDemucs

from ..bandsplit import BandSplitRNN  # the candidate that was chosen lives with the engines
from ..bandsplit import istft as _istft
from ..bandsplit import stft as _stft

STEMS = ("drums", "bass", "vocals", "other")


class MaskUNet(nn.Module):
    def __init__(self, base: int = 16, levels: int = 4, sources: int = 4):
        super().__init__()
        self.sources = sources
        chans = [2] + [base * 2 ** i for i in range(levels)]
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                                                nn.BatchNorm2d(chans[i + 1]), nn.GELU(),
                                                nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1), nn.GELU())
                                  for i in range(levels))
        self.up = nn.ModuleList(nn.Sequential(nn.Conv2d(chans[i + 1] + (chans[i + 2] if i + 2 <= levels else 0),
                                                        chans[i + 1], 3, padding=1), nn.GELU())
                                for i in range(levels))
        self.head = nn.Conv2d(chans[1], 2 * sources, 1)

    def forward(self, x):
        length = x.shape[-1]
        z = _stft(x)  # [B, 2, F, N]
        mag = z.abs()[:, :, :1024]  # drop the Nyquist bin: sizes divide by 2**levels
        h, skips = torch.log1p(mag), []
        for i, d in enumerate(self.down):
            h = d(h)
            skips.append(h)
            if i < len(self.down) - 1:
                h = nn.functional.max_pool2d(h, 2, ceil_mode=True)
        for i in reversed(range(len(self.up))):
            if i < len(self.up) - 1:
                h = nn.functional.interpolate(h, size=skips[i].shape[-2:], mode="nearest")
                h = torch.cat([skips[i], h], dim=1)
            else:
                h = skips[i]
            h = self.up[i](h)
        mask = torch.sigmoid(self.head(h)).reshape(x.shape[0], self.sources, 2, *mag.shape[-2:])
        mask = nn.functional.pad(mask, (0, 0, 0, 1))  # Nyquist bin back (mask 0)
        return _istft(mask * z.unsqueeze(1), length)


def hdemucs_small(channels: int = 16, depth: int = 6) -> nn.Module:
    return HDemucs(list(STEMS), audio_channels=2, channels=channels, growth=2, nfft=4096, depth=depth)


CANDIDATES = {
    "mask_unet_8": lambda: MaskUNet(base=8),
    "mask_unet_16": lambda: MaskUNet(base=16),
    "hdemucs_c8_d5": lambda: hdemucs_small(8, depth=5),
    "hdemucs_c16": lambda: hdemucs_small(16),
    "bsrnn_d32_l3": lambda: BandSplitRNN(dim=32, layers=3),  # separation.bandsplit's default
    "bsrnn_d64_l4": lambda: BandSplitRNN(dim=64, layers=4),
}


def params_mb(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) * 4 / 1e6


def time_model(model: nn.Module, seconds: float, repeats: int) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) per forward pass. On a shared machine the CPU time
    divided by the thread count estimates the wall time on otherwise idle cores."""
    x = torch.randn(1, 2, int(seconds * 44100)) * 0.1
    model.eval()
    with torch.inference_mode():
        warm = x[..., : 44100 * 2]
        y = model(warm)
        assert y.shape == (1, 4, 2, warm.shape[-1]), y.shape
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            model(x)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, make in CANDIDATES.items():
        if args.only and name not in args.only.split(","):
            continue
        model = make()
        wall, cpu = time_model(model, args.seconds, args.repeats)
        w, c = statistics.median(wall), statistics.median(cpu) / args.threads
        print(f"{name:14s} {params_mb(model):6.1f} MB fp32  wall {w:6.2f} s = {args.seconds / w:5.1f}x  "
              f"cpu/threads {c:6.2f} s = {args.seconds / c:5.1f}x real time ({args.threads} threads)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
