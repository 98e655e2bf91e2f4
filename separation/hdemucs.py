"""Hybrid Demucs (torchaudio's HDemucs) as a ClearStem engine, and the device/precision and
normalised-forward helpers the Demucs v4 engine shares. No Django."""
from __future__ import annotations

import numpy as np
import torch
from torchaudio.models import HDemucs

from .apply import ChunkParams
from .engine import ModelInfo

# chunks per forward pass on a GPU: on one H200 (bf16) the model alone ran 669×, 924× and 1171×
# real time at 8, 16 and 32 (bench.separate_throughput); the pipeline halves it after an OOM
GPU_BATCH = 32
HIGH = {"channels": 48, "growth": 2, "nfft": 4096, "depth": 6}  # torchaudio.models.hdemucs_high


def build(stems, config: dict | None = None) -> torch.nn.Module:
    return HDemucs(list(stems), audio_channels=2, **{**HIGH, **(config or {})})


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_precision(device: torch.device, precision: str = "auto") -> str:
    """bf16 autocast on CUDA by default, fp32 on CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {precision!r}")
    return precision


def normalised_run(x: torch.Tensor, precision: str, forward) -> torch.Tensor:
    """Run `forward` ([B, C, T] -> [B, S, C, T]) on chunks normalised by their own mean/std
    (the chunk-wise form of Demucs' track normalisation: streaming needs no first pass).
    `x` stays on its device; so does the result."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    ref = x.mean(dim=1, keepdim=True)
    mean = ref.mean(dim=-1, keepdim=True)
    std = ref.std(dim=-1, keepdim=True).clamp_min(1e-8)
    with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        y = forward((x - mean) / std).float()
    return y * std.unsqueeze(1) + mean.unsqueeze(1)


def tensor_runner(device: torch.device, precision: str, forward):
    """The engine's TensorFn: inputs on any device are moved to the model's (a no-op when the
    pipeline already put them there)."""
    return lambda x: normalised_run(x.to(device, torch.float32), precision, forward)


def numpy_runner(device: torch.device, precision: str, forward):
    """The engine's BatchFn (numpy in and out) for callers that hold arrays."""
    run = tensor_runner(device, precision, forward)
    return lambda batch: run(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).cpu().numpy()


class HDemucsEngine:
    def __init__(self, module: torch.nn.Module, info: ModelInfo, device: str = "auto", precision: str = "auto",
                 segment_s: float = 10.0, overlap_s: float = 1.0):
        self.device = pick_device(device)
        self.precision = precision = pick_precision(self.device, precision)
        self.module = module.to(self.device).eval()
        self.segment_s, self.overlap_s = segment_s, overlap_s
        self.info = ModelInfo(**{**info.__dict__, "parameters": {
            **info.parameters, "device": self.device.type, "precision": precision,
            "segment_s": segment_s, "overlap_s": overlap_s, "normalisation": "per-chunk mean/std"}})

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        return ChunkParams(segment=int(self.segment_s * rate), overlap=int(self.overlap_s * rate),
                           batch=batch or (GPU_BATCH if self.device.type == "cuda" else 1))

    def _check_rate(self, rate: int) -> None:
        if rate != self.info.sample_rate:
            raise ValueError(f"{self.info.name} runs at {self.info.sample_rate} Hz, got {rate}")

    def tensor_fn(self, rate: int):
        self._check_rate(rate)
        return tensor_runner(self.device, self.precision, self.module)

    def batch_fn(self, rate: int):
        self._check_rate(rate)
        return numpy_runner(self.device, self.precision, self.module)
