"""Write an :class:`~tagger.model.AudioTagger` as one ONNX file, plus its int8 and fp16 variants.

The graph is traced with PyTorch's TorchScript-based exporter (``dynamo=False``): it needs no extra
package and reproduces the model to float32 rounding (see the verification step). Batch and length
are dynamic axes; the file carries everything a runtime needs in ``metadata_props`` (see
:func:`metadata`), so :mod:`tagger.onnx_backend` never needs the PyTorch model.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

import tagger
from tagger.model import AudioTagger
from tagger.options import MAX_OPSET, MIN_OPSET, ExportPrecision, values
from tagger.onnx_backend import FORMAT_NAME, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME

from .graph import ExportGraph
from .quantize import Int8Choice, quantize_int8, smooth_activations

OUTPUT_NAMES = (OUTPUT_NAME, "embedding")
PRECISIONS = values(ExportPrecision)


def metadata(model: AudioTagger, source: str, frontend: str, precision: str,
             opset: int, int8: Int8Choice | None = None) -> dict[str, str]:
    """The ``metadata_props`` of an exported model: strings, JSON for structured values (an int8
    graph also names its quantized layers and their measured difference from fp32)."""
    quantized = {} if int8 is None else {"int8_plan": int8.plan, "int8_max_diff": json.dumps(int8.max_diff)}
    return {**quantized,
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_name": model.name,
        "source": source,
        "tagger_version": tagger.__version__,
        "labels": json.dumps(list(model.labels)),
        "multi_label": json.dumps(bool(model.multi_label)),
        "sample_rate": str(model.sample_rate),
        "max_samples": str(model.max_samples),
        "min_samples": str(model.min_samples),
        "context_seconds": repr(model.context_seconds),
        "frontend": json.dumps({**model.frontend.config.to_dict(), "implementation": frontend}),
        "config": json.dumps(model.config.to_dict()),
        "precision": precision,
        "opset": str(opset),
        "training_metadata": json.dumps(model.metadata, default=str),
    }


def set_metadata(proto: onnx.ModelProto, values: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "tagger"
    proto.producer_version = tagger.__version__


def trace_to_onnx(model: AudioTagger, path: Path, frontend: str, opset: int,
                  half: bool = False) -> None:
    """Trace the waveform-to-probabilities graph of ``model`` into ``path``.

    With ``half`` the transformer's weights and arithmetic are float16 (for CUDA); the front-end,
    the inputs and the outputs stay float32 (the power spectrum overflows float16).
    """
    graph = ExportGraph(model.eval(), frontend, torch.float16 if half else torch.float32).eval()
    # Any length traces the same graph (batch and length stay dynamic): a short one traces faster.
    example = torch.zeros(1, min(model.max_samples, model.sample_rate))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape arithmetic; verified afterwards
        torch.onnx.export(
            graph, (example,), str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            opset_version=opset, dynamo=False, do_constant_folding=True,
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"},
                          OUTPUT_NAMES[0]: {0: "batch"}, OUTPUT_NAMES[1]: {0: "batch"}},
        )


def choice_windows(model: AudioTagger, audio: Sequence[str | Path] = (), count: int = 8) -> np.ndarray:
    """``count`` full-context windows of real audio for choosing the int8 layers: the given files,
    else the package's example clip (looped)."""
    from tagger.audio import load_audio
    from tagger.embedded import example_clip

    signal = np.concatenate([load_audio(path, model.sample_rate) for path in audio or [example_clip()]])
    window = model.max_samples
    signal = np.tile(signal, -(-(window * count) // max(1, len(signal))))
    starts = np.linspace(0, len(signal) - window, count).astype(int)
    return np.stack([signal[s:s + window] for s in starts]).astype(np.float32)


def export_model(model: AudioTagger, path: str | os.PathLike, source: str, frontend: str = "dft",
                 precision: str = "fp32", opset: int = MIN_OPSET, audio: Sequence[str | Path] = (),
                 report: Callable[[str], None] = lambda message: None) -> Path:
    """Write ``model`` as an ONNX file at ``path`` in the given precision; returns the path. An int8
    graph quantizes the layers chosen on ``audio`` (default: the example clip), see
    :mod:`tagger_export.quantize`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is not supported: use {MIN_OPSET} to {MAX_OPSET}")
    path = Path(path)
    int8 = None
    with tempfile.TemporaryDirectory(prefix="tagger-export-") as tmp:
        written = Path(tmp) / "traced.onnx"
        if precision == "int8":
            windows = choice_windows(model.float().eval(), audio)
            with torch.no_grad():
                expected = np.concatenate([model.probabilities(model(torch.from_numpy(w[None]))[0]).numpy()
                                           for w in windows])
            trace_to_onnx(smooth_activations(model, windows), written, frontend, opset)
            int8 = quantize_int8(written, Path(tmp) / "int8.onnx", windows, expected, report)
            written = Path(tmp) / "int8.onnx"
        else:
            trace_to_onnx(model, written, frontend, opset, half=precision == "fp16")
        proto = onnx.load(str(written))
    set_metadata(proto, metadata(model, source, frontend, precision, opset, int8))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
