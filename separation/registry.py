"""The model registry: which engines exist, and whether each can run here.

The weights-free `dsp` engine is always available. Neural models (HDemucs, Demucs v4) are
added by the separation issue, with weights read from CLEARSTEM_MODEL_DIR and their SHA-256
pinned; a model whose weights are missing or differ is reported unavailable and never runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .dsp import DSPSeparator
from .engine import Engine, ModelInfo


class ModelUnavailable(Exception):
    def __init__(self, name: str, reason: str):
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ModelStatus:
    name: str
    available: bool
    reason: str = ""


_FACTORIES = {"dsp": DSPSeparator}
_LOADED: dict[str, Engine] = {}


def list_models(model_dir: str | None = None) -> list[ModelStatus]:
    return [ModelStatus(name, True) for name in _FACTORIES]


def model_info(name: str, model_dir: str | None = None) -> ModelInfo:
    """What a model is (stems, licence, fidelity) without loading it: web processes use this."""
    if name not in _FACTORIES:
        raise ModelUnavailable(name, f"unknown model; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name].info


def get_engine(name: str, model_dir: str | None = None) -> Engine:
    """Load a model once per process and keep it (GPU workers must not reload per job)."""
    if name not in _FACTORIES:
        raise ModelUnavailable(name, f"unknown model; known: {', '.join(sorted(_FACTORIES))}")
    if name not in _LOADED:
        _LOADED[name] = _FACTORIES[name]()
    return _LOADED[name]
