"""Open a model for inference: the one place that turns ``--model``, ``--device``, ``--precision``
and ``--threads`` into a backend, PyTorch (:mod:`tagger.torch_backend`) or ONNX Runtime
(:mod:`tagger.onnx_backend`), and what both share (the device parser, the input guard).

Torch-free at import: an ``.onnx`` model never loads torch.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .options import Precision, values

DEVICE_HELP = "auto, cpu, cuda or cuda:N"


class Backend(Protocol):
    """What the tagging path needs of a model: ``predict`` and the facts of its input and output."""

    name: str
    labels: list[str]
    multi_label: bool  # sigmoid scores (several labels per clip) or softmax (one)
    sample_rate: int
    min_samples: int  # shorter inputs are zero-padded to this (one patch)
    max_samples: int  # longest input: the positional grid
    context_seconds: float
    precision: str

    def predict(self, waveforms: np.ndarray) -> np.ndarray: ...


def parse_device(device: str) -> tuple[str, int | None]:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> (kind, GPU index or None); ValueError otherwise."""
    if device in ("auto", "cpu", "cuda"):
        return device, None
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return kind, int(index)
    raise ValueError(f"unknown device '{device}' (use {DEVICE_HELP})")


def fit_input(waveforms: np.ndarray, min_samples: int, max_samples: int) -> np.ndarray:
    """``[batch, samples]`` as contiguous float32: zero-padded to ``min_samples`` when shorter,
    refused (ValueError) when longer than ``max_samples``."""
    batch = np.ascontiguousarray(waveforms, dtype=np.float32)
    if batch.shape[-1] > max_samples:
        raise ValueError(f"{batch.shape[-1]} samples exceed the model's context of {max_samples}")
    if batch.shape[-1] < min_samples:
        batch = np.pad(batch, ((0, 0), (0, min_samples - batch.shape[-1])))
    return batch


def load_backend(model: str | None = None, device: str = "auto", precision: str = Precision.fp32.value,
                 threads: int | None = None, num_heads: int | None = None, progress: bool = True) -> Backend:
    """The backend for a model file or name (default: the embedded model): ONNX Runtime for an
    ``.onnx`` file (torch is never imported), else PyTorch. Bad option values raise ValueError."""
    from .onnx_backend import OnnxBackend, is_onnx_model

    if precision not in values(Precision):
        raise ValueError(f"precision must be one of {', '.join(values(Precision))}")
    parse_device(device)
    if is_onnx_model(model):
        if precision != Precision.fp32.value:
            raise ValueError("--precision applies to PyTorch models; an .onnx model runs in the precision "
                             "it was exported in (see tagger export --int8/--fp16)")
        if num_heads is not None:
            raise ValueError("--num-heads applies to official PyTorch checkpoints, not to .onnx models")
        return OnnxBackend(model, device=device, threads=threads)
    from .loading import load_model
    from .torch_backend import TorchBackend

    return TorchBackend(load_model(model, num_heads=num_heads, show_progress=progress), device=device,
                        precision=precision, threads=threads)
