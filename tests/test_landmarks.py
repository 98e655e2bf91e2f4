"""The landmark core (issue 17): excerpts found where they sit, every song of a mixture found,
unrelated songs not matched, streaming == one call, the index stored and merged on disk."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from clearstem.synth import render_song
from fingerprint import landmarks as lm

RATE = lm.RATE
CATALOG = (21, 22, 23)
OTHERS = (31, 32)


def mono11k(audio: np.ndarray) -> np.ndarray:
    """44.1 kHz stereo float -> the 11025 Hz mono float the scanner decodes to."""
    return resample_poly(audio.mean(axis=0), 1, 4).astype(np.float32)


def pcm(x: np.ndarray, peak: float = 0.5) -> np.ndarray:
    return np.round(x / max(float(np.abs(x).max()), 1e-9) * peak * 32767).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def songs():
    return {seed: mono11k(render_song(seed, seconds=40).mixture) for seed in CATALOG + OTHERS}


@pytest.fixture(scope="module")
def index(songs):
    return lm.LandmarkIndex.build([(seed, *lm.reference_print(pcm(songs[seed]))) for seed in CATALOG])


def identify(index, audio, **params):
    h, t, pmap = lm.query_print(audio)
    return lm.match_landmarks(index.lookup, h, t, lm.LandmarkParams(**params), peaks=index.peaks_of, query_map=pmap)


def clip(x, start_s, seconds):
    return x[int(start_s * RATE): int((start_s + seconds) * RATE)]


def test_excerpt_found_at_its_offset(index, songs):
    matches, _ = identify(index, pcm(clip(songs[22], 12.3, 15)))
    assert [m.key for m in matches] == [22]
    m = matches[0]
    assert m.decided_by == "landmarks" and 0 < m.score <= 1
    # the excerpt's first second sits 12.3 s into the reference
    assert m.ref_start_s - m.query_start_s == pytest.approx(12.3, abs=2 * lm.FRAME_SECONDS)
    assert m.duration_s >= 10 and m.query_end_s <= 15.1
    assert m.votes >= 50 and m.votes_per_s > 3 and m.presence > m.chance


def test_two_catalog_songs_at_equal_level_both_found(index, songs):
    a, b = clip(songs[21], 5, 15), clip(songs[23], 20, 15)
    matches, _ = identify(index, pcm(a + b * rms(a) / rms(b)))
    assert {m.key for m in matches} == {21, 23}


@pytest.mark.parametrize("seed,other,start", [(21, 31, 18), (22, 31, 10), (23, 32, 5), (21, 32, 18), (22, 32, 3)])
def test_song_with_another_song_6_db_below_found_at_its_offset(index, songs, seed, other, start):
    """The louder song of two is found where it sits. (A catalog song 12 dB *under* another is
    measured by bench/mixtures.py on rendered scores: these generated songs are mostly drums and
    short notes, with few sustained partials for a buried song to keep.)"""
    main, bed = clip(songs[seed], start, 15), clip(songs[other], 3, 15)
    matches, _ = identify(index, pcm(main + bed * rms(main) / rms(bed) * 10 ** (-6 / 20)))
    assert [m.key for m in matches] == [seed]
    assert matches[0].ref_start_s - matches[0].query_start_s == pytest.approx(start, abs=2 * lm.FRAME_SECONDS)


def test_unrelated_songs_not_matched(index, songs):
    for seed in OTHERS:
        matches, rejected = identify(index, pcm(clip(songs[seed], 10, 20)))
        assert matches == []
        assert all(c.score < lm.LandmarkParams().min_score for c in rejected)
    a, b = clip(songs[31], 0, 15), clip(songs[32], 10, 15)
    assert identify(index, pcm(a + b))[0] == []


def test_streaming_in_blocks_equals_one_call(songs):
    audio = pcm(clip(songs[23], 0, 25))
    rng = np.random.default_rng(3)
    for kind in ("query", "reference"):
        whole = lm.LandmarkExtractor(kind)
        whole.feed(audio)
        h1, t1 = whole.finish()
        streamed = lm.LandmarkExtractor(kind)
        i = 0
        while i < audio.size:
            n = int(rng.integers(1, 9000))
            streamed.feed(audio[i:i + n])
            i += n
        h2, t2 = streamed.finish()
        assert h1.dtype == t1.dtype == np.uint32 and h1.size > 1000
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(whole.peaks(), streamed.peaks())
        np.testing.assert_array_equal(whole.peak_map(), streamed.peak_map())
    query = lm.landmarks(audio)
    np.testing.assert_array_equal(query[0], lm.query_print(audio)[0])
    # float PCM in [-1, 1] is the same signal
    np.testing.assert_array_equal(lm.landmarks(audio.astype(np.float32) / 32768)[0], query[0])


def test_landmark_layout():
    h, t, peaks = lm.reference_print(pcm(np.random.default_rng(0).standard_normal(RATE * 3).astype(np.float32)))
    assert h.dtype == np.uint32 and int(h.max(initial=0)) < 1 << (lm.F_BITS + lm.DF_BITS + lm.DT_BITS)
    assert np.all(np.diff(t.astype(np.int64)) >= 0)  # anchor-time order
    assert np.all((h & ((1 << lm.DT_BITS) - 1)) >= 1)  # Δt >= 1 frame
    assert peaks.dtype == np.uint32 and np.all(np.diff(peaks >> lm.PEAK_T_SHIFT) >= 0)
    assert lm.landmarks(np.zeros(0, np.int16))[0].size == 0
    assert lm.FRAME_SECONDS == pytest.approx(128 / 11025)


@pytest.mark.parametrize("shape", [(546, 512), (7, 3), (1, 40), (30, 1)])
def test_running_filters_equal_scipys_along_either_axis(shape):
    """Peak picking's running max/min (the doubling filter, rows laid end to end along the bins)
    is exactly SciPy's 1-D filter with the pad value outside the array, at every radius it uses
    and at sizes smaller than the window."""
    from scipy import ndimage

    x = np.random.default_rng(len(shape) + shape[0]).integers(0, 9000, shape).astype(np.int16)
    top = np.iinfo(np.int16).max
    for axis in (0, 1):
        for radius in (1, 2, 3, 8, 16, 172):
            w = 2 * radius + 1
            np.testing.assert_array_equal(lm._running(x, radius, axis),
                                          ndimage.maximum_filter1d(x, w, axis=axis, mode="constant", cval=lm._FLOOR))
            np.testing.assert_array_equal(lm._running(x, radius, axis, np.minimum, top),
                                          ndimage.minimum_filter1d(x, w, axis=axis, mode="constant", cval=top))
    line = x.reshape(-1)
    np.testing.assert_array_equal(lm._running(line, 8, 0),
                                  ndimage.maximum_filter1d(line, 17, mode="constant", cval=lm._FLOOR))


def test_index_arrays_save_and_map(tmp_path, index, songs):
    for name in lm.LandmarkIndex.FILES + ("values",):
        np.save(tmp_path / f"{name}.npy", getattr(index, name))
    mapped = lm.LandmarkIndex({name: np.load(tmp_path / f"{name}.npy", mmap_mode="r")
                               for name in lm.LandmarkIndex.FILES + ("values",)})
    assert mapped.values.dtype == mapped.post.dtype == np.uint32
    assert np.all(np.diff(mapped.values.astype(np.int64)) >= 0)
    a, b = identify(index, pcm(clip(songs[23], 4, 12))), identify(mapped, pcm(clip(songs[23], 4, 12)))
    assert [m.as_dict() for m in a[0]] == [m.as_dict() for m in b[0]]
    assert len(mapped) == len(CATALOG) and mapped.nbytes() == index.nbytes()


def test_common_hashes_are_capped(monkeypatch, index, songs):
    monkeypatch.setattr(lm, "MAX_POSTINGS", 0)
    h, _, _ = lm.query_print(pcm(clip(songs[21], 0, 10)))
    keys, q, r = index.lookup(h)
    assert keys.size == q.size == r.size == 0


def test_index_store_persists_merges_and_tombstones_landmark_segments(tmp_path, songs):
    """The landmark index lives in the same log-structured store as the Chromaprint index:
    one segment per batch of additions, tombstones for removals, merged by compaction — and
    matching through the store gives what the in-memory index gives."""
    from fingerprint.index import IndexStore

    store = IndexStore(tmp_path / "lm", segment_cls=lm.LandmarkIndex)
    prints = {seed: lm.reference_print(pcm(songs[seed])) for seed in CATALOG + OTHERS}
    with store.write_lock():
        store.apply(add=[(seed, *prints[seed]) for seed in CATALOG])
        store.apply(add=[(seed, *prints[seed]) for seed in OTHERS])
        store.apply(remove={31})
    index = IndexStore(tmp_path / "lm", segment_cls=lm.LandmarkIndex).index()  # another process's view
    assert index.keys() == {21, 22, 23, 32} and len(index.segments) == 2

    def found(idx, audio):
        h, t, pmap = lm.query_print(audio)
        matches, _ = lm.match_landmarks(idx.lookup, h, t, peaks=lambda k: idx.segment_of(k).peaks_of(k),
                                        query_map=pmap)
        return [(m.key, round(m.score, 6)) for m in matches]

    excerpt = pcm(clip(songs[22], 6, 12))
    before = found(index, excerpt)
    assert [k for k, _ in before] == [22]
    assert found(index, pcm(clip(songs[31], 5, 15))) == []  # removed
    with store.write_lock():
        store.compact()
    merged = store.index()
    assert len(merged.segments) == 1 and merged.keys() == {21, 22, 23, 32} and merged.tombstones == set()
    assert found(merged, excerpt) == before
    np.testing.assert_array_equal(merged.segment_of(23).peaks_of(23), prints[23][2])


def test_prints_pack_and_unpack(songs):
    audio = pcm(clip(songs[21], 0, 10))
    ref = lm.reference_print(audio)
    kind, *arrays = lm.unpack_print(lm.pack_print("reference", *ref))
    assert kind == "reference"
    for a, b in zip(arrays, ref):
        np.testing.assert_array_equal(a, b)
    query = lm.query_print(audio)
    blob = lm.pack_print("query", *query)
    kind, h, t, pmap = lm.unpack_print(blob)
    assert kind == "query" and pmap.shape == query[2].shape
    assert len(blob) - 14 - 8 * h.size < query[2].nbytes // 2  # the peak map is stored compressed
    np.testing.assert_array_equal(pmap, query[2])
    for bad in (b"", b"RIFF0000", blob[:4] + bytes([lm.PRINT_VERSION + 1]) + blob[5:]):
        with pytest.raises(ValueError):
            lm.unpack_print(bad)


def test_the_upload_scan_computes_the_same_print_on_its_threads(tmp_path, songs):
    """fingerprint.scan feeds the landmark extractor on a thread of its own, block by block (up
    to a few blocks behind the decoder), beside the Chromaprint contexts: the print equals one
    call on the same decoded PCM."""
    import av
    import soundfile as sf

    from fingerprint.scan import BLOCK, FP_RATE, QUERY_VARIANTS, REFERENCE_SPEEDS, scan_audio
    from sharedcore.media import decode_mono

    path = tmp_path / "song.wav"
    sf.write(path, songs[22][: 30 * RATE] * 0.5, RATE, subtype="PCM_16")
    scan = scan_audio(str(path), speed_variants=QUERY_VARIANTS, landmarks="query", reference_speeds=REFERENCE_SPEEDS)
    with av.open(str(path)) as container:
        blocks = list(decode_mono(container, container.streams.audio[0], FP_RATE, BLOCK))
    kind, h, t, pmap = scan.landmarks
    h1, t1, pmap1 = lm.query_print(np.concatenate(blocks))
    assert kind == "query" and h.size > 1000 and len(scan.variants) == 1 + len(QUERY_VARIANTS)
    assert [s for s, _ in scan.speeds] == list(REFERENCE_SPEEDS)
    np.testing.assert_array_equal(h, h1)
    np.testing.assert_array_equal(t, t1)
    np.testing.assert_array_equal(pmap, pmap1)


def test_a_refused_scan_leaves_no_landmark_thread_behind(tmp_path, songs, monkeypatch):
    """The landmark thread is stopped when the scan refuses a file after decoding it (a
    truncated WAV here), and an error on that thread reaches the caller instead of a print with
    a hole in it."""
    import threading

    import soundfile as sf

    from fingerprint import scan as scan_mod

    def landmark_threads() -> int:
        return sum(t.name == "landmarks" for t in threading.enumerate())

    path = tmp_path / "song.wav"
    sf.write(path, songs[22][: 30 * RATE] * 0.5, RATE, subtype="PCM_16")
    whole = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    before = landmark_threads()
    with pytest.raises(scan_mod.AudioError) as err:
        scan_mod.scan_audio(str(cut), landmarks="query")
    assert err.value.code == "corrupt_audio" and "truncated" in str(err.value)
    assert landmark_threads() == before

    class FailingExtractor(lm.LandmarkExtractor):  # fault injection: the extractor's own error path
        def feed(self, pcm):
            raise MemoryError("no room for the spectrogram")

    monkeypatch.setattr(scan_mod, "LandmarkExtractor", FailingExtractor)
    with pytest.raises(MemoryError):
        scan_mod.scan_audio(str(path), landmarks="query")
    assert landmark_threads() == before


def test_long_queries_are_matched_window_by_window(index, songs, monkeypatch):
    """A query longer than a window is judged window by window (bounded memory for hour-long
    uploads): a song in its second half is still found, where it sits in the query."""
    monkeypatch.setattr(lm, "WINDOW_FRAMES", int(round(12 / lm.FRAME_SECONDS)))
    monkeypatch.setattr(lm, "WINDOW_HOP", int(round(8 / lm.FRAME_SECONDS)))
    long = np.concatenate([clip(songs[31], 0, 20), clip(songs[23], 6, 10), clip(songs[32], 0, 10)])
    matches, _ = identify(index, pcm(long))
    assert [m.key for m in matches] == [23]
    m = matches[0]
    assert 20 - 0.5 <= m.query_start_s and m.query_end_s <= 30 + 0.5
    assert m.ref_start_s - m.query_start_s == pytest.approx(6 - 20, abs=2 * lm.FRAME_SECONDS)


def test_candidates_verified_together_are_judged_as_if_alone(index, songs):
    """Verification runs over every candidate of a window at once (one pass of array
    operations); a candidate's verdict must not depend on which others share the batch: the
    true recording at its offset, the same at a wrong offset, the others, and a candidate whose
    offset leaves too few of its peaks inside the query (None)."""
    a, b = clip(songs[21], 5, 15), clip(songs[23], 20, 15)
    h, t, pmap = lm.query_print(pcm(a + 0.5 * b))
    dmap = lm._dilate(pmap)
    offset = int(round(5 / lm.FRAME_SECONDS))
    cands = [(21, offset, 40, np.arange(40)), (23, int(round(20 / lm.FRAME_SECONDS)), 12, np.arange(0, 600, 50)),
             (21, offset + 700, 5, np.arange(5)), (22, 400, 6, np.arange(6)), (22, 10 ** 6, 4, np.arange(4))]
    peaks = lm._VerifyPeaks(index.peaks_of)
    params = lm.LandmarkParams()
    together = lm._verify_many(cands, peaks, dmap, params)
    alone = [lm._verify_many([c], peaks, dmap, params)[0] for c in cands]
    assert together == alone and together[-1] is None
    assert together[0].score > 0.9 and together[1].score > together[2].score
    assert together[0].votes == 40 and together[0].vote_seconds == 1
    # the map read bit by bit (few lookups) and unpacked (many) say the same
    rng = np.random.default_rng(3)
    t_, f_ = rng.integers(0, dmap.shape[0], 5000), rng.integers(0, lm.N_BINS, 5000)
    bitwise, unpacked = lm._reader(dmap, 1)(t_, f_), lm._reader(dmap, dmap.size + 1)(t_, f_)
    assert np.array_equal(bitwise, unpacked) and 0 < bitwise.sum() < 5000


@pytest.mark.parametrize("speed", [1.0, 1.03])
def test_alignment_check_confirms_the_right_recording_and_contradicts_others(songs, speed):
    """verify_alignment (the check every Chromaprint match must pass): the recording's peaks
    moved to a given alignment and speed are there for the right recording, at chance level for
    the others — also deep inside a longer query, and off by a Chromaprint frame or two."""
    from scipy.signal import resample_poly

    excerpt = clip(songs[22], 5, 15 * speed)
    if speed != 1.0:  # turntable-style: faster and higher
        excerpt = resample_poly(excerpt, 100, int(round(100 * speed)))
    query = np.concatenate([clip(songs[31], 0, 30), excerpt, clip(songs[32], 0, 10)])
    _, _, pmap = lm.query_print(pcm(query))
    prints = {seed: lm.reference_print(pcm(songs[seed]))[2] for seed in (21, 22, 23)}
    for seed, peaks in prints.items():
        check = lm.verify_alignment(seed, peaks, pmap, query_start_s=30.08, ref_start_s=5.0, duration_s=15.0,
                                    speed=speed)
        if seed == 22:
            assert check.score > 0.9 and check.presence > 3 * check.chance
            assert check.query_start_s == pytest.approx(30, abs=0.3)
        else:
            assert check.score < 0.15


def test_the_constellation_chooses_among_chromaprints_speed_hypotheses(songs):
    """Over a short segment Chromaprint verifies a recording at speeds ~1.5 % apart alike; its
    best match at the wrong speed would misplace the recording's peaks and be contradicted.
    `fusion.align_chromaprint` checks every hypothesis and keeps the one whose peaks land."""
    from dataclasses import replace

    from fingerprint.fusion import align_chromaprint
    from fingerprint.matcher import Match

    query = np.concatenate([clip(songs[31], 0, 30), clip(songs[22], 5, 15), clip(songs[32], 0, 10)])
    _, _, pmap = lm.query_print(pcm(query))
    peaks = lm.reference_print(pcm(songs[22]))[2]
    right = Match(key=22, ber=0.05, score=0.90, query_start_s=30.08, ref_start_s=5.0, duration_s=15.0, speed=1.0,
                  near_fraction=0.9, votes=20)
    wrong = replace(right, score=0.92, speed=0.985)  # Chromaprint's best: a higher score, the wrong speed
    for best, other in ((wrong, right), (right, wrong)):
        (chosen,), checks = align_chromaprint([replace(best, alternatives=(other,))], lambda key: peaks, pmap)
        assert chosen.speed == 1.0 and checks[22].score > 0.9
    # enough is enough: a hypothesis that reaches `good_enough` is kept without trying the rest
    (first,), checks = align_chromaprint([replace(wrong, alternatives=(right,))], lambda key: peaks, pmap,
                                         good_enough=0.3)
    assert first.speed == 0.985 and 0.3 <= checks[22].score < 0.5
    (chosen,), checks = align_chromaprint([replace(wrong, alternatives=(right,))], lambda key: peaks, pmap,
                                          good_enough=0.6)
    assert chosen.speed == 1.0 and checks[22].score > 0.9
    alone, checks = align_chromaprint([wrong], lambda key: peaks, pmap)  # no alternative: only its first seconds align
    assert alone[0].speed == 0.985 and checks[22].score < 0.5
    kept, checks = align_chromaprint([replace(wrong, alternatives=(right,))], lambda key: None, pmap)
    assert kept[0].speed == 0.985 and checks == {}  # no landmark print: Chromaprint's word stands


def _alignment_by_hand(packed, qmap, q0_s, r0_s, dur_s, speed):
    """verify_alignment's hit rates the plain way, for the test below: the map unpacked to
    booleans, dilated ±1 frame (and ±1 bin off speed), each offset tried in a loop."""
    t_ref = (packed >> lm.PEAK_T_SHIFT).astype(np.float64) * lm.FRAME_SECONDS
    f_ref = (packed & 0x1FF).astype(np.float64)
    inside = (t_ref >= r0_s) & (t_ref < r0_s + dur_s * speed)
    bits = np.unpackbits(qmap, axis=1).astype(bool)
    near = bits.copy()
    near[1:] |= bits[:-1]
    near[:-1] |= bits[1:]
    if speed != 1.0:
        wide = near.copy()
        wide[:, 1:] |= near[:, :-1]
        wide[:, :-1] |= near[:, 1:]
        near = wide
    tq = np.rint((q0_s + (t_ref[inside] - r0_s) / speed) / lm.FRAME_SECONDS).astype(np.int64)
    fq = np.rint(f_ref[inside] * speed).astype(np.int64)
    ok = (tq >= 0) & (tq < len(near)) & (fq >= 0) & (fq < lm.N_BINS)
    tq, fq = tq[ok], fq[ok]

    def best(base):
        rates = []
        for d in range(-lm.ALIGN_SEARCH, lm.ALIGN_SEARCH + 1):
            t = tq + base + d
            inb = (t >= 0) & (t < len(near))
            rates.append((near[t[inb], fq[inb]].mean() if inb.sum() >= 8 else -1.0, inb.sum(), d))
        return max(rates, key=lambda r: (r[0], -r[2]))

    rate, n, d = best(0)
    chance = np.mean([r for r in (best(c)[0] for c in lm.CHANCE_SHIFTS) if r >= 0])
    return rate, int(n), d, min(max(chance, 0.02), 0.98)


@pytest.mark.parametrize("speed", [1.0, 0.985, 1.03])
def test_alignment_check_reads_the_packed_map_as_the_plain_search_would(speed):
    """verify_alignment searches the query's packed maxima (no unpacking: a long segment's map
    unpacked cost more than the search); its hit rate, peak count, fine offset and chance must
    be those of the plain search over the unpacked map — bins next to byte and word edges and
    the ±1-bin widening off speed included. Random maxima, with the recording's peaks planted
    at a known alignment (some one bin off, which only the widening finds)."""
    rng = np.random.default_rng(int(speed * 1000))
    frames, start, ref0 = 3000, 400, 250
    bits = rng.random((frames, lm.N_BINS)) < 0.01
    t_ref = np.sort(rng.integers(ref0, ref0 + 1500, 900))
    f_ref = rng.choice(np.r_[2:min(lm.N_BINS, lm.N_BINS / speed) - 2].astype(int), 900)
    f_ref[:60] = rng.choice([62, 63, 64, 65, 127, 128, 255, 256, 447, 448], 60)  # word and byte edges
    tq = start + np.rint((t_ref - ref0) / speed).astype(int)
    fq = np.rint(f_ref * speed).astype(int) + rng.choice([0, 0, 1, -1], 900) * (speed != 1.0)
    keep = rng.random(900) < 0.5
    bits[tq[keep], np.clip(fq[keep], 0, lm.N_BINS - 1)] = True
    qmap = np.packbits(bits, axis=1)
    packed = (t_ref.astype(np.uint32) << lm.PEAK_T_SHIFT) | lm.PEAK_TONAL_BIT | f_ref.astype(np.uint32)
    q0, r0 = start * lm.FRAME_SECONDS, ref0 * lm.FRAME_SECONDS
    check = lm.verify_alignment(7, packed, qmap, query_start_s=q0, ref_start_s=r0, duration_s=20.0, speed=speed)
    rate, n, d, chance = _alignment_by_hand(packed, qmap, q0, r0, 20.0, speed)
    assert check.peaks == n and check.presence == pytest.approx(rate, abs=1e-12)
    assert check.chance == pytest.approx(chance, abs=1e-12) and rate > 0.4 > 3 * chance
    assert abs(check.query_start_s - (q0 + d * lm.FRAME_SECONDS)) < 0.5


def test_offset_counting_packs_query_frames_into_the_sort_key_exactly(index, songs):
    """_offset_candidates sorts the hits with their query frames in the low bits; when key,
    offset and frame do not fit in 63 bits it falls back to an argsort. Both give the same
    recordings, offsets, votes and aligned frames (here the fallback is forced by frames
    moved 2**40 on, offsets unchanged)."""
    h, t, _ = lm.query_print(pcm(clip(songs[21], 3, 15) + 0.5 * clip(songs[23], 10, 15)))
    keys, qi, rt = index.lookup(h)
    qt = t.astype(np.int64)[qi]
    params = lm.LandmarkParams(min_votes=2)
    fast = lm._offset_candidates(keys, qt, rt, params)
    far = 1 << 40
    slow = lm._offset_candidates(keys, qt + far, rt + far, params)
    assert len(fast) >= 3 and {c[0] for c in fast} >= {21, 23}
    assert [(k, o, v, list(f)) for k, o, v, f in fast] == [(k, o, v, list(f - far)) for k, o, v, f in slow]


def test_hit_budget_keeps_the_rarest_hash_values(monkeypatch, index, songs):
    h, _, _ = lm.query_print(pcm(clip(songs[21], 0, 10)))
    keys, q, _ = index.lookup(h)
    budget = keys.size // 3
    monkeypatch.setattr(lm, "HIT_BUDGET", budget)
    keys_b, q_b, _ = index.lookup(h)
    assert 0 < keys_b.size <= budget
    postings = np.bincount(q, minlength=h.size)  # hits per query hash without a budget
    kept = np.unique(q_b)
    dropped = np.setdiff1d(np.unique(q), kept)
    assert postings[kept].max() <= postings[dropped].min()  # the common values went first


def test_lookup_returns_every_hit_of_every_query_hash(monkeypatch, index, songs):
    """Searching the query's distinct values in sorted order gives the same hits as a search
    per query hash, duplicates included (a hash repeated in the query hits at each position)."""
    monkeypatch.setattr(lm, "HITS_PER_HASH", None)
    h, _, _ = lm.query_print(pcm(clip(songs[22], 3, 12)))
    h = np.concatenate([h, h[:50]])  # repeated values
    keys, q, r = index.lookup(h)
    lo, hi = np.searchsorted(index.values, h), np.searchsorted(index.values, h, side="right")
    where = {}  # posting -> (recording, frame), from the prints themselves
    for key, hashes, times, _ in index.refs(set()):
        for v, t in zip(hashes.tolist(), times.tolist()):
            where.setdefault(v, []).append((key, t))
    want = sorted((key, i, t) for i in range(h.size) if hi[i] > lo[i] for key, t in where[int(h[i])])
    assert sorted(zip(keys.tolist(), q.tolist(), r.tolist())) == want and len(want) > 1000


def test_bucket_table_finds_the_same_hits_and_is_saved(tmp_path, monkeypatch, index, songs):
    """A large segment's bucket table (two reads per query hash instead of a binary search)
    returns exactly the binary search's hits, and travels with the segment on disk."""
    monkeypatch.setattr(lm, "BUCKET_MIN_HASHES", 0)
    bucketed = lm.LandmarkIndex.build([(seed, *lm.reference_print(pcm(songs[seed]))) for seed in CATALOG])
    assert index.buckets is None and bucketed.buckets.size == (1 << lm.HASH_BITS) + 1
    h, _, _ = lm.query_print(pcm(clip(songs[21], 2, 12)))
    h = np.concatenate([h, [np.uint32((1 << lm.HASH_BITS) - 1)]])  # a value no reference holds
    for a, b in zip(index.lookup(h), bucketed.lookup(h)):
        assert np.array_equal(a, b)
    bucketed.save(tmp_path / "seg")
    loaded = lm.LandmarkIndex.load(tmp_path / "seg")
    assert loaded.buckets is not None and np.array_equal(loaded.buckets, bucketed.buckets)
    assert loaded.nbytes() == bucketed.nbytes()


def test_bucketed_segment_keeps_no_values_and_merges_back_exactly(tmp_path, monkeypatch, index):
    """With a bucket table the per-posting hash values are redundant: not held, not saved
    (8 bytes per reference hash, not 12), and a merge still gets every recording's hashes back
    exactly; a large segment written by an older version (values, no table) still loads."""
    refs = index.refs(set())
    monkeypatch.setattr(lm, "BUCKET_MIN_HASHES", 0)
    bucketed = lm.LandmarkIndex.build(refs)
    assert bucketed.values is None and bucketed.entries == index.entries
    assert bucketed.nbytes() == index.nbytes() - 4 * index.entries + bucketed.buckets.nbytes
    assert np.array_equal(bucketed.value_counts(), index.value_counts())
    for (k1, h1, t1, p1), (k2, h2, t2, p2) in zip(refs, bucketed.refs(set())):
        assert k1 == k2 and np.array_equal(h1, h2) and np.array_equal(t1, t2) and np.array_equal(p1, p2)
    bucketed.save(tmp_path / "new")
    assert not (tmp_path / "new" / "values.npy").exists()
    index.save(tmp_path / "old")  # saved small: values, no table; loaded where it counts as large
    old = lm.LandmarkIndex.load(tmp_path / "old")
    assert old.values is None and np.array_equal(old.buckets, bucketed.buckets)
    with pytest.raises(ValueError):
        lm.LandmarkIndex({name: getattr(index, name) for name in lm.LandmarkIndex.FILES})


def test_postings_are_one_uint32_on_the_segments_timeline(tmp_path, index, songs):
    """A posting is 4 bytes: its frame on the segment's timeline, where each recording has
    its own span; lookups find the recording and time from it. A segment saved with separate
    doc and time arrays (before stop 36) loads to the same index and matches the same."""
    refs = index.refs(set())
    assert index.post.dtype == np.uint32 and index.post.size == index.entries
    assert index.nbytes() == 4 * index.entries + index.values.nbytes + index.peaks.nbytes + 8 * 2 * (len(refs) + 1) + 8 * len(refs)
    spans = np.diff(index.frame_starts)
    assert spans.tolist() == [int(t.max()) + 1 for _, _, t, _ in refs]
    for key, hashes, times, _ in refs:  # every hash of every recording, at its own time
        keys, q, r = index.lookup(hashes[:40], hits_per_hash=0)
        for j in range(40):
            assert (key, int(times[j])) in set(zip(keys[q == j].tolist(), r[q == j].tolist()))
    # the layout of older versions: doc and time arrays instead of post and frame_starts
    doc = np.searchsorted(index.frame_starts, index.post.astype(np.int64), side="right") - 1
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name, arr in (("values", index.values), ("doc", doc.astype(np.uint32)),
                      ("time", (index.post - index.frame_starts[doc]).astype(np.uint32)),
                      ("keys", index.keys), ("peaks", index.peaks), ("peak_starts", index.peak_starts)):
        np.save(legacy / f"{name}.npy", arr)
    old = lm.LandmarkIndex.load(legacy)
    assert old.legacy and not index.legacy
    assert np.array_equal(old.post, index.post) and np.array_equal(old.frame_starts, index.frame_starts)
    audio = pcm(clip(songs[22], 5, 12))
    assert [m.as_dict() for m in identify(old, audio)[0]] == [m.as_dict() for m in identify(index, audio)[0]]


def test_a_frames_recording_is_found_across_short_and_empty_spans():
    """The block table's answer equals a binary search of the timeline's starts, with
    recordings much shorter than a block, several starting in one block and empty ones."""
    rng = np.random.default_rng(5)
    spans = rng.choice([0, 1, 7, 300, 1024, 5000, 40000], size=400)
    starts = np.r_[0, np.cumsum(spans)].astype(np.int64)
    post = rng.integers(0, starts[-1], 20000).astype(np.uint32)
    seg = lm.LandmarkIndex({"values": np.zeros(post.size, np.uint32), "post": post, "frame_starts": starts,
                            "keys": np.arange(spans.size, dtype=np.int64), "peaks": np.empty(0, np.uint32),
                            "peak_starts": np.zeros(spans.size + 1, np.int64)})
    doc, time = seg.recording_at(post)
    want = np.searchsorted(starts, post.astype(np.int64), side="right") - 1
    assert np.array_equal(doc, want) and np.array_equal(time, post - starts[want])
    assert (spans[doc] > 0).all() and (time < spans[doc]).all()


def test_bounds_hold_for_a_stores_segments_together(monkeypatch, songs):
    """Recordings spread over several segments give the hits one segment of them all gives,
    with the hits-per-hash budget binding and a hash value over MAX_POSTINGS only in total:
    the budget is the query's, not each segment's."""
    from fingerprint.index import MultiIndex

    prints = [(seed, *lm.reference_print(pcm(songs[seed]))) for seed in CATALOG + OTHERS]
    one = MultiIndex([lm.LandmarkIndex.build(prints)])
    split = MultiIndex([lm.LandmarkIndex.build(prints[:2]), lm.LandmarkIndex.build(prints[2:3]),
                        lm.LandmarkIndex.build(prints[3:])])
    h, _, _ = lm.query_print(pcm(clip(songs[22], 3, 12) + 0.5 * clip(songs[31], 10, 12)))

    def hits(index, **bounds):
        keys, q, r = index.lookup(h, **bounds)
        return sorted(zip(keys.tolist(), q.tolist(), r.tolist()))

    unbounded = hits(one, hits_per_hash=0)
    for hph in (0, 0.5, 1):
        assert hits(split, hits_per_hash=hph) == hits(one, hits_per_hash=hph)
    assert 0 < len(hits(one, hits_per_hash=0.5)) < len(unbounded)  # the budget binds
    per_value = np.bincount(np.unique(h, return_inverse=True)[1][np.array([x[1] for x in unbounded])])
    monkeypatch.setattr(lm, "MAX_POSTINGS", int(np.median(per_value[per_value > 0])))
    assert hits(split, hits_per_hash=0) == hits(one, hits_per_hash=0) != unbounded


class _SmallTimeline(lm.LandmarkIndex):
    """Segments of a few thousand frames: the split of a catalog too long for one timeline,
    at a size a test can build."""
    MAX_FRAMES = 4000


def test_a_catalog_longer_than_one_timeline_is_stored_in_several_segments(tmp_path, songs):
    from fingerprint.index import IndexStore

    prints = {seed: lm.reference_print(pcm(songs[seed])) for seed in CATALOG + OTHERS}
    assert all(3000 < lm.LandmarkIndex.spans(p[1]) <= 4000 for p in prints.values())  # 40 s: one per segment
    store = IndexStore(tmp_path / "lm", segment_cls=_SmallTimeline)
    with store.write_lock():
        store.apply(add=[(seed, *prints[seed]) for seed in CATALOG])
        store.apply(add=[(seed, *prints[seed]) for seed in OTHERS])
        store.apply(remove={31})
        store.compact()
    index = IndexStore(tmp_path / "lm", segment_cls=_SmallTimeline).index()
    assert len(index.segments) == 4 and index.keys() == {21, 22, 23, 32}
    h, t, pmap = lm.query_print(pcm(clip(songs[23], 8, 12)))
    matches, _ = lm.match_landmarks(index.lookup, h, t, peaks=lambda k: index.segment_of(k).peaks_of(k), query_map=pmap)
    assert [m.key for m in matches] == [23]
    with pytest.raises(ValueError):
        _SmallTimeline.build([(1, *prints[21]), (2, *prints[22])])
    too_long = (7, prints[21][0], prints[21][1] + 4000, prints[21][2])
    with pytest.raises(ValueError, match="spans"):
        _SmallTimeline.parts([too_long])


def test_hits_per_query_hash_are_bounded_rarest_first(monkeypatch, index, songs):
    """HITS_PER_HASH bounds a query's hits by its own length, whatever the catalog's size; the
    common hash values go first, and the song is still found on the rare ones."""
    query = pcm(clip(songs[23], 4, 12))
    h, _, _ = lm.query_print(query)
    monkeypatch.setattr(lm, "HITS_PER_HASH", None)
    _, q_all, _ = index.lookup(h)
    monkeypatch.setattr(lm, "HITS_PER_HASH", 0.5)
    keys, q, _ = index.lookup(h)
    assert 0 < keys.size <= 0.5 * h.size < q_all.size
    postings = np.bincount(q_all, minlength=h.size)
    kept = np.unique(q)
    dropped = np.setdiff1d(np.unique(q_all), kept)
    assert postings[kept].max() <= postings[dropped].min()
    matches, _ = identify(index, query)
    assert [m.key for m in matches] == [23]
    # the bound per call (the product's CLEARSTEM_LANDMARK_HITS_PER_HASH), through every segment
    from fingerprint.index import MultiIndex

    monkeypatch.setattr(lm, "HITS_PER_HASH", 8.0)
    multi = MultiIndex([index])
    for bound, want in ((0.5, q), (0, q_all)):
        assert np.array_equal(index.lookup(h, hits_per_hash=bound)[1], want)
        assert np.array_equal(multi.lookup(h, hits_per_hash=bound)[1], want)


def test_a_shared_sub_audio_hum_is_not_evidence(songs, monkeypatch):
    """Two unrelated songs that share only a 10.8 Hz hum (DC drift, rumble, a codec's artefact),
    switched on and off in the same pattern for 10 s: its peaks pair into identical hashes that
    line up at that offset and not at shifted ones. Verification does not count that band
    (`MIN_VERIFY_BIN`), so the hum is no evidence; counted, it would pass as a match."""
    rng = np.random.default_rng(5)
    n = int(10 * RATE)
    gate, pos, on = np.zeros(n, np.float32), 0, True
    while pos < n:
        length = int(rng.uniform(0.3, 0.9) * RATE)
        gate[pos: pos + length] = on
        pos, on = pos + length, not on
    hum = (0.5 * np.sin(2 * np.pi * 10.8 * np.arange(n) / RATE) * gate).astype(np.float32)

    def with_hum(x, at_s):
        x = x / max(float(np.abs(x).max()), 1e-9) * 0.5
        x[int(at_s * RATE): int(at_s * RATE) + n] += hum
        return pcm(x, peak=0.9)

    h, times, peaks = lm.reference_print(with_hum(songs[31].copy(), 2.0))
    assert ((peaks & 0x1FF) < lm.MIN_VERIFY_BIN).sum() > 30  # the hum does make peaks and hashes
    index = lm.LandmarkIndex.build([(31, h, times, peaks)])
    query = with_hum(songs[32].copy(), 20.0)
    found, rejected = identify(index, query, min_score=0.5)
    assert found == [] and all(m.score < 0.3 for m in rejected)
    monkeypatch.setattr(lm, "MIN_VERIFY_BIN", 0)
    found, _ = identify(index, query, min_score=0.5)
    assert [m.key for m in found] == [31] and found[0].query_start_s == pytest.approx(20.0, abs=1.0)


def test_scale_bench_builds_the_products_segment(tmp_path, monkeypatch, index):
    """bench.landmark_scale's counting-sort build (in memory, and as memory-mapped segment files
    for indexes larger than memory) makes exactly the segment `LandmarkIndex.build` makes, so
    what the scale bench measures is the product's index."""
    from bench.landmark_scale import build_index

    refs = index.refs(set())
    for bucket_min in (lm.BUCKET_MIN_HASHES, 0):  # small (values) and large (bucket table)
        monkeypatch.setattr(lm, "BUCKET_MIN_HASHES", bucket_min)
        want = lm.LandmarkIndex.build(refs)
        for out, pass_bytes in ((None, None), (tmp_path / f"seg-{bucket_min}", None), (tmp_path / f"p-{bucket_min}", 4096)):
            got = build_index(len(refs), lambda j: refs[j], out, batch=2, pass_bytes=pass_bytes)
            for name in lm.LandmarkIndex.FILES + lm.LandmarkIndex.OPTIONAL:
                a, b = getattr(want, name), getattr(got, name)
                assert (a is None and b is None) or np.array_equal(a, b), name
            assert (out is None) or isinstance(got.post, np.memmap)


def _judged(score, duration_s, presence, votes=20, vote_seconds=8):
    return lm.LandmarkMatch(key=1, votes=votes, votes_per_s=2.0, vote_span_s=duration_s, vote_seconds=vote_seconds,
                            query_start_s=0.0, query_end_s=duration_s, ref_start_s=0.0, duration_s=duration_s,
                            presence=presence, chance=0.05, peaks=500, z=20.0, score=score)


def test_long_segments_holding_the_recording_have_their_own_bar():
    """A match over >= long_seconds that holds >= long_min_presence of the recording's peaks is
    accepted from long_min_score; a short one, a faint one (low presence) or one that fails
    another gate still needs min_score / is refused; None turns the long bar off."""
    p = lm.LandmarkParams(min_score=0.84, long_min_score=0.64, long_seconds=10.0, long_min_presence=0.25)
    assert p.accepts(_judged(0.70, 14.9, 0.30))
    assert p.acceptance(14.9, 0.30) == 0.64 and p.acceptance(6.0, 0.9) == 0.84 and p.acceptance(14.9, 0.2) == 0.84
    assert not p.accepts(_judged(0.70, 8.0, 0.30))  # short: a local agreement in the same style
    assert not p.accepts(_judged(0.70, 14.9, 0.20))  # faint: a small share of the recording's peaks
    assert not p.accepts(_judged(0.63, 14.9, 0.50))
    assert not p.accepts(_judged(0.95, 14.9, 0.50, votes=3))  # the other gates hold at every bar
    assert not p.accepts(_judged(0.95, 14.9, 0.50, vote_seconds=1))
    assert p.accepts(_judged(0.90, 6.0, 0.20))
    off = lm.LandmarkParams(min_score=0.84, long_min_score=None)
    assert not off.accepts(_judged(0.70, 14.9, 0.30)) and off.acceptance(14.9, 0.9) == 0.84
    assert lm.LandmarkParams(min_score=0.6, long_min_score=0.7).acceptance(14.9, 0.9) == 0.6  # never above min_score


def test_a_recording_quoting_the_playing_one_is_explained_away(songs):
    """Recording 99 quotes 6 s of song 22 (the same audio) between passages of its own. A query
    of song 22 around that passage finds 22; 99 agrees with the query only through 22's own
    peaks, so it is judged on what 22 leaves unexplained and refused (explained_by 22). Without
    the rule (explain_shorter_s beyond any segment) it would be reported too: the passage is
    real evidence, and a wrong recording for the rights gate. A mashup of 22 with 31 (both
    lasting the whole query) is not affected."""
    quote = np.concatenate([songs[31][: 12 * RATE], clip(songs[22], 14, 6), songs[32][: 12 * RATE]])
    refs = [(seed, *lm.reference_print(pcm(songs[seed]))) for seed in (22, 31)] + [(99, *lm.reference_print(pcm(quote)))]
    index = lm.LandmarkIndex.build(refs)
    query = pcm(clip(songs[22], 6, 20))
    found, rejected = identify(index, query)
    assert [m.key for m in found] == [22]
    (q,) = [m for m in rejected if m.key == 99]
    assert q.explained_by == 22 and q.score < 0.5
    unexplained, _ = identify(index, query, explain_shorter_s=1e9)
    assert {m.key for m in unexplained} == {22, 99}  # the passage alone clears the bar
    a, b = clip(songs[22], 3, 15), clip(songs[31], 20, 15)
    assert {m.key for m in identify(index, pcm(a + b * rms(a) / rms(b)))[0]} == {22, 31}


@pytest.mark.parametrize("subtype,rate,channels", [("PCM_U8", 22050, 2), ("PCM_16", 44100, 2), ("PCM_32", 48000, 1),
                                                   ("FLOAT", 11025, 2), ("DOUBLE", 32000, 3)])
def test_every_sample_format_is_down_mixed_and_resampled_to_the_same_pcm(tmp_path, subtype, rate, channels):
    """`MonoPCM` reads frames as views of their planes (planar or interleaved, any sample format,
    any channel count) and resamples with libsoxr: the PCM the scan fingerprints is the mono
    mix at 11025 Hz whatever the file's format."""
    import av
    import soundfile as sf

    from fingerprint.scan import BLOCK, FP_RATE
    from sharedcore.media import decode_mono

    def tone(t):
        return 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)

    t = np.arange(int(rate * 6.0)) / rate
    x = np.stack([tone(t) * (1 + 0.1 * c) for c in range(channels)], axis=1)
    path = tmp_path / "tone.wav"
    sf.write(path, x, rate, subtype=subtype)
    with av.open(str(path)) as container:
        got = np.concatenate(list(decode_mono(container, container.streams.audio[0], FP_RATE, BLOCK)))
    n = int(round(t.size * FP_RATE / rate))
    assert got.dtype == np.int16 and abs(got.size - n) <= 2
    want = tone(np.arange(n) / FP_RATE) * (1 + 0.05 * (channels - 1)) * 32768  # the mean of the channels
    core = slice(FP_RATE // 2, n - FP_RATE // 2)  # away from the resampler's edges
    err = np.abs(got[core].astype(np.float64) - want[core]).max()
    assert err < (400 if subtype == "PCM_U8" else 60), err


def _drum_track(bpm: float, kicks, snares, hats, seconds: float = 30.0, seed: int = 0) -> np.ndarray:
    """A drum machine at 11025 Hz: one fixed noise burst per drum (the same kit in every track),
    struck at the given beat positions of each 4-beat bar, a hat left out now and then (`seed`)."""
    rng = np.random.default_rng(5)
    t = np.arange(int(0.15 * RATE)) / RATE
    kit = {"kick": np.convolve(rng.standard_normal(t.size), np.ones(24) / 24, "same") * np.exp(-t / 0.05) * 4,
           "snare": rng.standard_normal(t.size) * np.exp(-t / 0.04),
           "hat": np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.01) * 0.5}
    out = np.zeros(int(seconds * RATE) + t.size)
    beat = 60 / bpm
    play = np.random.default_rng(seed)
    for bar in range(int(seconds / (4 * beat)) + 1):
        for name, beats in (("kick", kicks), ("snare", snares), ("hat", hats)):
            for b in beats:
                if name == "hat" and play.random() < 0.3:
                    continue
                i = int((bar * 4 + b) * beat * RATE)
                if i + t.size <= out.size:
                    out[i:i + t.size] += kit[name]
    return out[: int(seconds * RATE)]


def test_rhythm_check_tells_drum_stems_apart_where_partials_cannot():
    """verify_alignment(tonal_only=False), the check a drum stem's Chromaprint match needs
    (fingerprint.stems): the same kit in another rhythm has the same chroma, but its hits land
    elsewhere; the stem itself, under noise, lands where the copy's hits are."""
    eighths = [i / 2 for i in range(8)]
    this = _drum_track(120, [0, 2], [1, 3], eighths)
    other = _drum_track(112, [0, 1.5, 2.5], [2], [h + 0.25 for h in eighths], seed=1)
    copy = this[int(8 * RATE): int(23 * RATE)] + np.random.default_rng(1).standard_normal(15 * RATE) * 0.05
    _, _, pmap = lm.query_print(pcm(copy))
    kw = dict(query_start_s=0.0, ref_start_s=8.0, duration_s=15.0)
    this_peaks = lm.reference_print(pcm(this))[2]
    right = lm.verify_alignment(1, this_peaks, pmap, tonal_only=False, **kw)
    wrong = lm.verify_alignment(2, lm.reference_print(pcm(other))[2], pmap, tonal_only=False, **kw)
    # a loop meets itself a bar later too, so chance is high (~1/3 here) and the score modest
    assert right.score > 0.7 and right.presence > 2 * right.chance
    assert wrong.score < 0.2 and wrong.presence < 1.5 * wrong.chance
    # noise bursts have few sustained partials: the tonal check has little or nothing to go on
    tonal = lm.verify_alignment(1, this_peaks, pmap, **kw)
    assert tonal is None or tonal.peaks < right.peaks / 4


def test_the_two_matchers_run_side_by_side_and_fail_loudly():
    """fusion.side_by_side: Chromaprint's matcher on its own thread while the landmark matcher
    runs on the caller's, so they overlap; an exception in either reaches the caller, and only
    after both have stopped."""
    import threading
    import time

    from fingerprint.fusion import side_by_side

    both_running = threading.Barrier(2, timeout=10)  # passes only when the two run at once
    finished = []

    def chromaprint():
        both_running.wait()
        finished.append("chromaprint")
        return threading.current_thread().name

    def landmarks():
        both_running.wait()
        return "landmarks"

    cp_thread, lm_result = side_by_side(chromaprint, landmarks)
    assert lm_result == "landmarks" and cp_thread != threading.current_thread().name
    assert side_by_side(lambda: 1, None) == (1, None)  # no landmark print: Chromaprint alone

    def slow_chromaprint():
        time.sleep(0.2)
        finished.append("slow")

    def broken_landmarks():
        raise RuntimeError("index unreadable")

    with pytest.raises(RuntimeError, match="index unreadable"):
        side_by_side(slow_chromaprint, broken_landmarks)
    assert finished[-1] == "slow"  # the Chromaprint thread had stopped before the error came up

    def broken_chromaprint():
        raise ValueError("bad items")

    with pytest.raises(ValueError, match="bad items"):
        side_by_side(broken_chromaprint, lambda: "landmarks")
