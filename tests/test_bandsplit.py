"""The band-split network's pieces (separation.bandsplit): a network's masks for some stems are
its masks for all of them, cut; a specialist blended in the masks separates as two whole forward
passes blended in the estimates did (stop 81). No Django, no data: random weights."""
import pytest
import torch

from separation import bandsplit


def _random(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module.eval()


def _mixture(seconds: float = 1.5, seed: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 2, int(44100 * seconds), generator=gen) * 0.1


def test_the_masks_of_some_stems_are_the_rows_of_all_the_stems_masks():
    net = _random(bandsplit.BandSplitRNN(8, 1), 1)
    z = bandsplit.stft(_mixture())
    with torch.no_grad():
        every = net.masks_for(z)
        some = net.masks_for(z, [2, 0])
    assert every.shape == (2, 4, 2, 1025, z.shape[-1]) and some.shape == (2, 2, 2, 1025, z.shape[-1])
    assert torch.allclose(some[:, 0], every[:, 2], atol=1e-6) and torch.allclose(some[:, 1], every[:, 0], atol=1e-6)
    with torch.no_grad():  # forward is the masks on the mixture, inverted
        assert torch.equal(net(_mixture()), bandsplit.istft(every * z.unsqueeze(1), _mixture().shape[-1]))


@pytest.mark.parametrize("specialist,weight", [(("drums",), 0.5), (("drums", "bass"), {"drums": 0.5, "bass": 0.25}),
                                               (("vocals",), None)])
def test_a_specialist_blended_in_the_masks_separates_as_two_forward_passes(specialist, weight):
    """The blend moved from the estimates to the masks (the inverse STFT is linear) and the
    specialist computes only its stems: the stems are the same to float rounding, the base's
    other stems exactly; a specialist of another width or depth too."""
    x = _mixture()
    for extra in ({}, {"specialist_dim": 12, "specialist_layers": 2}):
        model = _random(bandsplit.WithSpecialist(8, 1, specialist=specialist, specialist_weight=weight, **extra), 5)
        with torch.no_grad():  # as before stop 81: two whole forward passes, blended in the estimates
            got, base, special = model(x), model.base(x), model.specialist(x)
        want = torch.stack([base[:, i] if w is None else special[:, i] if w == 1.0 else torch.lerp(base[:, i], special[:, i], w)
                            for i, w in enumerate(model.weights)], dim=1)
        assert got.shape == want.shape == (2, 4, 2, x.shape[-1])
        scale = want.abs().max()
        assert scale > 0 and (got - want).abs().max() <= 1e-5 * scale
        for i, stem in enumerate(bandsplit.STEMS):
            if stem not in specialist:
                assert torch.equal(got[:, i], base[:, i])
            else:
                assert not torch.allclose(got[:, i], base[:, i], atol=1e-3 * float(scale))


def test_magnitude_ratio_masks_share_the_mixture_out_and_none_leaves_the_masks_alone():
    """`remask="magnitude-ratio"` (stop 82): each stem gets |M_s| / Σ|M_j| of every bin — real,
    non-negative, summing to one — so the stems sum to the input; a stem the network claims nothing
    of gets nothing. None is the network's own masks, bit for bit."""
    gen = torch.Generator().manual_seed(7)
    masks = torch.complex(torch.randn(2, 4, 2, 9, 5, generator=gen), torch.randn(2, 4, 2, 9, 5, generator=gen))
    masks[:, 3, :, :2] = 0  # stem 3 claims nothing of the lowest two bins
    assert bandsplit.remasked(masks, None) is masks
    ratio = bandsplit.remasked(masks, "magnitude-ratio")
    assert not ratio.is_complex() and (ratio >= 0).all()
    assert torch.allclose(ratio.sum(1), torch.ones(2, 2, 9, 5))
    assert torch.allclose(ratio[:, 0] / ratio[:, 1], masks[:, 0].abs() / masks[:, 1].abs())  # in proportion
    assert torch.equal(ratio[:, 3, :, :2], torch.zeros(2, 2, 2, 5))
    silent = bandsplit.remasked(torch.zeros(1, 4, 2, 3, 2, dtype=torch.complex64), "magnitude-ratio")
    assert torch.equal(silent, torch.zeros(1, 4, 2, 3, 2))  # no bin claimed: silence, not NaN


@pytest.mark.parametrize("make", [lambda r: bandsplit.BandSplitRNN(8, 1, remask=r),
                                  lambda r: bandsplit.WithSpecialist(8, 1, specialist=("drums",), specialist_weight=0.5,
                                                                     remask=r)])
def test_a_remasked_network_applies_the_ratio_to_its_own_masks_and_its_stems_sum_to_the_input(make):
    x = _mixture()
    plain, ratio = _random(make(None), 5), _random(make("magnitude-ratio"), 5)
    assert "remask" not in plain.config and ratio.config["remask"] == "magnitude-ratio"
    z = bandsplit.stft(x)
    with torch.no_grad():
        got = ratio(x)
        masks = plain.final_masks(z)
        if isinstance(plain, bandsplit.WithSpecialist):  # final_masks is the blend of the two networks'
            blend = plain.base.masks_for(z)
            blend[:, 0] = torch.lerp(blend[:, 0], plain.specialist.masks_for(z, [0])[:, 0], plain.weights[0])
            assert torch.equal(masks, blend)
        want = bandsplit.istft(bandsplit.remasked(masks, "magnitude-ratio") * z.unsqueeze(1), x.shape[-1])
        before = plain(x)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert (got.sum(1) - x).abs().max() <= 1e-4 * x.abs().max()  # mixture-consistent
    assert (before.sum(1) - x).abs().max() > 1e-2 * x.abs().max()  # the network's own masks are not


def test_build_refuses_a_remask_it_does_not_have():
    with pytest.raises(ValueError, match="remask must be one of magnitude-ratio, capped, ratio-where-inconsistent"):
        bandsplit.build({"dim": 8, "layers": 1, "remask": "power-ratio"})
    with pytest.raises(ValueError, match="remask must be one of"):
        bandsplit.build({"dim": 8, "layers": 1, "specialist": ["drums"], "remask": "wiener"})
    with pytest.raises(ValueError, match="not a kit-routed one"):
        bandsplit.build({"dim": 8, "layers": 1, "kit_routed": {"below_db": -30}, "remask": "magnitude-ratio"})
    assert bandsplit.build({"dim": 8, "layers": 1, "remask": "magnitude-ratio"}).config["remask"] == "magnitude-ratio"


def test_capped_masks_shrink_only_where_the_stems_over_claim_and_keep_their_phase():
    masks = torch.tensor([0.3 + 0.4j, 0.2 + 0j, 0.1j, 0j, 1 + 0j, 1j, -1 + 0j, 1 + 0j], dtype=torch.complex64)
    masks = masks.reshape(2, 4).T.reshape(1, 4, 1, 1, 2)  # bin 0 claims |M| 0.8 in all, bin 1 claims 4
    capped = bandsplit.remasked(masks, "capped")
    assert torch.equal(capped[..., 0], masks[..., 0])  # under one: untouched
    assert torch.allclose(capped[..., 1], masks[..., 1] / 4)  # over: divided by Σ|M|, phase kept
    assert torch.allclose(capped[..., 1].abs().sum(), torch.tensor(1.0))


def test_ratio_where_inconsistent_keeps_masks_that_add_up_and_moves_those_that_miss_by_how_far():
    """g = min(1, |Σ M_j − 1|) per bin: masks summing to the mixture are kept exactly; masks missing
    it by 1 or more become the magnitude ratio; in between, a point on the line between the two."""
    consistent = torch.tensor([0.6 - 0.2j, 0.3 + 0.2j, 0.1 + 0j, 0j], dtype=torch.complex64)
    half = torch.tensor([0.6 + 0j, 0.6 + 0j, 0.3 + 0j, 0j], dtype=torch.complex64)  # sums to 1.5: g = 0.5
    far = torch.tensor([1 + 0j, 1 + 0j, 0.5 + 0j, 0.5j], dtype=torch.complex64)  # misses by more than 1: g = 1
    masks = torch.stack([consistent, half, far], dim=-1).reshape(1, 4, 1, 1, 3)
    got = bandsplit.remasked(masks, "ratio-where-inconsistent")
    ratio = bandsplit.remasked(masks, "magnitude-ratio")
    assert torch.allclose(got[..., 0], masks[..., 0])
    assert torch.allclose(got[..., 1], masks[..., 1] + 0.5 * (ratio[..., 1] - masks[..., 1]))
    assert torch.allclose(got[..., 2], ratio[..., 2].to(got.dtype))


def test_mask_gap_is_zero_for_masks_that_add_up_and_the_missed_share_otherwise():
    """bench.mask_gap's measure: the energy of (Σ M − 1)·Z re that of Z."""
    from bench.mask_gap import mask_gap

    class Fixed(torch.nn.Module):
        def __init__(self, total: float):
            super().__init__()
            self.total = total

        def final_masks(self, z):
            return torch.full((z.shape[0], 4, *z.shape[1:]), self.total / 4, dtype=z.dtype)

    x = _mixture()[0]
    assert mask_gap(Fixed(1.0), x) == pytest.approx(0.0, abs=1e-9)
    assert mask_gap(Fixed(1.5), x) == pytest.approx(0.25, rel=1e-5)  # |1.5 − 1|² of the energy
    assert mask_gap(_random(bandsplit.BandSplitRNN(8, 1), 5), x) > 0
