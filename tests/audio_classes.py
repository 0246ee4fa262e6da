"""A small labelled dataset of distinct, real signals written as audio files (for training tests)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

# Classes that differ in the texture of their spectrogram patches (a line, a comb, a flat surface,
# vertical stripes, blocks), which a tiny transformer from scratch tells apart within a few
# hundred steps; telling pitches apart needs learned positional embeddings and many more steps.
CLASSES = ("tone", "harmonics", "noise", "clicks", "bursts")


def make_clip(kind: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of a class, with random pitch/rate/level jitter so that no two files are equal."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    if kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(300, 3000) * t + rng.uniform(0, 6))
    elif kind == "harmonics":
        f0 = rng.uniform(150, 300)
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 16))
    elif kind == "noise":
        x = rng.standard_normal(n)
    elif kind == "clicks":
        x = np.zeros(n)
        period = int(rate / rng.uniform(20, 40))
        x[int(rng.integers(period))::period] = 1.0
    elif kind == "bursts":  # noise switched on and off 2-4 times a second
        gate = np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)) > 0
        x = rng.standard_normal(n) * gate
    else:
        raise ValueError(kind)
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.8)
    return x.astype(np.float32)


def write_folders(root: Path, per_class: int, seconds: float = 1.5, rate: int = 16000,
                  seed: int = 0, classes: tuple[str, ...] = CLASSES) -> Path:
    """``root/<class>/<n>.wav`` (or .flac for odd files): single-label class folders."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            suffix = "flac" if i % 2 else "wav"
            sf.write(folder / f"{i}.{suffix}", make_clip(kind, seconds, rate, rng), rate)
    return root


def write_manifest(root: Path, clips: int, seconds: float = 1.5, rate: int = 16000,
                   seed: int = 0) -> Path:
    """A multi-label CSV manifest: each clip mixes one or two classes (labels separated by ',')."""
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(clips):
        count = 1 + int(rng.integers(2))
        kinds = [CLASSES[k] for k in rng.choice(len(CLASSES), size=count, replace=False)]
        mix = sum(make_clip(kind, seconds, rate, rng) for kind in kinds) / count
        sf.write(root / "clips" / f"{i}.wav", mix, rate)
        rows.append({"path": f"clips/{i}.wav", "labels": ",".join(kinds)})
    manifest = root / "train.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
