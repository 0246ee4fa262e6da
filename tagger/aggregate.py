"""From per-window probabilities to clip scores and a compact timeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .options import Pooling, values

POOLINGS = values(Pooling)


def pool_windows(probabilities: np.ndarray, pooling: str = "max") -> np.ndarray:
    """Clip-level scores from ``[windows, classes]``: max (is the sound anywhere?) or mean."""
    if pooling == "max":
        return probabilities.max(axis=0)
    if pooling == "mean":
        return probabilities.mean(axis=0)
    raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")


def top_k(probabilities: np.ndarray, k: int) -> list[int]:
    """Indices of the k most probable classes, most probable first."""
    k = min(k, len(probabilities))
    best = np.argpartition(-probabilities, k - 1)[:k]
    return sorted(best.tolist(), key=lambda i: -probabilities[i])


@dataclass(frozen=True)
class Segment:
    """Consecutive windows that share their most probable label."""

    start: float
    end: float
    label_index: int
    peak: float  # highest probability of that label inside the segment
    windows: int


def timeline(starts: np.ndarray, ends: np.ndarray, probabilities: np.ndarray) -> list[Segment]:
    """Merge consecutive windows with the same top label into segments."""
    segments: list[Segment] = []
    for start, end, probs in zip(starts, ends, probabilities):
        best = int(np.argmax(probs))
        last = segments[-1] if segments else None
        if last is not None and last.label_index == best:
            segments[-1] = Segment(last.start, float(end), best, max(last.peak, float(probs[best])),
                                   last.windows + 1)
        else:
            segments.append(Segment(float(start), float(end), best, float(probs[best]), 1))
    return segments
