"""The separator ClearStem ships (issue 16): in the repository, pinned, the default model, served
to commercial jobs, its card traceable to the training-data manifest shipped beside it — and a
damaged weights file is refused, with dsp as the fallback."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from clearstem.synth import render_song
from separation import registry, train
from separation.run import separate_file

#: Every shipped model; the first is the default (BUILTIN_MODELS' order). Older ones stay so that stems
#: made with them still name a model the registry can show and run.
SHIPPED = list(registry.BUILTIN_MODELS)
NAME = SHIPPED[0]
ROOT = Path(__file__).resolve().parent.parent


def shipped_manifests() -> set[str]:
    """SHA-256 of every training-data manifest in separation/weights: each shipped model's, and in
    `ancestors/` those of fine-tunes a shipped model started from that were not shipped themselves
    (so every input any step of its lineage learned from is listed, with its licence and hash)."""
    files = [*registry.BUILTIN_DIR.glob("*.training-manifest.json"), *registry.BUILTIN_DIR.glob("ancestors/*.json")]
    return {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


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
    weights = registry.builtin_weights(name)  # its own file, or the shipped file it shares (SHARED_WEIGHTS)
    owner = registry.SHARED_WEIGHTS.get(name, name)
    assert weights.stat().st_size <= 25 * 2**20
    assert registry.file_sha256(weights) == registry.BUILTIN_MODELS[name] == registry.BUILTIN_MODELS[owner] == card["sha256"]
    if owner != name:  # the same tensors under another card: only its name and an added config step differ
        theirs = json.loads((registry.BUILTIN_DIR / f"{owner}.json").read_text())
        assert {k: v for k, v in card.items() if k not in ("name", "config")} == {
            k: v for k, v in theirs.items() if k not in ("name", "config")}
        assert {k: v for k, v in card["config"].items() if k in theirs["config"]} == theirs["config"]
        assert set(card["config"]) - set(theirs["config"]) == {"remask"}
    raw = (registry.BUILTIN_DIR / f"{owner}.training-manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert hashlib.sha256(raw).hexdigest() == card["training_data_manifest_sha256"]
    # the card's statements are derived from that manifest (and, for fine-tuned weights, from the
    # shipped weights they started from), and commercial use only if all of it allows
    manifest["_sha256"] = card["training_data_manifest_sha256"]
    init = card["training"].get("init")
    made_as = {"init": init, "stems": card["stems"], "data_manifest_sha256": card["training_data_manifest_sha256"],
               **{k: card["training"][k] for k in ("soup", "loss_stems", "taken_stems", "base", "kit_routed",
                                                   "specialist_weight", "specialist_precision", "kit_swap", "kits",
                                                   "kit_layer") if k in card["training"]}}
    # v4: soup, loss_stems; v5: soup, taken_stems; v47: loss_stems, taken_stems, the blend, its kits
    assert train.card_statement(manifest, made_as) == (card["training_data"], card["weights_licence"])
    assert card["commercial_use"] is manifest["commercial_use"] is True
    if init:  # its lineage reaches weights pinned here, every step's training data listed here too
        ancestor, listed = init, shipped_manifests()
        while ancestor["name"] not in SHIPPED:  # an intermediate fine-tune, never shipped itself
            assert ancestor["commercial_use"] is True
            assert ancestor["training_data_manifest_sha256"] in listed, ancestor["name"]
            ancestor = ancestor["init"]
        assert ancestor["weights_sha256"] == registry.BUILTIN_MODELS[ancestor["name"]]
        assert init["commercial_use"] is True
    info = registry.model_info(name)
    assert info.commercial_use and info.weights_sha256 == card["sha256"]
    assert info.parameters["training_data_manifest_sha256"] == card["training_data_manifest_sha256"]
    assert info.parameters["weights_files"] == [{"file": weights.name, "sha256": card["sha256"]}]
    assert registry.default_model() == NAME and registry.default_model(configured="dsp") == "dsp"
    assert {s.name: s.available for s in registry.list_models()} == {"dsp": True, **{n: True for n in SHIPPED}}


def test_shipped_taken_stems_export_again_to_the_same_model(tmp_path):
    """v5 (a run's drums, vocals and other over v3) read back as its run (`train.taken_as_checkpoint`)
    and exported over v3 again is v5, tensor for tensor and card for card: what lets its stems go
    over other shipped weights (v6's recipe) from the repository alone."""
    name = "clearstem-bandsplit-v5"
    card = json.loads((registry.BUILTIN_DIR / f"{name}.json").read_text())
    data = tmp_path / "set"
    data.mkdir()
    raw = (registry.BUILTIN_DIR / f"{name}.training-manifest.json").read_bytes()
    (data / "manifest.json").write_bytes(raw)
    (data / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")
    out = train.export(registry.BUILTIN_DIR / f"{name}.pt", tmp_path / f"{name}.pt", data, name,
                       base=registry.BUILTIN_DIR / "clearstem-bandsplit-v3.pt", take=card["config"]["specialist"])
    want, got = (torch.load(p, weights_only=True) for p in (registry.BUILTIN_DIR / f"{name}.pt", out["weights"]))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    again = json.loads(Path(out["card"]).read_text())
    assert {k: v for k, v in again.items() if k != "sha256"} == {k: v for k, v in card.items() if k != "sha256"}


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
    weights = registry.builtin_weights(NAME)  # in builtin_dir (the fixture moved BUILTIN_DIR)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    status = {s.name: s for s in registry.list_models()}[NAME]
    assert not status.available and "pinned" in status.reason
    with pytest.raises(registry.ModelUnavailable, match="pinned"):
        registry.get_engine(NAME, device="cpu", precision="fp32")
    # the next shipped model that still verifies (one sharing the damaged file does not) is the
    # default; with none left, dsp
    assert registry.default_model() == next((n for n in SHIPPED[1:] if registry.builtin_weights(n) != weights), "dsp")
    for other in SHIPPED[1:]:
        registry.builtin_weights(other).write_bytes(b"damaged")
    assert registry.default_model() == "dsp"
    weights.unlink()
    assert "missing" in {s.name: s for s in registry.list_models()}[NAME].reason
    (builtin_dir / f"{NAME}.json").write_text("{not json")
    registry._MANIFESTS.pop("builtin", None)
    assert "unreadable" in {s.name: s for s in registry.list_models()}[NAME].reason


def test_a_shipped_model_may_run_another_shipped_models_file_under_its_own_card(builtin_dir, monkeypatch):
    """SHARED_WEIGHTS: a card with another config (here a remask) over a shipped file, with no second
    copy: it loads that file, pinned under its own name too, records its own config, and a damaged
    file takes both models down."""
    owner = registry.SHARED_WEIGHTS.get(NAME, NAME)  # a shipped model with a file of its own
    card = json.loads((builtin_dir / f"{owner}.json").read_text())
    shared = "clearstem-bandsplit-shared-test"
    config = {**card["config"], "remask": "magnitude-ratio"}
    (builtin_dir / f"{shared}.json").write_text(json.dumps({**card, "name": shared, "config": config}))
    monkeypatch.setattr(registry, "SHARED_WEIGHTS", {**registry.SHARED_WEIGHTS, shared: owner})
    monkeypatch.setattr(registry, "BUILTIN_MODELS", {**registry.BUILTIN_MODELS, shared: registry.BUILTIN_MODELS[owner]})
    registry._MANIFESTS.pop("builtin", None)
    assert not (builtin_dir / f"{shared}.pt").exists()
    info = registry.model_info(shared)
    assert info.weights_sha256 == registry.BUILTIN_MODELS[owner]
    assert info.parameters["weights_files"] == [{"file": f"{owner}.pt", "sha256": registry.BUILTIN_MODELS[owner]}]
    engine = registry.get_engine(shared, device="cpu", precision="fp32")
    assert engine.info.parameters["config"]["remask"] == "magnitude-ratio"
    assert engine.module.remask == "magnitude-ratio"
    (builtin_dir / f"{owner}.pt").write_bytes(b"damaged")
    status = {s.name: s for s in registry.list_models()}
    assert not status[shared].available and not status[owner].available and "pinned" in status[shared].reason


def test_an_installed_model_cannot_take_the_shipped_name(tmp_path):
    weights = tmp_path / "w.pt"
    shutil.copyfile(registry.builtin_weights(NAME), weights)
    with pytest.raises(ValueError, match="shipped with ClearStem"):
        registry.install_model(weights, NAME, tmp_path / "models", architecture="bandsplit-rnn")
    assert not (tmp_path / "models").exists()


class _Probe(torch.nn.Module):
    """[B, 2, T] -> [B, 1, 2, T] that depends on where a sample sits (time) and on which channel it
    is in: each averaged pass must be undone exactly for the average to come out as below."""

    def __init__(self, length: int):
        super().__init__()
        self.length = length

    def forward(self, x):
        t = torch.arange(x.shape[-1], dtype=x.dtype)
        return (x * torch.tensor([2.0, 1.0]).view(1, 2, 1) * (1 + t / self.length)).unsqueeze(1)


def test_averaged_passes_undo_each_transform_and_are_recorded_in_provenance(tmp_path):
    from separation.bandsplit import HOP, PASS_TRANSFORMS, PassAverage

    x = torch.randn(3, 2, 4096)
    plain = _Probe(4096)
    # an identity-like network gives the same stems however many passes are averaged
    ident = lambda y: y.unsqueeze(1)  # noqa: E731
    for passes in PASS_TRANSFORMS:
        assert torch.allclose(PassAverage(ident, passes)(x), ident(x))
    # a channel- and time-dependent one: the swapped pass scales the left channel by 1, not 2, and a
    # delay of d samples sees sample t at position t + d
    got = PassAverage(plain, 2)(x)
    t = torch.arange(4096, dtype=x.dtype)
    d = HOP // 2
    want = x * ((torch.tensor([2.0, 1.0]).view(1, 2, 1) * (1 + t / 4096))
                + torch.tensor([1.0, 2.0]).view(1, 2, 1) * (1 + (t + d) / 4096)) / 2
    assert torch.allclose(got, want.unsqueeze(1), atol=1e-5)
    with pytest.raises(ValueError, match="passes"):
        PassAverage(plain, 3)

    # the shipped engine: two passes give stems close to one pass's (same model), not the same,
    # and the provenance says how they were made; one pass records nothing (as every older stem)
    song = render_song(41, seconds=6)
    src = tmp_path / "song.wav"
    sf.write(src, song.mixture.T, 44100, subtype="PCM_16")
    one = registry.get_engine(NAME, device="cpu")
    two = registry.get_engine(NAME, device="cpu", passes=2)
    assert "passes" not in one.info.parameters
    assert two.info.parameters["passes"] == 2
    assert two.info.parameters["pass_transforms"] == ["plain", f"swapped, delayed {HOP // 2} samples"]
    a, _ = separate_file(one, src, tmp_path / "one", fmt="wav", bits=24)
    b, _ = separate_file(two, src, tmp_path / "two", fmt="wav", bits=24)
    for sa, sb in zip(a, b):
        ya, yb = sf.read(sa.path)[0], sf.read(sb.path)[0]
        gap = 10 * np.log10(np.sum(ya ** 2) / np.sum((ya - yb) ** 2))
        assert 5 < gap < 60, (sa.name, gap)  # a different estimate of the same stem

    # where averaging means nothing, or the count is not one we define: a clear refusal
    with pytest.raises(ValueError, match="cannot average passes"):
        registry.get_engine("dsp", passes=2)
    with pytest.raises(ValueError, match="passes must be one of 1, 2, 4"):
        registry.get_engine(NAME, passes=3)
    with pytest.raises(registry.ModelUnavailable, match="unknown model"):
        registry.get_engine("no-such-model", passes=2)
    cli = [sys.executable, "-m", "separation", str(src), "--out", str(tmp_path / "cli")]
    refused = subprocess.run([*cli, "--model", "dsp", "--passes", "2"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "dsp cannot average passes" in refused.stderr
    refused = subprocess.run([*cli, "--passes", "3"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "invalid choice: 3" in refused.stderr
    assert not (tmp_path / "cli").exists()  # nothing written by a refused run
    # the worker's setting: the same counts, and a wrong one stops the process from starting
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clearstem.settings", "CLEARSTEM_SEPARATION_PASSES": "3"}
    bad = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "CLEARSTEM_SEPARATION_PASSES must be 1, 2 or 4, not 3" in bad.stderr
    assert registry.PASS_COUNTS == (1, 2, 4)  # the settings' literal (settings import no torch)
