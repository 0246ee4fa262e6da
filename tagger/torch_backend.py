"""Run a PyTorch model on batches of waveforms: numpy in, probabilities out."""

from __future__ import annotations

import numpy as np
import torch

from .memory import map_large_allocations_separately
from .model import AudioTagger

PRECISIONS = ("fp32", "bf16")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; ValueError otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' asked for, but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device '{name}' (use auto, cpu, cuda or cuda:N)")
    return device


class TorchBackend:
    """Batched inference with an :class:`AudioTagger` on CPU or CUDA, in float32 or bfloat16."""

    def __init__(self, model: AudioTagger, device: str = "auto", precision: str = "fp32",
                 threads: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        map_large_allocations_separately()
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        if precision == "bf16":
            self.model.passt.to_bfloat16()
        self.precision = precision

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @property
    def multi_label(self) -> bool:
        return self.model.multi_label

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def max_samples(self) -> int:
        return self.model.max_samples

    @property
    def min_samples(self) -> int:
        return self.model.min_samples

    @property
    def context_seconds(self) -> float:
        return self.model.context_seconds

    @torch.inference_mode()
    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        """``[batch, samples]`` float32 at the model's rate -> probabilities ``[batch, classes]``.

        Inputs shorter than one patch (:attr:`min_samples`) are zero-padded to it; inputs longer
        than the positional grid (:attr:`max_samples`) are refused.
        """
        batch = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32))
        if batch.shape[-1] > self.max_samples:
            raise ValueError(f"{batch.shape[-1]} samples exceed the model's context of {self.max_samples}")
        if batch.shape[-1] < self.min_samples:
            batch = torch.nn.functional.pad(batch, (0, self.min_samples - batch.shape[-1]))
        logits, _ = self.model(batch.to(self.device))
        return self.model.probabilities(logits.float()).cpu().numpy()
