"""The model registry: which engines exist, and whether each can run here.

`dsp` needs no weights and is always available. Neural models are listed in
`CLEARSTEM_MODEL_DIR/models.json`, each with its weights file and the SHA-256 pinned when the
operator installed it (`python -m separation.install_model`). Web processes read only the
manifest (weights live on GPU workers); a worker re-hashes the file before loading and refuses a
missing or different file with a clear reason — it never runs unpinned weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .dsp import DSPSeparator
from .engine import Engine, ModelInfo

MANIFEST = "models.json"
CODE_VERSION = "hdemucs-torchaudio-2.11"

# What we know about published checkpoints, so a manifest entry needs only name, file and hash.
KNOWN_MODELS = {
    "hdemucs_high_musdb": {
        "architecture": "hdemucs", "stems": ["drums", "bass", "other", "vocals"], "sample_rate": 44100,
        "weights_licence": "torchaudio HDemucs checkpoint (research use)",
        "training_data": "MUSDB18-HQ; research, non-commercial", "commercial_use": False,
    },
    "hdemucs_high_musdb_plus": {
        "architecture": "hdemucs", "stems": ["drums", "bass", "other", "vocals"], "sample_rate": 44100,
        "weights_licence": "torchaudio HDemucs checkpoint (research use)",
        "training_data": "MUSDB18-HQ plus 800 extra songs; research, non-commercial", "commercial_use": False,
    },
}


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


_LOADED: dict[tuple, Engine] = {}
_LOCK = threading.Lock()


def _manifest(model_dir: str | None) -> dict[str, dict]:
    if not model_dir:
        return {}
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text())["models"]
        return {e["name"]: {**KNOWN_MODELS.get(e["name"], {}), **e} for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable("*", f"{path} is not a valid model manifest: {exc}") from exc


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_info(name: str, model_dir: str | None = None) -> ModelInfo:
    """What a model is (stems, licence, pinned hash) without loading it."""
    if name == "dsp":
        return DSPSeparator.info
    entry = _manifest(model_dir).get(name)
    if entry is None:
        known = ", ".join(sorted({"dsp", *_manifest(model_dir)}))
        raise ModelUnavailable(name, f"unknown model; installed: {known}")
    return ModelInfo(
        name=name, architecture=entry["architecture"], stems=tuple(entry["stems"]),
        sample_rate=int(entry["sample_rate"]), weights_sha256=entry["sha256"], code_version=CODE_VERSION,
        weights_licence=entry.get("weights_licence", "unknown"), training_data=entry.get("training_data", "unknown"),
        commercial_use=bool(entry.get("commercial_use", False)), fidelity="high",
        parameters={"config": entry.get("config", {})},
    )


def check_weights(name: str, model_dir: str | None) -> Path:
    entry = _manifest(model_dir).get(name)
    if entry is None:
        raise ModelUnavailable(name, "not in the model manifest")
    path = Path(model_dir) / entry["weights"]
    if not path.exists():
        raise ModelUnavailable(name, f"weights file {path} is missing")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ModelUnavailable(name, f"weights file {path} has SHA-256 {actual}, pinned {entry['sha256']}")
    return path


def list_models(model_dir: str | None = None) -> list[ModelStatus]:
    out = [ModelStatus("dsp", True)]
    for name in sorted(_manifest(model_dir)):
        try:
            check_weights(name, model_dir)
            out.append(ModelStatus(name, True))
        except ModelUnavailable as exc:
            out.append(ModelStatus(name, False, exc.reason))
    return out


def get_engine(name: str, model_dir: str | None = None, device: str = "auto", precision: str = "auto") -> Engine:
    """Load a model once per process and keep it (GPU workers must not reload per job)."""
    key = (name, model_dir, device, precision)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if name == "dsp":
            engine = DSPSeparator()
        else:
            import torch

            from .hdemucs import HDemucsEngine, build

            info = model_info(name, model_dir)
            path = check_weights(name, model_dir)
            module = build(info.stems, info.parameters.get("config"))
            try:
                module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelUnavailable(name, f"weights do not fit the {info.architecture} architecture: {exc}") from exc
            engine = HDemucsEngine(module, info, device=device, precision=precision)
        _LOADED[key] = engine
        return engine


def install_model(weights: Path, name: str, model_dir: Path, config: dict | None = None, **meta) -> dict:
    """Copy weights into the model dir and pin their SHA-256 in the manifest."""
    import shutil

    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / weights.name
    if weights.resolve() != target.resolve():
        shutil.copyfile(weights, target)
    entry = {**KNOWN_MODELS.get(name, {}), **meta, "name": name, "weights": weights.name,
             "sha256": file_sha256(target)}
    if config:
        entry["config"] = config
    if "architecture" not in entry:
        raise ValueError(f"unknown model {name!r}: give its architecture, stems and sample rate")
    path = model_dir / MANIFEST
    models = json.loads(path.read_text())["models"] if path.exists() else []
    models = [m for m in models if m["name"] != name] + [entry]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"models": models}, indent=2))
    os.replace(tmp, path)
    return entry
