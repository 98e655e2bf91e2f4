"""The separator ClearStem ships (issue 16): in the repository, pinned, the default model, served
to commercial jobs, its card traceable to the training-data manifest shipped beside it — and a
damaged weights file is refused, with dsp as the fallback."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from clearstem.synth import render_song
from separation import registry, train
from separation.run import separate_file

#: Every shipped model; the first is the default (BUILTIN_MODELS' order). Older ones stay so that stems
#: made with them still name a model the registry can show and run.
SHIPPED = list(registry.BUILTIN_MODELS)
NAME = SHIPPED[0]


@pytest.fixture
def builtin_dir(tmp_path, monkeypatch):
    """A copy of separation/weights the registry reads instead (the repository's stays intact)."""
    d = tmp_path / "weights"
    shutil.copytree(registry.BUILTIN_DIR, d)
    monkeypatch.setattr(registry, "BUILTIN_DIR", d)
    registry._MANIFESTS.pop("builtin", None)
    yield d
    registry._MANIFESTS.pop("builtin", None)


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_model_is_pinned_and_traceable_to_its_training_manifest(name):
    card = json.loads((registry.BUILTIN_DIR / f"{name}.json").read_text())
    weights = registry.BUILTIN_DIR / f"{name}.pt"
    assert weights.stat().st_size <= 25 * 2**20
    assert registry.file_sha256(weights) == registry.BUILTIN_MODELS[name] == card["sha256"]
    raw = (registry.BUILTIN_DIR / f"{name}.training-manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert hashlib.sha256(raw).hexdigest() == card["training_data_manifest_sha256"]
    # the card's statements are derived from that manifest (and, for fine-tuned weights, from the
    # shipped weights they started from), and commercial use only if all of it allows
    manifest["_sha256"] = card["training_data_manifest_sha256"]
    init = card["training"].get("init")
    made_as = {"init": init, "stems": card["stems"], "data_manifest_sha256": card["training_data_manifest_sha256"],
               **{k: card["training"][k] for k in ("soup", "loss_stems") if k in card["training"]}}  # v4: both
    assert train.card_statement(manifest, made_as) == (card["training_data"], card["weights_licence"])
    assert card["commercial_use"] is manifest["commercial_use"] is True
    if init:
        assert init["name"] in SHIPPED and init["weights_sha256"] == registry.BUILTIN_MODELS[init["name"]]
        assert init["commercial_use"] is True
    info = registry.model_info(name)
    assert info.commercial_use and info.weights_sha256 == card["sha256"]
    assert info.parameters["training_data_manifest_sha256"] == card["training_data_manifest_sha256"]
    assert info.parameters["weights_files"] == [{"file": f"{name}.pt", "sha256": card["sha256"]}]
    assert registry.default_model() == NAME and registry.default_model(configured="dsp") == "dsp"
    assert {s.name: s.available for s in registry.list_models()} == {"dsp": True, **{n: True for n in SHIPPED}}


def test_the_shipped_model_separates_a_song(tmp_path):
    song = render_song(41, seconds=6)
    src = tmp_path / "song.wav"
    sf.write(src, song.mixture.T, 44100, subtype="PCM_16")
    engine = registry.get_engine(NAME, device="cpu")
    outputs, _ = separate_file(engine, src, tmp_path / "stems", fmt="wav", bits=16)
    assert sorted(o.name for o in outputs) == ["bass", "drums", "other", "vocals"]
    stems = {o.name: sf.read(o.path, always_2d=True)[0] for o in outputs}
    assert all(x.shape == song.mixture.T.shape and np.isfinite(x).all() for x in stems.values())
    assert all(np.abs(x).max() > 1e-3 for x in stems.values())  # each stem carries audio, none is silence


def test_damaged_weights_are_refused_and_dsp_is_the_fallback(builtin_dir):
    data = bytearray((builtin_dir / f"{NAME}.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (builtin_dir / f"{NAME}.pt").write_bytes(bytes(data))
    status = {s.name: s for s in registry.list_models()}[NAME]
    assert not status.available and "pinned" in status.reason
    with pytest.raises(registry.ModelUnavailable, match="pinned"):
        registry.get_engine(NAME, device="cpu", precision="fp32")
    # the next shipped model that still verifies is the default; with none left, dsp
    assert registry.default_model() == (SHIPPED[1] if len(SHIPPED) > 1 else "dsp")
    for other in SHIPPED[1:]:
        (builtin_dir / f"{other}.pt").write_bytes(b"damaged")
    assert registry.default_model() == "dsp"
    (builtin_dir / f"{NAME}.pt").unlink()
    assert "missing" in {s.name: s for s in registry.list_models()}[NAME].reason
    (builtin_dir / f"{NAME}.json").write_text("{not json")
    registry._MANIFESTS.pop("builtin", None)
    assert "unreadable" in {s.name: s for s in registry.list_models()}[NAME].reason


def test_an_installed_model_cannot_take_the_shipped_name(tmp_path):
    weights = tmp_path / "w.pt"
    shutil.copyfile(registry.BUILTIN_DIR / f"{NAME}.pt", weights)
    with pytest.raises(ValueError, match="shipped with ClearStem"):
        registry.install_model(weights, NAME, tmp_path / "models", architecture="bandsplit-rnn")
    assert not (tmp_path / "models").exists()
