"""Hybrid Demucs (torchaudio's HDemucs) as a ClearStem engine. No Django.

Each chunk is normalised by its own mean/std (the chunk-wise form of Demucs' track
normalisation, so streaming needs no first pass), run in fp32 on CPU or with bf16/fp16 autocast
on CUDA, and de-normalised.
"""
from __future__ import annotations

import numpy as np
import torch
from torchaudio.models import HDemucs

from .apply import ChunkParams
from .engine import ModelInfo

HIGH = {"channels": 48, "growth": 2, "nfft": 4096, "depth": 6}  # torchaudio.models.hdemucs_high


def build(stems, config: dict | None = None) -> torch.nn.Module:
    return HDemucs(list(stems), audio_channels=2, **{**HIGH, **(config or {})})


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class HDemucsEngine:
    def __init__(self, module: torch.nn.Module, info: ModelInfo, device: str = "auto", precision: str = "auto",
                 segment_s: float = 10.0, overlap_s: float = 1.0):
        self.device = pick_device(device)
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision {precision!r}")
        self.precision = precision
        self.module = module.to(self.device).eval()
        self.segment_s, self.overlap_s = segment_s, overlap_s
        self.info = ModelInfo(**{**info.__dict__, "parameters": {
            **info.parameters, "device": self.device.type, "precision": precision,
            "segment_s": segment_s, "overlap_s": overlap_s, "normalisation": "per-chunk mean/std"}})

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        return ChunkParams(segment=int(self.segment_s * rate), overlap=int(self.overlap_s * rate),
                           batch=batch or (8 if self.device.type == "cuda" else 1))

    def batch_fn(self, rate: int):
        if rate != self.info.sample_rate:
            raise ValueError(f"{self.info.name} runs at {self.info.sample_rate} Hz, got {rate}")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

        def run(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            ref = x.mean(dim=1, keepdim=True)
            mean = ref.mean(dim=-1, keepdim=True)
            std = ref.std(dim=-1, keepdim=True).clamp_min(1e-8)
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                y = self.module((x - mean) / std)
            y = y.float() * std.unsqueeze(1) + mean.unsqueeze(1)
            return y.cpu().numpy()

        return run
