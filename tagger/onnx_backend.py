"""Run an exported ``.onnx`` model (``tagger export``) with ONNX Runtime: numpy in, probabilities out.

This module and everything it imports stay free of torch, so ``tagger file -m model.onnx`` starts
in a fraction of a second. Labels, sample rate, context and the padding rule come from the file's
``metadata_props``, written by the export step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .backends import batch_size_for, fit_input, model_thresholds, parse_device
from .errors import ModelLoadError
from .memory import map_large_allocations_separately

FORMAT_NAME = "tagger-onnx"
FORMAT_VERSION = 1
INPUT_NAME = "waveform"
OUTPUT_NAME = "probabilities"
REQUIRED_METADATA = ("labels", "sample_rate", "max_samples", "min_samples", "context_seconds")
QUIET = 4  # onnxruntime logger severity: fatal only
ERRORS_ONLY = 3


def is_onnx_model(name_or_path: str | None) -> bool:
    """Whether ``--model`` names an ONNX file (by its suffix, so no model needs loading to tell)."""
    return bool(name_or_path) and Path(name_or_path).suffix.lower() == ".onnx"


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU device node (no CUDA library is loaded to tell)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


class OnnxBackend:
    """Batched inference with an exported tagger model, on the CUDA or the CPU execution provider."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        kind, index = parse_device(device)
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such model file")
        ort.set_default_logger_severity(ERRORS_ONLY)
        options = ort.SessionOptions()
        # Large blocks in their own mappings, returned when freed: the weights' copies made while
        # the session loads do not stay resident. PaSST-S fp32, 10 s windows: peak 761 MiB instead
        # of 955 MiB, at the same speed. The CPU arena stays on: without it the peak is 575 MiB
        # but every window is 8-10% slower. With one window per call (the CPU default) the
        # arena's plan is the same for every window, so memory stays flat over long files.
        map_large_allocations_separately()
        # No precomputed memory pattern (one block for the whole graph's activations): tensors come
        # from the arena one by one. PaSST-S fp32, 10 s windows: peak 470 instead of 502 MiB (int8:
        # 221 instead of 259), the same time per window (1.61 vs 1.67 s median, alternating runs).
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        cuda_available = "CUDAExecutionProvider" in ort.get_available_providers()
        if kind == "cuda" and not cuda_available:
            raise ValueError(f"device '{device}' asked for, but this onnxruntime has no CUDA support")
        providers: list = ["CPUExecutionProvider"]
        if kind == "cuda" or (kind == "auto" and cuda_available and gpu_present()):
            ort.preload_dlls()  # the CUDA libraries of the nvidia-* wheels, when they are installed
            # TF32 off: float32 models should give the reference numbers.
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index or 0, "use_tf32": 0}))
            # A failed CUDA start is not printed: "auto" falls back to the CPU without a word, as
            # the PyTorch backend does, and "cuda" ends in one error line below.
            ort.set_default_logger_severity(QUIET)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... classes
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{path}: not a readable ONNX model ({reason})") from None
        finally:
            ort.set_default_logger_severity(ERRORS_ONLY)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.batch_size = batch_size_for(self.device)
        if kind == "cuda" and self.device != "cuda":
            raise ValueError(f"device '{device}' asked for, but onnxruntime cannot use CUDA here")
        self._read_metadata(path, self.session.get_modelmeta().custom_metadata_map)

    def _read_metadata(self, path: Path, meta: dict[str, str]) -> None:
        if meta.get("format") != FORMAT_NAME:
            raise ModelLoadError(f"{path}: not an ONNX model made by `tagger export` (no tagger metadata)")
        if not meta.get("format_version", "").isdigit() or int(meta["format_version"]) > FORMAT_VERSION:
            raise ModelLoadError(f"{path}: made by a newer tagger or damaged (format "
                                 f"{meta.get('format_version', 'missing')})")
        missing = [key for key in REQUIRED_METADATA if key not in meta]
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if missing or inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
            raise ModelLoadError(f"{path}: damaged tagger ONNX model (metadata or inputs missing)")
        try:
            self.labels: list[str] = list(json.loads(meta["labels"]))
            self.sample_rate = int(meta["sample_rate"])
            self.max_samples = int(meta["max_samples"])
            self.min_samples = int(meta["min_samples"])
            self.context_seconds = float(meta["context_seconds"])
            self.multi_label = bool(json.loads(meta.get("multi_label", "true")))
            # An int8 graph's measured difference from fp32 (tagger_export.quantize); None if unknown.
            error = json.loads(meta.get("int8_max_diff", "null"))
            self.int8_max_diff = None if error is None else float(error)
            self.thresholds = model_thresholds(json.loads(meta.get("training_metadata", "{}")))
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{path}: damaged tagger ONNX model ({exc})") from None
        self.name = meta.get("model_name", path.name)
        self.precision = meta.get("precision", "fp32")
        self.runtime = "onnx"
        self.choice = ""

    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        """``[batch, samples]`` float32 at the model's rate -> probabilities ``[batch, classes]``
        (see :func:`tagger.backends.fit_input` for short and long inputs)."""
        batch = fit_input(waveforms, self.min_samples, self.max_samples)
        (probabilities,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return probabilities
