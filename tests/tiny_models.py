"""Small randomly initialised models of the real architectures, installed and pinned like real
weights, and the SNR the separation tests compare outputs with."""
from pathlib import Path

import numpy as np
import torch

from separation.hdemucs import build
from separation.registry import install_model

TINY = {"channels": 8, "depth": 4, "nfft": 1024}
STEMS = ["drums", "bass", "other", "vocals"]


def snr_db(ref, est) -> float:
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - est).astype(np.float64) ** 2), 1e-30))


def install_tiny_hdemucs(model_dir: Path, name: str) -> Path:
    """A tiny HDemucs (seed 0) installed as `name` in `model_dir`; returns the folder."""
    torch.manual_seed(0)
    weights = model_dir / "staging" / f"{name}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build(STEMS, TINY).state_dict(), weights)
    install_model(weights, name, model_dir, TINY, architecture="hdemucs", stems=STEMS, sample_rate=44100,
                  weights_licence="test weights", training_data="none (random)", commercial_use=False)
    return model_dir
