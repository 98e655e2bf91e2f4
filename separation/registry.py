"""The model registry: which engines exist, and whether each can run here.

`dsp` needs no weights and is always available. ClearStem's own trained separator ships in the
repository (`separation/weights/`, its card beside it, its SHA-256 pinned in `BUILTIN_MODELS`
below), so the embedded default and commercial jobs use it with no download; it is the default
model whenever its weights verify, and `dsp` is the fallback when they do not. Other neural
models are listed in `CLEARSTEM_MODEL_DIR/models.json`, each with its weights file and the
SHA-256 pinned when the operator installed it (`python -m separation.install_model`). Web
processes read only the manifest (weights live on GPU workers); a worker re-hashes the file before
loading and refuses a missing or different file with a clear reason — it never runs unpinned
weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from sharedcore.hashing import file_sha256

from .bandsplit import PASS_TRANSFORMS
from .dsp import DSPSeparator
from .engine import Engine, ModelInfo

MANIFEST = "models.json"
BUILTIN_DIR = Path(__file__).resolve().parent / "weights"
#: Models shipped in the repository: name -> SHA-256 of `BUILTIN_DIR/<name>.pt`, pinned here (not
#: read from the card beside it, so a swapped file and card are refused together).
#: The first whose weights verify is the default. v48 (v47's file, `SHARED_WEIGHTS`, with its masks
#: moved towards shares of the mixture where they do not add up: `remask`) is first since stop 82,
#: when it passed the rule declared before its judging sets existed (README, "v48"); v47 next (a
#: damaged v47 file takes both down, so v19 follows). v47 (v19, its drums blended half and half with a
#: drums specialist trained on recorded kits layered over the banks) is first since stop 80, when it
#: passed the rule declared before its judging sets and holdout3 existed (README, "v47"); v19 next.
#: v19 (one 64-wide network, trained on two sample
#: banks) is first since it passed the rule declared before its judging sets existed (README, "v20
#: judged": v19's weights judged a second time, pooled with the first); v8 (v2's bass network beside
#: a specialist for the other stems), the default before it, stays next so a damaged v19 file falls
#: back to it, then v2. v3, v4 and v5 are pinned but not defaults: stems each makes were found under
#: other music less often than v2's.
BUILTIN_MODELS = {"clearstem-bandsplit-v48": "1720febed1d2947b07af57a7c9a42cdaf285e5e514cc573a47ebe4267768241f",
                  "clearstem-bandsplit-v47": "1720febed1d2947b07af57a7c9a42cdaf285e5e514cc573a47ebe4267768241f",
                  "clearstem-bandsplit-v19": "b86af3633c7d36fd9104525b8b3aa904f58bdeafce85453cefd5c3d3de6bf141",
                  "clearstem-bandsplit-v8": "21017c8277e610de90c5b59692797a097d61b870ae56734e64d18da893cb9b06",
                  "clearstem-bandsplit-v2": "8786da64319087045b837314bad39fa77d1c15b132e24d3ded23d65a00d125b5",
                  "clearstem-bandsplit-v3": "66f04ab99ab3eb1976f30e8ffd22471493f03975b1d1968481ae846100917ecd",
                  "clearstem-bandsplit-v4": "8b497dec3a25fb327dc9a75e6ed7bf9760d9e999f85efc5b5dce8dd804014083",
                  "clearstem-bandsplit-v5": "666e42f6099726997d8b101234131cd347a38f37823fbc79b3014027dd66e6be",
                  "clearstem-bandsplit-v1": "2cc96cbf4cde0644105af5a5cf3442025822456efe9b3b3139b98b60e08ed6ff"}
#: Shipped models that run another shipped model's weights file (and training data) under a card
#: of their own — the same tensors with another `config`, such as an inference-time step on the
#: masks: name -> the shipped model whose `<name>.pt` and training manifest they use. The file's
#: SHA-256 is pinned under both names. Why: a second copy of the same bytes would only add size.
SHARED_WEIGHTS: dict[str, str] = {"clearstem-bandsplit-v48": "clearstem-bandsplit-v47"}
CODE_VERSION = "hdemucs-torchaudio-2.11"
DEMUCS_CODE_VERSION = "demucs-4.1.0"
BANDSPLIT_CODE_VERSION = "clearstem-bandsplit-1"  # separation/bandsplit.py
CODE_VERSIONS = {"hdemucs": CODE_VERSION, "demucs": DEMUCS_CODE_VERSION, "bandsplit-rnn": BANDSPLIT_CODE_VERSION}

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
    "htdemucs": {
        "architecture": "demucs", "stems": ["drums", "bass", "other", "vocals"], "sample_rate": 44100,
        "weights_licence": "Demucs v4 release weights (MIT code)",
        "training_data": "MUSDB18-HQ plus 800 extra songs; no commercial licence for the training data",
        "commercial_use": False,
    },
    "htdemucs_ft": {
        "architecture": "demucs", "stems": ["drums", "bass", "other", "vocals"], "sample_rate": 44100,
        "weights_licence": "Demucs v4 release weights, fine-tuned bag of 4 (MIT code)",
        "training_data": "MUSDB18-HQ plus 800 extra songs; no commercial licence for the training data",
        "commercial_use": False,
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
_MANIFESTS: dict[str, tuple[tuple, dict]] = {}
#: shipped models whose weights `default_model` verified, with the (path, mtime, size) it hashed; the
#: worker still re-hashes before loading, so this only picks the name
_DEFAULT_CHECKED: dict[str, tuple[str, int, int]] = {}


def builtin_weights(name: str) -> Path:
    """The weights file a shipped model runs: its own, or the one it shares (`SHARED_WEIGHTS`)."""
    return BUILTIN_DIR / f"{SHARED_WEIGHTS.get(name, name)}.pt"


def _builtin() -> dict[str, dict]:
    """The shipped models' entries, from their cards (weights as absolute paths; pins from
    `BUILTIN_MODELS`). A missing card leaves the model listed, unavailable, with the reason."""
    out = {}
    for name, pinned in BUILTIN_MODELS.items():
        card = BUILTIN_DIR / f"{name}.json"
        try:
            entry = json.loads(card.read_text())
        except (OSError, ValueError) as exc:
            entry = {"architecture": "bandsplit-rnn", "stems": [], "sample_rate": 44100,
                     "card_error": f"model card {card} is unreadable: {exc}"}
        out[name] = {**entry, "name": name, "builtin": True,
                     "weights": str(builtin_weights(name)), "sha256": pinned}
    return out


def _manifest(model_dir: str | None) -> dict[str, dict]:
    """The shipped and installed models; models.json is re-read only when it changes (list pages
    ask per job). An installed entry cannot shadow a shipped model's name."""
    builtin = _MANIFESTS.get("builtin")
    if builtin is None:
        builtin = ((), _builtin())
        _MANIFESTS["builtin"] = builtin
    if not model_dir:
        return builtin[1]
    path = Path(model_dir) / MANIFEST
    try:
        st = path.stat()
    except FileNotFoundError:
        return builtin[1]
    key = (str(path), st.st_mtime_ns, st.st_size)
    cached = _MANIFESTS.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        entries = json.loads(path.read_text())["models"]
        manifest = {e["name"]: {**KNOWN_MODELS.get(e["name"], {}), **e} for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable("*", f"{path} is not a valid model manifest: {exc}") from exc
    manifest.update(builtin[1])
    _MANIFESTS[str(path)] = (key, manifest)
    return manifest


def default_model(model_dir: str | None = None, configured: str = "") -> str:
    """The model a job gets when it names none: `configured` (CLEARSTEM_DEFAULT_MODEL) when set,
    else the first shipped model whose weights verify, else `dsp` — the fallback that needs no
    weights, so a checkout with a damaged weights file still separates (and says why in
    `list_models`)."""
    if configured:
        return configured
    for name in BUILTIN_MODELS:
        path = builtin_weights(name)
        try:
            st = path.stat()
        except OSError:
            continue
        key = (str(path), st.st_mtime_ns, st.st_size)
        if _DEFAULT_CHECKED.get(name) != key:  # pages and job requests ask often: hash once per file version
            try:
                check_weights(name, model_dir)
            except ModelUnavailable:
                _DEFAULT_CHECKED.pop(name, None)
                continue
            _DEFAULT_CHECKED[name] = key
        return name
    return "dsp"


def _files(entry: dict) -> list[tuple[str, str]]:
    """(file, pinned sha256) pairs; a bag of models has several."""
    files = entry["weights"] if isinstance(entry["weights"], list) else [entry["weights"]]
    hashes = entry["sha256"] if isinstance(entry["sha256"], list) else [entry["sha256"]]
    if len(files) != len(hashes):
        raise ModelUnavailable(entry["name"], "the manifest pins a different number of hashes than files")
    return list(zip(files, hashes))


def combined_sha256(entry: dict) -> str:
    """One hash for provenance: the file's own, or the hash over a bag's pinned hashes in order."""
    pairs = _files(entry)
    if len(pairs) == 1:
        return pairs[0][1]
    return hashlib.sha256("\n".join(h for _, h in pairs).encode()).hexdigest()


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
        sample_rate=int(entry["sample_rate"]), weights_sha256=combined_sha256(entry),
        code_version=CODE_VERSIONS.get(entry["architecture"], DEMUCS_CODE_VERSION),
        weights_licence=entry.get("weights_licence", "unknown"), training_data=entry.get("training_data", "unknown"),
        commercial_use=bool(entry.get("commercial_use", False)), fidelity="high",
        parameters={"config": entry.get("config", {}),
                    "weights_files": [{"file": Path(f).name, "sha256": h} for f, h in _files(entry)],
                    **({"training_data_manifest_sha256": entry["training_data_manifest_sha256"]}
                       if entry.get("training_data_manifest_sha256") else {})},
    )


def check_weights(name: str, model_dir: str | None) -> list[Path]:
    """Every weights file present and identical to what the manifest pinned, or a reason."""
    entry = _manifest(model_dir).get(name)
    if entry is None:
        raise ModelUnavailable(name, "not in the model manifest")
    if entry.get("card_error"):
        raise ModelUnavailable(name, entry["card_error"])
    paths = []
    for file, pinned in _files(entry):
        path = Path(file) if entry.get("builtin") else Path(model_dir) / file
        if not path.exists():
            raise ModelUnavailable(name, f"weights file {path} is missing")
        actual = file_sha256(path)
        if actual != pinned:
            raise ModelUnavailable(name, f"weights file {path} has SHA-256 {actual}, pinned {pinned}")
        paths.append(path)
    return paths


def list_models(model_dir: str | None = None) -> list[ModelStatus]:
    out = [ModelStatus("dsp", True)]
    for name in sorted(_manifest(model_dir)):
        try:
            check_weights(name, model_dir)
            out.append(ModelStatus(name, True))
        except ModelUnavailable as exc:
            out.append(ModelStatus(name, False, exc.reason))
    return out


#: Architectures whose engine can average several transformed passes (`bandsplit.PassAverage`).
AVERAGING_ARCHITECTURES = ("bandsplit-rnn",)
#: What `passes` may be: 1, or a count `bandsplit.PASS_TRANSFORMS` defines.
PASS_COUNTS = (1, *PASS_TRANSFORMS)


def averages_passes(name: str, model_dir: str | None = None) -> bool:
    """Whether `name` can run with `passes` > 1 (a worker's setting applies only to such models)."""
    if name == "dsp":
        return False
    try:
        return model_info(name, model_dir).architecture in AVERAGING_ARCHITECTURES
    except ModelUnavailable:
        return False


def get_engine(name: str, model_dir: str | None = None, device: str = "auto", precision: str = "auto",
               passes: int = 1) -> Engine:
    """Load a model once per process and keep it (GPU workers must not reload per job). `passes`
    > 1 averages that many transformed passes (band-split models only; ValueError otherwise)."""
    key = (name, model_dir, device, precision, passes)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if passes != 1:
            if passes not in PASS_COUNTS:
                raise ValueError(f"passes must be one of {', '.join(map(str, PASS_COUNTS))}; got {passes}")
            if name != "dsp":
                model_info(name, model_dir)  # an unknown model says so, not that it cannot average
            if not averages_passes(name, model_dir):
                raise ValueError(f"{name} cannot average passes (only {', '.join(AVERAGING_ARCHITECTURES)} "
                                 f"models can); run it with one pass")
        if name == "dsp":
            engine = DSPSeparator()
        else:
            info = model_info(name, model_dir)
            paths = check_weights(name, model_dir)
            if info.architecture == "demucs":
                engine = _load_demucs(name, info, paths, _manifest(model_dir)[name], device, precision)
            elif info.architecture == "bandsplit-rnn":
                engine = _load_bandsplit(name, info, paths[0], device, precision, passes)
            else:
                engine = _load_hdemucs(name, info, paths[0], device, precision)
        _LOADED[key] = engine
        return engine


def _load_hdemucs(name, info, path, device, precision):
    # torchaudio's model code loads only on workers that run this model, not in web processes
    from .hdemucs import HDemucsEngine, build  # noqa: PLC0415

    module = build(info.stems, info.parameters.get("config"))
    try:
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelUnavailable(name, f"weights do not fit the {info.architecture} architecture: {exc}") from exc
    return HDemucsEngine(module, info, device=device, precision=precision)


def _load_bandsplit(name, info, path, device, precision, passes: int = 1):
    """ClearStem's own band-split separator (`separation.bandsplit`, trained by `separation.train`),
    run like HDemucs: per-chunk normalisation, chunked overlap-add; with `passes` > 1 each chunk's
    estimate is the average of that many transformed passes, recorded in the provenance."""
    from .bandsplit import PassAverage, build, describe_passes  # noqa: PLC0415
    from .hdemucs import HDemucsEngine  # noqa: PLC0415 - the generic [B, 2, T] -> [B, S, 2, T] runner

    config = info.parameters.get("config") or {}
    try:
        module = build(config, tuple(info.stems))
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError, TypeError) as exc:
        raise ModelUnavailable(name, f"weights do not fit the {info.architecture} architecture: {exc}") from exc
    if passes != 1:  # one pass records nothing, as every stem made before passes existed
        module = PassAverage(module, passes)
        info = ModelInfo(**{**info.__dict__, "parameters": {**info.parameters, "passes": passes,
                                                            "pass_transforms": describe_passes(passes)}})
    return HDemucsEngine(module, info, device=device, precision=precision)


def _load_demucs(name, info, paths, entry, device, precision):
    try:
        from .demucs_v4 import DemucsEngine, load_package  # noqa: PLC0415 - optional package, see except
    except ImportError as exc:
        raise ModelUnavailable(name, f"the demucs package is not installed here ({exc})") from exc
    try:
        models = [load_package(p) for p in paths]
    except Exception as exc:  # noqa: BLE001 - any unpickling/shape error means "not this architecture"
        raise ModelUnavailable(name, f"weights are not a Demucs checkpoint: {exc}") from exc
    sources = list(models[0].sources)
    if sorted(sources) != sorted(info.stems) or any(list(m.sources) != sources for m in models):
        raise ModelUnavailable(name, f"checkpoint stems {sources} differ from the manifest's {list(info.stems)}")
    info = ModelInfo(**{**info.__dict__, "stems": tuple(sources)})
    return DemucsEngine(models, info, bag_weights=entry.get("bag_weights"), device=device, precision=precision)


def install_model(weights, name: str, model_dir: Path, config: dict | None = None, **meta) -> dict:
    """Copy weights into the model dir and pin their SHA-256 in the manifest. `weights` is one
    file or, for a bag of models, the list in the bag's order (`htdemucs_ft`'s comes from the
    demucs package)."""
    if name in BUILTIN_MODELS:
        raise ValueError(f"{name!r} is a model shipped with ClearStem; install under another name")
    model_dir.mkdir(parents=True, exist_ok=True)
    files = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    names, hashes = [], []
    for w in files:
        target = model_dir / Path(w).name
        if Path(w).resolve() != target.resolve():
            shutil.copyfile(w, target)
        names.append(target.name)
        hashes.append(file_sha256(target))
    entry = {**KNOWN_MODELS.get(name, {}), **meta, "name": name,
             "weights": names if len(names) > 1 else names[0], "sha256": hashes if len(hashes) > 1 else hashes[0]}
    if len(names) > 1 and "bag_weights" not in entry and entry.get("architecture") == "demucs":
        from .demucs_v4 import bag_spec  # noqa: PLC0415 - the demucs package is optional

        spec = bag_spec(name) or {}
        if spec.get("signatures") and [n.split("-")[0] for n in names] != spec["signatures"]:
            raise ValueError(f"{name} needs the files {spec['signatures']} in that order")
        if spec.get("weights"):
            entry["bag_weights"] = spec["weights"]
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
