"""bench.separate_variants: the wrappers do what its docstring says, on a small random band-split
network (the steps are the measurement; a wrong one would make the README's figures wrong)."""
from __future__ import annotations

import pytest
import torch

from separation.bandsplit import BandSplitRNN

variants = pytest.importorskip("bench.separate_variants")  # import errors proper: tests/test_bench_imports.py


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return BandSplitRNN(dim=8, layers=1).eval()


@pytest.fixture(scope="module")
def audio():
    torch.manual_seed(1)
    return torch.randn(1, 2, 44100 // 2)


def run(net, parts, x):
    with torch.inference_mode():
        return variants.Variant(net, set(parts))(x)


def test_base_is_the_model_untouched(net, audio):
    with torch.inference_mode():
        assert torch.equal(run(net, {"base"}, audio), net(audio))


@pytest.mark.parametrize("parts", [{"mixcons"}, {"wiener1"}, {"wiener2"}, {"tta_both", "mixcons"}])
def test_consistent_variants_sum_to_the_input(net, audio, parts):
    """Mixture consistency and the Wiener-style re-masking both give stems that add up to the input
    (a random network's raw stems do not)."""
    with torch.inference_mode():
        raw = net(audio).sum(1)
    assert (raw - audio).abs().max() > 1e-2
    out = run(net, parts, audio)
    assert out.shape == (1, 4, 2, audio.shape[-1])
    assert torch.allclose(out.sum(1), audio, atol=1e-4)


def test_test_time_averaging_undoes_each_transform(net, audio):
    """A swap of channels or of polarity in the input gives back the same estimate as the
    untransformed averaging would on the transformed input, transformed back."""
    swapped = run(net, {"tta_swap"}, audio.flip(1)).flip(2)
    assert torch.allclose(swapped, run(net, {"tta_swap"}, audio), atol=1e-5)
    flipped = -run(net, {"tta_flip"}, -audio)
    assert torch.allclose(flipped, run(net, {"tta_flip"}, audio), atol=1e-5)


def test_unknown_variant_is_refused_with_the_known_ones():
    assert variants.parse_variants("base, mixcons,tta_both+wiener1") == ["base", "mixcons", "tta_both+wiener1"]
    with pytest.raises(SystemExit, match="unknown variant part.*'seg5'.*known: base, mixcons"):
        variants.parse_variants("base,mixcons+seg5")
