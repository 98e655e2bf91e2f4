"""The voice gate a kit-routed model may route by (`separation.voice_gate`, stop 70): what it hears,
what it learns from, and what it refuses."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.kit_route import gate_threshold, percentile
from separation import voice_gate

RATE = 44100


def _tone(freqs, seconds, rate=RATE, vibrato=0.0, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    out = np.zeros_like(t)
    for k, f in enumerate(freqs):
        phase = 2 * np.pi * f * t + (vibrato * np.sin(2 * np.pi * 5.5 * t) if vibrato else 0.0)
        out += np.sin(phase + rng.uniform(0, 2 * np.pi)) / (k + 1)
    return (0.1 * out).astype(np.float32)


def _fake_set(folder, renders):
    """A training set's manifest and stems, as `separation.training.data` lays them out, for what
    the gate reads: (name, drums rms dBFS, with a voice?) per render."""
    rows = []
    for i, (name, drums_dbfs, sung) in enumerate(renders):
        base = f"audio/train/{name}"
        (folder / base).mkdir(parents=True)
        stems = {"bass": _tone([55.0], 3, seed=i), "other": _tone([220.0, 277.2, 329.6], 3, seed=i + 10),
                 "vocals": _tone([440.0, 880.0, 1320.0, 1760.0], 3, vibrato=4.0, seed=i + 20) if sung
                 else np.zeros(3 * RATE, np.float32),
                 "drums": np.zeros(3 * RATE, np.float32)}
        entry = {"song": name, "split": "train", "soundfont": "csound-gm", "stems": {}}
        for stem, audio in stems.items():
            sf.write(folder / base / f"{stem}.flac", np.stack([audio, audio], 1), RATE, subtype="PCM_24")
            entry["stems"][stem] = {"path": f"{base}/{stem}.flac",
                                    "rms_dbfs": drums_dbfs if stem == "drums" else -20.0}
        rows.append(entry)
    (folder / "manifest.json").write_text(json.dumps({"renders": rows}))


def test_a_voice_gate_scores_each_chunk_whatever_its_level():
    torch.manual_seed(0)
    gate = voice_gate.VoiceGate().eval()
    x = torch.randn(3, 2, RATE) * 0.1
    with torch.inference_mode():
        loud, quiet = gate(x), gate(x * 0.01)
        silent = gate(torch.zeros(1, 2, RATE))
    assert loud.shape == (3,)
    # it hears the unit-RMS signal: a chunk 40 dB quieter scores as the same chunk
    assert torch.allclose(loud, quiet, atol=1e-4)
    assert torch.isfinite(silent).all()


def test_a_voice_gate_learns_from_kitless_accompaniments_with_and_without_their_voice(tmp_path):
    """`fit` reads the kit-less train renders only, hears each accompaniment with and without its
    vocals, and writes weights that load into `VoiceGate` with a record beside them."""
    _fake_set(tmp_path / "set", [("a", -200.0, True), ("b", -200.0, True), ("kit", -18.0, True)])
    assert [r["song"] for r in voice_gate.kitless_train_renders(tmp_path / "set")] == ["a", "b"]
    record = voice_gate.fit(tmp_path / "set", tmp_path / "g" / "gate.pt", steps=60, batch=8, log_every=20)
    assert record["renders"] == 2 and record["banks"] == ["csound-gm"] and record["steps"] == 60
    assert record["examples"]["voiced"] > 0 and record["examples"]["voiceless"] > 0
    assert json.loads((tmp_path / "g" / "gate.json").read_text()) == record
    gate = voice_gate.VoiceGate().eval()
    gate.load_state_dict(torch.load(tmp_path / "g" / "gate.pt", weights_only=True))
    acc = _tone([55.0], 3) + _tone([220.0, 277.2, 329.6], 3, seed=10)
    voice = _tone([440.0, 880.0, 1320.0, 1760.0], 3, vibrato=4.0, seed=20)
    with torch.inference_mode():
        sung, unsung = gate(torch.from_numpy(np.stack([np.stack([acc + voice] * 2), np.stack([acc] * 2)])))
    assert sung > unsung  # on its own training songs it tells the two apart
    # v34's recipe: the kit songs' voices too (drums left out), random colour, a decaying rate
    record = voice_gate.fit(tmp_path / "set", tmp_path / "g34.pt", steps=4, batch=4, log_every=2, with_kit=True,
                            eq_db=12.0, cosine=True)
    assert record["renders"] == 3 and record["with_kit_songs"] and record["eq_db"] == 12.0
    assert record["lr_schedule"] == "cosine to 0"
    eq = voice_gate.random_eq(np.random.default_rng(0), 12.0)
    assert eq.shape == (voice_gate.N_MELS,) and float(eq.abs().max()) <= 12.0


def test_a_voice_gate_refuses_what_it_cannot_learn_from(tmp_path):
    _fake_set(tmp_path / "kits", [("kit", -18.0, True)])
    with pytest.raises(SystemExit, match="no kit-less 'train' renders"):
        voice_gate.kitless_train_renders(tmp_path / "kits")
    with pytest.raises(SystemExit) as exc:
        voice_gate.main(["fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.pt")])
    assert exc.value.code == 2
    for bad in (["--steps", "0"], ["--eq-db", "nan"], ["--eq-db", "-3"]):
        with pytest.raises(SystemExit) as exc:
            voice_gate.main(["fit", "--data", str(tmp_path / "kits"), "--out", str(tmp_path / "g.pt"), *bad])
        assert exc.value.code == 2
    assert not (tmp_path / "g.pt").exists()


def test_the_gates_threshold_follows_the_declared_rule():
    """`bench.kit_route --gate`: the midpoint where voiceless and voiced logits separate; where
    they overlap, the protected (voiced) chunks' 5th percentile (v33) or another (v34: 2nd)."""
    assert gate_threshold([-3.0, -2.0, -1.0], [1.0, 2.0, 3.0])[0] == pytest.approx(
        (percentile([-3.0, -2.0, -1.0], 95) + percentile([1.0, 2.0, 3.0], 5)) / 2)
    voiceless, voiced = list(np.linspace(-3, 1, 50)), list(np.linspace(-1, 3, 101))
    p5, how = gate_threshold(voiceless, voiced)
    assert p5 == pytest.approx(-0.8) and "voiced P5" in how
    p2, how = gate_threshold(voiceless, voiced, fallback=2)
    assert p2 == pytest.approx(-0.92) and "voiced P2" in how
