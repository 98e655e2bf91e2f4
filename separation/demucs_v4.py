"""Official Demucs v4 checkpoints (`htdemucs`, and the `htdemucs_ft` bag of four) through the
`demucs` package's model code. No Django.

Demucs checkpoints are pickled packages (class + arguments + state), so loading them runs
their pickle: the registry only ever loads a file whose SHA-256 the operator pinned. A bag
mixes its models' outputs per stem with the bag's weight matrix, like demucs.apply.BagOfModels.
Chunks are normalised by their own mean/std (as for HDemucs) and cut at the model's training
segment (7.8 s for htdemucs), which HTDemucs requires.
"""
from __future__ import annotations

from pathlib import Path

import demucs
import torch
import yaml
from demucs.states import load_model

from .apply import ChunkParams
from .engine import ModelInfo
from .hdemucs import GPU_BATCH, numpy_runner, pick_device, pick_precision, tensor_runner


def bag_spec(name: str) -> dict | None:
    """The bag layout the `demucs` package ships (demucs/remote/<name>.yaml), if any: its model
    `signatures` in bag order and, when the bag has one, its per-model, per-stem `weights`.
    Read with `yaml.safe_load`, as demucs.repo.BagOnlyRepo reads the same files."""
    path = Path(demucs.__file__).parent / "remote" / f"{name}.yaml"
    if not path.exists():
        return None
    bag = yaml.safe_load(path.read_text()) or {}
    spec = {"signatures": bag["models"]}
    if bag.get("weights") is not None:
        spec["weights"] = bag["weights"]
    return spec


def load_package(path: Path) -> torch.nn.Module:
    package = torch.load(path, map_location="cpu", weights_only=False)  # pinned by SHA-256 before this
    return load_model(package)


class DemucsEngine:
    def __init__(self, models: list[torch.nn.Module], info: ModelInfo, bag_weights=None, device: str = "auto",
                 precision: str = "auto", overlap: float = 0.25):
        self.device = pick_device(device)
        self.precision = precision = pick_precision(self.device, precision)
        self.models = [m.to(self.device).eval() for m in models]
        n_src = len(info.stems)
        weights = bag_weights or [[1.0] * n_src for _ in models]
        self.weights = torch.tensor(weights, dtype=torch.float32, device=self.device)  # [models, sources]
        self.segment_s = min(float(m.segment) for m in models)
        self.overlap = overlap
        self.info = ModelInfo(**{**info.__dict__, "parameters": {
            **info.parameters, "device": self.device.type, "precision": precision, "segment_s": self.segment_s,
            "overlap": overlap, "bag_size": len(models), "normalisation": "per-chunk mean/std"}})

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        segment = int(self.segment_s * rate)
        return ChunkParams(segment=segment, overlap=int(segment * self.overlap),
                           batch=batch or (GPU_BATCH if self.device.type == "cuda" else 1))

    def _bag(self, rate: int):
        if rate != self.info.sample_rate:
            raise ValueError(f"{self.info.name} runs at {self.info.sample_rate} Hz, got {rate}")
        totals = self.weights.sum(dim=0)[None, :, None, None].clamp_min(1e-8)

        def bag(x: torch.Tensor) -> torch.Tensor:  # weighted per stem, like demucs.apply.BagOfModels
            mixed = sum(model(x).float() * w[None, :, None, None] for model, w in zip(self.models, self.weights))
            return mixed / totals

        return bag

    def tensor_fn(self, rate: int):
        return tensor_runner(self.device, self.precision, self._bag(rate))

    def batch_fn(self, rate: int):
        return numpy_runner(self.device, self.precision, self._bag(rate))
