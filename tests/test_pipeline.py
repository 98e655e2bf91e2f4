"""The many-file separation pipeline (decoder processes, device-side overlap-add, writer pool)
gives what the per-file path gives, fails one file without touching the others, and honours
cancellation — on CPU, with small random models of the real architecture."""
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from clearstem.synth import render_song
from separation.apply import ChunkParams, StreamingSeparator
from separation.audio_io import AudioReadError, AudioStream
from separation.engine import Cancelled, NullEngine
from separation.pipeline import (
    HostBlend,
    PipelineConfig,
    Request,
    SeparationPipeline,
    StagingRing,
    pcm_into,
    separate_many,
    staged,
    to_pcm,
)
from separation.registry import get_engine
from separation.run import separate_file
from tests.tiny_models import STEMS, install_tiny_hdemucs, snr_db


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return get_engine("tiny_pipe", str(install_tiny_hdemucs(tmp_path_factory.mktemp("models"), "tiny_pipe")),
                      device="cpu", precision="fp32")


def _write(path: Path, seed: int, seconds: float, rate: int = 44100, mono: bool = False, subtype="PCM_24"):
    audio = render_song(seed, seconds=seconds).mixture
    if rate != 44100:
        audio = audio[:, :: 44100 // rate]
    sf.write(path, (audio[0] if mono else audio.T), rate, subtype=subtype)
    return path


def test_pipeline_equals_the_per_file_path(tiny, tmp_path):
    """Files of different lengths, a mono one and one at another rate, batched together: each
    file's stems are the per-file path's (24-bit, so the comparison sees the arithmetic)."""
    paths = [_write(tmp_path / "a.wav", 40, 3), _write(tmp_path / "b.flac", 41, 1.3, subtype="PCM_16"),
             _write(tmp_path / "c.wav", 42, 5, mono=True), _write(tmp_path / "d.wav", 43, 2.5, rate=22050)]
    results = separate_many(tiny, [Request(p, tmp_path / "new" / p.stem, bits=24) for p in paths],
                            PipelineConfig(decoders=2, batch=3))
    for p, (outputs, used) in zip(paths, results):
        alone, _ = separate_file(tiny, p, tmp_path / "old" / p.stem, bits=24)
        info = sf.info(p)
        assert used["batch"] == 3 and used["pipeline"] == "device-resident"
        for a, b in zip(alone, outputs):
            x, y = sf.read(a.path)[0], sf.read(b.path)[0]
            assert b.path == tmp_path / "new" / p.stem / f"{a.name}.wav"
            assert y.shape == x.shape and len(y) == info.frames
            assert sf.info(b.path).samplerate == info.samplerate and sf.info(b.path).channels == info.channels
            assert snr_db(x, y) >= 80, (p.name, a.name)
        assert not list((tmp_path / "new" / p.stem).glob(".*partial"))


def test_identity_model_gives_the_input_back(tmp_path):
    """With every stem = the input, the stems are the input to within one 16-bit step (the
    same float→integer scaling libsndfile uses), at the input's exact length — also when output
    goes back in 64 KiB pieces through a 1 MiB backlog."""
    src = _write(tmp_path / "in.flac", 44, 7, subtype="PCM_16")
    (outputs, used), = separate_many(NullEngine(segment_s=2.0, overlap_s=0.5, batch=3), [Request(src, tmp_path / "out")],
                                     PipelineConfig(decoders=1, block_seconds=0.7, stage_kib=64, write_backlog_mb=1))
    x = sf.read(src, dtype="int16")[0]
    for o in outputs:
        y = sf.read(o.path, dtype="int16")[0]
        assert y.shape == x.shape and np.abs(x.astype(int) - y).max() <= 1
    assert used["segment"] == 88200


def test_pcm_conversion_matches_libsndfile(tmp_path):
    x = torch.tensor([[[-1.5, -1.0, -0.5, 0.0, 1e-5, 0.25, 0.999, 1.0, 2.0]]])
    for bits, subtype in ((16, "PCM_16"), (24, "PCM_24")):
        sf.write(tmp_path / "ref.wav", x[0].T.numpy(), 8000, subtype=subtype)
        sf.write(tmp_path / "ours.wav", to_pcm(x.clone(), bits)[0].numpy(), 8000, subtype=subtype)
        assert np.array_equal(sf.read(tmp_path / "ref.wav", dtype="int32")[0], sf.read(tmp_path / "ours.wav", dtype="int32")[0])


def test_a_bad_file_fails_alone_and_leaves_nothing(tiny, tmp_path):
    good = _write(tmp_path / "good.wav", 45, 2)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt not really audio")
    missing = tmp_path / "missing.mp3"
    results = separate_many(tiny, [Request(p, tmp_path / "out" / p.stem) for p in (good, bad, missing)],
                            PipelineConfig(decoders=2))
    assert [o.name for o in results[0][0]] == STEMS
    for r in results[1:]:
        assert isinstance(r, AudioReadError) and str(r) in ("not a recognised audio file", "no such file")
    assert not (tmp_path / "out" / "bad").exists() or not list((tmp_path / "out" / "bad").iterdir())


def test_cancelling_stops_the_file_and_removes_its_stems(tmp_path):
    src = _write(tmp_path / "long.wav", 46, 20)
    calls = []

    def progress(fraction):  # cancel once stems are being written
        calls.append(fraction)
        if fraction > 0.2:
            raise Cancelled()

    slow = SlowNull(segment_s=1.0, overlap_s=0.1, batch=1)
    pipeline = SeparationPipeline(slow, PipelineConfig(decoders=1, block_seconds=0.5))
    try:
        handle = pipeline.submit(Request(src, tmp_path / "out"))
        with pytest.raises(Cancelled):
            handle.result(progress, poll_s=0.05)
        after = separate_many(slow, [Request(_write(tmp_path / "short.wav", 47, 1), tmp_path / "next")], pipeline=pipeline)
    finally:
        pipeline.close()
    assert 0.2 < calls[-1] < 0.99
    assert not list((tmp_path / "out").iterdir())  # no stem, no partial file
    assert [o.name for o in after[0][0]] == STEMS  # the pipeline goes on with the next file


class SlowNull(NullEngine):
    """50 ms per batch: a 20 s file takes long enough to be cancelled half-way."""

    def tensor_fn(self, rate):
        inner = super().tensor_fn(rate)

        def run(x):
            time.sleep(0.05)
            return inner(x)

        return run


class ThreadCounting(NullEngine):
    """Records torch's thread count where the model runs (the pipeline's driver thread)."""

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def tensor_fn(self, rate):
        inner = super().tensor_fn(rate)

        def run(x):
            self.seen.append(torch.get_num_threads())
            return inner(x)

        return run


def test_the_model_runs_with_the_configured_torch_threads(tmp_path):
    """`threads` (the worker's CLEARSTEM_SEPARATION_THREADS) reaches the thread the model runs on,
    not only the thread that built the pipeline; 0 keeps the builder's count; below 0 is refused."""
    src = _write(tmp_path / "a.wav", 48, 3)
    before = torch.get_num_threads()
    one, default = ThreadCounting(), ThreadCounting()
    try:
        with pytest.raises(ValueError, match="threads must be 0"):
            SeparationPipeline(one, PipelineConfig(threads=-1))
        pipeline = SeparationPipeline(one, PipelineConfig(decoders=1, block_seconds=0.5, threads=1))
        try:
            (outputs, _), = separate_many(one, [Request(src, tmp_path / "one")], pipeline=pipeline)
            stats = pipeline.stats()
        finally:
            pipeline.close()
        assert torch.get_num_threads() == before  # the building thread keeps its own
        torch.set_num_threads(before)  # and the default for threads not yet started is as it was
        (outputs_default, _), = separate_many(default, [Request(src, tmp_path / "default")],
                                              PipelineConfig(decoders=1, block_seconds=0.5))
    finally:
        torch.set_num_threads(before)
    assert [o.name for o in outputs] == [o.name for o in outputs_default] == STEMS
    assert one.seen and set(one.seen) == {1}
    assert stats["torch_threads"] == 1 and stats["config"]["threads"] == 1
    assert default.seen and set(default.seen) == {before}


class OutOfMemoryAboveOne(NullEngine):
    def tensor_fn(self, rate):
        inner = super().tensor_fn(rate)

        def run(x):
            if len(x) > 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return inner(x)

        return run


def test_out_of_memory_halves_the_batch_and_keeps_going(tmp_path):
    src = _write(tmp_path / "in.wav", 48, 4)
    (outputs, used), = separate_many(OutOfMemoryAboveOne(segment_s=1.0, overlap_s=0.1, batch=4),
                                     [Request(src, tmp_path / "out", bits=24)], PipelineConfig(decoders=1))
    assert used["batch"] == 1
    x = sf.read(src)[0]
    assert all(snr_db(x, sf.read(o.path)[0]) > 100 for o in outputs)


def test_a_decoder_that_dies_fails_its_file_and_a_new_one_takes_the_next(tmp_path):
    slow = SlowNull(segment_s=1.0, overlap_s=0.1, batch=1)
    pipeline = SeparationPipeline(slow, PipelineConfig(decoders=1, block_seconds=0.5, queued_blocks=2))
    try:
        handle = pipeline.submit(Request(_write(tmp_path / "long.wav", 49, 20), tmp_path / "out"))
        while handle.fraction == 0:
            time.sleep(0.02)
        pipeline.decoders.procs[0].kill()
        with pytest.raises(AudioReadError, match="decoder process stopped"):
            handle.result()
        after = separate_many(slow, [Request(_write(tmp_path / "short.wav", 50, 1), tmp_path / "next")], pipeline=pipeline)
    finally:
        pipeline.close()
    assert not list((tmp_path / "out").iterdir())
    assert [o.name for o in after[0][0]] == STEMS


def test_staging_buffers_hold_pieces_of_any_layout():
    """What the CUDA path does with its pinned ring, on CPU: a time slice of [stems, n, C]
    integers (not contiguous) copied into a reused buffer reads back equal."""
    ring = StagingRing(2, 1 << 12, pin=False)
    out = torch.arange(4 * 300 * 2, dtype=torch.int16).view(4, 300, 2)
    piece = out.narrow(1, 100, 50)
    buf = ring.get()
    host = staged(buf, piece).copy_(piece)
    assert host.shape == piece.shape and torch.equal(host, piece) and host.data_ptr() == buf.data_ptr()
    ring.put(buf)
    assert ring.try_get() is not None and ring.try_get() is not None and ring.try_get() is None


def _four_stems(x: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in model: [B, C, T] -> [B, 4, C, T], stems unlike each other."""
    return torch.stack([x * 0.3, 0.01 - 0.7 * x, x * x, torch.sin(3 * x)], dim=1)


@pytest.mark.parametrize("params", [ChunkParams(1000, 130, 3), ChunkParams(1000, 0, 2), ChunkParams(900, 450, 4),
                                    ChunkParams(777, 101, 1, transition_power=2.0)])
def test_host_blend_gives_the_bits_of_the_whole_buffer_blend(params):
    """HostBlend sums only the overlaps; the output must still be StreamingSeparator's, bit for
    bit, whatever the block sizes, batch sizes and length (the tail is zero-padded) — but for
    the sign of a zero the model gave (the whole-buffer blend adds it to +0), which no 16/24-bit
    sample or resampled stem can show."""
    rng = np.random.default_rng(params.segment)
    audio = rng.standard_normal((2, 5321)).astype(np.float32)
    audio[:, 100:200] = -0.0
    outs = []
    for cls in (lambda: StreamingSeparator(None, params, 2), lambda: HostBlend(params, 2)):
        stream, got, pos = cls(), [], 0
        for size in rng.integers(1, 1500, size=100):
            if pos < audio.shape[1]:
                stream.push(audio[:, pos:pos + size])
                pos += size
            else:
                stream.close()
            while stream.pending and (len(stream.pending) >= params.batch or stream.closed):
                items = stream.take(params.batch)
                stream.absorb([s for s, _ in items], _four_stems(torch.stack([c for _, c in items])))
                got += [b.clone() for b in stream.ready()]
            if stream.done:
                break
        assert stream.done
        outs.append(torch.cat(got, dim=2))
    old, new = outs
    assert new.shape == old.shape == (4, 2, audio.shape[1])
    old, new = old.numpy(), new.numpy()
    differ = old.view(np.uint32) != new.view(np.uint32)
    assert np.array_equal(old, new) and not old[differ].any()


def test_host_pcm_conversion_is_the_device_one():
    """pcm_into (numpy, in pieces) against to_pcm (torch), 16 and 24 bit, stereo and mono-mean,
    on values past full scale, signed zeros and the tiniest ones."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 70001)) * 0.6).astype(np.float32)
    x[:, :9] = [[-1.5, -1.0, -0.0, 0.0, 1e-38, 1e-45, 0.99999, 1.0, 3.0]] * 2
    x[1, 9:20] = -x[0, 9:20]
    scratch = np.empty((2, 4096), np.float32)
    for bits, dtype in ((16, np.int16), (24, np.int32)):
        for mono in (False, True):
            src = torch.from_numpy(x.copy())
            ref = to_pcm(src.mean(dim=0, keepdim=True) if mono else src, bits).numpy()
            ours = np.empty(ref.shape, dtype)
            pcm_into(x, ours, bits, mono, scratch)
            assert np.array_equal(ours, ref), (bits, mono)


def _resampled_blocks(path, rate, channels) -> np.ndarray:
    """Every frame through the resampler on its own, as AudioStream did before it let the
    filter graph gather blocks."""
    import av

    with av.open(str(path)) as c:
        r = av.AudioResampler(format="fltp", layout="stereo" if channels == 2 else "mono", rate=rate)
        out = [o.to_ndarray() for f in c.decode(c.streams.audio[0]) for o in r.resample(f)]
        out += [o.to_ndarray() for o in r.resample(None)]
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("subtype,rate,mono,want_channels", [("PCM_16", 44100, False, 2), ("PCM_24", 44100, False, 2),
                                                             ("FLOAT", 44100, False, 2), ("PCM_16", 44100, True, 1),
                                                             ("PCM_16", 44100, True, 2), ("PCM_16", 22050, False, 2)])
def test_audio_stream_gives_the_resamplers_samples_in_whole_blocks(tmp_path, subtype, rate, mono, want_channels):
    """Blocks are exactly `block` samples long (the last one shorter) and hold the samples that
    converting frame by frame gives, bit for bit: format only, mono to stereo, another rate."""
    audio = render_song(51, seconds=2.3).mixture * 1.2  # past full scale too
    path = tmp_path / ("a.flac" if subtype == "PCM_24" else "a.wav")
    sf.write(path, audio[0] if mono else audio.T, rate, subtype=subtype)
    stream = AudioStream(path, rate=44100, channels=want_channels, block=10000)
    blocks = list(stream)
    assert all(b.shape[1] == 10000 for b in blocks[:-1]) and 0 < blocks[-1].shape[1] <= 10000
    got = np.concatenate(blocks, axis=1)
    ref = _resampled_blocks(path, 44100, want_channels)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), ref.view(np.uint32))
