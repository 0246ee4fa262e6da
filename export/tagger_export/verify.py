"""Check an exported model against the PyTorch model it came from, on real audio.

Every case is a batch of windows cut from the verification audio at different offsets, at the
lengths that matter: the shortest input the model accepts, about 1 s, half the context and the
full context, with one and several windows per batch. The ONNX side runs in the session of
:class:`tagger.onnx_backend.OnnxBackend`, as ``tagger file`` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tagger.audio import load_audio
from tagger.errors import TaggerError
from tagger.model import AudioTagger
from tagger.onnx_backend import INPUT_NAME, OnnxBackend
from tagger.options import EXACT_LIMIT

# Largest accepted max |p_onnx - p_torch| per variant. fp32 must reproduce the model; the reduced
# precisions are compared with the float32 model too, and only gross errors (a broken graph) fail.
TOLERANCES = {"fp32": EXACT_LIMIT, "fp16": 1e-2, "int8": 1e-1}
BATCH_SIZES = (1, 3)


class VerificationError(TaggerError):
    """The exported model does not reproduce the PyTorch model."""


@dataclass(frozen=True)
class CaseResult:
    batch: int
    samples: int
    seconds: float
    max_diff: float  # max |probability difference| over the batch and the classes
    mean_diff: float
    embedding_diff: float  # max |embedding difference|


def synthetic_scene(seconds: float, rate: int) -> np.ndarray:
    """Deterministic test audio (AM tone, chirp, harmonics, noise bursts, clicks) when no file is given."""
    rng = np.random.default_rng(20240611)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    x += 0.2 * np.sin(2 * np.pi * (150 + 400 * t) * t)
    x += sum(0.05 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 8))
    x += 0.15 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.4 * t) > 0.6)
    x[:: rate // 4] += 0.5
    return (x / np.abs(x).max() * 0.8).astype(np.float32)


def verification_audio(paths: Sequence[str | Path], rate: int, min_length: int) -> np.ndarray:
    """The given files decoded to mono at ``rate`` and joined (repeated up to ``min_length``)."""
    if paths:
        signal = np.concatenate([load_audio(path, target_rate=rate) for path in paths])
        if not signal.size or not np.abs(signal).max() > 0:
            raise VerificationError("the verification audio is silent: give files with sound in them")
    else:
        signal = synthetic_scene(min_length / rate, rate)
    return np.tile(signal, -(-min_length // len(signal)))


def case_lengths(model: AudioTagger) -> list[int]:
    """The shortest accepted input, about 1 s, half the context and the full context (in samples)."""
    lengths = {model.min_samples, min(model.sample_rate, model.max_samples),
               model.max_samples // 2, model.max_samples}
    return sorted(lengths)


def batch_of(signal: np.ndarray, batch: int, samples: int, step: int) -> np.ndarray:
    return np.stack([signal[i * step: i * step + samples] for i in range(batch)])


@torch.inference_mode()
def compare(model: AudioTagger, backend: OnnxBackend, signal: np.ndarray) -> list[CaseResult]:
    """Run every case through both models; the signal must hold the longest case."""
    model = model.float().eval()
    step = model.sample_rate // 3
    results = []
    for samples in case_lengths(model):
        for batch in BATCH_SIZES:
            x = batch_of(signal, batch, samples, step)
            logits, embedding = model(torch.from_numpy(x))
            expected = model.probabilities(logits).numpy()
            probabilities, onnx_embedding = backend.session.run(None, {INPUT_NAME: x})
            diff = np.abs(probabilities - expected)
            embedding_diff = float(np.abs(onnx_embedding - embedding.numpy()).max())
            results.append(CaseResult(batch, samples, samples / model.sample_rate, float(diff.max()),
                                      float(diff.mean()), embedding_diff))
    return results


def verify(model: AudioTagger, onnx_path: str | Path, audio: Sequence[str | Path] = (),
           device: str = "auto", threads: int | None = None) -> tuple[OnnxBackend, list[CaseResult]]:
    """Compare the exported file with ``model``; raise VerificationError when it is out of tolerance."""
    backend = OnnxBackend(onnx_path, device=device, threads=threads)
    signal = verification_audio(audio, model.sample_rate,
                                model.max_samples + (max(BATCH_SIZES) - 1) * (model.sample_rate // 3))
    results = compare(model, backend, signal)
    worst = max(r.max_diff for r in results)
    limit = TOLERANCES[backend.precision]
    if not worst <= limit:  # also catches NaN
        raise VerificationError(
            f"{onnx_path}: the {backend.precision} export differs from the PyTorch model by up to "
            f"{worst:.3g} in probability (limit {limit:g})"
        )
    return backend, results
