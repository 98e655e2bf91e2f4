"""The engine interface every separator implements, and the model description it runs as."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

ProgressFn = Callable[[float], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop separation between chunks."""


@dataclass(frozen=True)
class ModelInfo:
    """What goes into every stem's provenance about the model that made it."""

    name: str
    architecture: str
    stems: tuple[str, ...]
    sample_rate: int
    weights_sha256: str | None  # None for weights-free engines
    code_version: str
    weights_licence: str
    training_data: str
    commercial_use: bool
    fidelity: str  # "low" for the classical dsp engine
    parameters: dict = field(default_factory=dict)

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

    def separate(self, audio: np.ndarray, rate: int, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        """[channels, samples] float32 at `rate` -> {stem: [channels, samples]} at `rate`."""
        ...
