"""Run a PyTorch model on batches of waveforms: numpy in, probabilities out."""

from __future__ import annotations

import numpy as np
import torch

from .backends import batch_size_for, fit_input, model_thresholds, parse_device
from .memory import map_large_allocations_separately
from .model import AudioTagger
from .options import Precision


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; ValueError otherwise."""
    kind, index = parse_device(name)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' asked for, but CUDA is not available here")
    return torch.device(kind, index)


class TorchBackend:
    """Batched inference with an :class:`AudioTagger` on CPU or CUDA, in float32 or bfloat16."""

    def __init__(self, model: AudioTagger, device: str = "auto", precision: str = Precision.fp32.value,
                 threads: int | None = None) -> None:
        if precision not in (Precision.fp32.value, Precision.bf16.value):
            raise ValueError("PyTorch runs fp32 or bf16")
        map_large_allocations_separately()
        if threads:
            torch.set_num_threads(threads)
        self.torch_device = resolve_device(device)
        self.device = self.torch_device.type
        self.batch_size = batch_size_for(self.device)
        self.model = model.eval().to(self.torch_device)
        if precision == Precision.bf16.value:
            self.model.passt.to_bfloat16()
        self.precision = precision
        self.runtime = "torch"
        self.choice = ""
        self.thresholds = model_thresholds(model.metadata)
        self.name = model.name
        self.labels = model.labels
        self.multi_label = model.multi_label
        self.sample_rate = model.sample_rate
        self.min_samples = model.min_samples
        self.max_samples = model.max_samples
        self.context_seconds = model.context_seconds

    @torch.inference_mode()
    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        """``[batch, samples]`` float32 at the model's rate -> probabilities ``[batch, classes]``
        (see :func:`tagger.backends.fit_input` for short and long inputs)."""
        batch = torch.from_numpy(fit_input(waveforms, self.min_samples, self.max_samples))
        logits, _ = self.model(batch.to(self.torch_device))
        return self.model.probabilities(logits.float()).cpu().numpy()
