"""The engine interface every separator implements, and the model description it runs as."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .apply import BatchFn, ChunkParams, TensorFn

ProgressFn = Callable[[float], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop separation between chunks."""


@dataclass(frozen=True)
class ModelInfo:
    """What goes into every stem's provenance about the model that made it."""

    name: str
    architecture: str
    stems: tuple[str, ...]
    sample_rate: int  # 0: works at the source's own rate
    weights_sha256: str | None  # None for weights-free engines
    code_version: str
    weights_licence: str
    training_data: str
    commercial_use: bool
    fidelity: str  # "low" for the classical dsp engine
    parameters: dict = field(default_factory=dict)
    channels: int = 2  # what the model consumes; 0 = the source's own (mono or stereo)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "architecture": self.architecture, "stems": list(self.stems),
            "sample_rate": self.sample_rate, "weights_sha256": self.weights_sha256,
            "code_version": self.code_version, "weights_licence": self.weights_licence,
            "training_data": self.training_data, "commercial_use": self.commercial_use,
            "fidelity": self.fidelity, "parameters": dict(self.parameters),
        }


class Engine(Protocol):
    info: ModelInfo
    device: torch.device  # where the model runs; the pipeline keeps its buffers there

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        """Default segment/overlap (in samples at `rate`) for this engine."""
        ...

    def batch_fn(self, rate: int) -> BatchFn:
        """[B, C, T] float32 at `rate` -> [B, S, C, T] in `info.stems` order."""
        ...

    def tensor_fn(self, rate: int) -> TensorFn:
        """`batch_fn` on tensors: input on `device`, output left on `device`."""
        ...



class NullEngine:
    """Every stem is the input: the pipeline around a model with no model in it. Benchmarks use
    it to measure what bounds every engine (decode, transfers, overlap-add, writing); tests use
    it because its output is known exactly. Never registered for jobs."""

    def __init__(self, device: str = "cpu", stems: tuple[str, ...] = ("drums", "bass", "other", "vocals"),
                 sample_rate: int = 44100, segment_s: float = 10.0, overlap_s: float = 1.0, batch: int = 8):
        self.device = torch.device(device)
        self.segment_s, self.overlap_s, self.batch = segment_s, overlap_s, batch
        self.info = ModelInfo(name="null", architecture="identity", stems=stems, sample_rate=sample_rate,
                              weights_sha256=None, code_version="null-1", weights_licence="none",
                              training_data="none", commercial_use=False, fidelity="none")

    def chunking(self, rate: int, batch: int | None = None) -> ChunkParams:
        return ChunkParams(int(self.segment_s * rate), int(self.overlap_s * rate), batch or self.batch)

    def tensor_fn(self, rate: int) -> TensorFn:
        n = len(self.info.stems)
        return lambda x: x.to(self.device, torch.float32).unsqueeze(1).expand(-1, n, -1, -1)

    def batch_fn(self, rate: int) -> BatchFn:
        fn = self.tensor_fn(rate)
        return lambda batch: fn(torch.from_numpy(batch)).cpu().numpy()
