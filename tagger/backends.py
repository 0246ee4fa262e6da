"""Open a model for inference: the one place that turns ``--model``, ``--device``, ``--precision``
and ``--threads`` into a backend, PyTorch (:mod:`tagger.torch_backend`) or ONNX Runtime
(:mod:`tagger.onnx_backend`), and what both share (the device parser, the input guard).

Torch-free at import: an ``.onnx`` model never loads torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from .options import Precision, Runtime, values

DEVICE_HELP = "auto, cpu, cuda or cuda:N"
# Windows per model call when --batch-size is not given. On the CPU one window at a time is the
# fastest (measured: batches of 6-8 are 5-20% slower per window on both runtimes, and hold several
# windows' activations at once); a GPU wants batches.
CPU_BATCH_SIZE = 1
GPU_BATCH_SIZE = 8


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
    runtime: str  # "torch" or "onnx", as --backend names them
    device: str  # "cpu" or "cuda", where it runs
    choice: str  # why this precision, when --precision fast chose it ("" otherwise), for --verbose
    thresholds: dict[str, float]  # the model's own per-label event thresholds (tagger calibrate); may be empty
    batch_size: int  # windows per call when the caller does not choose (see CPU_BATCH_SIZE)

    def predict(self, waveforms: np.ndarray) -> np.ndarray: ...


def parse_device(device: str) -> tuple[str, int | None]:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> (kind, GPU index or None); ValueError otherwise."""
    if device in ("auto", "cpu", "cuda"):
        return device, None
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return kind, int(index)
    raise ValueError(f"unknown device '{device}' (use {DEVICE_HELP})")


def batch_size_for(device: str) -> int:
    """The default windows per call on ``cpu`` or ``cuda``."""
    return GPU_BATCH_SIZE if device == "cuda" else CPU_BATCH_SIZE


def model_thresholds(metadata: object) -> dict[str, float]:
    """The per-label event thresholds a model file carries (``metadata["thresholds"]``, written by
    ``tagger calibrate``'s numbers into the file); only well-formed entries, else {}."""
    values = metadata.get("thresholds") if isinstance(metadata, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(label): float(p) for label, p in values.items()
            if isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 < p <= 1.0}


def fit_input(waveforms: np.ndarray, min_samples: int, max_samples: int) -> np.ndarray:
    """``[batch, samples]`` as contiguous float32: zero-padded to ``min_samples`` when shorter,
    refused (ValueError) when longer than ``max_samples``."""
    batch = np.ascontiguousarray(waveforms, dtype=np.float32)
    if batch.shape[-1] > max_samples:
        raise ValueError(f"{batch.shape[-1]} samples exceed the model's context of {max_samples}")
    if batch.shape[-1] < min_samples:
        batch = np.pad(batch, ((0, 0), (0, min_samples - batch.shape[-1])))
    return batch


def describe(backend: Backend) -> str:
    """One line for --verbose: the model, the runtime, precision and device it runs on, and why."""
    runtime = "ONNX Runtime" if backend.runtime == Runtime.onnx.value else "PyTorch"
    line = f"model: {backend.name}, {runtime} {backend.precision} on the {backend.device.upper()}"
    error = getattr(backend, "int8_max_diff", None)
    if backend.precision == Precision.int8.value and error is not None:
        line += f", measured within {error:.1e} of fp32"
    return f"{line} ({backend.choice})" if backend.choice else line


def runs_on_gpu(device: str) -> bool:
    """Whether ``--device`` puts the model on a GPU: ``cuda``, or ``auto`` with an NVIDIA device node."""
    from .onnx_backend import gpu_present

    kind, _ = parse_device(device)
    return kind == "cuda" or (kind == "auto" and gpu_present())


def uses_onnx(model: str | None, runtime: str, device: str, precision: str) -> bool:
    """Whether a model runs on ONNX Runtime: an ``.onnx`` file always; a PyTorch model with
    ``--backend onnx``, in int8 (its cached int8 graph), or with ``auto`` in float32 on the CPU,
    where the cached graph gives the same numbers (verified within 1e-4) faster, without torch."""
    from .onnx_backend import is_onnx_model

    if is_onnx_model(model):
        if runtime == Runtime.torch.value:
            raise ValueError("an .onnx model runs on ONNX Runtime only (drop --backend torch)")
        return True
    if precision == Precision.int8.value:
        if runtime == Runtime.torch.value:
            raise ValueError("--precision int8 runs the int8 ONNX Runtime graph (drop --backend torch)")
        return True
    if runtime == Runtime.onnx.value:
        if precision != Precision.fp32.value:
            raise ValueError("--backend onnx runs float32 graphs; --precision bf16 needs --backend torch")
        return True
    return runtime == Runtime.auto.value and precision == Precision.fp32.value and not runs_on_gpu(device)


def load_backend(model: str | None = None, device: str = "auto", precision: str = Precision.fp32.value,
                 threads: int | None = None, num_heads: int | None = None, progress: bool = True,
                 runtime: str = Runtime.auto.value) -> Backend:
    """The backend for a model file or name (default: the embedded model). ONNX Runtime for an
    ``.onnx`` file, and for a PyTorch model when :func:`uses_onnx` says so (its cached graph, see
    :mod:`tagger.onnx_cache`); else PyTorch. ``--precision fast`` is resolved here (see
    :mod:`tagger.precision`); the backend's ``choice`` says what it became. Bad option values
    raise ValueError."""
    import sys

    from .onnx_backend import OnnxBackend, is_onnx_model
    from .onnx_cache import cached_int8_error
    from .options import FAST_LIMIT
    from .precision import resolve

    if precision not in values(Precision):
        raise ValueError(f"precision must be one of {', '.join(values(Precision))}")
    if runtime not in values(Runtime):
        raise ValueError(f"backend must be one of {', '.join(values(Runtime))}")
    parse_device(device)
    if is_onnx_model(model):
        if precision != Precision.fp32.value:
            raise ValueError("--precision applies to PyTorch models; an .onnx model runs in the precision "
                             "it was exported in (see tagger export --int8/--fp16)")
        if num_heads is not None:
            raise ValueError("--num-heads applies to official PyTorch checkpoints, not to .onnx models")
    requested = precision
    choice = resolve(precision, runs_on_gpu(device), runtime)
    if choice.warning:
        print(choice.warning, file=sys.stderr, flush=True)
    precision, reason = choice.precision, choice.reason
    if precision == Precision.int8.value and uses_onnx(model, runtime, device, precision):
        graph = _cached_graph(model, runtime, num_heads, device, threads, progress, precision)
        error = cached_int8_error(Path(graph))
        within = error is not None and error <= FAST_LIMIT
        if requested != Precision.fast.value or within:
            if not within:
                print(f"warning: this model's int8 graph differs from fp32 by up to "
                      f"{'an unmeasured amount' if error is None else f'{error:.1e}'} on real audio "
                      f"(more than {FAST_LIMIT:g})", file=sys.stderr, flush=True)
            backend = OnnxBackend(graph, device=device, threads=threads)
            backend.choice = reason
            return backend
        precision = Precision.fp32.value  # fast, but this model's int8 graph is not within the limit
        measured = "an unmeasured difference" if error is None else f"up to {error:.1e} on real audio"
        reason = f"fast: fp32 (this model's int8 graph differs from fp32 by {measured}, more than {FAST_LIMIT:g})"
    if uses_onnx(model, runtime, device, precision):
        if is_onnx_model(model):
            return OnnxBackend(model, device=device, threads=threads)
        graph = _cached_graph(model, runtime, num_heads, device, threads, progress, precision)
        if graph is not None:
            backend = OnnxBackend(graph, device=device, threads=threads)
            backend.choice = reason
            return backend
    from .loading import load_model
    from .torch_backend import TorchBackend

    backend = TorchBackend(load_model(model, num_heads=num_heads, show_progress=progress), device=device,
                           precision=precision, threads=threads)
    backend.choice = reason
    return backend


def _cached_graph(model: str | None, runtime: str, num_heads: int | None, device: str, threads: int | None,
                  progress: bool, precision: str = Precision.fp32.value) -> str | None:
    """The model's cached ONNX graph in ``precision`` (fp32 or int8); with ``auto`` and fp32, None
    (PyTorch runs it) when no graph can be made here, with the reason on stderr. A model that
    cannot be read fails either way."""
    import sys

    from .errors import ModelLoadError, TaggerError
    from .loading import model_file
    from .onnx_cache import cached_graph

    path, name, stride = model_file(model, progress)  # an unknown or unreachable model fails here
    try:
        return str(cached_graph(path, name, stride, num_heads=num_heads, device=device, threads=threads,
                                precision=precision))
    except ModelLoadError:
        raise
    except Exception as exc:  # the export step's own errors (missing onnx package, verification, ...)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if runtime != Runtime.auto.value or precision != Precision.fp32.value:
            raise TaggerError(f"cannot make the {precision} ONNX graph of {model or 'the default model'}: "
                              f"{reason}") from None
        print(f"warning: running on PyTorch; no ONNX graph ({reason})", file=sys.stderr, flush=True)
        return None
