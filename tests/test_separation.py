"""Separation core on CPU with small randomly initialised models of the real architecture."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from clearstem.synth import render_song
from separation.apply import ChunkParams, apply_chunked, apply_stream
from separation.audio_io import AudioStream
from separation.registry import BUILTIN_MODELS, ModelUnavailable, get_engine, install_model, list_models, model_info
from separation.run import separate_file
from tests.tiny_models import STEMS, install_tiny_hdemucs, snr_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny HDemucs with random weights, installed and pinned like real weights."""
    return install_tiny_hdemucs(tmp_path_factory.mktemp("models"), "tiny_hdemucs")


@pytest.fixture(scope="module")
def engine(model_dir):
    return get_engine("tiny_hdemucs", str(model_dir), device="cpu", precision="fp32")


def test_batched_equals_unbatched(engine):
    x = render_song(31, seconds=9).mixture
    one = apply_chunked(engine.batch_fn(44100), x, ChunkParams(2 * 44100, 22050, batch=1))
    four = apply_chunked(engine.batch_fn(44100), x, ChunkParams(2 * 44100, 22050, batch=4))
    assert one.shape == (4, 2, x.shape[1])
    assert snr_db(one, four) >= 80


def test_streaming_equals_in_memory(engine):
    x = render_song(32, seconds=7).mixture
    params = ChunkParams(44100, 11025, batch=2)
    whole = apply_chunked(engine.batch_fn(44100), x, params)
    blocks = [x[:, i:i + 12345] for i in range(0, x.shape[1], 12345)]
    streamed = np.concatenate(list(apply_stream(engine.batch_fn(44100), blocks, params, 2)), axis=2)
    assert np.array_equal(whole, streamed)


def test_stems_come_back_at_source_rate_length_and_channels(engine, tmp_path):
    """48 kHz mono in, 44.1 kHz stereo model: stems are 48 kHz mono, sample-accurate."""
    song = render_song(33, seconds=5, sample_rate=48000).mixture.mean(axis=0)
    n = song.size - 37  # an awkward length
    src = tmp_path / "in.flac"
    sf.write(src, song[:n], 48000, subtype="PCM_24")
    outputs, used = separate_file(engine, src, tmp_path / "out", fmt="flac", source_bits=24,
                                  chunk=ChunkParams(44100, 4410, 2))
    assert used["model_rate"] == 44100 and used["source_rate"] == 48000
    for out in outputs:
        info = sf.info(out.path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (48000, 1, n, "PCM_24")


def test_dsp_file_stems_sum_to_mixture(tmp_path):
    song = render_song(34, seconds=40)
    src = tmp_path / "mix.wav"
    sf.write(src, song.mixture.T, 44100, subtype="PCM_24")
    outputs, used = separate_file(get_engine("dsp"), src, tmp_path / "out", source_bits=24)
    assert used["segment"] == 30 * 44100  # two chunks: the cross-fade is exercised
    mix = sf.read(src, always_2d=True)[0].T
    total = sum(sf.read(o.path, always_2d=True)[0].T for o in outputs)
    assert total.shape == mix.shape and snr_db(mix, total) >= 60


def test_missing_or_tampered_weights_are_refused(model_dir, tmp_path):
    import shutil

    d = tmp_path / "models"
    shutil.copytree(model_dir, d)
    assert {s.name: s.available for s in list_models(str(d))} == {"dsp": True, "tiny_hdemucs": True,
                                                                  **{name: True for name in BUILTIN_MODELS}}
    info = model_info("tiny_hdemucs", str(d))
    assert info.weights_sha256 == json.loads((d / "models.json").read_text())["models"][0]["sha256"]
    data = bytearray((d / "tiny_hdemucs.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "tiny_hdemucs.pt").write_bytes(bytes(data))
    status = {s.name: s for s in list_models(str(d))}["tiny_hdemucs"]
    assert not status.available and "pinned" in status.reason
    with pytest.raises(ModelUnavailable, match="pinned"):
        get_engine("tiny_hdemucs", str(d), device="cpu")
    (d / "tiny_hdemucs.pt").unlink()
    with pytest.raises(ModelUnavailable, match="missing"):
        get_engine("tiny_hdemucs", str(d), device="cpu")
    with pytest.raises(ModelUnavailable, match="unknown model"):
        model_info("htdemucs", str(d))


def test_cli_separates_and_lists(model_dir, tmp_path):
    src = tmp_path / "song.wav"
    sf.write(src, render_song(35, seconds=4).mixture.T, 44100)
    run = subprocess.run([sys.executable, "-m", "separation", str(src), "--model", "tiny_hdemucs", "--model-dir",
                          str(model_dir), "--out", str(tmp_path / "out"), "--stems", "vocals", "bass",
                          "--segment", "2", "--overlap", "0.25", "--batch", "2", "--device", "cpu", "--threads", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["bass.wav", "vocals.wav"]
    listed = subprocess.run([sys.executable, "-m", "separation", "--list", "--model-dir", str(model_dir)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "tiny_hdemucs" in listed.stdout and "available" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "separation", str(src), "--model", "nope", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown model" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "separation", str(src), "--threads", "-1", "--out", str(tmp_path / "t")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--threads must be 0 (every core) or more, not -1" in bad.stderr
    assert not (tmp_path / "t").exists()


def test_the_workers_torch_threads_setting_reaches_its_pipeline(settings):
    """CLEARSTEM_SEPARATION_THREADS goes to the worker's resident pipeline (which sets it on the
    thread the model runs on: tests/test_pipeline.py); a negative count stops the process."""
    from separation import services
    from separation.engine import NullEngine

    before = torch.get_num_threads()
    settings.CLEARSTEM_SEPARATION_THREADS = 1
    engine = NullEngine()
    try:
        assert services.resident_pipeline(engine).config.threads == 1
    finally:
        services._PIPELINES.pop(id(engine)).close()
        torch.set_num_threads(before)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clearstem.settings", "CLEARSTEM_SEPARATION_THREADS": "-2"}
    bad = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "CLEARSTEM_SEPARATION_THREADS must be 0 (torch's default) or more, not -2" in bad.stderr


def test_cli_goes_past_bad_files_and_names_them(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, render_song(36, seconds=3).mixture.T, 44100)
    other = tmp_path / "other.flac"
    sf.write(other, render_song(37, seconds=2).mixture.T, 44100)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"junk" * 200)
    run = subprocess.run([sys.executable, "-m", "separation", str(bad), str(good), str(tmp_path / "missing.mp3"), str(other),
                          "--model", "dsp", "--out", str(tmp_path / "out"), "--stems", "vocals"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert f"{bad}: not a recognised audio file" in run.stderr and "missing.mp3: no such file" in run.stderr
    assert "Errno" not in run.stderr and "Error" not in run.stderr.replace("error:", "")
    assert "2 files" in run.stdout  # the readable ones, through one pipeline
    assert sf.info(tmp_path / "out" / "good" / "vocals.wav").frames == 3 * 44100
    assert sf.info(tmp_path / "out" / "other" / "vocals.wav").frames == 2 * 44100


def test_non_commercial_model_refused_for_commercial_jobs(clients, catalog, audio_dir, model_dir, settings):
    from tests.conftest import upload_file

    settings.CLEARSTEM_MODEL_DIR = str(model_dir)
    up = upload_file(clients["producer"], audio_dir / "original.wav").json()
    body = {"upload": up["id"], "requested_stems": ["vocals"], "purpose": "remix", "territory": "GB", "model": "tiny_hdemucs",
            "attestation": {"accepted": True}}
    r = clients["producer"].post("/api/v1/jobs/", {**body, "commercial": True}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "model_not_licensed_for_commercial_use"
    r = clients["producer"].post("/api/v1/jobs/", body, format="json")
    assert r.status_code == 201 and r.json()["model_fidelity"] == "high"


def test_audio_stream_counts_source_samples(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros((22050 * 3 + 7, 2), np.float32), 22050)
    stream = AudioStream(tmp_path / "a.wav", rate=44100)
    total = sum(b.shape[1] for b in stream)
    assert stream.source_samples == 22050 * 3 + 7 and abs(total - 2 * stream.source_samples) <= 2


def tiny_htdemucs_package(seed: int, path: Path) -> None:
    """A small HTDemucs saved in Demucs' own package format (class, arguments, state)."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    torch.manual_seed(seed)
    model = HTDemucs(STEMS, channels=8, depth=4, t_layers=1, t_heads=2, nfft=1024, segment=1)
    args, kwargs = model._init_args_kwargs
    torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, False)}, path)


def test_demucs_v4_single_and_bag(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    for i, sig in enumerate(("aaaa0001", "bbbb0002")):
        tiny_htdemucs_package(i, staging / f"{sig}-0000.th")
    d = tmp_path / "models"
    meta = {"architecture": "demucs", "stems": STEMS, "sample_rate": 44100, "weights_licence": "test",
            "training_data": "none"}
    install_model(staging / "aaaa0001-0000.th", "tiny_ht", d, **meta)
    bag_weights = [[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 0.5, 1.0]]
    install_model([staging / "aaaa0001-0000.th", staging / "bbbb0002-0000.th"], "tiny_bag", d,
                  bag_weights=bag_weights, **meta)
    single = get_engine("tiny_ht", str(d), device="cpu")
    bag = get_engine("tiny_bag", str(d), device="cpu")
    assert single.chunking(44100).segment == 44100  # HTDemucs runs on its training segment
    x = render_song(37, seconds=1).mixture[None]  # one chunk
    a = single.batch_fn(44100)(x)
    other = get_engine("tiny_ht_b", str(_second(d, staging, meta)), device="cpu").batch_fn(44100)(x)
    mixed = bag.batch_fn(44100)(x)
    w = np.array(bag_weights)
    expect = (a * w[0][None, :, None, None] + other * w[1][None, :, None, None]) / w.sum(0)[None, :, None, None]
    assert snr_db(expect, mixed) > 80
    info = model_info("tiny_bag", str(d))
    assert len(info.parameters["weights_files"]) == 2 and len(info.weights_sha256) == 64
    outputs, _ = separate_file(bag, _wav(tmp_path, 5), tmp_path / "out")
    assert all(sf.info(o.path).frames == 5 * 44100 for o in outputs)


def _second(d, staging, meta):
    install_model(staging / "bbbb0002-0000.th", "tiny_ht_b", d, **meta)
    return d


def _wav(tmp_path, seconds):
    path = tmp_path / "in.wav"
    sf.write(path, render_song(38, seconds=seconds).mixture.T, 44100)
    return path


def test_a_worker_set_to_average_passes_says_so_in_every_stems_signed_record(clients, catalog, audio_dir, settings):
    """`CLEARSTEM_SEPARATION_PASSES` reaches the shipped band-split model a job runs with, and the
    stems' provenance records it: a stem's record must say how it was made."""
    import base64

    from separation import services
    from tests.test_listening import _done_job

    settings.CLEARSTEM_SEPARATION_PASSES = 2
    try:
        job = _done_job(clients, audio_dir)
    finally:  # this worker's pipeline for the averaged engine is not needed by any other test
        engine = get_engine(next(iter(BUILTIN_MODELS)), settings.CLEARSTEM_MODEL_DIR,
                            device=settings.CLEARSTEM_SEPARATION_DEVICE, passes=2)
        pipeline = services._PIPELINES.pop(id(engine), None)
        if pipeline is not None:
            pipeline.close()
    assert job.state == "done" and job.model == next(iter(BUILTIN_MODELS))
    stems = list(job.stem_files.all())
    assert len(stems) == 2
    for stem in stems:
        record = json.loads(base64.b64decode(stem.provenance.envelope["payload"]))
        assert record["model"]["name"] == job.model
        assert record["model"]["parameters"]["passes"] == 2
        assert record["model"]["parameters"]["pass_transforms"][0] == "plain"
