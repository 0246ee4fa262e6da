"""Shared fixtures: small random-weight models and real audio written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tagger.checkpoint import save_model
from tagger.frontend import FrontendConfig
from tagger.model import AudioTagger, PaSST, PaSSTConfig

SAMPLE_RATE = 32000
SMALL_LABELS = ["low tone", "high tone", "noise", "clicks", "chirp", "silence"]
# A CPU-cheap model with the official 10 s grid (12 x 99 patches).
SMALL_CONFIG = PaSSTConfig(embed_dim=64, depth=2, num_heads=2, num_classes=len(SMALL_LABELS))


def tone(freq: float, seconds: float, rate: int = SAMPLE_RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def scene(seconds: float, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Tones, a chirp and noise bursts: a signal with structure in time and frequency."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    x += 0.2 * np.sin(2 * np.pi * (200 + 300 * t) * t)
    bursts = (np.sin(2 * np.pi * 0.3 * t) > 0.7).astype(np.float32)
    x += 0.1 * rng.standard_normal(len(t)) * bursts
    return (x / np.abs(x).max() * 0.8).astype(np.float32)


@pytest.fixture(scope="session")
def small_model() -> AudioTagger:
    torch.manual_seed(0)
    return AudioTagger(SMALL_CONFIG, FrontendConfig(), SMALL_LABELS, name="small-test").eval()


@pytest.fixture(scope="session")
def small_model_path(small_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "small.pt"
    save_model(small_model, path, metadata={"purpose": "tests"})
    return path


@pytest.fixture(scope="session")
def official_527_path(tmp_path_factory) -> Path:
    """An official-format checkpoint (plain state_dict, official keys, head_dist) with 527 classes."""
    torch.manual_seed(1)
    passt = PaSST(PaSSTConfig(embed_dim=64, depth=1, num_heads=1, num_classes=527))
    state = dict(passt.state_dict())
    state["head_dist.weight"] = torch.randn(527, 64)
    state["head_dist.bias"] = torch.randn(527)
    path = tmp_path_factory.mktemp("models") / "passt-official-format.pt"
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def scene_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "scene.wav"
    sf.write(path, scene(4.0), SAMPLE_RATE)
    return path
