"""Small signal helpers shared by the corpus renderers (numpy only)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.audio import MODEL_SAMPLE_RATE, StreamResampler

SR = MODEL_SAMPLE_RATE


def resample(signal: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a whole mono signal."""
    resampler = StreamResampler(orig_rate, new_rate)
    return np.concatenate([resampler.process(signal), resampler.flush()])


def pitch_shift(signal: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch (and duration) by resampling, like a sampler playing a note higher or lower.

    The ratio is rounded to a fraction with a small denominator so the resampler stays cheap
    (the pitch error is far below a cent).
    """
    ratio = Fraction(2 ** (semitones / 12)).limit_denominator(48)
    if ratio == 1:
        return signal.astype(np.float32)
    return resample(signal, ratio.numerator, ratio.denominator)


def fade(signal: np.ndarray, seconds_in: float = 0.005, seconds_out: float = 0.02) -> np.ndarray:
    """Linear fade-in and fade-out (avoids clicks at cut points)."""
    out = signal.astype(np.float32, copy=True)
    n_in = min(len(out), int(seconds_in * SR))
    n_out = min(len(out), int(seconds_out * SR))
    if n_in:
        out[:n_in] *= np.linspace(0, 1, n_in, dtype=np.float32)
    if n_out:
        out[len(out) - n_out :] *= np.linspace(1, 0, n_out, dtype=np.float32)
    return out


def normalize(signal: np.ndarray, peak: float) -> np.ndarray:
    """Scale so that the largest absolute sample is ``peak`` (silence stays silence)."""
    top = float(np.max(np.abs(signal))) if signal.size else 0.0
    if top == 0:
        return signal.astype(np.float32)
    return (signal * (peak / top)).astype(np.float32)


def random_peak(rng: np.random.Generator, low_db: float = -24.0, high_db: float = -1.0) -> float:
    """A random peak level between ``low_db`` and ``high_db`` dBFS."""
    return float(10 ** (rng.uniform(low_db, high_db) / 20))


def mix_at(canvas: np.ndarray, signal: np.ndarray, start: int) -> None:
    """Add ``signal`` into ``canvas`` starting at sample ``start`` (cut at the canvas end)."""
    if start >= len(canvas):
        return
    end = min(len(canvas), start + len(signal))
    canvas[start:end] += signal[: end - start]


def write_flac(path: Path, signal: np.ndarray) -> Path:
    """Write 32 kHz mono 16-bit FLAC, clipping to [-1, 1]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(signal, -1.0, 1.0), SR, format="FLAC", subtype="PCM_16")
    return path
