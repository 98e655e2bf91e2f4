"""The landmark draft (issue 17, slice 1): an excerpt, and both songs of an equal-level
overlay, align to their references at the right offset; an unrelated song does not."""
from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from clearstem.synth import render_song
from fingerprint.landmarks import ExtractParams, LandmarkIndex, landmarks, offset_candidates

HOP_S = ExtractParams().hop / 11025


def mono11k(audio: np.ndarray) -> np.ndarray:
    return (resample_poly(audio.mean(axis=0), 1, 4) * 16000).astype(np.int16)


def test_excerpt_and_both_songs_of_an_overlay_align():
    songs = {seed: mono11k(render_song(seed, seconds=30).mixture) for seed in (11, 12, 99)}
    refs = [(seed, *landmarks(songs[seed])) for seed in (11, 12)]
    index = LandmarkIndex.build(refs)
    start = 11025 * 8
    excerpt = songs[11][start:start + 11025 * 15]
    best = offset_candidates(index.lookup, *landmarks(excerpt))
    assert best and index.keys[best[0][0]] == 11
    assert abs(best[0][1] * HOP_S - 8.0) < 0.1  # found where it sits in the reference
    overlay = (songs[11][start:start + 11025 * 15].astype(np.int32) + songs[12][start:start + 11025 * 15]) // 2
    found = {index.keys[c[0]]: c[2] for c in offset_candidates(index.lookup, *landmarks(overlay.astype(np.int16)))}
    assert {11, 12} <= set(found)
    unrelated = offset_candidates(index.lookup, *landmarks(songs[99][start:start + 11025 * 15]))
    top_true = best[0][2]
    assert all(votes < top_true / 4 for _, _, votes, *_ in unrelated)  # chance collisions only
