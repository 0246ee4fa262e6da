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
    return _write_manifest(root / "train.csv", rows)


def _write_manifest(manifest: Path, rows: list[dict[str, str]]) -> Path:
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


# Four classes that differ in *where* their energy sits in the spectrum (the "easy set": a
# linear probe on per-band mean and deviation of log-mel tells them apart). A transformer can only
# see band positions through its frequency positional embeddings, so this set tests those too.
BAND_CLASSES = ("hum", "whistle", "hiss", "chirp")


def make_band_clip(kind: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One mono clip of a band class, with random pitch, phase and level."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    if kind == "hum":  # a low buzz: 60-140 Hz with its first harmonics
        f0 = rng.uniform(60, 140)
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
    elif kind == "whistle":  # a steady high tone, 2.5-4.5 kHz, with a little vibrato
        f = rng.uniform(2500, 4500)
        x = np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
    elif kind == "hiss":  # noise above ~5 kHz (differenced white noise, twice)
        x = np.diff(rng.standard_normal(n + 2), n=2)
    elif kind == "chirp":  # repeated upward sweeps 600-1800 Hz
        period = rng.uniform(0.15, 0.3)
        phase = (t % period) / period
        freq = 600 + 1200 * phase
        x = np.sin(2 * np.pi * np.cumsum(freq) / rate)
    else:
        raise ValueError(kind)
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.2, 0.7)
    return x.astype(np.float32)


def write_band_set(root: Path, clips: int, seed: int, rate: int = 22050,
                   seconds: tuple[float, float] = (0.8, 1.6)) -> Path:
    """``root/manifest.csv`` over stereo wav/flac clips of 0.8-1.6 s at 22.05 kHz; a quarter of the
    clips mix two classes; labels separated by ';'. Every class appears at least twice."""
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(clips):
        first = BAND_CLASSES[i % len(BAND_CLASSES)]
        kinds = [first]
        if rng.random() < 0.25:
            kinds.append(str(rng.choice([k for k in BAND_CLASSES if k != first])))
        length = rng.uniform(*seconds)
        mono = sum(make_band_clip(kind, length, rate, rng) for kind in kinds) / len(kinds)
        stereo = np.stack([mono, mono * rng.uniform(0.6, 1.0)], axis=1)
        name = f"clips/{i:03d}.{'flac' if i % 2 else 'wav'}"
        sf.write(root / name, stereo, rate)
        rows.append({"path": name, "labels": ";".join(kinds)})
    return _write_manifest(root / "manifest.csv", rows)
