"""A small band-split RNN separator (Luo & Yu, "Music source separation with band-split RNN",
2022), the architecture ClearStem trains itself on licence-recorded data (issue 16). No Django.

Why this one: on two CPU cores it is the smallest network that met the ≥ 5× real-time budget in
`separation.training.arch_candidates` with complex masks (the U-Net there masks magnitudes only,
and HDemucs-style networks ran under 2× even at 8 channels). Shape: stereo 44.1 kHz in, STFT
2048/512, 1025 bins cut into 28 bands (100 Hz wide up to 1 kHz, 250 Hz to 4 kHz, 500 Hz to
8 kHz, 1 kHz to 16 kHz, then one), one `dim`-wide feature per band and frame, `layers` dual-path
residual BLSTMs (over time within a band, then over bands within a frame), and per band a
complex mask per stem and channel applied to the mixture's STFT.

The input is normalised per chunk (mean/std of the mid channel) by the engine, as the Demucs
engines are, so training normalises each example the same way (`normalise`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from separation.voice_gate import VoiceGate

STEMS = ("drums", "bass", "vocals", "other")  # the training data's order (separation.training.compose)
N_FFT, HOP = 2048, 512
ARCHITECTURE = "bandsplit-rnn"


def stft(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T] -> complex [B, C, F, frames]."""
    b, c, t = x.shape
    z = torch.stft(x.reshape(b * c, t), N_FFT, HOP, window=torch.hann_window(N_FFT, device=x.device),
                   return_complex=True)
    return z.reshape(b, c, *z.shape[-2:])


def istft(z: torch.Tensor, length: int) -> torch.Tensor:
    shape = z.shape
    x = torch.istft(z.reshape(-1, *shape[-2:]), N_FFT, HOP, window=torch.hann_window(N_FFT, device=z.device),
                    length=length)
    return x.reshape(*shape[:-2], length)


#: What `remask` may name; None (the masks as the network made them) is every card before stop 82's.
REMASKS = ("magnitude-ratio", "capped", "ratio-where-inconsistent")


def remasked(masks: torch.Tensor, remask: str | None) -> torch.Tensor:
    """The stems' complex masks [B, S, 2, F, N] as `remask` says; None leaves them as they are.
    Why (stop 82): on a bank the network never heard, the four masks together miss the mixture by
    ~30 % of its energy (on the banks it knows, ~1.5 %: `bench.mask_gap`) — they claim what is not
    there or the same thing twice (a kit's kick in drums and in bass), and v47's FreePats bass came
    out worse than silence. Each step shares the bins out again:

    * "magnitude-ratio": each stem |M_s| / Σ|M_j| of every bin, with the mixture's phase (one
      Wiener-style step on magnitudes; the squared ratio lost on the probes, so it is not offered);
    * "capped": each mask keeps its phase and is divided by Σ|M_j| where that exceeds 1;
    * "ratio-where-inconsistent" (v48's): each bin moves from the network's masks towards the ratio
      by how far they miss the mixture there, g = min(1, |Σ M_j − 1|) — no threshold to tune, and
      masks that add up are kept.

    On v47's weights (README, "Sharing the mixture out") the first two lifted FreePats by ~0.55 dB
    of mean and cost ~0.2 dB on TimGM6mb, where the network's complex masks beat shares of the
    mixture; the third kept most of the gain and cost nothing there."""
    if check_remask(remask) is None:
        return masks
    size = masks.abs()
    if remask == "capped":
        return masks / size.sum(1, keepdim=True).clamp_min(1.0)
    ratio = size / size.sum(1, keepdim=True).clamp_min(1e-8)  # real: the mixture's phase
    if remask == "magnitude-ratio":
        return ratio
    gap = (masks.sum(1, keepdim=True) - 1).abs().clamp_max(1.0)
    return masks + gap * (ratio - masks)


def check_remask(remask: str | None) -> str | None:
    """`remask` itself when it is None or one of `REMASKS`; ValueError otherwise (a card that asks
    for a step this code does not have must not run without it)."""
    if remask is not None and remask not in REMASKS:
        raise ValueError(f"remask must be one of {', '.join(REMASKS)}, got {remask!r}")
    return remask


def band_edges(n_bins: int = N_FFT // 2 + 1, sr: int = 44100) -> list[int]:
    """Band edges in bins (see the module docstring): 28 bands at 2048 points and 44.1 kHz."""
    hz = sr / 2 / (n_bins - 1)
    edges, f = [0], 0.0
    for top, width in ((1000, 100), (4000, 250), (8000, 500), (16000, 1000)):
        while f + width <= top:
            f += width
            edges.append(min(int(round(f / hz)), n_bins))
    edges.append(n_bins)
    return sorted(set(edges))


class BandSplitRNN(nn.Module):
    def __init__(self, dim: int = 32, layers: int = 3, stems: tuple[str, ...] = STEMS, remask: str | None = None):
        super().__init__()
        self.remask = check_remask(remask)
        self.config = {"dim": dim, "layers": layers, "stems": list(stems)}
        if remask is not None:  # recorded only then: older cards have none
            self.config["remask"] = remask
        self.stems = tuple(stems)
        self.edges = band_edges()
        widths = [b - a for a, b in zip(self.edges[:-1], self.edges[1:])]
        sources = len(stems)
        self.split = nn.ModuleList(nn.Sequential(nn.LayerNorm(4 * w), nn.Linear(4 * w, dim)) for w in widths)
        self.time_rnn = nn.ModuleList(nn.LSTM(dim, dim, batch_first=True, bidirectional=True) for _ in range(layers))
        self.band_rnn = nn.ModuleList(nn.LSTM(dim, dim, batch_first=True, bidirectional=True) for _ in range(layers))
        self.time_proj = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(layers))
        self.band_proj = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(layers))
        self.norm_t = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.norm_b = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.masks = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.Tanh(),
                                                 nn.Linear(2 * dim, sources * 4 * w)) for w in widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 2, T] -> [B, stems, 2, T]."""
        z = stft(x)  # [B, 2, F, N]
        return istft(remasked(self.final_masks(z), self.remask) * z.unsqueeze(1), x.shape[-1])

    def final_masks(self, z: torch.Tensor) -> torch.Tensor:
        """Every stem's masks on `z` as the network makes them, before any `remask`
        (`bench.mask_gap` measures how far they miss the mixture)."""
        return self.masks_for(z)

    def masks_for(self, z: torch.Tensor, stems: list[int] | None = None) -> torch.Tensor:
        """The complex masks [B, S, 2, F, N] for the mixture's STFT `z` ([B, 2, F, N]), of every stem
        or of the stems at the indices `stems` only. Why apart from `forward`: a network whose
        estimates are blended with another's (`WithSpecialist`) blends the masks, which is the same
        as blending the estimates (the inverse STFT is linear), and computes only the stems it
        keeps: one STFT and one inverse STFT for both networks instead of two each."""
        b, _, _, n = z.shape
        ri = torch.view_as_real(z).permute(0, 3, 2, 1, 4)  # [B, N, F, 2 ch, re/im]
        feats = [self.split[k](ri[:, :, lo:hi].reshape(b, n, -1))
                 for k, (lo, hi) in enumerate(zip(self.edges[:-1], self.edges[1:]))]
        h = torch.stack(feats, dim=2)  # [B, N, K, D]
        k, d = h.shape[2], h.shape[3]
        for i in range(len(self.time_rnn)):
            t = h.permute(0, 2, 1, 3).reshape(b * k, n, d)
            t = self.time_proj[i](self.time_rnn[i](self.norm_t[i](t))[0]).reshape(b, k, n, d).permute(0, 2, 1, 3)
            h = h + t
            f = h.reshape(b * n, k, d)
            h = h + self.band_proj[i](self.band_rnn[i](self.norm_b[i](f))[0]).reshape(b, n, k, d)
        chosen = list(range(len(self.stems))) if stems is None else list(stems)
        masks = [self._band_masks(j, h[:, :, j], chosen).reshape(b, n, len(chosen), hi - lo, 2, 2)
                 for j, (lo, hi) in enumerate(zip(self.edges[:-1], self.edges[1:]))]
        m = torch.view_as_complex(torch.cat(masks, dim=3).float().contiguous())  # [B, N, S, F, 2 ch]; fp32 under autocast
        return m.permute(0, 2, 4, 3, 1)  # [B, S, 2, F, N]

    def _band_masks(self, band: int, h: torch.Tensor, stems: list[int]) -> torch.Tensor:
        """Band `band`'s mask head on `h` ([B, N, D]) -> [B, N, len(stems)·4·width]: the head's last
        layer's output rows are stem by stem, so a subset of stems is a subset of its rows."""
        head = self.masks[band]
        if len(stems) == len(self.stems):
            return head(h)
        out = head[3]
        rows = out.weight.shape[0] // len(self.stems)
        weight = out.weight.view(len(self.stems), rows, -1)[stems].reshape(len(stems) * rows, -1)
        bias = out.bias.view(len(self.stems), rows)[stems].reshape(-1)
        return nn.functional.linear(head[2](head[1](head[0](h))), weight, bias)


class WithSpecialist(nn.Module):
    """A base network for every stem, and a specialist network of the same shape whose estimates
    of some stems (`config["specialist"]`) replace the base's, as Demucs's `htdemucs_ft` keeps one
    fine-tuned network per source. Why: in one 32-wide network the stems compete for capacity
    (stops 38-44: every fine-tune that helped one kind of music or one stem cost another), while a
    specialist is trained on its stems' loss alone (`separation.train --loss-stems`) and the base's
    other stems stay exactly as shipped. The specialist has every stem's head, so it is fine-tuned
    from the base's weights unchanged, or deepened from them (`specialist_layers`: more capacity
    for its stems alone, stop 58), or of another width (`specialist_dim`: a 64-wide network's
    drums, vocals and *other* beside a 32-wide network's bass, stop 62); here it runs only its own
    stems' heads, and it costs a second network's features (stop 81: one STFT and one inverse STFT
    serve both). Measured in stop 45 (README, "A vocals specialist"): a vocals specialist over
    v3 gained on every set of songs and not on ensemble pieces; v8 (stop 57) ships this form.

    `specialist_weight` w (0 < w < 1) blends instead of replacing: those stems are
    w·specialist + (1 − w)·base, an ensemble of the two estimates (as Demucs's bag of models
    averages its networks'). Why (stop 77): a drums specialist trained on recorded kits gained
    ~2 dB on banks of another make and lost ~0.1 dB on the kits the base knew; their average kept
    about half of the gain and removed most, not all, of the loss (README, "Two development probes").
    The weight may differ per stem (a dict naming every specialist stem): stop 80, because a
    drums-and-bass specialist's bass (v44/v45) gained on banks of another make and lost a little
    on the default generator's songs where its drums lost nothing, so one weight for both either
    gives up the drums' gain or keeps the bass's loss."""

    def __init__(self, dim: int = 32, layers: int = 3, stems: tuple[str, ...] = STEMS,
                 specialist: tuple[str, ...] = (), specialist_layers: int | None = None,
                 specialist_dim: int | None = None, specialist_weight: float | dict[str, float] | None = None,
                 remask: str | None = None):
        super().__init__()
        if not specialist or any(s not in stems for s in specialist) or len(set(specialist)) != len(specialist):
            raise ValueError(f"a specialist's stems must be distinct stems of {list(stems)}, got {list(specialist)}")
        weights = blend_weights(specialist, specialist_weight)
        if specialist_layers is not None and specialist_layers < 1:
            raise ValueError(f"a specialist needs at least one layer, got {specialist_layers}")
        if specialist_dim is not None and specialist_dim < 1:
            raise ValueError(f"a specialist needs at least one feature per band, got {specialist_dim}")
        self.stems = tuple(stems)
        self.config = {"dim": dim, "layers": layers, "stems": list(stems), "specialist": list(specialist)}
        if specialist_layers not in (None, layers):  # deepened from the base's weights (`load_deeper`)
            self.config["specialist_layers"] = specialist_layers
        if specialist_dim not in (None, dim):  # another network's width (recorded only then: older cards)
            self.config["specialist_dim"] = specialist_dim
        if specialist_weight is not None:  # a blend (recorded only then: older cards replace)
            self.config["specialist_weight"] = (dict(weights) if isinstance(specialist_weight, dict)
                                                else float(specialist_weight))
        self.remask = check_remask(remask)
        if remask is not None:  # recorded only then: older cards have none
            self.config["remask"] = remask
        self.base = BandSplitRNN(dim, layers, stems)
        self.specialist = BandSplitRNN(specialist_dim or dim, specialist_layers or layers, stems)
        # per output stem: None (the base's), 1.0 (the specialist's) or its weight in a blend
        self.weights = [weights.get(s, 1.0) if s in specialist else None for s in stems]
        self.taken = [i for i, w in enumerate(self.weights) if w is not None]  # the specialist's stems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blended in the masks, not the estimates (the same stems: the inverse STFT is linear), and
        the specialist computes only its own stems' masks: stop 81 measured this form ~15 % faster than
        two whole forward passes blended in the estimates, with the same output to float rounding
        (tests/test_bandsplit.py)."""
        z = stft(x)
        return istft(remasked(self.final_masks(z), self.remask) * z.unsqueeze(1), x.shape[-1])

    def final_masks(self, z: torch.Tensor) -> torch.Tensor:
        """Every stem's masks on `z`, the two networks' blended, before any `remask`."""
        base, special = self.base.masks_for(z), self.specialist.masks_for(z, self.taken)
        masks = [base[:, i] if w is None else special[:, self.taken.index(i)] if w == 1.0
                 else torch.lerp(base[:, i], special[:, self.taken.index(i)], w)  # base + w·(special − base)
                 for i, w in enumerate(self.weights)]
        return torch.stack(masks, dim=1)


def blend_weights(specialist: tuple[str, ...] | list[str], weight: float | dict[str, float] | None) -> dict[str, float]:
    """Each specialist stem's weight in a blend with the base ({} when the specialist's estimates
    replace the base's): one weight for all, or a dict naming each specialist stem once. Refused
    (ValueError): a weight outside (0, 1) or NaN, a dict that leaves out or adds a stem."""
    if weight is None:
        return {}
    weights = ({str(k): v for k, v in weight.items()} if isinstance(weight, dict)
               else {s: weight for s in specialist})
    if set(weights) != set(specialist):
        raise ValueError(f"a blend weighs each of the specialist's stems {list(specialist)}, got {sorted(weights)}")
    for stem, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 < w < 1.0:  # `not <` also refuses NaN
            raise ValueError(f"a specialist's weight in a blend is between 0 and 1 (exclusive), got {w} for {stem}")
    return {s: float(weights[s]) for s in specialist}


def level_db(stem: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Per example, a stem estimate's energy re its mixture's, in dB ([B, C, T] each -> [B]). A
    silent chunk (zero padding at the end of an input) reads 0 dB: loud, so it is never "kit-less"."""
    eps = 1e-10
    return 10 * torch.log10((stem.float().pow(2).sum(dim=(1, 2)) + eps) / (mixture.float().pow(2).sum(dim=(1, 2)) + eps))


class KitRouted(nn.Module):
    """A base network for every chunk, and an expert network of the same shape whose stems replace
    the base's on chunks with no drum kit to speak of: where the base's own drums estimate lies
    below `below_db` re the chunk's mixture. Why: every fine-tune that lifted the orchestras (stops
    64-68: d28, d30, d33 and their soup) cost the default kind of song, whose every song has a kit,
    and gained most on the orchestral pieces without one; no rate, dose or average kept the gain
    without the loss in one network. Routing by the stem the base finds best keeps the base's
    stems exactly where there is a kit and gives kit-less music (orchestras, voice and piano,
    quartets) the expert. Chunks are routed one by one (the engine's overlap-add cross-fades
    between neighbours that went different ways); an expert chunk costs a second forward pass.
    Measured in stop 69 (README, "v30 and v31 judged"): identical to the base on every song with a
    kit, +0.19 dB on orchestras, but −0.28 on Lieder (kit-less, sung) — no shipped model uses it yet.
    So a chunk may also need a voice gate's consent (`separation.voice_gate`, stop 70): only the
    kit-less chunks where it hears no voice go to the expert. An expert trained on kit-less music
    only, at half the rate (stop 72's v35), lost on the Lieder too (−0.31 dB per song) while it
    gained on the same songs rendered with a bank it trained on: the loss is the unseen bank's."""

    def __init__(self, dim: int = 32, layers: int = 3, stems: tuple[str, ...] = STEMS, below_db: float = -30.0,
                 vocals_below_db: float | None = None, gate_below: float | None = None):
        super().__init__()
        if "drums" not in stems or (vocals_below_db is not None and "vocals" not in stems):
            raise ValueError(f"routing by the kit (and the voice) needs a drums (and a vocals) stem, got {list(stems)}")
        if not all(math.isfinite(v) for v in (below_db, vocals_below_db, gate_below) if v is not None):
            raise ValueError(f"below_db, vocals_below_db and gate_below must be finite, got {below_db}, "
                             f"{vocals_below_db}, {gate_below}")
        self.stems, self.below_db, self.drums = tuple(stems), float(below_db), stems.index("drums")
        routed = {"below_db": self.below_db}
        #: with a level, only chunks with no voice either go to the expert (stop 69: v31 sent the Lieder)
        self.vocals_below_db = None if vocals_below_db is None else float(vocals_below_db)
        if self.vocals_below_db is not None:
            self.vocals = stems.index("vocals")
            routed["vocals_below_db"] = self.vocals_below_db
        #: with a gate, only chunks where a voice detector hears no voice (stop 70: v32's level could not tell)
        self.gate_below = None if gate_below is None else float(gate_below)
        if self.gate_below is not None:
            self.gate = VoiceGate()
            routed["voice_gate"] = {"below": self.gate_below}
        self.config = {"dim": dim, "layers": layers, "stems": list(stems), "kit_routed": routed}
        self.base = BandSplitRNN(dim, layers, stems)
        self.expert = BandSplitRNN(dim, layers, stems)

    def kitless(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        """[B] booleans: the chunks the expert separates."""
        routed = level_db(base_out[:, self.drums], x) < self.below_db
        if self.vocals_below_db is not None:
            routed &= level_db(base_out[:, self.vocals], x) < self.vocals_below_db
        if self.gate_below is not None and routed.any():  # the gate runs on the kit-less chunks only
            routed[routed.clone()] = self.gate(x[routed]) < self.gate_below
        return routed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        routed = self.kitless(x, y)
        if routed.any():
            y = y.clone()
            y[routed] = self.expert(x[routed]).to(y.dtype)
        return y


#: The passes `PassAverage` runs, by count: (channels swapped?, delay in samples). 2 and 4 only.
PASS_TRANSFORMS = {2: ((False, 0), (True, HOP // 2)),
                   4: ((False, 0), (True, HOP // 4), (False, HOP // 2), (True, 3 * HOP // 4))}


class PassAverage(nn.Module):
    """The network run on a few transformed copies of the input, each estimate transformed back and
    the estimates averaged (test-time augmentation, as Demucs's `--shifts`). The transforms are a
    left/right swap and a delay by part of the STFT hop, so each pass sees the audio on another
    frame grid and with the channels in the other order: their errors differ, the stems do not.
    Why these two: on development data (stop 48) a delay helped most, a swap a little, and a
    polarity flip hurt the drums. Costs one forward pass per pass."""

    def __init__(self, network: nn.Module, passes: int):
        super().__init__()
        if passes not in PASS_TRANSFORMS:
            raise ValueError(f"passes must be 1, {' or '.join(map(str, PASS_TRANSFORMS))}; got {passes}")
        self.network, self.transforms = network, PASS_TRANSFORMS[passes]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 2, T] -> [B, stems, 2, T]: the mean of the passes, each aligned back to `x`."""
        total = None
        for swap, delay in self.transforms:
            y = x.flip(1) if swap else x
            y = self.network(nn.functional.pad(y, (delay, 0)) if delay else y)[..., delay:]
            y = y.flip(2) if swap else y
            total = y if total is None else total + y
        return total / len(self.transforms)


def describe_passes(passes: int) -> list[str]:
    """The passes as provenance records them, e.g. ["plain", "swapped, delayed 256 samples"]."""
    return [", ".join(filter(None, ("swapped" if swap else "", f"delayed {delay} samples" if delay else "")))
            or "plain" for swap, delay in PASS_TRANSFORMS[passes]]


def build(config: dict, stems: tuple[str, ...] = STEMS) -> nn.Module:
    """The network a model card's `config` describes: `dim`, `layers` and, optionally,
    `specialist` (stems whose estimates come from a second network, `WithSpecialist`) or
    `kit_routed` (a second network for the chunks without a kit, `KitRouted`), with
    `specialist_layers` when that network is deeper than the base, `specialist_dim` when it
    is of another width and `specialist_weight` (one number, or one per stem) when its stems blend
    with the base's; `remask` (`remasked`) for how the final masks share the mixture."""
    dim, layers = int(config.get("dim", 32)), int(config.get("layers", 3))
    remask = config.get("remask")
    if config.get("kit_routed"):
        if remask is not None:
            raise ValueError("remask is for a band-split network or one with a specialist, not a kit-routed one")
        routed = config["kit_routed"]
        vocals, gate = routed.get("vocals_below_db"), routed.get("voice_gate")
        return KitRouted(dim, layers, tuple(stems), float(routed["below_db"]), None if vocals is None else float(vocals),
                         None if gate is None else float(gate["below"]))
    if config.get("specialist"):
        deeper, width = config.get("specialist_layers"), config.get("specialist_dim")
        weight = config.get("specialist_weight")
        return WithSpecialist(dim, layers, tuple(stems), tuple(config["specialist"]),
                              None if deeper is None else int(deeper), None if width is None else int(width),
                              weight if weight is None or isinstance(weight, dict) else float(weight), remask)
    return BandSplitRNN(dim, layers, tuple(stems), remask)


def normalise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x - mean) / std of the mid channel per example, with the mean and std to undo it: the
    same per-chunk normalisation `separation.hdemucs.normalised_run` applies at inference."""
    ref = x.mean(dim=1, keepdim=True)
    mean = ref.mean(dim=-1, keepdim=True)
    std = ref.std(dim=-1, keepdim=True).clamp_min(1e-8)
    return (x - mean) / std, mean, std


def layer_count(state: dict) -> int:
    """How many layers a `BandSplitRNN` state dict holds."""
    return 1 + max((int(k.split(".")[1]) for k in state if k.startswith("time_rnn.")), default=-1)


def width(state: dict) -> int:
    """How many features per band a `BandSplitRNN` state dict holds (its `dim`)."""
    return int(state["norm_t.0.weight"].shape[0])


def load_deeper(model: BandSplitRNN, state: dict) -> int:
    """Load the weights of a network of the same width and fewer layers into `model`: they become
    its first layers, and each extra layer's two output projections start at zero, so every extra
    layer is the identity (the layers are residual) and `model` computes exactly what the loaded
    network did. Why: training from scratch on two CPU cores takes thousands of steps, so a deeper
    model starts from the shipped weights and only has to learn what the new layers add. Returns
    the number of layers added; refuses a state of another width or with more layers."""
    loaded = layer_count(state)
    ours = len(model.time_rnn)
    width = state.get("norm_t.0.weight")
    if width is None or width.shape[0] != model.config["dim"] or not 0 < loaded <= ours:
        raise ValueError(f"cannot load a {loaded}-layer state of width "
                         f"{None if width is None else width.shape[0]} into {ours} layers of width {model.config['dim']}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    new = tuple(f"{part}.{i}." for i in range(loaded, ours)
                for part in ("time_rnn", "band_rnn", "time_proj", "band_proj", "norm_t", "norm_b"))
    if unexpected or any(not k.startswith(new) for k in missing):
        raise ValueError(f"state does not fit: unexpected {unexpected[:3]}, missing {missing[:3]}")
    with torch.no_grad():
        for i in range(loaded, ours):
            for proj in (model.time_proj[i], model.band_proj[i]):
                proj.weight.zero_()
                proj.bias.zero_()
    return ours - loaded


def _repeat_rows(w: torch.Tensor, times: int, blocks: int) -> torch.Tensor:
    """Rows laid out as `blocks` equal blocks (an LSTM's four gates, or one), each block repeated
    `times` times in place: new unit u of a block is old unit u mod (block size)."""
    return torch.cat([blk.repeat((times,) + (1,) * (w.dim() - 1)) for blk in w.chunk(blocks, dim=0)], dim=0)


def _split_columns(w: torch.Tensor, times: int, blocks: int, gen: torch.Generator, spread: float) -> torch.Tensor:
    """Columns that read units repeated by `_repeat_rows` (same `blocks`): each old column becomes
    `times` columns whose weights sum to it, in random shares (1 ± `spread`, normalised) per weight.
    The sum keeps the layer's output exactly (its inputs are copies); unequal shares break the
    copies' symmetry, or they would get the same gradients and stay copies for ever (Net2Net's
    noise, Chen et al. 2016, without changing the function)."""
    parts = []
    for blk in w.chunk(blocks, dim=1):
        shares = 1 + spread * (2 * torch.rand((times, *blk.shape), generator=gen) - 1)
        shares = shares / shares.sum(dim=0, keepdim=True)
        parts.append(torch.cat(list(shares * blk.unsqueeze(0)), dim=1))
    return torch.cat(parts, dim=1)


def load_wider(model: BandSplitRNN, state: dict, gen: torch.Generator, spread: float = 0.5) -> int:
    """Load a network of the same depth and a width that divides `model`'s into `model`, each
    feature unit repeated (width / its width) times, so that `model` computes what the loaded
    network did: residual features, LSTM units (per gate) and the mask heads' hidden units are
    copied; each layer that reads copies gets its weights split among them (`_split_columns`);
    every layer norm sees each value equally often, so its mean and variance are unchanged.
    Why: stops 38-59 found every fine-tune of the 32-wide network trading one kind of music for
    another; a wider network has room for both, and on two CPU cores it must start from what the
    shipped weights know rather than from random ones. Returns the factor; refuses other shapes."""
    ours, dim = len(model.time_rnn), model.config["dim"]
    width = state.get("norm_t.0.weight")
    if width is None or dim % width.shape[0] or layer_count(state) != ours:
        raise ValueError(f"cannot widen a {layer_count(state)}-layer state of width "
                         f"{None if width is None else width.shape[0]} into {ours} layers of width {dim} "
                         "(same depth, a width that divides it)")
    times = dim // width.shape[0]
    wide = {}
    for key, w in state.items():
        part = key.split(".")[0]
        if part == "split":  # [LayerNorm over the band's bins (unchanged), Linear bins -> dim]
            wide[key] = w if key.split(".")[2] == "0" else _repeat_rows(w, times, 1)
        elif part in ("norm_t", "norm_b"):
            wide[key] = _repeat_rows(w, times, 1)
        elif part in ("time_rnn", "band_rnn"):  # gates i, f, g, o; input and hidden state are copies
            w = _repeat_rows(w, times, 4)
            wide[key] = _split_columns(w, times, 1, gen, spread) if key.split(".")[2].startswith("weight") else w
        elif part in ("time_proj", "band_proj"):  # reads [forward units, backward units]
            w = _repeat_rows(w, times, 1)
            wide[key] = _split_columns(w, times, 2, gen, spread) if key.endswith("weight") else w
        elif part == "masks":  # [LayerNorm(dim), Linear(dim, 2 dim), Tanh, Linear(2 dim, stems x bins)]
            layer = key.split(".")[2]
            w = _repeat_rows(w, times, 1) if layer in ("0", "1") else w  # the output stays stems x bins
            reads_copies = layer != "0" and key.endswith("weight")
            wide[key] = _split_columns(w, times, 1, gen, spread) if reads_copies else w
        else:
            raise ValueError(f"cannot widen {key}: not a band-split parameter")
    model.load_state_dict(wide)
    return times
