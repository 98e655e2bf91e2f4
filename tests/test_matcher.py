"""The matcher core and the on-disk index on real Chromaprint fingerprints of generated audio."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from fingerprint.index import IndexStore, MultiIndex
from fingerprint.matcher import identify, identify_speeds, speed_indexes
from fingerprint.scan import (
    QUERY_VARIANTS,
    REFERENCE_SPEEDS,
    AudioError,
    check_identifiable,
    pack_variants,
    scan_audio,
    unpack_variants,
)

SR = 44100
ROOT = Path(__file__).resolve().parent.parent


def variants(path):
    return scan_audio(path, speed_variants=QUERY_VARIANTS).variants


@pytest.fixture(scope="module")
def ref_scans(audio_dir):
    return {seed: scan_audio(audio_dir / f"song{seed}.wav", reference_speeds=REFERENCE_SPEEDS) for seed in (11, 12, 13)}


@pytest.fixture(scope="module")
def refs(ref_scans):
    return [(seed, scan.fingerprint) for seed, scan in ref_scans.items()]


@pytest.fixture(scope="module")
def index(refs):
    return MultiIndex.build(refs)


@pytest.fixture(scope="module")
def indexes(ref_scans):
    """The catalog at 1.0 and at every reference speed, as the product indexes it."""
    return speed_indexes(ref_scans)


def read(audio_dir, name):
    return sf.read(audio_dir / name, always_2d=True)[0]


def test_excerpt_found_with_offsets(indexes, audio_dir):
    (m,) = identify_speeds(indexes, variants(audio_dir / "excerpt11.flac"))
    assert m.key == 11 and m.decided_by == "chromaprint"
    assert abs(m.ref_start_s - 4.0) < 0.5  # the excerpt starts 4 s into the song
    assert m.query_start_s < 0.5 and m.duration_s > 10 and m.score > 0.7 and abs(m.speed - 1) < 0.003


def test_mashup_finds_both(indexes, audio_dir, tmp_path):
    a, b = read(audio_dir, "song11.wav"), read(audio_dir, "song13.wav")
    sf.write(tmp_path / "mash.wav", np.concatenate([a[: 11 * SR], b[6 * SR: 18 * SR]]), SR)
    found = {m.key: m for m in identify_speeds(indexes, variants(tmp_path / "mash.wav"))}
    assert set(found) == {11, 13}
    assert found[13].query_start_s > 9 and abs(found[13].ref_start_s - 6) < 1


def test_sample_inside_a_longer_track(indexes, audio_dir, tmp_path):
    host = np.concatenate([read(audio_dir, "song99.wav")] * 2)  # 48 s of non-catalog music
    host[20 * SR:30 * SR] = read(audio_dir, "song12.wav")[8 * SR:18 * SR]
    sf.write(tmp_path / "inside.wav", host, SR)
    (m,) = identify_speeds(indexes, variants(tmp_path / "inside.wav"))
    assert m.key == 12 and abs(m.query_start_s - 20) < 1.5 and abs(m.ref_start_s - 8) < 1.5 and m.duration_s > 6


# grid points of the references alone (1.03, 0.97), of a reference speed times the query's
# +0.5 % variant (1.025, 0.985), and between points (1.0125)
@pytest.mark.parametrize("speed", [1.03, 0.97, 1.025, 0.985, 1.0125])
def test_speed_change_found_through_variants(index, indexes, audio_dir, tmp_path, speed):
    x = read(audio_dir, "song13.wav")[2 * SR:22 * SR]
    sped = resample_poly(x, 1000, int(round(1000 * speed)), axis=0)  # turntable-style: tempo and pitch
    sf.write(tmp_path / "sped.wav", sped, SR)
    assert identify(index, [(1.0, scan_audio(tmp_path / "sped.wav").fingerprint)]) == []  # Chromaprint alone
    (m,) = identify_speeds(indexes, variants(tmp_path / "sped.wav"))
    # Chromaprint measures speed to about ±0.5 % here: 0.5 % over this 18 s excerpt is 90 ms,
    # less than one item (124 ms), so neighbouring grid points fit the hits about as well
    assert m.key == 13 and abs(m.speed - speed) <= 0.0055 and abs(m.ref_start_s - 2) < 1
    # ... and the true speed is among the hypotheses the constellation check chooses from
    hypotheses = [m.speed, *(a.speed for a in m.alternatives)]
    assert min(abs(h - speed) for h in hypotheses) < 0.003, hypotheses
    assert all(abs(a - b) > 0.002 for i, a in enumerate(hypotheses) for b in hypotheses[:i])


def test_unrelated_audio_matches_nothing_at_any_speed(indexes, audio_dir):
    rejected = []
    assert identify_speeds(indexes, variants(audio_dir / "original.wav"), candidates=rejected) == []


def test_variants_pack_round_trip(audio_dir):
    scan = scan_audio(audio_dir / "excerpt12.flac", speed_variants=QUERY_VARIANTS, reference_speeds=REFERENCE_SPEEDS)
    assert [f for f, _ in scan.variants] == [1.0, *QUERY_VARIANTS]
    assert [s for s, _ in scan.speeds] == list(REFERENCE_SPEEDS)
    back = unpack_variants(pack_variants(scan.speeds))
    assert [s for s, _ in back] == list(REFERENCE_SPEEDS)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(scan.speeds, back))
    # speeding up shortens: the reference played at 0.97 has more items than at 1.03, and the
    # query variant 1.005 (undoing a speed-up) more than the query as it is
    assert back[0][1].size > scan.fingerprint.size > back[-1][1].size
    assert scan.variants[1][1].size >= scan.fingerprint.size


def test_a_forked_worker_scans_after_its_parent_did(audio_dir):
    """Worker processes are forked from a parent that may already have scanned with its thread
    pool (a bench building its catalog, a preloading server): the child gets a pool of its own
    instead of waiting forever on threads that did not survive the fork."""
    import multiprocessing

    path = str(audio_dir / "excerpt12.flac")
    parent = scan_audio(path, speed_variants=QUERY_VARIANTS, landmarks="query")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_scan_items, (path,)).get(timeout=60)
    assert np.array_equal(child, parent.fingerprint)


def _scan_items(path):
    return scan_audio(path, speed_variants=QUERY_VARIANTS, landmarks="query").fingerprint


def test_silence_and_short_audio_are_refused(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros((SR * 8, 2)), SR)
    scan = scan_audio(tmp_path / "silence.wav")
    assert scan.peak_dbfs == float("-inf")
    with pytest.raises(AudioError) as err:
        check_identifiable(scan, 5)
    assert err.value.code == "silent"
    sf.write(tmp_path / "short.wav", np.random.default_rng(1).standard_normal((SR * 4, 2)) * 0.1, SR)
    with pytest.raises(AudioError) as err:
        check_identifiable(scan_audio(tmp_path / "short.wav"), 5)
    assert err.value.code == "too_short"
    with pytest.raises(AudioError) as err:
        scan_audio(tmp_path / "silence.wav", max_seconds=2)
    assert err.value.code == "too_long"


# -- the on-disk index -----------------------------------------------------------------------

def test_store_is_incremental_and_survives_compaction(refs, tmp_path, audio_dir):
    store = IndexStore(tmp_path / "idx")
    query = variants(audio_dir / "excerpt12.flac")
    with store.write_lock():
        store.apply(add=refs[:1])
        store.apply(add=refs[1:])
        store.apply(add=refs[:1])  # already there: not duplicated
    index = store.index()
    assert len(index.segments) == 2 and index.keys() == {11, 12, 13} and len(index) == 3
    assert [m.key for m in identify(index, query)] == [12]
    with store.write_lock():
        store.apply(remove={12})
    assert store.index().keys() == {11, 13} and identify(store.index(), query) == []
    with store.write_lock():
        store.compact()
        store.apply(add=[(12, refs[1][1])])
    index = store.index()
    assert len(index.segments) == 2 and not index.tombstones
    assert [m.key for m in identify(index, query)] == [12]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith(("seg-", "tomb-"))) == \
        sorted(index_segment.name for index_segment in index.segments)  # old files collected


READER = """
import json, sys
from fingerprint.index import IndexStore
from fingerprint.matcher import identify
from fingerprint.scan import QUERY_VARIANTS, scan_audio
index = IndexStore(sys.argv[1]).index()
v = scan_audio(sys.argv[2], speed_variants=QUERY_VARIANTS).variants
print(json.dumps({"keys": sorted(index.keys()), "found": [m.key for m in identify(index, v)],
                  "mapped": all(type(s.values).__name__ == "memmap" for s in index.segments)}))
"""


def test_index_persists_across_processes(refs, tmp_path, audio_dir):
    """Written by this process, read by fresh ones (memory-mapped, not rebuilt); a change made
    later is seen by a reader that is already running."""
    path = tmp_path / "idx"
    with IndexStore(path).write_lock():
        IndexStore(path).apply(add=refs)

    def read_in_new_process():
        out = subprocess.run([sys.executable, "-c", READER, str(path), str(audio_dir / "excerpt11.flac")],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    assert read_in_new_process() == {"keys": [11, 12, 13], "found": [11], "mapped": True}
    reader = IndexStore(path)
    assert reader.index().keys() == {11, 12, 13}
    writer = IndexStore(path)
    with writer.write_lock():
        writer.apply(remove={11})
    assert reader.index().keys() == {12, 13}  # the running reader reopens on the new manifest
    assert read_in_new_process() == {"keys": [12, 13], "found": [], "mapped": True}


WRITER = """
import sys
import numpy as np
from fingerprint.index import IndexStore
store = IndexStore(sys.argv[1])
base = int(sys.argv[2])
for i in range(10):
    with store.write_lock():
        store.apply(add=[(base + i, np.arange(100, dtype=np.uint32) + base * 1000 + i)])
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "idx"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(base)], cwd=ROOT)
             for base in (100, 200, 300)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    index = IndexStore(path).index()
    assert index.keys() == {b + i for b in (100, 200, 300) for i in range(10)}
    assert len(index.segments) <= 9  # compaction kept the segment count bounded
    assert np.array_equal(index.items(205), np.arange(100, dtype=np.uint32) + 200_000 + 5)


def test_shared_silence_or_drone_is_not_a_match(audio_dir, tmp_path):
    """Chromaprint repeats one item value through silence or a steady tone: a catalog track
    and an unrelated upload that both end in 10 s of it must not match each other."""
    sr = SR
    t = np.arange(10 * sr) / sr
    tails = {"silence": np.zeros((10 * sr, 2)), "drone": np.repeat((0.3 * np.sin(2 * np.pi * 220 * t))[:, None], 2, 1)}
    for name, tail in tails.items():
        ref = np.concatenate([read(audio_dir, "song11.wav"), tail])
        query = np.concatenate([read(audio_dir, "song99.wav"), tail])
        sf.write(tmp_path / f"ref-{name}.wav", ref, sr)
        sf.write(tmp_path / f"q-{name}.wav", query, sr)
        index = MultiIndex.build([(1, scan_audio(tmp_path / f"ref-{name}.wav").fingerprint)])
        assert identify(index, variants(tmp_path / f"q-{name}.wav")) == [], name
        # the catalog part itself is still found with the same tail
        sf.write(tmp_path / f"ex-{name}.wav", ref[10 * sr:], sr)
        assert [m.key for m in identify(index, variants(tmp_path / f"ex-{name}.wav"))] == [1], name


def encode(audio: np.ndarray, path: Path, codec: str, fmt: str | None = None, sample_fmt: str = "fltp"):
    """Write `audio` [n, 2] with a real encoder through PyAV."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=SR, layout="stereo")
        if codec == "vorbis":  # FFmpeg's own Vorbis encoder is marked experimental
            stream.codec_context.options = {"strict": "experimental"}
        frame_size = stream.codec_context.frame_size or 1024
        data = audio.T.astype(np.float32)
        if sample_fmt == "s16":
            data = (np.clip(data, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
        for i in range(0, audio.shape[0], frame_size):
            chunk = data[:, i:i + frame_size] if sample_fmt != "s16" else data[:, 2 * i:2 * (i + frame_size)]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=sample_fmt, layout="stereo")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.mark.parametrize("name,codec,fmt,sample_fmt", [
    ("x.mp3", "libmp3lame", None, "fltp"), ("x.ogg", "vorbis", None, "fltp"), ("x.m4a", "aac", "mp4", "fltp"),
    ("x.aiff", "pcm_s16be", "aiff", "s16"), ("x.flac", "flac", None, "s16"), ("x.wav", "pcm_s16le", None, "s16"),
])
def test_common_formats_are_identified(indexes, audio_dir, tmp_path, name, codec, fmt, sample_fmt):
    audio = read(audio_dir, "song12.wav")[5 * SR:20 * SR]
    encode(audio, tmp_path / name, codec, fmt, sample_fmt)
    scan = scan_audio(tmp_path / name, speed_variants=QUERY_VARIANTS)
    assert abs(scan.duration_s - 15) < 0.2
    (m,) = identify_speeds(indexes, scan.variants)
    assert m.key == 12 and abs(m.ref_start_s - 5) < 0.5


def test_adding_one_at_a_time_keeps_the_base_segment(tmp_path):
    """Size-tiered merging: many single additions never rewrite the large base segment."""
    store = IndexStore(tmp_path / "idx")
    with store.write_lock():
        store.apply(add=[(k, np.arange(500, dtype=np.uint32) + k * 1000) for k in range(50)])
    base = store.index().segments[0].name
    with store.write_lock():
        for k in range(50, 80):
            store.apply(add=[(k, np.arange(500, dtype=np.uint32) + k * 1000)])
        store.apply(remove={3, 60})
    index = store.index()
    assert base in [seg.name for seg in index.segments] and len(index.segments) <= 9
    assert index.keys() == set(range(80)) - {3, 60} and len(index) == 78
    assert np.array_equal(index.items(70), np.arange(500, dtype=np.uint32) + 70_000)
    with store.write_lock():
        store.compact()
    assert len(store.index().segments) == 1 and len(store.index()) == 78 and not store.index().tombstones


def test_postings_are_positions_on_the_items_timeline(refs, tmp_path, audio_dir):
    """A posting is one uint32, the item's position among the recordings' items end to end
    (12 bytes per item, not 14); lookups find the recording and offset from it, items past
    65535 are indexed too, and a segment saved with doc and off arrays (before stop 36) loads
    to the same lookups."""
    from fingerprint.index import Segment

    long_ref = (99, np.tile(refs[0][1], 70000 // refs[0][1].size + 1)[:70000])  # past uint16 offsets
    seg = Segment.build(refs + [long_ref])
    assert seg.pos.dtype == np.uint32 and seg.entries == sum(r[1].size for r in refs) + 70000
    assert seg.nbytes() == 12 * seg.entries + 8 * len(seg.keys) + 8 * (len(seg.keys) + 1)
    for key, items in refs + [long_ref]:
        probe = np.arange(0, items.size, max(1, items.size // 50))
        keys, q, off = MultiIndex([seg]).lookup(items[probe])
        for j, at in enumerate(probe.tolist()):
            assert (key, at) in set(zip(keys[q == j].tolist(), off[q == j].tolist()))
    short = Segment.build(refs)  # what the old layout can hold (offsets below 65536)
    doc, off = short._timeline.locate(np.asarray(short.pos))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name, arr in (("values", short.values), ("doc", doc.astype(np.uint32)), ("off", off.astype(np.uint16)),
                      ("items", short.items_all), ("keys", short.keys), ("starts", short.starts)):
        np.save(legacy / f"{name}.npy", arr)
    loaded = Segment.load(legacy)
    assert loaded.legacy and np.array_equal(loaded.pos, short.pos)
    query = variants(audio_dir / "excerpt12.flac")
    assert [m.key for m in identify(MultiIndex([loaded]), query)] == [m.key for m in identify(MultiIndex([short]), query)] == [12]
    # a store with a segment of the old layout has it rewritten once, the others left as they are
    store = IndexStore(tmp_path / "idx")
    with store.write_lock():
        store.apply(add=refs[:2])
        store.apply(add=refs[2:])
    old_seg, new_seg = (tmp_path / "idx" / seg.name for seg in store.index().segments)
    seg = Segment.load(old_seg)
    doc, off = seg._timeline.locate(np.asarray(seg.pos))
    (old_seg / "pos.npy").unlink()
    np.save(old_seg / "doc.npy", doc.astype(np.uint32))
    np.save(old_seg / "off.npy", off.astype(np.uint16))
    store = IndexStore(tmp_path / "idx")
    assert [s.legacy for s in store.index().segments] == [True, False] and store.upgrade()
    assert not store.upgrade() and not any(s.legacy for s in store.index().segments)
    names = [s.name for s in store.index().segments]
    assert new_seg.name in names and old_seg.name not in names and not old_seg.exists()
    assert all((tmp_path / "idx" / name / "pos.npy").exists() for name in names)
    assert [m.key for m in identify(store.index(), query)] == [12] and store.index().keys() == {11, 12, 13}


def test_a_catalog_larger_than_one_timeline_is_cut_into_segments(refs):
    from fingerprint.index import Segment
    from fingerprint.timeline import cut

    class Small(Segment):
        MAX_ITEMS = max(r[1].size for r in refs) + 1  # one recording per segment

    parts = Small.parts(refs)
    assert [[k for k, _ in p] for p in parts] == [[k] for k, _ in refs]
    with pytest.raises(ValueError):
        Small.build(refs)
    assert cut([3, 3, 4, 1], 6) == [slice(0, 2), slice(2, 4)]
    with pytest.raises(ValueError, match="spans 7"):
        cut([3, 7], 6)


def test_a_bulk_loaded_store_settles_into_one_segment(tmp_path):
    """After a sync's batches, a Chromaprint store is merged into one segment (each segment
    is a search per lookup), never holding more than MAX_SEGMENTS on the way. A landmark store
    is left in its batches' segments (its merges are held in memory)."""
    from fingerprint.landmarks import LandmarkIndex

    store = IndexStore(tmp_path / "cp")
    with store.write_lock():
        for k in range(0, 60, 5):  # 12 batches: tiered merges on the way
            store.apply(add=[(j, np.arange(300, dtype=np.uint32) + j * 1000) for j in range(k, k + 5)])
            assert len(store.index().segments) <= 8
        store.settle()
    index = store.index()
    assert len(index.segments) == 1 and index.keys() == set(range(60))
    assert np.array_equal(index.items(42), np.arange(300, dtype=np.uint32) + 42_000)
    lm_store = IndexStore(tmp_path / "lm", segment_cls=LandmarkIndex)
    ref = (np.arange(50, dtype=np.uint32), np.arange(50, dtype=np.uint32), np.arange(20, dtype=np.uint32))
    with lm_store.write_lock():
        lm_store.apply(add=[(1, *ref)])
        lm_store.apply(add=[(2, *ref)])
        lm_store.settle()
    assert len(lm_store.index().segments) == 2
