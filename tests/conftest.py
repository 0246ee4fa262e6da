"""Shared fixtures: small random-weight models, real audio written by the tests themselves, the
reference checkpoint's path and the way tests run the CLI (a subprocess, as a user would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tagger.checkpoint import save_model
from tagger.frontend import FrontendConfig
from tagger.model import AudioTagger, PaSST, PaSSTConfig

# The reference PaSST weights beside the repository (../shared, read-only).
REFERENCE_CHECKPOINT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "passt_reference" / "tiny.pt"
SAMPLE_RATE = 32000
SMALL_LABELS = ["low tone", "high tone", "noise", "clicks", "chirp", "silence"]
# A CPU-cheap model with the official 10 s grid (12 x 99 patches).
SMALL_CONFIG = PaSSTConfig(embed_dim=64, depth=2, num_heads=2, num_classes=len(SMALL_LABELS))


def tagger_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: fixed width, no colour, tracebacks kept as one-line errors."""
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(extra or {})}
    env.pop("TAGGER_DEBUG", None)
    return env


def run_python(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``python ARGS`` in a subprocess with :func:`tagger_env`; text output captured."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env or tagger_env(), cwd=cwd, timeout=timeout)


def run_tagger(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``tagger ARGS`` run to the end."""
    return run_python("-m", "tagger", *args, cwd=cwd, env=env, timeout=timeout)


def start_tagger(*args: object, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen:
    """``tagger ARGS`` started, its stdout and stderr as text pipes (``popen`` overrides)."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([sys.executable, "-m", "tagger", *map(str, args)], env=env or tagger_env(),
                            **options)


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


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """One tagger cache folder (downloads, cached ONNX graphs) for the whole session, outside the
    user's home; tests that need their own set TAGGER_CACHE_DIR themselves."""
    cache = tmp_path_factory.mktemp("tagger-cache")
    previous = os.environ.get("TAGGER_CACHE_DIR")
    os.environ["TAGGER_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("TAGGER_CACHE_DIR", None)
    else:
        os.environ["TAGGER_CACHE_DIR"] = previous
